"""FakeChatModel: queued replies, streamed in word chunks, with every call recorded."""

from __future__ import annotations

import pytest

from ehrqa.core.errors import EhrqaError
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.llm.fake import FakeChatModel, FakeRepliesExhaustedError

GREEDY = GenerationOptions()
ASK = [ChatMessage("system", "Answer briefly."), ChatMessage("user", "Latest HbA1c?")]


def test_satisfies_the_chat_model_protocol() -> None:
    assert isinstance(FakeChatModel(), ChatModel)


def test_replies_in_order_and_streams_in_word_chunks() -> None:
    model = FakeChatModel(["HbA1c was 7.2% on 2024-03-01.", "second"])
    chunks = list(model.generate(ASK, GREEDY))
    assert chunks == ["HbA1c ", "was ", "7.2% ", "on ", "2024-03-01."]
    assert "".join(model.generate(ASK, GREEDY)) == "second"


@pytest.mark.parametrize(
    ("reply", "chunk_size", "expected"),
    [
        ("a b c d e", 2, ["a b ", "c d ", "e"]),
        ("  lead and trail  ", 1, ["  ", "lead ", "and ", "trail  "]),
        ("line one\nline two", 3, ["line one\nline ", "two"]),
        ("", 1, []),
    ],
)
def test_chunks_join_back_to_the_reply(reply: str, chunk_size: int, expected: list[str]) -> None:
    chunks = list(FakeChatModel([reply], chunk_size=chunk_size).generate(ASK, GREEDY))
    assert chunks == expected
    assert "".join(chunks) == reply


def test_records_messages_and_options_at_call_time() -> None:
    model = FakeChatModel(["ok"])
    options = GenerationOptions(max_tokens=5)
    model.generate(ASK, options)  # never iterated
    assert model.calls == [ASK]
    assert model.options == [options]


def test_empty_queue_raises_a_clear_error() -> None:
    model = FakeChatModel(["only"], name="scripted")
    list(model.generate(ASK, GREEDY))
    with pytest.raises(FakeRepliesExhaustedError, match=r"'scripted'.*call 2.*\.queue") as info:
        model.generate(ASK, GREEDY)
    assert isinstance(info.value, EhrqaError)


def test_default_reply_when_queue_is_empty_and_queue_adds_more() -> None:
    model = FakeChatModel(default_reply="I don't know.")
    assert "".join(model.generate(ASK, GREEDY)) == "I don't know."
    model.queue("first", "second")
    assert ["".join(model.generate(ASK, GREEDY)) for _ in range(3)] == [
        "first",
        "second",
        "I don't know.",
    ]


def test_reply_is_cut_at_the_earliest_stop_string() -> None:
    model = FakeChatModel(["Answer: 42\n\nQuestion: next?"])
    options = GenerationOptions(stop=("Question:", "\n\n"))
    assert "".join(model.generate(ASK, options)) == "Answer: 42"


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("hello", 1), ("Hb 9.8 g/dL.", 8), ("don't stop", 4), ("  spaced   out ", 2)],
)
def test_count_tokens_counts_words_and_punctuation(text: str, count: int) -> None:
    assert FakeChatModel().count_tokens(text) == count


def test_capabilities_are_configurable() -> None:
    model = FakeChatModel(name="m", context_window=128, supports_grammar=True)
    assert (model.name, model.context_window, model.supports_grammar) == ("m", 128, True)


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        FakeChatModel(chunk_size=0)
