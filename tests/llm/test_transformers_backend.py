"""TransformersChatModel; the model tests run only where torch and transformers are installed."""

from __future__ import annotations

import queue
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.llm import smollm2_path
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.llm.transformers_backend import TransformersChatModel, _dtype_kwargs, _StopFilter

ASK = [ChatMessage("user", "What is the capital of France?")]


@pytest.mark.parametrize(
    ("stop", "pieces", "expected"),
    [
        ((), ["a", "b", "c"], "abc"),
        (("END",), ["one E", "N", "D two"], "one "),
        (("END",), ["one E", "nd"], "one End"),
        (("\n\n", "Q:"), ["A: 4", "2\n", "\nQ: next"], "A: 42"),
        (("xyz",), ["", "x", "y"], "xy"),
    ],
)
def test_stop_filter_cuts_at_the_first_stop_string(
    stop: tuple[str, ...], pieces: list[str], expected: str
) -> None:
    stop_filter = _StopFilter(stop)
    out = []
    for piece in pieces:
        text, stopped = stop_filter.feed(piece)
        out.append(text)
        if stopped:
            break
    else:
        out.append(stop_filter.flush())
    assert "".join(out) == expected


def test_stop_filter_emits_text_that_cannot_start_a_stop_string() -> None:
    stop_filter = _StopFilter(("STOP",))
    assert stop_filter.feed("hello ST") == ("hello ", False)
    assert stop_filter.feed("ART S") == ("START ", False)
    assert stop_filter.feed("TO") == ("", False)
    assert stop_filter.flush() == "STO"


def test_missing_adapter_directory() -> None:
    with pytest.raises(NotFoundError, match="adapter directory not found"):
        TransformersChatModel(smollm2_path().parent, adapter="/no/such/adapter")


class FakeStreamer:
    """Stands in for TextIteratorStreamer: a queue of text pieces ended by a sentinel."""

    def __init__(self, tokenizer: Any, skip_prompt: bool, skip_special_tokens: bool) -> None:
        self.pieces: queue.Queue[str | None] = queue.Queue()

    def put(self, text: str) -> None:
        self.pieces.put(text)

    def end(self) -> None:
        self.pieces.put(None)

    def __iter__(self) -> Iterator[str]:
        while (piece := self.pieces.get(timeout=10)) is not None:
            yield piece


