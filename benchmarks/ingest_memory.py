"""Peak memory of `ehrqa ingest` on a ~200 MB bundle, and the time to refuse gzip bombs.

    .venv/bin/python benchmarks/ingest_memory.py [--mb 200] [--baseline-src DIR]

The bundle repeats the real entries of the demo bundles (src/ehrqa/lab/data/demo) with new ids
(every UUID gets a ``-k<copy>`` suffix, so references stay consistent within a copy). Each
measurement is a fresh `ehrqa ingest` process into a fresh store, its peak RSS read by
/usr/bin/time. ``--baseline-src`` runs the same ingest with another checkout's ``src`` (e.g.
a `git worktree` of the commit before streaming ingest) for comparison. Targets (issue 17):
peak RSS <= 300 MB for 200 MB, a gzip bomb refused in < 1 s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "src" / "ehrqa" / "data" / "demo"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MIB = 1 << 20


def build_bundle(path: Path, target_mb: int) -> tuple[int, int]:
    """Write a transaction bundle of about ``target_mb`` MiB; return (bytes, entries)."""
    blocks = []
    for demo in sorted(DEMO.glob("*.json.gz")):
        entries = json.loads(gzip.decompress(demo.read_bytes()))["entry"]
        blocks.append([json.dumps(e, separators=(",", ":")).encode() for e in entries])
    written, count, copy = 0, 0, 0
    with path.open("wb") as out:
        out.write(b'{"resourceType":"Bundle","type":"transaction","entry":[')
        while written < target_mb * MIB:
            block = blocks[copy % len(blocks)]
            suffix = rb"\g<0>-k" + str(copy).encode()
            for entry in block:
                data = UUID.sub(suffix, entry)
                out.write((b"," if count else b"") + data)
                written += len(data) + 1
                count += 1
            copy += 1
        out.write(b"]}")
    return path.stat().st_size, count


def ingest(files: list[Path], home: Path, src: Path | None = None) -> dict[str, float | str]:
    """Run `ehrqa ingest` in a fresh process; its peak RSS (MB), wall time and last lines."""
    env = {**os.environ, "EHRQA_HOME": str(home)}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [
        "/usr/bin/time",
        "-f",
        "PEAK_KB=%M",
        sys.executable,
        "-c",
        "from ehrqa.cli.main import main; main()",
        "ingest",
        *map(str, files),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    peak = re.search(r"PEAK_KB=(\d+)", done.stderr)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "PEAK_KB" not in line]
    return {
        "peak_mb": int(peak.group(1)) / 1024 if peak else float("nan"),
        "seconds": seconds,
        "rc": done.returncode,
        "output": " | ".join(lines[-3:]),
    }


def refuse_time(path: Path) -> tuple[float, str]:
    """Seconds for the library to refuse ``path`` (in this process), and its message."""
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.store import SqliteStore

    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "s.sqlite3")
        started = time.perf_counter()
        report = ingest_paths(store, [path])
        seconds = time.perf_counter() - started
        store.close()
    return seconds, "; ".join(str(i) for i in report.issues)


def make_bombs(folder: Path) -> list[Path]:
    """2 GiB of spaces gzip'd (~2 MB), honest and with a trailer forged to claim 10 bytes."""
    honest = folder / "bomb.json.gz"
    with gzip.open(honest, "wb", compresslevel=9) as out:
        chunk = b" " * (16 * MIB)
        for _ in range(128):
            out.write(chunk)
    data = bytearray(honest.read_bytes())
    data[-4:] = (10).to_bytes(4, "little")
    forged = folder / "bomb-forged.json.gz"
    forged.write_bytes(bytes(data))
    return [honest, forged]


def main() -> None:
    """Build the data, measure, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="bundle size in MiB")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to compare")
    parser.add_argument("--work", type=Path, help="folder for the data (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ehrqa-ingest-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    big = work / "big.json"
    size, entries = build_bundle(big, args.mb)
    print(f"bundle: {big} {size / MIB:.0f} MiB, {entries} entries")
    rows = []
    runs = [("this checkout", None)]
    if args.baseline_src:
        runs.append((f"baseline {args.baseline_src}", args.baseline_src))
    for label, src in runs:
        result = ingest([big], work / f"home-{len(rows)}", src)
        rows.append((label, result))
        print(f"{label}: {result}")
    bombs = make_bombs(work)
    print("\n| run | peak RSS (MB) | wall (s) | rc |\n|---|---|---|---|")
    for label, result in rows:
        print(
            f"| ingest {size / MIB:.0f} MiB, {entries} entries, {label} | "
            f"{result['peak_mb']:.0f} | {result['seconds']:.1f} | {result['rc']} |"
        )
    print(
        "\n| bomb | refused in (library, s) | `ehrqa ingest` process (s, with start-up) | message |"
    )
    print("|---|---|---|---|")
    for bomb in bombs:
        seconds, message = refuse_time(bomb)
        cli = ingest([bomb], work / "home-bomb")
        print(
            f"| {bomb.name} ({bomb.stat().st_size / MIB:.1f} MB) | {seconds:.3f} | "
            f"{cli['seconds']:.2f} (peak {cli['peak_mb']:.0f} MB) | {message} |"
        )


if __name__ == "__main__":
    main()
