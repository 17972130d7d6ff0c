"""Fixtures of the decision-support tests (the fakes live in tests/cds_fakes.py)."""

from __future__ import annotations

import pytest

from cds_fakes import NOW, FakeLibrary, ckd_resources
from ehrqa.fhir.normalize import normalize
from ehrqa.meds.context import PatientContext, context_from_records


@pytest.fixture
def library() -> FakeLibrary:
    return FakeLibrary()


@pytest.fixture
def ckd_context() -> PatientContext:
    return context_from_records([normalize(r) for r in ckd_resources()], "p1", NOW)
