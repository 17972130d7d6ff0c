"""Fuzz ingest with the cases of tests/ingest/test_ingest_fuzz.py, many more of them (issue 17).

    .venv/bin/python benchmarks/fuzz_ingest.py --cases 10000

Prints the number of cases run, how many crashed (an exception out of ingest, or a broken
invariant: a rejected file that left records, a multi-line issue, a stored bad id or a
record that lost its patient), and the first few crashes with the case that caused them.
Exits with 1 when any case crashed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from test_ingest_fuzz import cases, check_case  # noqa: E402


def main() -> int:
    """Run the cases and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="how many cases to run")
    args = parser.parse_args()
    ran = 0
    crashes: list[str] = []
    started = time.perf_counter()

    @settings(
        max_examples=args.cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def run(case: tuple[str, bytes, bool]) -> None:
        nonlocal ran
        ran += 1
        try:
            check_case(*case)
        except Exception:  # a crash is what is counted here
            name, content, streamed = case
            crashes.append(
                f"{name} streamed={streamed} {content[:200]!r}\n{traceback.format_exc(limit=4)}"
            )

    run()
    seconds = time.perf_counter() - started
    print(f"cases: {ran}")
    print(f"crashes: {len(crashes)}")
    print(f"seconds: {seconds:.1f} ({ran / seconds:.0f} cases/s)")
    for crash in crashes[:5]:
        print(crash)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
