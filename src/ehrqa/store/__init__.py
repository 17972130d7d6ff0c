"""Record stores: where normalised resources live, behind the :class:`RecordStore` protocol."""

from ehrqa.store.base import PatientSummary, RecordQuery, RecordStore, UpsertStats
from ehrqa.store.sqlite import SqliteStore, open_store

__all__ = [
    "PatientSummary",
    "RecordQuery",
    "RecordStore",
    "SqliteStore",
    "UpsertStats",
    "open_store",
]
