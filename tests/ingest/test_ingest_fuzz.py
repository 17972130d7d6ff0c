"""Fuzzing ingest (issue 17): random and mutated bundles and ndjson, small and streamed.

Whatever the bytes, ingest returns a report (no traceback), a rejected file leaves nothing
in the store, every problem is one line, and nothing stored breaks the id grammar or lost
its patient. The suite runs a short profile; ``benchmarks/fuzz_ingest.py`` runs the same
cases ≥ 10,000 times.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PATIENT_ID, bundle, observation, patient
from ehrqa.fhir import parse
from ehrqa.fhir.elements import PATIENT_FIELDS
from ehrqa.fhir.validate import ID_PATTERN, get_validator
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import SqliteStore

NASTY = [
    "Patient/../../etc/passwd",
    "..%2F..%2Fx",
    "..",
    "",
    "2024-02-30T10:00:00Z",
    "1999-02-30",
    f"urn:uuid:{PATIENT_ID}",
    f"Patient/{PATIENT_ID}",
    "Group/g1",
    "#m1",
    "\x00",
    "\ud800",
    "x" * 300,
    "Bundle",
    "Observation",
    "DELETE",
]
KEYS = ["resourceType", "id", "reference", "subject", "entry", "resource", "fullUrl", "request"]
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(NASTY)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def seed_bundle() -> dict[str, Any]:
    """A valid bundle using what ingest resolves: urn references, a Medication, a reason."""
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": f"urn:uuid:{PATIENT_ID}"},
        "code": {"text": "Diabetes"},
    }
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"urn:uuid:{PATIENT_ID}"},
        "medicationReference": {"reference": "urn:uuid:m1"},
        "reasonReference": [{"reference": "urn:uuid:c1"}],
    }
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "Metformin"}}
    obs = [observation(f"o{i}", f"2024-01-0{i + 1}", i + 0.5) for i in range(3)]
    return bundle(request, patient(), condition, *obs, medication, urn=True)


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _slots(value)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(file name, file bytes, read it streamed) for one fuzz case."""
    doc: Any = seed_bundle()
    for _ in range(draw(st.integers(0, 4))):
        slots = list(_slots(doc))
        if not slots or draw(st.integers(0, 30)) == 0:
            doc = draw(VALUES)
            continue
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(VALUES)
    kind = draw(st.sampled_from(["json", "json.gz", "ndjson", "ndjson.gz"]))
    if kind.startswith("ndjson"):
        entries = doc.get("entry") if isinstance(doc, dict) else None
        items = entries if isinstance(entries, list) else [doc]
        lines = [json.dumps(e.get("resource") if isinstance(e, dict) else e) for e in items]
        raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    else:
        raw = json.dumps(doc).encode("utf-8", "surrogatepass")
    raw = _mutate_bytes(draw, raw)
    if kind.endswith(".gz"):
        raw = _mutate_bytes(draw, gzip.compress(raw), rarely=True)
    return f"case.{kind}", raw, draw(st.booleans())


def _mutate_bytes(draw: st.DrawFn, raw: bytes, *, rarely: bool = False) -> bytes:
    how = draw(st.integers(0, 12 if rarely else 5))
    if how > 3 or not raw:
        return raw
    at = draw(st.integers(0, len(raw) - 1))
    if how == 0:  # truncated
        return raw[:at]
    if how == 1:  # junk inserted
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if how == 2:  # one byte changed
        return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw[:at] + raw[at:].replace(b"}", b"", 1)  # an object left open


@contextlib.contextmanager
def _streamed(on: bool) -> Iterator[None]:
    before = parse.IN_MEMORY_BYTES
    parse.IN_MEMORY_BYTES = 64 if on else before
    try:
        yield
    finally:
        parse.IN_MEMORY_BYTES = before


VALIDATOR = get_validator("fhirkit")


def check_case(name: str, content: bytes, streamed: bool) -> None:
    """Ingest one case into a fresh store and check what must hold; AssertionError if not."""
    with tempfile.TemporaryDirectory(prefix="ehrqa-fuzz-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        store = SqliteStore(Path(folder) / "store.sqlite3")
        try:
            with _streamed(streamed):
                report = ingest_paths(store, [path], validator=VALIDATOR)
            records = list(store.iter_records())
        finally:
            store.close()
    assert all("\n" not in str(issue) for issue in report.issues), report.issues
    if report.rejected_files:
        assert records == [], "a rejected file left records behind"
    assert len(records) == report.stats.inserted and report.stats.updated == 0
    for record in records:
        assert ID_PATTERN.fullmatch(record.id), record.ref
        linked = [record.resource.get(f) for f in PATIENT_FIELDS]
        refs = [r.get("reference") for r in linked if isinstance(r, dict)]
        if any(isinstance(r, str) and r.startswith(("Patient/", "urn:")) for r in refs):
            assert record.patient_id is not None, record.ref


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_ingest_survives_mutated_files(case: tuple[str, bytes, bool]) -> None:
    check_case(*case)


def test_the_seed_itself_ingests_cleanly_both_ways() -> None:
    raw = json.dumps(seed_bundle()).encode()
    for streamed in (False, True):
        check_case("seed.json", raw, streamed)
