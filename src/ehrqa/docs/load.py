"""Readers: turn a Markdown, text, HTML or PDF file into a :class:`SourceDocument`.

Markdown keeps its text as written (heading lines with their ``#`` markers); HTML is
rendered to the same Markdown shape (``h1``–``h6`` become ``#`` lines, scripts, styles and
navigation dropped) so one chunker serves both. Plain text and PDF text have no headings.
Readers raise :class:`DocumentError` with the reason; they never return half a document.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrqa.core.errors import EhrqaError

__all__ = [
    "READERS",
    "DocumentError",
    "SourceDocument",
    "find_documents",
    "normalise_date",
    "normalise_text",
    "read_document",
    "slugify",
]


class DocumentError(EhrqaError):
    """A document file cannot be read: unsupported, unreadable, corrupt or invalid metadata."""


@dataclass(frozen=True)
class SourceDocument:
    """A document as read from its file, before chunking.

    ``text`` is Markdown when ``markdown`` is true (``#`` lines are headings), else plain
    text. ``doc_id`` is the front-matter ``id`` when the file gives one (it then names the
    document wherever the file moves), else ``None`` and the library derives it from the
    file stem. ``date`` is ``YYYY-MM-DD`` from the file's metadata, never its mtime.
    """

    source: str
    title: str
    text: str
    markdown: bool
    doc_id: str | None = None
    doc_type: str | None = None
    date: str | None = None
    version: str | None = None


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_DROPPED_HTML = ("script", "style", "nav", "noscript", "template", "svg")
_HTML_BLOCKS = (
    "p", "div", "section", "article", "main", "li", "tr", "pre", "blockquote", "dd", "dt",
    "caption", "figcaption", "table", "ul", "ol", "dl", "br", "hr", "header", "footer",
)  # fmt: skip
_BREAK = "\x00"  # paragraph separator while flattening HTML (never in real text)


def slugify(text: str) -> str:
    """A lower-case ASCII slug of ``text`` (``"Type 2 Diabetes"`` -> ``"type-2-diabetes"``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_JUNK.sub("-", ascii_text.lower()).strip("-") or "document"


def normalise_text(text: str) -> str:
    """Canonical form for hashing and chunking: NFC, ``\\n`` line ends, no trailing blanks,
    at most one empty line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def normalise_date(value: Any, where: str) -> str | None:
    """``value`` (a date, datetime or ISO string) as ``YYYY-MM-DD``; ``None`` stays ``None``.

    Raises :class:`DocumentError` naming ``where`` for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    match = re.match(r"^D?:?(\d{4})-?(\d{2})-?(\d{2})", text)
    if match:
        try:
            return dt.date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            pass
    raise DocumentError(f"{where}: date {text!r} is not a date like 2024-11-02")


def find_documents(paths: Iterable[str | Path]) -> list[Path]:
    """Files under ``paths`` (folders walked recursively, hidden entries skipped), in order,
    each once. A path that does not exist is kept so the caller can report it."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and not hidden:
                    found.setdefault(child, None)
        else:
            found.setdefault(path, None)
    return list(found)


def read_document(path: str | Path) -> SourceDocument:
    """Read one file with the reader for its suffix (see :data:`READERS`)."""
    file = Path(path)
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        supported = ", ".join(sorted(READERS))
        raise DocumentError(f"unsupported file type {file.suffix or '(none)'!r}; use {supported}")
    if not file.is_file():
        raise DocumentError("no such file")
    return reader(file)


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (byte {exc.start}): save it as UTF-8") from exc
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror or exc}") from exc


def read_markdown(path: Path) -> SourceDocument:
    """A Markdown file, with optional YAML front matter (id, title, doc_type, date, source,
    version). The title is front matter ``title``, else the first ``#`` heading, else the
    file stem."""
    raw = normalise_text(_read_utf8(path))
    meta, body = _split_front_matter(raw)
    h1 = _H1.search(body)
    title = _meta_str(meta, "title") or (h1.group(1).strip() if h1 else path.stem)
    doc_id = _meta_str(meta, "id")
    return SourceDocument(
        source=str(path),
        title=title,
        text=body.strip(),
        markdown=True,
        doc_id=slugify(doc_id) if doc_id else None,
        doc_type=_meta_str(meta, "doc_type"),
        date=normalise_date(meta.get("date"), "front matter"),
        version=_meta_str(meta, "version"),
    )


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    import yaml

    try:
        meta = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        raise DocumentError(f"invalid YAML front matter: {str(exc).splitlines()[0]}") from exc
    if not isinstance(meta, dict):
        raise DocumentError("front matter must be a YAML mapping (key: value lines)")
    return meta, text[match.end() :]


def _meta_str(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise DocumentError(f"front matter {key!r} must be a single value, got {value!r}")
    return str(value).strip() or None


def read_text(path: Path) -> SourceDocument:
    """A plain UTF-8 text file: no headings, titled by its file stem."""
    return SourceDocument(
        source=str(path), title=path.stem, text=normalise_text(_read_utf8(path)), markdown=False
    )


def read_html(path: Path) -> SourceDocument:
    """An HTML page rendered to Markdown: ``h1``–``h6`` become ``#`` lines, list items
    ``- `` lines; scripts, styles and navigation are dropped. Title from ``<title>``, else
    the first ``h1``; date and type from ``<meta name="date">`` / ``<meta name="doc_type">``."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_utf8(path), "html.parser")
    title_tag = soup.find("title") or soup.find("h1")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    meta = {
        str(tag.get("name", "")).lower(): str(tag.get("content", ""))
        for tag in soup.find_all("meta")
        if tag.get("name")
    }
    date = meta.get("date") or meta.get("dcterms.date") or meta.get("dc.date")
    for tag in soup.find_all(_DROPPED_HTML):
        tag.decompose()
    root = soup.body or soup
    return SourceDocument(
        source=str(path),
        title=title or path.stem,
        text=_html_to_markdown(root),
        markdown=True,
        doc_type=meta.get("doc_type") or None,
        date=normalise_date(date, "<meta name=date>"),
    )


def _html_to_markdown(root: Any) -> str:
    from bs4 import NavigableString

    for tag in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        heading = "#" * int(tag.name[1]) + " " + tag.get_text(" ", strip=True)
        tag.replace_with(NavigableString(f"{_BREAK}{heading}{_BREAK}"))
    for tag in root.find_all(["td", "th"]):
        tag.append(NavigableString(" "))
    for tag in root.find_all(_HTML_BLOCKS):
        if tag.name == "li":
            tag.insert(0, NavigableString(f"{_BREAK}- "))
        tag.insert(0, NavigableString(_BREAK))
        tag.append(NavigableString(_BREAK))
    flat = re.sub(r"\s+", " ", root.get_text())
    paragraphs = (part.strip() for part in flat.split(_BREAK))
    return normalise_text("\n\n".join(p for p in paragraphs if p))


def read_pdf(path: Path) -> SourceDocument:
    """A PDF's text, page by page (no headings). Title and date come from its metadata."""
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("the PDF is encrypted: save an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except DocumentError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files; all mean "corrupt"
        raise DocumentError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc
    title = str(info.title).strip() if info and info.title else ""
    created = info.get("/CreationDate") if info else None
    return SourceDocument(
        source=str(path),
        title=title or path.stem,
        text=normalise_text("\n\n".join(pages)),
        markdown=False,
        date=_pdf_date(created),
    )


def _pdf_date(created: Any) -> str | None:
    """The PDF creation date, or ``None`` when it is missing or malformed (common)."""
    try:
        return normalise_date(created, "PDF creation date")
    except DocumentError:
        return None


READERS: dict[str, Callable[[Path], SourceDocument]] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}
