"""scripts/package_model.py: what a packaged model folder holds, and what it refuses."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "package_model.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_model", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["package_model"] = module
    spec.loader.exec_module(module)
    return module


def _trained_t2(folder: Path, base: str = "smollm2") -> Path:
    folder.mkdir(parents=True)
    meta = {
        "kind": "ehrqa-lora",
        "task": "t2",
        "config": {"rank": 16, "alpha": 32.0, "target_modules": "all-linear", "max_length": 1024},
        "training": {
            "base": {"name": base, "gguf": "/home/someone/.venv/SmolLM2.gguf"},
            "examples": 847,
            "trained_examples": 777,
            "dropped_too_long": 70,
            "train_examples_sha256": "96cc3d45dc5f" + "0" * 52,
            "steps": 98,
            "planned_steps": 98,
            "seconds": 2456.6,
            "device": "cpu",
            "stopped_early": False,
            "train_loss": 0.6,
            "val_loss": 0.43,
        },
        "adapter": "adapter",
        "adapter_gguf": "adapter.gguf",
        "dataset_sha256": "01c2c095340d" + "0" * 52,
    }
    (folder / "ehrqa_config.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "adapter.gguf").write_bytes(b"GGUF" + bytes(range(256)))
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_model.safetensors").write_bytes(b"peft weights")
    return folder


def test_answer_adapter_is_packaged_with_its_gguf_config_and_card(
    script: ModuleType, tmp_path: Path
) -> None:
    source = _trained_t2(tmp_path / "t2-847")
    target = tmp_path / "models" / "smollm2-t2"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from the previous package")
    assert script.main(["answer", str(source), "--target", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "MODEL_CARD.md",
        "adapter.gguf",
        "ehrqa_config.json",
    ]
    assert (target / "adapter.gguf").read_bytes() == (source / "adapter.gguf").read_bytes()
    packed = (target / "ehrqa_config.json").read_text(encoding="utf-8")
    assert "/home/someone" not in packed
    assert json.loads(packed)["training"]["base"]["gguf"] == script.SMOLLM2
    assert "777 examples" in (target / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert not (tmp_path / "models" / "smollm2-t2.partial").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "no trained adapter"),
        (lambda p: _trained_t2(p, base="gemma3-270m"), "not a Task 2 adapter of smollm2"),
        (lambda p: (_trained_t2(p) / "adapter.gguf").unlink(), "no adapter.gguf"),
        (
            lambda p: (_trained_t2(p) / "ehrqa_config.json").write_text('{"task": "t2"}'),
            "not a Task 2 adapter of smollm2",
        ),
    ],
)
def test_answer_packaging_refuses_what_cannot_serve(
    script: ModuleType, tmp_path: Path, make: object, message: str
) -> None:
    source = tmp_path / "run"
    make(source)  # type: ignore[operator]
    target = tmp_path / "target"
    with pytest.raises(SystemExit, match=message):
        script.main(["answer", str(source), "--target", str(target)])
    assert not target.exists()


def test_reranker_packaging_names_a_folder_without_a_model(
    script: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="no trained reranker"):
        script.main(["reranker", str(tmp_path), "--target", str(tmp_path / "t")])
