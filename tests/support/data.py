"""Where the test data lives: the project's own sample and the shared real Movebank files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "fishers-sample.csv"
SHARED_MOVEBANK = REPO.parent / "shared" / "data" / "movebank"
FISHERS = SHARED_MOVEBANK / "fishers-new-york.csv.gz"
ALBATROSSES = SHARED_MOVEBANK / "galapagos-albatrosses.csv.gz"


@pytest.fixture(scope="session")
def shared_movebank() -> Path:
    """The real Movebank exports beside the project (../shared/data/movebank).

    A user's clone has no ../shared: skip there, with the reason. CI always has it.
    """
    if not FISHERS.exists() or not ALBATROSSES.exists():
        pytest.skip(f"real Movebank files not found at {SHARED_MOVEBANK} (only present on project machines)")
    return SHARED_MOVEBANK
