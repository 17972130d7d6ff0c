"""The QA dataset format: one JSON object a line, readable from anyone's tools.

```
{"id": "...", "patient_id": "<Patient id>", "question": "...", "now": "YYYY-MM-DD",
 "relevant_ids": ["Observation/…"], "answer": "reference answer sentence",
 "answer_values": ["7.8", "%", "2024-11-02"], "answerable": true,
 "intent": "latest_lab", "perspective": "patient" | "clinician"}
```

Optional keys: ``split`` (train/val/test) and ``tags`` (e.g. ``["injection"]``). Unknown
keys are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import ConfigError, NotFoundError

PERSPECTIVES = ("patient", "clinician")
SPLITS = ("train", "val", "test")
# val<n>/test<n>: a benchmark's later rounds of patients (natural.py ROUNDS, rounds 2 to 16)
LATER_ROUNDS = range(2, 17)
ACCEPTED_SPLITS = (*SPLITS, *(f"{name}{n}" for n in LATER_ROUNDS for name in ("val", "test")))
REQUIRED: dict[str, type] = {
    "id": str,
    "patient_id": str,
    "question": str,
    "now": str,
    "relevant_ids": list,
    "answer": str,
    "answer_values": list,
    "answerable": bool,
    "intent": str,
    "perspective": str,
}


class DatasetError(ConfigError):
    """A QA dataset line is malformed; the message names the file, line and field."""


@dataclass
class QAItem:
    """One gold-labelled question about one patient."""

    id: str
    patient_id: str
    question: str
    now: str
    relevant_ids: list[str]
    answer: str
    answer_values: list[str]
    answerable: bool
    intent: str
    perspective: str
    split: str | None = None
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def now_date(self) -> date:
        """``now`` as a date."""
        return date.fromisoformat(self.now)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this item (keys in the documented order)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in REQUIRED}
        if self.split is not None:
            data["split"] = self.split
        if self.tags:
            data["tags"] = list(self.tags)
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> QAItem:
        """Validate and build an item; errors name ``where`` (file:line) and the field."""
        prefix = f"{where}: " if where else ""
        if not isinstance(data, dict):
            raise DatasetError(f"{prefix}expected a JSON object")
        for name, kind in REQUIRED.items():
            if name not in data:
                raise DatasetError(f"{prefix}missing field {name!r}")
            if not isinstance(data[name], kind):
                got = type(data[name]).__name__
                raise DatasetError(f"{prefix}field {name!r} must be {kind.__name__}, got {got}")
        for name in ("relevant_ids", "answer_values"):
            if not all(isinstance(v, str) for v in data[name]):
                raise DatasetError(f"{prefix}field {name!r} must be a list of strings")
        if any("/" not in ref for ref in data["relevant_ids"]):
            raise DatasetError(
                f"{prefix}field 'relevant_ids' must hold references like Observation/abc"
            )
        try:
            date.fromisoformat(data["now"])
        except ValueError as exc:
            raise DatasetError(
                f"{prefix}field 'now' must be YYYY-MM-DD, got {data['now']!r}"
            ) from exc
        if data["perspective"] not in PERSPECTIVES:
            raise DatasetError(f"{prefix}field 'perspective' must be one of {PERSPECTIVES}")
        split = data.get("split")
        if split is not None and split not in ACCEPTED_SPLITS:
            raise DatasetError(f"{prefix}field 'split' must be one of {ACCEPTED_SPLITS}")
        extra = {k: v for k, v in data.items() if k not in REQUIRED and k not in ("split", "tags")}
        return cls(
            **{k: data[k] for k in REQUIRED},
            split=split,
            tags=list(data.get("tags") or []),
            extra=extra,
        )


def iter_dataset(path: str | Path) -> Iterator[QAItem]:
    """Read a JSONL dataset lazily; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"dataset {path} does not exist")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: invalid JSON ({exc})") from exc
            yield QAItem.from_dict(data, f"{path}:{number}")


def read_dataset(path: str | Path) -> list[QAItem]:
    """Read a whole JSONL dataset; duplicate ids are an error."""
    items = list(iter_dataset(path))
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"{path}: duplicate id {item.id!r}")
        seen.add(item.id)
    return items


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write JSON objects one per line, atomically (a temporary file renamed into place).

    A crash leaves the previous file intact, never half a file. Returns the count.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    count = 0
    with tmp.open("wb") as handle:
        for row in rows:
            handle.write(orjson.dumps(row) + b"\n")
            count += 1
    tmp.replace(path)
    return count


def write_dataset(items: Iterable[QAItem], path: str | Path) -> int:
    """Write items as a JSONL dataset, atomically; returns the count."""
    return write_jsonl((item.to_dict() for item in items), path)


def dataset_hash(path: str | Path) -> str:
    """SHA-256 of the dataset file's bytes (recorded in every report)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
