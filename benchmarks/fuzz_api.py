"""Fuzz every HTTP route with the cases of tests/api/test_fuzz.py, many more of them (issue 17).

    .venv/bin/python benchmarks/fuzz_api.py --cases 10000              # over every route
    .venv/bin/python benchmarks/fuzz_api.py --cases 10000 --per-route  # 10,000 for each route

The app runs in-process (FastAPI's TestClient), with and without tokens, over a store of
one patient and a two-document library. Prints the number of cases run, the count per
route and per status, how many failed (a 5xx other than 503, or a body holding a
traceback, an internal-error event or the install path), and the first few failures with
their case. Exits with 1 when any case failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from api.test_fuzz import ROUTES, Case, cases, make_service, problems, send  # noqa: E402


def main() -> int:
    """Run the cases and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="how many cases to run")
    parser.add_argument(
        "--per-route",
        action="store_true",
        help="run --cases for each route template (and for random paths) instead of in all",
    )
    args = parser.parse_args()
    ran = 0
    statuses: Counter[int] = Counter()
    routes: Counter[str] = Counter()
    failures: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as folder:
        service = make_service(Path(folder))

        def check(case: Case) -> None:
            nonlocal ran
            ran += 1
            routes[case.route] += 1
            try:
                status, text = send(service, case)
            except Exception:  # a client-side crash is a failure too
                failures.append(f"{case.describe()}\n{traceback.format_exc(limit=3)}")
                return
            statuses[status] += 1
            found = problems(status, text)
            if found:
                failures.append(f"{case.describe()}: {', '.join(found)}\n  {text[:300]}")

        targets: list[str | None] = [*ROUTES, "random"] if args.per_route else [None]
        for target in targets:
            run = settings(
                max_examples=args.cases,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(cases(target))(check))
            run()
    seconds = time.perf_counter() - started
    print(f"cases run: {ran:,} in {seconds:.0f} s ({ran / seconds:.0f}/s)")
    print("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print(f"routes ({len(routes) - 1} templates + random paths):")
    for route, count in routes.most_common():
        print(f"  {route}: {count}")
    print(f"failures: {len(failures)}")
    for failure in failures[:5]:
        print(f"- {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
