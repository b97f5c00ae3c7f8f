"""Where the test data lives: the project's own sample and the shared real Movebank files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "fishers-sample.csv"
# CI and the main checkout find the data at ../shared/data; a git worktree elsewhere (or any
# other layout) names the folder in $CSV2LP_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("CSV2LP_SHARED_DATA") or REPO.parent / "shared" / "data")
SHARED_MOVEBANK = SHARED_DATA / "movebank"
FISHERS = SHARED_MOVEBANK / "fishers-new-york.csv.gz"
ALBATROSSES = SHARED_MOVEBANK / "galapagos-albatrosses.csv.gz"


@pytest.fixture(scope="session")
def shared_movebank() -> Path:
    """The real Movebank exports beside the project (../shared/data/movebank).

    A user's clone has no ../shared: skip there, with the reason and the variable that
    points elsewhere. CI always has it.
    """
    if not FISHERS.exists() or not ALBATROSSES.exists():
        pytest.skip(f"real Movebank files not found at {SHARED_MOVEBANK} (only present on project machines; "
                    "set CSV2LP_SHARED_DATA to the folder that holds movebank/)")
    return SHARED_MOVEBANK
