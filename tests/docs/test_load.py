"""Readers: Markdown front matter, HTML structure, plain text, PDF, and bad inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ehrqa.docs.load import (
    DocumentError,
    find_documents,
    normalise_date,
    normalise_text,
    read_document,
    slugify,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docs"


def test_markdown_front_matter_is_read_and_stripped() -> None:
    doc = read_document(FIXTURES / "uti.md")
    assert (doc.doc_id, doc.title, doc.doc_type, doc.date, doc.version) == (
        "uti-adults",
        "Urinary tract infection in adults",
        "guideline",
        "2024-03-15",
        "2.1",
    )
    assert doc.markdown
    assert doc.text.startswith("# Urinary tract infection in adults")
    assert "doc_type:" not in doc.text


def test_markdown_without_front_matter_takes_title_from_h1(tmp_path: Path) -> None:
    path = tmp_path / "Asthma Guide.md"
    path.write_text("Intro line\n\n# Acute asthma\n\nText.\n", encoding="utf-8")
    doc = read_document(path)
    assert (doc.title, doc.doc_id, doc.doc_type, doc.date) == ("Acute asthma", None, None, None)


def test_markdown_without_any_title_uses_the_stem(tmp_path: Path) -> None:
    path = tmp_path / "copd.md"
    path.write_text("Just text.\n", encoding="utf-8")
    assert read_document(path).title == "copd"


def test_html_headings_become_markdown_and_scripts_styles_nav_are_dropped() -> None:
    doc = read_document(FIXTURES / "hypertension.html")
    assert (doc.title, doc.doc_type, doc.date) == (
        "Hypertension protocol",
        "protocol",
        "2023-09-01",
    )
    assert "## Treatment" in doc.text and "### Step 2" in doc.text
    assert "- Offer an ACE inhibitor" in doc.text
    assert "blood pressure monitoring" in doc.text  # source line breaks joined
    for dropped in ("secret-script-text", "color: red", "Navigation menu"):
        assert dropped not in doc.text


def test_plain_text_has_no_structure() -> None:
    doc = read_document(FIXTURES / "nested" / "handwashing.txt")
    assert (doc.title, doc.markdown, doc.date) == ("handwashing", False, None)
    assert "alcohol-based rub" in doc.text


def test_pdf_text_title_and_creation_date(tmp_path: Path, make_pdf: Callable[..., Path]) -> None:
    path = make_pdf(
        tmp_path / "sepsis.pdf", pages=("Page one about lactate.", "Page two about fluids.")
    )
    doc = read_document(path)
    assert (doc.title, doc.date, doc.markdown) == ("Sepsis pathway", "2022-06-30", False)
    assert "lactate" in doc.text and "fluids" in doc.text


def test_find_documents_walks_folders_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / ".git").mkdir(parents=True)
    (tmp_path / "a" / ".git" / "x.md").write_text("x")
    (tmp_path / "a" / "b.md").write_text("b")
    (tmp_path / "c.txt").write_text("c")
    found = find_documents([tmp_path, tmp_path / "c.txt", tmp_path / "missing.md"])
    assert found == [tmp_path / "a" / "b.md", tmp_path / "c.txt", tmp_path / "missing.md"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bad.md", b"---\ntitle: [unclosed\n---\nbody", "invalid YAML front matter"),
        ("list.md", b"---\n- a\n- b\n---\nbody", "must be a YAML mapping"),
        ("date.md", b"---\ndate: last tuesday\n---\nbody", "not a date"),
        ("nested.md", b"---\ntitle: {a: 1}\n---\nbody", "must be a single value"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "corrupt or unreadable PDF"),
        ("slides.pptx", b"whatever", "unsupported file type"),
    ],
)
def test_bad_inputs_raise_document_error_with_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=reason):
        read_document(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2024-01-05", "2024-01-05"), ("2024-01-05T10:00:00Z", "2024-01-05"),
     ("D:20220630120000", "2022-06-30"), (None, None), ("", None)],
)  # fmt: skip
def test_normalise_date(value: str | None, expected: str | None) -> None:
    assert normalise_date(value, "test") == expected


@pytest.mark.parametrize("value", ["2024-13-01", "soon", "05/01/2024"])
def test_normalise_date_rejects(value: str) -> None:
    with pytest.raises(DocumentError, match="not a date"):
        normalise_date(value, "test")


def test_slugify_and_normalise_text() -> None:
    assert slugify("Type 2 Diabétes (2024)") == "type-2-diabetes-2024"
    assert slugify("???") == "document"
    assert normalise_text("a  \r\nb\r\n\r\n\r\n\r\nc\n") == "a\nb\n\nc"
