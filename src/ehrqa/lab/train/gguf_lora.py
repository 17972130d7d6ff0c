"""Convert a PEFT LoRA adapter to a GGUF LoRA adapter that llama.cpp applies at run time.

llama.cpp's own ``convert_lora_to_gguf.py`` lives in its source tree (not on PyPI) and needs
the base model as a Hugging Face folder; here the base is the GGUF we serve, so the few
things the conversion needs are read from it: the architecture, the head counts and the
tensor names. The ``gguf`` package (maintained with llama.cpp) maps the Hugging Face module
names to GGUF tensor names and writes the file.

The GGUF layout of one adapted weight ``W`` (``out × in``) is two tensors,
``<name>.lora_a`` (``r × in``) and ``<name>.lora_b`` (``out × r``), and the adapter's
``adapter.lora.alpha``; llama.cpp scales the product by ``alpha / r``. For the ``llama``
architecture the converter permutes the rows of the query and key projections (llama.cpp's
rotary layout differs from Hugging Face's); the same permutation applies to ``lora_b``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ehrqa.core.errors import ConfigError, NotFoundError

# Architectures whose Hugging Face → GGUF conversion maps these weights one to one,
# and whether it permutes the query/key rows.
SUPPORTED_ARCHITECTURES = {
    "llama": True,
    "qwen2": False,
    "qwen3": False,
    "gemma": False,
    "gemma2": False,
    "gemma3": False,
}
_PEFT_PREFIX = "base_model.model."


class UnsupportedArchitectureError(ConfigError):
    """The base model's architecture is not one this converter knows how to map."""


def _permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """llama.cpp's query/key row permutation (convert_hf_to_gguf's ``LlamaModel.permute``)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _field(reader: Any, key: str) -> Any:
    found = reader.fields.get(key)
    if found is None:
        return None
    return found.contents()


def base_info(base_gguf: Path) -> dict[str, Any]:
    """Architecture, block count, head counts and tensor shapes (``ne`` order) of a GGUF."""
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    arch = _field(reader, "general.architecture")
    return {
        "arch": arch,
        "blocks": int(_field(reader, f"{arch}.block_count")),
        "n_head": int(_field(reader, f"{arch}.attention.head_count")),
        "n_head_kv": _field(reader, f"{arch}.attention.head_count_kv"),
        "tensors": {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
    }


def _adapter_alpha(adapter_config: dict[str, Any]) -> float:
    """The alpha that makes llama.cpp's ``alpha / r`` equal PEFT's scale."""
    r, alpha = adapter_config["r"], float(adapter_config["lora_alpha"])
    if adapter_config.get("use_rslora"):
        return alpha * math.sqrt(r)  # PEFT scales rsLoRA by alpha / sqrt(r)
    return alpha


def _check_adapter(adapter_config: dict[str, Any], path: Path) -> None:
    if adapter_config.get("peft_type") != "LORA":
        raise ConfigError(
            f"{path} is not a LoRA adapter (peft_type {adapter_config.get('peft_type')})"
        )
    if (
        adapter_config.get("modules_to_save")
        or adapter_config.get("rank_pattern")
        or adapter_config.get("alpha_pattern")
    ):
        raise ConfigError(
            f"{path}: modules_to_save, rank_pattern and alpha_pattern cannot be converted to a "
            "GGUF LoRA adapter; train with one rank and alpha on linear layers only"
        )


def export_gguf_lora(adapter_dir: Path, base_gguf: Path, out_file: Path) -> Path:
    """Write ``adapter_dir`` (a PEFT LoRA adapter) as a GGUF LoRA adapter for ``base_gguf``.

    Raises :class:`UnsupportedArchitectureError` for architectures not in
    :data:`SUPPORTED_ARCHITECTURES`, :class:`ConfigError` when an adapted weight has no
    counterpart in the base GGUF (the adapter belongs to another model).
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config_file, weights_file = (
        adapter_dir / "adapter_config.json",
        adapter_dir / "adapter_model.safetensors",
    )
    for needed in (config_file, weights_file):
        if not needed.is_file():
            raise NotFoundError(f"{needed} not found: is {adapter_dir} a PEFT adapter folder?")
    adapter_config = json.loads(config_file.read_text(encoding="utf-8"))
    _check_adapter(adapter_config, adapter_dir)
    info = base_info(base_gguf)
    arch = info["arch"]
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"cannot convert a LoRA adapter for the {arch!r} architecture "
            f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)}); serve it with the transformers "
            "backend, or use llama.cpp's convert_lora_to_gguf.py"
        )
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], info["blocks"])
    weights = load_file(str(weights_file))
    tensors: list[tuple[str, Any]] = []
    for key in sorted(weights):
        if ".lora_A." not in key:
            continue
        module = key.removeprefix(_PEFT_PREFIX).replace(".lora_A.weight", "")
        name = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if name is None or name not in info["tensors"]:
            raise ConfigError(
                f"adapter weight {module} has no matching tensor in {base_gguf.name}: "
                "was the adapter trained on another base model?"
            )
        lora_a = weights[key].astype(np.float32)
        lora_b = weights[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        n_in, n_out = info["tensors"][name][:2]  # GGUF lists dimensions innermost first
        if lora_a.shape[1] != n_in or lora_b.shape[0] != n_out:
            raise ConfigError(
                f"adapter weight {module} is {lora_b.shape[0]}x{lora_a.shape[1]} but "
                f"{name} in {base_gguf.name} is {n_out}x{n_in}: "
                "was the adapter trained on another base model?"
            )
        if SUPPORTED_ARCHITECTURES[arch] and module.endswith(("q_proj", "k_proj")):
            kv = info["n_head_kv"] if module.endswith("k_proj") else info["n_head"]
            lora_b = _permute(lora_b, info["n_head"], kv)
        tensors += [(f"{name}.lora_a", lora_a), (f"{name}.lora_b", lora_b)]
    if not tensors:
        raise ConfigError(f"{adapter_dir} holds no LoRA weights")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, _adapter_alpha(adapter_config))
    for name, data in tensors:
        writer.add_tensor(name, np.ascontiguousarray(data.astype(np.float16)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out_file)
    return out_file
