"""The multiple-choice benchmark runner: readers, scoring methods, RAG, Wilson intervals, CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehrqa.core.errors import ConfigError, EhrqaError, NotFoundError
from ehrqa.lab.eval.mcq import (
    MCQConfig,
    MCQItem,
    build_messages,
    choose_method,
    detect_format,
    fit_context,
    letter_grammar,
    parse_letter,
    read_mcq,
    render_markdown,
    run_mcq,
    sample_per_subset,
    summarize,
    truncate_to_tokens,
    wilson_interval,
    write_mcq_report,
)
from ehrqa.llm.base import ChatMessage, ChatModel, letter_token_ids, pick_letter_logprobs
from ehrqa.llm.fake import FakeChatModel, FakeRepliesExhaustedError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "mcq"
MIRAGE = FIXTURES / "mirage_mini.json"
MEDMCQA = FIXTURES / "medmcqa_mini.jsonl"
PUBMEDQA = FIXTURES / "pubmedqa_mini.json"
MMLU = FIXTURES / "mmlu"


def gold_scores(path: Path = MIRAGE) -> list[dict[str, float]]:
    """Letter scores that put the gold answer first, for every item of ``path`` in order."""
    return [{item.answer: -0.1} for item in read_mcq(path).items]


# ---------------------------------------------------------------------------- readers


def test_mirage_reader_keeps_subsets_options_and_answers() -> None:
    data = read_mcq(MIRAGE, "mirage")
    assert data.format == "mirage" and data.subsets == ["medqa", "pubmedqa"]
    assert len(data.items) == 6 and len(data.sha256) == 64
    first = data.items[0]
    assert (first.id, first.subset, first.answer) == ("syn-mq-1", "medqa", "B")
    assert first.options == {"A": "Liver", "B": "Heart", "C": "Kidney", "D": "Spleen"}
    assert data.items[-1].options == {"A": "yes", "B": "no", "C": "maybe"}
    assert data.items[-1].answer == "B" and data.items[-1].context is None


def test_medmcqa_reader_detects_one_based_cop_and_uses_the_subject() -> None:
    data = read_mcq(MEDMCQA, "medmcqa")
    assert [(i.id, i.subset, i.answer) for i in data.items] == [
        ("syn-mm-1", "Anatomy", "C"),
        ("syn-mm-2", "Physiology", "A"),
        ("syn-mm-3", "Anatomy", "D"),
        ("syn-mm-4", "Pharmacology", "B"),
    ]
    assert data.items[2].options["D"] == "Four"
    assert data.notes == ("medmcqa cop: 1-based (1–4), detected from a 4 in the file",)


def medmcqa_rows(*cops: int) -> str:
    row = {"question": "q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d"}
    return "\n".join(json.dumps({**row, "id": f"r{i}", "cop": c}) for i, c in enumerate(cops))


@pytest.mark.parametrize(
    ("cops", "answers", "note"),
    [
        ((0, 3, 1), ["A", "D", "B"], "0-based (0–3), detected"),
        ((1, 4), ["A", "D"], "1-based (1–4), detected"),
        ((1, 2, 3), ["A", "B", "C"], "only 1–3 present, read as 1-based"),
    ],
)
def test_medmcqa_cop_base_is_detected_per_file(
    tmp_path: Path, cops: tuple[int, ...], answers: list[str], note: str
) -> None:
    path = tmp_path / "dev.json"  # the released files are JSON lines named .json
    path.write_text(medmcqa_rows(*cops), encoding="utf-8")
    data = read_mcq(path)
    assert data.format == "medmcqa"
    assert [i.answer for i in data.items] == answers
    assert note in data.notes[0]
    assert {i.subset for i in data.items} == {"unknown"}


def test_pubmedqa_reader_maps_decisions_to_letters_and_joins_contexts() -> None:
    data = read_mcq(PUBMEDQA, "pubmedqa")
    assert [(i.id, i.answer) for i in data.items] == [
        ("90000001", "A"),
        ("90000002", "B"),
        ("90000003", "C"),
    ]
    first = data.items[0]
    assert first.options == {"A": "yes", "B": "no", "C": "maybe"}
    assert first.context is not None and first.context.count("\n") == 1
    assert "12 weeks" in first.context and "6 beats" in first.context


def test_mmlu_reader_takes_a_folder_and_names_subsets_after_files() -> None:
    data = read_mcq(MMLU)
    assert data.format == "mmlu"
    assert data.subsets == ["anatomy", "clinical_knowledge"]
    assert [i.answer for i in data.items] == ["A", "C", "B", "C", "B"]
    assert data.items[3].options["C"] == "37"
    single = read_mcq(MMLU / "clinical_knowledge_test.csv")
    assert single.subsets == ["clinical_knowledge"] and len(single.items) == 3
    assert single.items[0].id == "clinical_knowledge-1"


@pytest.mark.parametrize(
    ("path", "expected"),
    [(MIRAGE, "mirage"), (MEDMCQA, "medmcqa"), (PUBMEDQA, "pubmedqa"), (MMLU, "mmlu")],
)
def test_format_is_detected(path: Path, expected: str) -> None:
    assert detect_format(path) == expected


MIRAGE_ROW = {"question": "q?", "options": {"A": "x", "B": "y"}, "answer": "A"}


@pytest.mark.parametrize(
    ("name", "content", "fmt", "fragments"),
    [
        ("bad.json", '{"medqa": {"q1": ', "mirage", ["not valid JSON", "line 1"]),
        (
            "m.json",
            json.dumps({"medqa": {"q7": {**MIRAGE_ROW, "answer": "E"}}}),
            "mirage",
            ["item q7", "answer 'E' is not among the options A, B"],
        ),
        (
            "m.json",
            json.dumps({"medqa": {"q2": {"question": "q?", "answer": "A"}}}),
            "mirage",
            ["item q2", "missing 'options'"],
        ),
        (
            "m.json",
            json.dumps({"medqa": {"q3": {**MIRAGE_ROW, "options": {"A1": "x", "B": "y"}}}}),
            "mirage",
            ["item q3", "single capital letters"],
        ),
        (
            "m.json",
            json.dumps({"medqa": {"q4": {**MIRAGE_ROW, "question": "  "}}}),
            "mirage",
            ["item q4", "question is empty"],
        ),
        ("m.json", "[1, 2]", "mirage", ["expected an object of subsets"]),
        (
            "test.json",
            json.dumps(
                {"id": "t1", "question": "q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d"}
            ),
            "medmcqa",
            ["item t1", "missing 'cop'", "test split has no answers"],
        ),
        ("d.jsonl", medmcqa_rows(1, 7), "medmcqa", ["item r1", "'cop' must be 1–4", "got 7"]),
        ("d.jsonl", medmcqa_rows(0, 4), "medmcqa", ["both 0 and 4"]),
        ("d.jsonl", medmcqa_rows(1) + "\n{oops", "medmcqa", ["line 2 is not valid JSON"]),
        (
            "d.jsonl",
            medmcqa_rows(1) + "\n" + medmcqa_rows(2),
            "medmcqa",
            ["item r0", "appears twice"],
        ),
        (
            "p.json",
            json.dumps({"123": {"QUESTION": "q?", "CONTEXTS": [], "final_decision": "perhaps"}}),
            "pubmedqa",
            ["item 123", "yes, no or maybe", "'perhaps'"],
        ),
        (
            "p.json",
            json.dumps({"124": {"QUESTION": "q?", "final_decision": "yes"}}),
            "pubmedqa",
            ["item 124", "missing 'CONTEXTS'"],
        ),
        ("anatomy_test.csv", "q?,a,b,c,d\n", "mmlu", ["item anatomy-1", "5 columns"]),
        ("anatomy_test.csv", "q?,a,b,c,d,E\n", "mmlu", ["item anatomy-1", "answer 'E'"]),
        ("anatomy_test.csv", "\n\n", "mmlu", ["no questions found"]),
        ("odd.json", json.dumps({"a": 1}), None, ["cannot tell the format", "--format"]),
    ],
)
def test_bad_input_names_the_file_item_and_problem(
    tmp_path: Path, name: str, content: str, fmt: str | None, fragments: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_mcq(path, fmt)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        read_mcq(tmp_path / "none.json")
    with pytest.raises(EhrqaError, match="unknown: use one of mirage"):
        read_mcq(MIRAGE, "medqa")
    with pytest.raises(ConfigError, match=r"no \.csv files"):
        read_mcq(tmp_path, "mmlu")


# ---------------------------------------------------------------------------- statistics


# Reference values from Newcombe (1998), Stat Med 17:857, table II (method 3, Wilson score).
@pytest.mark.parametrize(
    ("correct", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (1, 10, 0.0179, 0.4042),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_interval_matches_known_values(
    correct: int, n: int, low: float, high: float
) -> None:
    got = wilson_interval(correct, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_edges() -> None:
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="0 <= correct <= n"):
        wilson_interval(11, 10)


def test_sample_per_subset_is_seeded_and_per_subset() -> None:
    items = list(read_mcq(FIXTURES / "mirage_40.json").items)
    first = sample_per_subset(items, 3, seed=1)
    assert first == sample_per_subset(items, 3, seed=1)
    assert first != sample_per_subset(items, 3, seed=2)
    assert [i.subset for i in first] == ["medqa"] * 3 + ["pubmedqa"] * 3 + ["mmlu"] * 3
    assert sample_per_subset(items, 100, seed=0) == items
    assert sample_per_subset(items, None, seed=0) == items
    # one subset's draw does not depend on the others
    only_mmlu = [i for i in items if i.subset == "mmlu"]
    assert sample_per_subset(only_mmlu, 3, 1) == [i for i in first if i.subset == "mmlu"]


# ---------------------------------------------------------------------------- prompting


def test_prompt_has_instruction_context_question_and_lettered_options() -> None:
    item = read_mcq(PUBMEDQA).items[0]
    system, user = build_messages(item, [("Doc/1 p2", "Walking helps.")])
    assert system.role == "system" and "letter of the correct option only" in system.content
    text = user.content
    assert text.index("[Doc/1 p2] Walking helps.") < text.index("Context:\n")
    assert text.index("Context:\n") < text.index("Question: Does a daily walk")
    assert "A. yes\nB. no\nC. maybe" in text and text.endswith("(A, B, C).")


def words(text: str) -> int:
    return len(text.split())


def test_truncate_to_tokens_cuts_at_a_word_boundary() -> None:
    assert truncate_to_tokens("one two three", 5, words) == "one two three"
    assert truncate_to_tokens("one two three four five", 3, words) == "one two …"
    assert truncate_to_tokens("one two", 0, words) == ""


def test_fit_context_keeps_whole_passages_in_rank_order_within_the_budget() -> None:
    item = MCQItem("x", "s", "q?", {"A": "a", "B": "b"}, "A", context="c1 c2 c3 c4")
    passages = [("P1", "w " * 5), ("P2", "w " * 5), ("P3", "w")]
    fitted, kept = fit_context(item, passages, 16, words)
    assert fitted.context == "c1 c2 c3 c4"
    assert [c for c, _ in kept] == ["P1", "P2"]  # 4 + 6 + 6 = 16; P3 would not fit
    fitted, kept = fit_context(item, passages, 3, words)
    assert fitted.context == "c1 c2 …" and kept == []
    lone = MCQItem("y", "s", "q?", {"A": "a", "B": "b"}, "A")
    _, kept = fit_context(lone, [("P1", "w " * 40)], 20, words)
    assert kept[0][0] == "P1" and words(f"[P1] {kept[0][1]}") <= 20


# ---------------------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("B", "B"),
        (" (C) Kidney", "C"),
        ("**D**", "D"),
        ("B. Heart", "B"),
        ("The answer is C.", "C"),
        ("answer: a", "A"),
        ("Heart", "B"),
        ("Cardiac muscle", None),
        ("yes", "A"),
        ("Maybe.", "C"),
        ("A patient should rest", None),
        ("E", None),
        ("", None),
    ],
)
def test_parse_letter(reply: str, expected: str | None) -> None:
    options = (
        {"A": "yes", "B": "no", "C": "maybe"}
        if reply.lower().startswith(("yes", "maybe"))
        else {"A": "Liver", "B": "Heart", "C": "Kidney", "D": "Spleen"}
    )
    assert parse_letter(reply, options) == expected


def test_method_is_chosen_by_capability_before_use() -> None:
    assert choose_method(FakeChatModel(letter_scores=[])) == "logprobs"
    assert choose_method(FakeChatModel(supports_grammar=True)) == "grammar"
    assert choose_method(FakeChatModel()) == "generate"
    assert choose_method(FakeChatModel(letter_scores=[]), "generate") == "generate"
    with pytest.raises(ConfigError, match="cannot score by 'logprobs': it supports generate"):
        choose_method(FakeChatModel(), "logprobs")


def test_letter_grammar() -> None:
    assert letter_grammar("ABC") == 'root ::= "A" | "B" | "C"'


def test_fake_letter_logprobs_are_scripted_and_recorded() -> None:
    model = FakeChatModel(letter_scores=[{"A": -2.0, "B": -0.5}])
    assert model.supports_logprobs
    ask = [ChatMessage("user", "q")]
    assert model.letter_logprobs(ask, ["A", "B", "C"]) == {"A": -2.0, "B": -0.5, "C": -math.inf}
    assert model.calls == [ask]
    with pytest.raises(FakeRepliesExhaustedError, match="no letter scores queued"):
        model.letter_logprobs(ask, ["A"])
    assert not FakeChatModel().supports_logprobs


def test_letter_token_ids_keep_single_token_spellings_only() -> None:
    vocab = {"A": [1], " A": [2], "B": [3], " B": [9, 3]}
    ids = letter_token_ids(["A", "B"], lambda text: vocab[text])
    assert ids == {"A": [1, 2], "B": [3]}
    with pytest.raises(ValueError, match="'C' is not a single token"):
        letter_token_ids(["C"], lambda text: [7, 8])
    logprobs = pick_letter_logprobs(lambda t: [math.log(0.25)] * len(t), ids)
    assert logprobs == pytest.approx({"A": math.log(0.5), "B": math.log(0.25)})


def run(model: FakeChatModel, **config: object) -> dict[str, object]:
    dataset = read_mcq(MIRAGE)
    result = run_mcq(MCQConfig(file=str(MIRAGE), **config), model, dataset)  # type: ignore[arg-type]
    return {"run": result, "summary": summarize(result.predictions)}


def test_logprob_scoring_takes_the_most_likely_letter() -> None:
    scores = gold_scores()
    scores[0] = {"A": -0.2, "B": -1.5, "C": -3.0, "D": -3.0}  # wrong: A over gold B
    out = run(FakeChatModel(letter_scores=scores))
    predictions = out["run"].predictions  # type: ignore[attr-defined]
    assert [p.method for p in predictions] == ["logprobs"] * 6
    assert predictions[0].predicted == "A" and not predictions[0].correct
    assert predictions[0].logprobs == {"A": -0.2, "B": -1.5, "C": -3.0, "D": -3.0}
    summary = out["summary"]
    assert summary["overall"]["correct"] == 5  # type: ignore[index]
    assert summary["subsets"]["medqa"]["correct"] == 3  # type: ignore[index]
    assert summary["subsets"]["pubmedqa"]["accuracy"] == 1.0  # type: ignore[index]


def test_grammar_scoring_passes_a_letter_grammar() -> None:
    model = FakeChatModel(["B", "A", "C", "D", "A", "C"], supports_grammar=True)
    out = run(model)
    assert model.grammars[0] == 'root ::= "A" | "B" | "C" | "D"'
    assert model.grammars[-1] == 'root ::= "A" | "B" | "C"'
    summary = out["summary"]["overall"]  # type: ignore[index]
    assert (summary["correct"], summary["methods"], summary["invalid"]) == (5, {"grammar": 6}, 0)


def test_generated_replies_are_parsed_and_unreadable_ones_counted_invalid() -> None:
    replies = ["B. Heart", "The answer is A", "I am not sure", "D", "yes", "E"]
    out = run(FakeChatModel(replies))
    predictions = out["run"].predictions  # type: ignore[attr-defined]
    assert [p.predicted for p in predictions] == ["B", "A", None, "D", "A", None]
    assert predictions[2].reply == "I am not sure"
    overall = out["summary"]["overall"]  # type: ignore[index]
    assert (overall["correct"], overall["invalid"], overall["n"]) == (4, 2, 6)
    assert overall["ci_low"] < 4 / 6 < overall["ci_high"]
    assert overall["chance"] == pytest.approx((4 * 0.25 + 2 / 3) / 6)
    assert overall["predicted_letters"] == {"-": 2, "A": 2, "B": 1, "D": 1}
    assert overall["gold_letters"] == {"A": 2, "B": 2, "C": 1, "D": 1}


def test_limit_samples_per_subset() -> None:
    out = run(FakeChatModel(default_reply="A"), limit=1, seed=3)
    subsets = out["summary"]["subsets"]  # type: ignore[index]
    assert {name: row["n"] for name, row in subsets.items()} == {"medqa": 1, "pubmedqa": 1}


# ---------------------------------------------------------------------------- RAG


def test_rag_prepends_retrieved_passages_and_records_citations() -> None:
    asked: list[str] = []

    def retrieve(query: str) -> list[tuple[str, str]]:
        asked.append(query)
        return [("Guide/heart §2", "The heart pumps blood."), ("Guide/misc", "x " * 2000)]

    model = FakeChatModel(default_reply="B")
    dataset = read_mcq(MIRAGE)
    config = MCQConfig(file=str(MIRAGE), rag=True, context_budget=50, limit=1)
    result = run_mcq(config, model, dataset, retrieve)
    assert asked[0] == dataset.items[0].question
    prompt = model.calls[0][1].content
    assert prompt.startswith("Relevant documents:\n[Guide/heart §2] The heart pumps blood.")
    assert "Guide/misc" not in prompt  # over the token budget
    assert result.predictions[0].citations == ["Guide/heart §2"]


def test_rag_without_a_retriever_is_refused() -> None:
    with pytest.raises(ConfigError, match="no retriever"):
        run_mcq(MCQConfig(file="f", rag=True), FakeChatModel(), read_mcq(MIRAGE))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "medqa", "--format 'medqa' is unknown"),
        ("method", "vote", "method 'vote' is unknown"),
        ("limit", 0, "--limit must be at least 1"),
        ("context_budget", 0, "context_budget must be a positive number"),
    ],
)
def test_bad_config_is_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MCQConfig(file="f", **{field: value})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- report


def test_report_files_hold_the_table_predictions_and_provenance(tmp_path: Path) -> None:
    out = run(FakeChatModel(letter_scores=gold_scores()))
    paths = write_mcq_report(out["run"], out["summary"], tmp_path)  # type: ignore[arg-type]
    results = json.loads(Path(paths["results"]).read_text(encoding="utf-8"))
    manifest = results["manifest"]
    assert manifest["model"] == "fake" and manifest["format"] == "mirage"
    assert manifest["git_commit"] and manifest["config"]["method"] == "auto"
    assert manifest["dataset_questions"] == 6 and len(manifest["dataset_sha256"]) == 64
    assert len(results["predictions"]) == 6 and results["predictions"][0]["correct"] is True
    report = Path(paths["report"]).read_text(encoding="utf-8")
    assert "| medqa | 4 | 100.0 % | 51.0 %–100.0 % | 25.0 % | 4 | 0 |" in report
    assert "| **all** | 6 | 100.0 % |" in report
    assert "Letters predicted: A 2, B 2, C 1, D 1 (gold: A 2, B 2, C 1, D 1" in report


def test_markdown_lists_dataset_notes() -> None:
    dataset = read_mcq(MEDMCQA)
    model = FakeChatModel(default_reply="A")
    result = run_mcq(MCQConfig(file=str(MEDMCQA)), model, dataset)
    from ehrqa.lab.eval.mcq import manifest

    text = render_markdown(manifest(result), summarize(result.predictions))
    assert "- note: medmcqa cop: 1-based" in text
    assert "| Anatomy | 2 |" in text and "generate" in text


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeChatModel]:
    """``ehrqa eval mcq`` registered as cli.py will, with a scripted fake model."""
    import ehrqa.llm
    from ehrqa.cli.main import eval_app
    from ehrqa.cli.mcq import eval_mcq

    model = FakeChatModel(letter_scores=gold_scores())
    monkeypatch.setattr(ehrqa.llm, "load_chat_model", lambda spec, **kw: model)
    registered = any(c.name == "mcq" for c in eval_app.registered_commands)
    if not registered:
        eval_app.command("mcq")(eval_mcq)
    yield model
    if not registered:
        eval_app.registered_commands.pop()


def test_cli_end_to_end_with_the_fake_model(
    cli: FakeChatModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrqa.cli.main import main

    out = tmp_path / "report"
    args = ["--home", str(tmp_path / "home"), "eval", "mcq", "--file", str(MIRAGE)]
    with pytest.raises(SystemExit) as info:
        main([*args, "--model", "fake", "--out", str(out), "--json"])
    assert info.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    assert printed["summary"]["overall"]["accuracy"] == 1.0
    assert (out / "report.md").is_file() and (out / "results.json").is_file()
    assert len(cli.calls) == 6


def test_cli_rag_uses_the_document_library(
    cli: FakeChatModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = pytest.importorskip("ehrqa.docs")
    from ehrqa.cli.main import main

    home = tmp_path / "home"
    monkeypatch.setenv("EHRQA_EMBEDDER", "hash")  # no model download for a unit test
    with docs.open_library(home, embedder="hash") as library:
        library.add([Path(__file__).parents[2] / "fixtures" / "docs" / "uti.md"])
    out = tmp_path / "report"
    args = ["--home", str(home), "eval", "mcq", "--file", str(MIRAGE), "--rag", "--rag-k", "2"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out), "--json"])
    assert info.value.code in (0, None), capsys.readouterr().err
    assert "Relevant documents:\n[" in cli.calls[0][1].content
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["manifest"]["config"]["rag"] is True
    assert all(1 <= len(p["citations"]) <= 2 for p in results["predictions"])


def test_cli_reports_bad_input_as_one_error_line(
    cli: FakeChatModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrqa.cli.main import main

    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["--home", str(tmp_path), "eval", "mcq", "--file", str(bad), "--format", "mirage"])
    assert info.value.code == 2
    assert "not valid JSON" in capsys.readouterr().err


# ---------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def smollm2() -> Iterator[ChatModel]:
    from ehrqa.core.errors import BackendUnavailableError
    from ehrqa.llm import load_chat_model

    try:
        yield load_chat_model("smollm2", n_ctx=2048, n_threads=2)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.integration
def test_smollm2_letter_logprobs_are_finite_and_agree_with_constrained_greedy(
    smollm2: ChatModel,
) -> None:
    from ehrqa.llm.base import GenerationOptions

    assert getattr(smollm2, "supports_logprobs", False)
    item = read_mcq(MIRAGE).items[0]
    messages = build_messages(item)
    scores = smollm2.letter_logprobs(messages, list("ABCD"))  # type: ignore[attr-defined]
    assert sorted(scores) == ["A", "B", "C", "D"]
    assert all(math.isfinite(v) and v < 0 for v in scores.values())
    assert sum(math.exp(v) for v in scores.values()) <= 1.0 + 1e-6
    assert scores == smollm2.letter_logprobs(messages, list("ABCD"))  # type: ignore[attr-defined]
    constrained = "".join(
        smollm2.generate(  # type: ignore[call-arg]
            messages, GenerationOptions(max_tokens=4), grammar=letter_grammar("ABCD")
        )
    )
    assert constrained == max(scores, key=lambda k: scores[k])


@pytest.mark.integration
@pytest.mark.parametrize("method", ["logprobs", "grammar"])
def test_smollm2_runner_completes_on_the_mirage_fixture(smollm2: ChatModel, method: str) -> None:
    dataset = read_mcq(MIRAGE)
    result = run_mcq(MCQConfig(file=str(MIRAGE), method=method), smollm2, dataset)
    assert [p.method for p in result.predictions] == [method] * 6
    assert all(
        p.predicted in read_mcq(MIRAGE).items[i].options for i, p in enumerate(result.predictions)
    )
    summary = summarize(result.predictions)
    assert summary["overall"]["n"] == 6 and summary["overall"]["invalid"] == 0


@pytest.mark.integration
def test_transformers_letter_logprobs_agree_with_llamacpp(smollm2: ChatModel) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from ehrqa.llm import smollm2_path
    from ehrqa.llm.transformers_backend import TransformersChatModel

    path = smollm2_path()
    model = TransformersChatModel(path.parent, gguf_file=path.name, device="cpu")
    messages = build_messages(read_mcq(MIRAGE).items[0])
    ours = model.letter_logprobs(messages, list("ABCD"))
    reference = smollm2.letter_logprobs(messages, list("ABCD"))  # type: ignore[attr-defined]
    # the same Q4_1 weights, dequantised in float32 vs computed by llama.cpp's kernels
    assert ours == pytest.approx(reference, abs=0.3)
