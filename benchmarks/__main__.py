"""`python -m benchmarks [--quick]`: make the inputs, run every peer, print the table.

The full run (fishers x20, 10M rows, ~2 GB) is for people and takes tens of minutes;
`--quick` runs the same code on small inputs in a couple of minutes. Results land in
benchmarks/results/ (the pytest-benchmark JSON and the Markdown table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from . import report
from .datasets import DEFAULT_DATA_DIR, SIZES

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (a couple of minutes); same as --size quick")
    parser.add_argument("--size", choices=sorted(SIZES), default="full",
                        help="full (the default), quick, or tiny (seconds: the CI smoke test's size)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="folder for the inputs (kept)")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for the JSON and table")
    parser.add_argument("-k", dest="keyword", help="only the tests matching this pytest -k expression")
    args = parser.parse_args(argv)

    size = "quick" if args.quick else args.size
    args.results.mkdir(parents=True, exist_ok=True)
    json_path = args.results / f"{size}.json"
    pytest_args = [str(HERE / "test_bench.py"), "-m", "benchmark", "-p", "no:cacheprovider", "-q",
                   f"--bench-size={size}", f"--bench-data={args.data}", f"--benchmark-json={json_path}",
                   "--benchmark-columns=min,median,max,rounds", "--benchmark-sort=name"]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    status = pytest.main(pytest_args)
    if not json_path.exists():
        print(f"no results written ({json_path}); pytest exit status {status}", file=sys.stderr)
        return int(status) or 1
    print()
    report.main([str(json_path), "-o", str(args.results / f"{size}.md")])
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
