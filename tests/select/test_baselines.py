"""The benchmark's baseline selectors on the 3,149-resource demo patient."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.core.registry import Registry
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.llm.base import ChatMessage, GenerationOptions
from ehrqa.llm.fake import FakeChatModel
from ehrqa.select.base import Selection, Selector
from ehrqa.select.baselines import (
    BASELINES,
    RELEVANCE_SCHEMA,
    Bm25Selector,
    LlmPairwiseSelector,
    NewestNSelector,
    WholeRecordSelector,
    approx_tokens,
    parse_relevance,
    question_terms,
    register_baselines,
)
from ehrqa.select.default import ADMIN_TYPES
from ehrqa.select.query import analyze
from ehrqa.store import RecordQuery, SqliteStore

HBA1C = "4548-4"
A1C_QUESTION = "What was my hemoglobin A1c?"
THEN = date(2015, 1, 1)  # a "now" with years of the demo record after it


def select(store: SqliteStore, selector: Selector, question: str, now: date) -> Selection:
    return selector.select(store, DEMO_PATIENT, question, now)


def days(selection: Selection) -> list[str]:
    return [item.record.day or "" for item in selection.items]


def codes(selection: Selection) -> list[set[str]]:
    return [{c.code for c in item.record.codes} for item in selection.items]


def check_common(selection: Selection, now: date) -> None:
    """What every baseline promises: scores in [0, 1], reasons, ranked candidates, no future."""
    assert all(0.0 <= item.score <= 1.0 and item.reasons for item in selection.items)
    assert all(day <= now.isoformat() for day in days(selection))
    ranked = selection.details["ranked"]
    assert selection.candidates == len(ranked) == len(set(ranked))
    assert set(selection.refs) <= set(ranked)
    assert "model_calls" in selection.details


# --- registry -----------------------------------------------------------------------------


def test_register_baselines_adds_four_lazy_entries_that_build_with_defaults() -> None:
    registry: Registry[type[Selector]] = Registry("selector")
    register_baselines(registry)
    assert registry.names() == sorted(["whole-record", "newest-n", "bm25", "llm-pairwise"])
    for name, _, _ in BASELINES:
        assert registry.get(name)().name == name
        assert registry.describe(name)


# --- whole-record -------------------------------------------------------------------------


def test_whole_record_fills_the_budget_newest_first_without_admin_types(
    demo_store: SqliteStore,
) -> None:
    selection = select(demo_store, WholeRecordSelector(), "anything at all", DEMO_NOW)
    check_common(selection, DEMO_NOW)
    texts = [item.record.text for item in selection.items]
    used = sum(approx_tokens(t) for t in texts)
    assert 3500 - 120 < used <= 3500 == selection.details["token_budget"]
    assert selection.details["context_tokens"] == used
    assert not {item.record.resource_type for item in selection.items} & set(ADMIN_TYPES)
    assert days(selection) == sorted(days(selection), reverse=True)
    assert {item.score for item in selection.items} == {1.0}
    assert selection.items[0].reasons == ("in context window",)
    assert selection.details["dropped"] == selection.candidates - len(selection.items) > 2000


def test_whole_record_uses_the_given_token_counter(demo_store: SqliteStore) -> None:
    selector = WholeRecordSelector(token_budget=1000, count_tokens=lambda text: 100)
    selection = select(demo_store, selector, "anything", DEMO_NOW)
    assert len(selection.items) == 10 and selection.details["context_tokens"] == 1000


def test_whole_record_starts_at_now(demo_store: SqliteStore) -> None:
    selection = select(demo_store, WholeRecordSelector(), "anything", THEN)
    check_common(selection, THEN)
    newest = demo_store.query(
        RecordQuery(DEMO_PATIENT, exclude_types=ADMIN_TYPES, end=THEN.isoformat(), limit=1)
    )
    assert days(selection)[0] == newest[0].day


# --- newest-n -----------------------------------------------------------------------------


def test_newest_n_takes_the_newest_of_the_guessed_type(demo_store: SqliteStore) -> None:
    selection = select(demo_store, NewestNSelector(n=5), "When was my last visit?", DEMO_NOW)
    check_common(selection, DEMO_NOW)
    assert [i.record.resource_type for i in selection.items] == ["Encounter"] * 5
    expected = demo_store.query(RecordQuery(DEMO_PATIENT, types=("Encounter",), limit=5))
    assert selection.refs == [r.ref for r in expected]
    scores = [item.score for item in selection.items]
    assert scores[0] == 1.0 and scores == sorted(scores, reverse=True) and len(set(scores)) == 5
    assert selection.details["types"] == ["Encounter"]


def test_newest_n_never_takes_records_after_now(demo_store: SqliteStore) -> None:
    selection = select(demo_store, NewestNSelector(n=10), "When was my last visit?", THEN)
    check_common(selection, THEN)
    assert len(selection.items) == 10
    assert days(selection) == sorted(days(selection), reverse=True)


def test_newest_n_returns_fewer_when_the_type_has_fewer(demo_store: SqliteStore) -> None:
    question = "What medications am I currently taking?"
    selection = select(demo_store, NewestNSelector(n=64), question, DEMO_NOW)
    types = {item.record.resource_type for item in selection.items}
    assert types == {"MedicationRequest"} and len(selection.items) == 8


def test_newest_n_without_a_type_takes_all_clinical_types(demo_store: SqliteStore) -> None:
    selection = select(demo_store, NewestNSelector(n=64), "Tell me about my health", DEMO_NOW)
    assert len(selection.items) == 64
    assert not {item.record.resource_type for item in selection.items} & set(ADMIN_TYPES)


def test_target_types_fall_back_to_the_concepts_types() -> None:
    plan = analyze("What was my most recent HbA1c?", DEMO_NOW)
    assert plan.target_types == ("Observation",)
    assert dataclasses.replace(plan, resource_types=()).target_types == ("Observation",)
    assert analyze("Tell me about my health", DEMO_NOW).target_types == ()


# --- bm25 ---------------------------------------------------------------------------------


def test_question_terms_drop_stop_words_and_repeats() -> None:
    assert question_terms("What was my most recent Hemoglobin A1c, my A1c?") == [
        "hemoglobin",
        "a1c",
    ]


def test_bm25_finds_the_hba1c_observations(demo_store: SqliteStore) -> None:
    selection = select(demo_store, Bm25Selector(), A1C_QUESTION, DEMO_NOW)
    check_common(selection, DEMO_NOW)
    assert len(selection.items) == 10
    assert all(HBA1C in c for c in codes(selection))
    assert selection.items[0].score == 1.0
    assert selection.details["terms"] == ["hemoglobin", "a1c"]


def test_bm25_respects_k_cutoff_and_now(demo_store: SqliteStore) -> None:
    top3 = select(demo_store, Bm25Selector(k=3), A1C_QUESTION, DEMO_NOW)
    assert len(top3.items) == 3
    visit = select(demo_store, Bm25Selector(k=50), "my last visit", THEN)
    check_common(visit, THEN)
    assert visit.items and all(item.score >= 0.5 for item in visit.items)
    assert len(visit.items) < visit.candidates


def test_bm25_with_only_stop_words_selects_nothing(demo_store: SqliteStore) -> None:
    selection = select(demo_store, Bm25Selector(), "What was my last one?", DEMO_NOW)
    assert selection.items == [] and selection.candidates == 0 and selection.empty_reason


# --- llm-pairwise -------------------------------------------------------------------------


class KeywordJudge(FakeChatModel):
    """Answers "Yes." when the judged record's line contains ``keyword``, else "No"."""

    def __init__(self, keyword: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keyword = keyword

    def verdict(self, messages: Sequence[ChatMessage]) -> bool:
        return self.keyword in messages[-1].content.rsplit("\nRecord:", 1)[1]

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Iterator[str]:
        self.queue("Yes." if self.verdict(messages) else "No")
        return super().generate(messages, options)


class GrammarJudge(KeywordJudge):
    """A grammar-capable judge: replies in JSON and records the schema it was given."""

    def __init__(self, keyword: str) -> None:
        super().__init__(keyword, supports_grammar=True)
        self.schemas: list[Mapping[str, Any] | None] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Iterator[str]:
        self.schemas.append(json_schema)
        self.queue('{"relevant": %s}' % ("true" if self.verdict(messages) else "false"))
        return FakeChatModel.generate(self, messages, options)


def test_llm_pairwise_selects_what_the_model_calls_relevant(demo_store: SqliteStore) -> None:
    model = KeywordJudge("A1c")
    selection = select(demo_store, LlmPairwiseSelector(model=model), A1C_QUESTION, DEMO_NOW)
    check_common(selection, DEMO_NOW)
    ranked = demo_store.get_many(selection.details["ranked"])
    expected = [r.ref for r in ranked if "A1c" in r.text]
    assert expected and selection.refs == expected
    assert all(HBA1C in c for c in codes(selection))
    assert {item.score for item in selection.items} == {1.0}
    assert selection.items[0].reasons == ("judged relevant by fake",)
    # Both sources contribute: BM25 (A1c observations) and the newest observations.
    assert len(ranked) == 30 and len({r.day for r in ranked}) > 2


def test_llm_pairwise_reports_its_cost(demo_store: SqliteStore) -> None:
    model = KeywordJudge("A1c")
    selection = select(demo_store, LlmPairwiseSelector(model=model), A1C_QUESTION, DEMO_NOW)
    details = selection.details
    prompt = sum(model.count_tokens(m.content) + 4 for call in model.calls for m in call)
    assert details["model_calls"] == details["candidates_judged"] == len(model.calls) == 30
    assert details["prompt_tokens"] == prompt
    n_yes = len(selection.items)
    assert details["completion_tokens"] == 2 * n_yes + (30 - n_yes)  # "Yes." = 2, "No" = 1
    assert details["relevant"] == n_yes and details["unparsed"] == 0
    assert details["model"] == "fake" and details["model_seconds"] >= 0
    assert all(o.temperature == 0.0 and o.max_tokens <= 8 for o in model.options)


def test_llm_pairwise_prompt_shows_question_now_and_record(demo_store: SqliteStore) -> None:
    model = KeywordJudge("A1c")
    selector = LlmPairwiseSelector(model=model, candidate_cap=1)
    selection = select(demo_store, selector, A1C_QUESTION, DEMO_NOW)
    system, user = model.calls[0]
    record = demo_store.get(selection.details["ranked"][0])
    assert "ONE health record" in system.content
    assert A1C_QUESTION in user.content and "2025-01-01" in user.content
    assert '"yes" or "no"' in user.content
    assert user.content.endswith(record.text.split("] ", 1)[1])
    assert record.ref not in user.content  # the long id is left out


def test_llm_pairwise_honours_the_candidate_cap(demo_store: SqliteStore) -> None:
    model = KeywordJudge("A1c")
    selector = LlmPairwiseSelector(model=model, candidate_cap=5)
    selection = select(demo_store, selector, A1C_QUESTION, DEMO_NOW)
    assert len(model.calls) == selection.details["model_calls"] == selection.candidates == 5


def test_llm_pairwise_uses_a_json_grammar_when_the_backend_has_one(
    demo_store: SqliteStore,
) -> None:
    plain = select(
        demo_store, LlmPairwiseSelector(model=KeywordJudge("A1c")), A1C_QUESTION, DEMO_NOW
    )
    model = GrammarJudge("A1c")
    selection = select(demo_store, LlmPairwiseSelector(model=model), A1C_QUESTION, DEMO_NOW)
    assert model.schemas == [RELEVANCE_SCHEMA] * 30
    assert selection.refs == plain.refs
    assert '{"relevant": true}' in model.calls[0][-1].content
    off = GrammarJudge("A1c")
    select(demo_store, LlmPairwiseSelector(model=off, use_grammar=False), A1C_QUESTION, DEMO_NOW)
    assert off.schemas == [None] * 30


def test_llm_pairwise_loads_the_model_lazily_and_once(demo_store: SqliteStore) -> None:
    made: list[FakeChatModel] = []

    def factory() -> FakeChatModel:
        made.append(KeywordJudge("A1c"))
        return made[-1]

    selector = LlmPairwiseSelector(model=factory, candidate_cap=2)
    assert not selector.loaded
    # Before the patient was born nothing is a candidate: no model is loaded.
    empty = select(demo_store, selector, A1C_QUESTION, date(1900, 1, 1))
    assert empty.items == [] and empty.empty_reason and made == []
    assert empty.details["model_calls"] == 0 and empty.details["model"] is None
    select(demo_store, selector, A1C_QUESTION, DEMO_NOW)
    select(demo_store, selector, "When was my last visit?", DEMO_NOW)
    assert len(made) == 1 and len(made[0].calls) == 4 and selector.loaded


def test_llm_pairwise_counts_unreadable_replies_as_not_relevant(
    demo_store: SqliteStore,
) -> None:
    model = FakeChatModel(default_reply="Maybe?")
    selector = LlmPairwiseSelector(model=model, candidate_cap=3)
    selection = select(demo_store, selector, A1C_QUESTION, DEMO_NOW)
    assert selection.items == [] and selection.details["unparsed"] == 3


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("yes", True),
        ("Yes.", True),
        (" YES, it is.", True),
        ("y", True),
        ("Relevant", True),
        ("relevant.", True),
        ("True", True),
        ('{"relevant": true}', True),
        ('{ "relevant": true }', True),
        ("The answer is yes.", True),
        ("This record is relevant to the question.", True),
        ("no", False),
        ("No.", False),
        ("No, the record is not", False),
        ("NO", False),
        ("Not relevant", False),
        ("not relevant.", False),
        ("Irrelevant", False),
        ("This record is not relevant.", False),
        ("Yes, but it is unrelated", False),
        ("false", False),
        ('{"relevant": false}', False),
        ("Answer: no", False),
        ("", None),
        ("Maybe?", None),
        ("I cannot tell", None),
        ('{"relevant": "perhaps"}', None),
        ('{"relevant": "yes"}', True),
        ('{"answer": "yes"}', None),
        ('{"relevant": fal', None),
        ('{"relevant": false', False),
        ('{"relevant": true, "why": "A1c"', True),
    ],
)
def test_parse_relevance(reply: str, expected: bool | None) -> None:
    assert parse_relevance(reply) is expected


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WholeRecordSelector(token_budget=0), "token_budget"),
        (lambda: NewestNSelector(n=0), "n must"),
        (lambda: Bm25Selector(k=0), "k must"),
        (lambda: Bm25Selector(relative_cutoff=1.5), "relative_cutoff"),
        (lambda: Bm25Selector(k=20, search_limit=10), "search_limit"),
        (lambda: LlmPairwiseSelector(candidate_cap=0), "candidate_cap"),
        (lambda: LlmPairwiseSelector(threshold=-0.1), "threshold"),
    ],
)
def test_bad_settings_say_what_to_change(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.integration
def test_llm_pairwise_with_the_real_smollm2(demo_store: SqliteStore) -> None:
    from ehrqa.llm import load_chat_model

    model = load_chat_model("smollm2", n_ctx=1024)
    selector = LlmPairwiseSelector(model=model, candidate_cap=3)
    selection = select(demo_store, selector, A1C_QUESTION, DEMO_NOW)
    details = selection.details
    assert details["model_calls"] == details["candidates_judged"] == 3
    assert details["prompt_tokens"] > 3 * 50 and details["completion_tokens"] >= 3
    assert details["unparsed"] == 0  # the JSON grammar always yields a verdict
    assert set(selection.refs) <= set(details["ranked"])
