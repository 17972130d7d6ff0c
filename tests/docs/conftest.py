"""Fixtures for the document library tests: the tiny document set and fresh libraries."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ehrqa.docs import DocumentLibrary
from ehrqa.llm.embed import HashEmbedder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docs"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of tests/fixtures/docs that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def library(tmp_path: Path) -> Iterator[DocumentLibrary]:
    """An empty library with the hashing embedder."""
    lib = DocumentLibrary(tmp_path / "home" / "docs.sqlite3", HashEmbedder())
    yield lib
    lib.close()


@pytest.fixture
def make_pdf() -> Callable[..., Path]:
    """A function that writes a small text PDF (title, creation date 2022-06-30, pages)."""
    return _make_pdf


def _make_pdf(path: Path, *, title: str = "Sepsis pathway", pages: tuple[str, ...] = ()) -> Path:
    """Write a small text PDF with fpdf2 (installed with the dev extra)."""
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 is needed to make test PDFs")
    from datetime import datetime

    pdf = fpdf.FPDF()
    pdf.set_title(title)
    pdf.set_creation_date(datetime(2022, 6, 30, 12, 0, 0))
    pdf.set_font("Helvetica", size=12)
    for text in pages or ("Give antibiotics within one hour of recognising sepsis.",):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path
