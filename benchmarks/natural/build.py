"""Build the natural-question benchmark: derive gold for every questions-*.jsonl.

    .venv/bin/python benchmarks/natural/build.py [--data DIR] [--bundles-dir DIR]

A thin shell over :func:`ehrqa.lab.data.natural.build_benchmark` (writes qa.jsonl + README.md
next to this file).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ehrqa.lab.data.natural import main

if __name__ == "__main__":
    root = str(Path(__file__).resolve().parent)
    raise SystemExit(main(["build", "--root", root, *sys.argv[1:]]))