class FakeLM:
    """Streams ``reply`` word by word, checking the stopping criteria before each word."""

    config = types.SimpleNamespace(max_position_embeddings=8192)

    def __init__(self) -> None:
        self.reply = "The capital is Paris . END more words"
        self.fail: Exception | None = None
        self.calls: list[dict[str, Any]] = []
        self.words_sent = 0
        self.seeds: list[int] = []  # what torch.manual_seed was called with

    def to(self, device: str) -> FakeLM:
        return self

    def eval(self) -> None:
        pass

    def generate(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.fail:
            raise self.fail
        ids = types.SimpleNamespace(shape=(1,), device="cpu")
        for word in self.reply.split(" ")[: kwargs["max_new_tokens"]]:
            if any(c(ids, None) for c in kwargs["stopping_criteria"]):
                break
            kwargs["streamer"].put(word + " ")
            self.words_sent += 1
        kwargs["streamer"].end()


class _NullContext:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def fake_hf(monkeypatch: pytest.MonkeyPatch) -> FakeLM:
    """Replace torch and transformers with fakes, to test the orchestration without them."""
    lm = FakeLM()
    tokenizer = types.SimpleNamespace(
        chat_template="{{ messages }}",
        pad_token_id=None,
        eos_token_id=2,
        apply_chat_template=lambda *a, **k: types.SimpleNamespace(
            to=lambda device: {"input_ids": "ids", "attention_mask": "mask"}
        ),
        encode=lambda text, add_special_tokens: text.split(),
    )
    transformers = types.ModuleType("transformers")
    vars(transformers).update(
        __version__="4.57.1",
        AutoTokenizer=types.SimpleNamespace(from_pretrained=lambda *a, **k: tokenizer),
        AutoModelForCausalLM=types.SimpleNamespace(from_pretrained=lambda *a, **k: lm),
        TextIteratorStreamer=FakeStreamer,
        StoppingCriteria=object,
        StoppingCriteriaList=list,
    )
    torch = types.ModuleType("torch")
    vars(torch).update(
        cuda=types.SimpleNamespace(is_available=lambda: False),
        backends=types.SimpleNamespace(),
        float32="float32",
        bool=bool,
        seeds=lm.seeds,
        manual_seed=lm.seeds.append,
        inference_mode=_NullContext,
        full=lambda shape, fill, dtype, device: fill,
    )
    monkeypatch.setitem(sys.modules, "transformers", transformers)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return lm


def load_fake(tmp_path: Any) -> TransformersChatModel:
    (tmp_path / "config.json").write_text("{}")
    return TransformersChatModel(tmp_path)


def test_streams_greedily_with_the_fake_runtime(fake_hf: FakeLM, tmp_path: Any) -> None:
    model = load_fake(tmp_path)
    assert (model.device, model.context_window, model.name) == ("cpu", 8192, tmp_path.name)
    text = "".join(model.generate(ASK, GenerationOptions(max_tokens=4)))
    assert text == "The capital is Paris "
    call = fake_hf.calls[0]
    assert (call["do_sample"], call["max_new_tokens"], call["pad_token_id"]) == (False, 4, 2)
    assert "temperature" not in call and "stop_strings" not in call
    assert model.count_tokens("two words") == 2


def test_sampling_options_and_seed_are_passed(fake_hf: FakeLM, tmp_path: Any) -> None:
    model = load_fake(tmp_path)
    options = GenerationOptions(temperature=0.7, top_p=0.9, seed=11, stop=("END",))
    assert "".join(model.generate(ASK, options)) == "The capital is Paris . "
    call = fake_hf.calls[0]
    assert (call["do_sample"], call["temperature"], call["top_p"]) == (True, 0.7, 0.9)
    assert call["stop_strings"] == ["END"]
    assert fake_hf.seeds == [11]


def test_an_error_in_the_generate_thread_reaches_the_caller(fake_hf: FakeLM, tmp_path: Any) -> None:
    model = load_fake(tmp_path)
    fake_hf.fail = RuntimeError("CUDA out of memory")
    with pytest.raises(RuntimeError, match="out of memory"):
        list(model.generate(ASK, GenerationOptions()))
    fake_hf.fail = None
    assert "".join(model.generate(ASK, GenerationOptions(max_tokens=1))) == "The "


def test_closing_the_stream_cancels_generation(fake_hf: FakeLM, tmp_path: Any) -> None:
    model = load_fake(tmp_path)
    fake_hf.reply = " ".join(["word"] * 100_000)
    stream = model.generate(ASK, GenerationOptions(max_tokens=100_000))
    assert next(stream) == "word "
    stream.close()
    assert fake_hf.words_sent < 100_000
    assert "".join(model.generate(ASK, GenerationOptions(max_tokens=2))) == "word word "


def test_a_model_without_chat_template_is_refused(fake_hf: FakeLM, tmp_path: Any) -> None:
    model = load_fake(tmp_path)
    model._tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        list(model.generate(ASK, GenerationOptions()))


@pytest.mark.parametrize(
    ("version", "dtype", "device", "expected"),
    [
        ("4.50.3", None, "cpu", {"torch_dtype": "float32"}),
        ("4.57.1", None, "cpu", {"dtype": "float32"}),
        ("5.1.0", None, "cuda", {"dtype": "auto"}),
        ("5.0.0rc1", "auto", "cpu", {"dtype": "auto"}),
    ],
)
def test_dtype_keyword_follows_the_transformers_version(
    version: str, dtype: Any, device: str, expected: dict[str, Any]
) -> None:
    transformers = types.SimpleNamespace(__version__=version)
    torch = types.SimpleNamespace(float32="float32")
    assert _dtype_kwargs(transformers, torch, dtype, device) == expected


@pytest.fixture(scope="module")
def model() -> Iterator[TransformersChatModel]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")  # transformers needs it to read GGUF files
    path = smollm2_path()
    yield TransformersChatModel(path.parent, gguf_file=path.name, device="cpu")


def test_generates_from_the_smollm2_gguf(model: TransformersChatModel) -> None:
    assert isinstance(model, ChatModel)
    assert model.name == "SmolLM2-135M-Instruct.Q4_1"
    assert model.context_window >= 2048
    options = GenerationOptions(max_tokens=8)
    chunks = list(model.generate(ASK, options))
    text = "".join(chunks)
    assert text.strip()
    assert "".join(model.generate(ASK, options)) == text  # greedy is deterministic
    assert 1 <= model.count_tokens("Hello world") <= 4


def test_stop_string_and_early_close(model: TransformersChatModel) -> None:
    full = "".join(model.generate(ASK, GenerationOptions(max_tokens=12)))
    words = full.split()
    if len(words) < 2:
        pytest.skip(f"reply too short to pick a stop string: {full!r}")
    cut = "".join(model.generate(ASK, GenerationOptions(max_tokens=12, stop=(words[1],))))
    assert cut == full[: full.index(words[1])]
    stream = model.generate(ASK, GenerationOptions(max_tokens=200))
    next(stream)
    stream.close()  # cancels generation and releases the lock
    assert "".join(model.generate(ASK, GenerationOptions(max_tokens=4))).strip()
