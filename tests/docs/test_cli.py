"""`ehrqa docs` commands, through a tiny app that mounts docs_app like ehrqa.cli.main does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from ehrqa.cli.docs import docs_app
from ehrqa.cli.support import state
from ehrqa.core.errors import ConfigError, NotFoundError

app = typer.Typer()
app.add_typer(docs_app, name="docs")


@app.callback()
def _global(ctx: typer.Context, home: Annotated[str | None, typer.Option("--home")] = None) -> None:
    state(ctx).overrides["home"] = home


def run(home: Path, *args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, ["--home", str(home), "docs", *args])
    return result.exit_code, result.stdout, result.exception


@pytest.fixture
def home(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose library holds the fixture documents, embedded with the hash embedder."""
    monkeypatch.setenv("EHRQA_EMBEDDER", "hash")
    code, stdout, _ = run(tmp_path / "home", "add", str(corpus), "--type", "policy")
    assert code == 0, stdout
    assert "3 added, 1 skipped" in stdout and "unsupported file type" in stdout
    return tmp_path / "home"


def test_add_json_and_exit_code_on_errors(home: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text("---\ntitle: [x\n---\n")
    code, stdout, _ = run(home, "add", str(tmp_path / "bad.md"), "--json")
    assert code == 1
    report = json.loads(stdout)
    assert report["counts"]["error"] == 1 and "invalid YAML" in report["files"][0]["reason"]


def test_list(home: Path) -> None:
    code, stdout, _ = run(home, "list", "--json")
    assert code == 0
    docs = {d["id"]: d for d in json.loads(stdout)}
    assert docs["handwashing"]["doc_type"] == "policy" and docs["uti-adults"]["chunks"] == 4
    assert "hypertension" in run(home, "list")[1]


def test_search_prints_rank_citation_section_score_snippet(home: Path) -> None:
    code, stdout, _ = run(home, "search", "nitrofurantoin cystitis", "--k", "2")
    assert code == 0
    first = stdout.splitlines()[0]
    assert first.startswith("1. [doc:uti-adults#3] Urinary tract infection in adults > Treatment")
    assert "score" in first and "First-line treatment" in stdout.splitlines()[1]


def test_search_json_with_filters(home: Path) -> None:
    code, stdout, _ = run(
        home, "search", "treatment", "--type", "protocol", "--mode", "bm25", "--json"
    )
    hits = json.loads(stdout)
    assert code == 0 and hits and {h["doc_id"] for h in hits} == {"hypertension"}
    assert hits[0]["citation"].startswith("[doc:hypertension#") and hits[0]["similarity"] is None


def test_show_remove_and_errors_propagate(home: Path) -> None:
    code, stdout, _ = run(home, "show", "uti-adults#1")
    assert code == 0 and "[doc:uti-adults#1]" in stdout and "guideline" in stdout
    assert run(home, "remove", "uti-adults")[0] == 0
    _, _, exc = run(home, "show", "uti-adults#1")
    assert isinstance(exc, NotFoundError)


def test_embedder_flag_mismatch_then_reindex(home: Path) -> None:
    _, _, exc = run(home, "search", "x", "--embedder", "hash:32")
    assert isinstance(exc, ConfigError) and "docs reindex" in str(exc)
    code, stdout, _ = run(home, "reindex", "--embedder", "hash:32")
    assert code == 0 and "re-embedded" in stdout and "hash:32" in stdout
    assert run(home, "search", "cystitis", "--embedder", "hash:32")[0] == 0


def test_bm25_only_with_embedder_none(home: Path) -> None:
    code, stdout, _ = run(home, "search", "cystitis", "--embedder", "none", "--json")
    assert code == 0 and json.loads(stdout)[0]["ranks"] == {"bm25": 1}
