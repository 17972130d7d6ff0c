"""LLM-as-judge pairwise comparison, blind and named: do models prefer their own answers?

Two evaluation runs (``ehrqa eval`` output folders) answered the same questions. For each
question a judge model sees the question, the gold records and the two answers, and says
which is better — four times:

- **blind**, A shown first, then B first (the judge is not told who wrote what);
- **named**, both orders again, each answer labelled with the system that wrote it, and the
  judge's own system labelled "you" when ``self_is`` says which one it is.

Questions both systems answered identically are counted and left out. A system wins a
question in a mode only when the judge prefers it in *both* orders; a split decision is a
tie (position bias cancelled, and counted: ``position_consistency``).
The **self-preference gap** is the judge's own system's win rate named minus blind: how
much knowing authorship moves the verdicts. As an objective anchor, on questions where
exactly one answer states the reference values (``answer_correct``), the share where the
judge's blind verdict picks that one is reported as ``judge_accuracy``.

The judge's reply is constrained to ``{"better": 1}`` / ``{"better": 2}`` by a JSON schema
when the backend supports grammars, and read leniently otherwise.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.eval.metrics import answer_correct
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.store.base import RecordStore

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"better": {"type": "integer", "enum": [1, 2]}},
    "required": ["better"],
}
JUDGE_SYSTEM = (
    "You are an impartial judge. You compare two answers to a question about a patient's "
    "health record. The better answer is the one that is correct according to the records, "
    "states the values and dates asked for, and is clear and short. Ignore the length of the "
    "answers and the order in which they are shown."
)
MODES = ("blind", "named")
MAX_RECORDS = 12


@dataclass
class JudgeConfig:
    """What to compare and who judges. Stored in the report."""

    run_a: str = field(metadata={"help": "eval output folder of system A"})
    run_b: str = field(metadata={"help": "eval output folder of system B"})
    judge: str = field(default="smollm2", metadata={"help": "judge model spec"})
    judge_adapter: str = field(default="", metadata={"help": "LoRA adapter of the judge"})
    name_a: str = field(default="", metadata={"help": "label of A (default: its model)"})
    name_b: str = field(default="", metadata={"help": "label of B (default: its model)"})
    self_is: str = field(
        default="", metadata={"help": "a or b: which system the judge is ('you' when named)"}
    )
    selector: str = field(default="", metadata={"help": "whose results (default: the first)"})
    limit: int | None = field(default=None, metadata={"help": "seeded sample of N questions"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    def __post_init__(self) -> None:
        if self.self_is not in ("", "a", "b"):
            raise ConfigError(f"self_is must be a, b or empty, got {self.self_is!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, got {self.limit}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class Verdict:
    """The judge's four verdicts on one question (1 = the first answer shown was better)."""

    id: str
    a_correct: bool | None
    b_correct: bool | None
    picks: dict[str, list[int | None]]  # mode -> [A-first pick, B-first pick]

    def winner(self, mode: str) -> str:
        """``a``, ``b`` or ``tie`` (split, or unreadable) in ``mode``."""
        a_first, b_first = self.picks[mode]
        if a_first == 1 and b_first == 2:
            return "a"
        if a_first == 2 and b_first == 1:
            return "b"
        return "tie"


def load_results(run_dir: str | Path, selector: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's manifest and its results by question id (for ``selector``, default the first)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise NotFoundError(f"{path} not found: give an `ehrqa eval` output folder")
    data = orjson.loads(path.read_bytes())
    results = data.get("results") or {}
    if not results:
        raise ConfigError(f"{path} holds no results")
    name = selector or next(iter(results))
    if name not in results:
        raise ConfigError(f"{path} has no results for selector {name!r}: {', '.join(results)}")
    rows = [r for r in results[name] if r.get("answer")]
    return data.get("manifest", {}), {r["id"]: r for r in rows}


def system_name(manifest: dict[str, Any], default: str) -> str:
    """A run's model, with its adapter's folder name when it had one."""
    if loaded := manifest.get("model_name"):
        return str(loaded)
    model = str(manifest.get("model") or default)
    adapter = (manifest.get("config") or {}).get("adapter")
    return f"{model}+{Path(adapter).name}" if adapter and adapter != "none" else model


def parse_verdict(reply: str) -> int | None:
    """1 or 2 from a judge's reply (JSON or free text); ``None`` when it names neither."""
    text = reply.strip()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("better") in (1, 2, "1", "2"):
        return int(data["better"])
    found = re.search(r"\b(?:answer\s*)?([12])\b", text, re.IGNORECASE)
    return int(found[1]) if found else None


def judge_prompt(
    question: str,
    records: Sequence[str],
    answers: tuple[str, str],
    labels: tuple[str, str] | None,
    *,
    json_answer: bool,
) -> list[ChatMessage]:
    """The judge's messages; ``labels`` name the answers' authors (named mode)."""
    shown = "\n".join(f"- {r}" for r in records[:MAX_RECORDS]) or "- (none)"
    lines = [f"Question: {question}", f"Records:\n{shown}"]
    for n, answer in enumerate(answers, start=1):
        author = f" (written by {labels[n - 1]})" if labels else ""
        lines.append(f"Answer {n}{author}: {answer}")
    ask = 'Reply {"better": 1} or {"better": 2}.' if json_answer else "Reply 1 or 2."
    lines.append(f"Which answer is better? {ask}")
    return [ChatMessage("system", JUDGE_SYSTEM), ChatMessage("user", "\n\n".join(lines))]


def _labels(config: JudgeConfig, names: tuple[str, str]) -> tuple[str, str]:
    """The authors' names, the judge's own marked 'you'."""
    a, b = names
    if config.self_is == "a":
        a = f"{a} (you)"
    elif config.self_is == "b":
        b = f"{b} (you)"
    return a, b


def _both_orders(
    answers: tuple[str, str], labels: tuple[str, str] | None
) -> list[tuple[tuple[str, str], tuple[str, str] | None]]:
    """The answers (and their authors) as shown, then swapped."""
    swapped = (labels[1], labels[0]) if labels else None
    return [(answers, labels), ((answers[1], answers[0]), swapped)]


def _ask(model: ChatModel, messages: list[ChatMessage], grammar: bool) -> int | None:
    options = GenerationOptions(max_tokens=12, temperature=0.0)
    if grammar:
        stream = model.generate(messages, options, json_schema=VERDICT_SCHEMA)  # type: ignore[call-arg]
    else:
        stream = model.generate(messages, options)
    return parse_verdict("".join(stream))


def _sample_ids(ids: list[str], config: JudgeConfig) -> list[str]:
    if config.limit is None or config.limit >= len(ids):
        return ids
    keep = set(random.Random(config.seed).sample(ids, config.limit))
    return [i for i in ids if i in keep]


def run_judge(
    config: JudgeConfig,
    store: RecordStore,
    model: ChatModel,
    on_question: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Judge every common question of the two runs; returns verdicts and scores."""
    from ehrqa.select.baselines import takes_schema

    manifest_a, a = load_results(config.run_a, config.selector)
    manifest_b, b = load_results(config.run_b, config.selector)
    common = _sample_ids(sorted(set(a) & set(b)), config)
    if not common:
        raise ConfigError("the two runs share no answered question: run both on one dataset")
    names = (
        config.name_a or system_name(manifest_a, "A"),
        config.name_b or system_name(manifest_b, "B"),
    )
    labels = _labels(config, names)
    grammar = bool(getattr(model, "supports_grammar", False)) and takes_schema(model)
    verdicts: list[Verdict] = []
    started = time.perf_counter()
    identical = 0
    for qid in common:
        row_a, row_b = a[qid], b[qid]
        if row_a["answer"].strip() == row_b["answer"].strip():
            identical += 1  # nothing to prefer ("None recorded" from both, say)
            continue
        records = [r.text for r in store.get_many(row_a["gold_ids"])]
        picks: dict[str, list[int | None]] = {}
        answers = (row_a["answer"], row_b["answer"])
        for mode in MODES:
            named = labels if mode == "named" else None
            picks[mode] = [  # A shown first, then B first
                _ask(
                    model,
                    judge_prompt(row_a["question"], records, shown, by, json_answer=grammar),
                    grammar,
                )
                for shown, by in _both_orders(answers, named)
            ]
        values = row_a.get("answer_values") or []
        verdicts.append(
            Verdict(
                qid,
                answer_correct(values, row_a["answer"]) if values else None,
                answer_correct(values, row_b["answer"]) if values else None,
                picks,
            )
        )
        if on_question is not None:
            on_question(qid)
    return {
        "config": config.to_dict(),
        "names": list(names),
        "judge_model": model.name,
        "grammar": grammar,
        "seconds": round(time.perf_counter() - started, 1),
        "dataset_sha256": manifest_a.get("dataset_sha256"),
        "same_dataset": manifest_a.get("dataset_sha256") == manifest_b.get("dataset_sha256"),
        "identical_answers": identical,
        "scores": judge_scores(verdicts, config.self_is),
        "verdicts": [asdict(v) for v in verdicts],
    }


def judge_scores(verdicts: Sequence[Verdict], self_is: str = "") -> dict[str, Any]:
    """Win/tie rates per mode, position consistency, first-position bias, gap, accuracy."""
    n = len(verdicts)
    scores: dict[str, Any] = {"questions": n}
    for mode in MODES:
        winners = [v.winner(mode) for v in verdicts]
        firsts = [p for v in verdicts for p in v.picks[mode] if p is not None]
        scores[mode] = {
            "win_a": winners.count("a") / n if n else float("nan"),
            "win_b": winners.count("b") / n if n else float("nan"),
            "tie": winners.count("tie") / n if n else float("nan"),
            "position_consistency": (n - winners.count("tie")) / n if n else float("nan"),
            "first_shown_preferred": firsts.count(1) / len(firsts) if firsts else float("nan"),
            "unreadable": sum(p is None for v in verdicts for p in v.picks[mode]),
        }
    if self_is:
        key = f"win_{self_is}"
        scores["self_preference_gap"] = scores["named"][key] - scores["blind"][key]
    decisive = [v for v in verdicts if v.a_correct is not None and v.a_correct != v.b_correct]
    right = sum(v.winner("blind") == ("a" if v.a_correct else "b") for v in decisive)
    scores["judge_accuracy"] = right / len(decisive) if decisive else float("nan")
    scores["decisive_questions"] = len(decisive)
    return scores


def render_judge_report(result: dict[str, Any]) -> str:
    """The judge study as markdown."""
    s, (a, b) = result["scores"], result["names"]
    cfg = result["config"]
    lines = [
        "# LLM-as-judge pairwise comparison",
        "",
        f"- A: **{a}** (`{cfg['run_a']}`)",
        f"- B: **{b}** (`{cfg['run_b']}`)",
        f"- Judge: **{result['judge_model']}**"
        + (f" with adapter `{cfg['judge_adapter']}`" if cfg["judge_adapter"] else "")
        + (f"; the judge is system {cfg['self_is'].upper()}" if cfg["self_is"] else ""),
        f"- Questions: {s['questions']} (dataset sha256 {str(result['dataset_sha256'])[:12]}…"
        f"{'' if result['same_dataset'] else ', **runs used different datasets**'}); "
        f"both orders per mode; grammar-constrained: {result['grammar']}; {result['seconds']} s",
        f"- Not judged: {result['identical_answers']} questions both systems answered identically",
        "",
        "| mode | A wins | B wins | tie (split) | position-consistent "
        "| first shown preferred | unreadable |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        m = s[mode]
        lines.append(
            f"| {mode} | {m['win_a']:.3f} | {m['win_b']:.3f} | {m['tie']:.3f} | "
            f"{m['position_consistency']:.3f} | {m['first_shown_preferred']:.3f} "
            f"| {m['unreadable']} |"
        )
    lines.append("")
    if "self_preference_gap" in s:
        lines.append(
            f"**Self-preference gap** (judge's own system, named − blind win rate): "
            f"{s['self_preference_gap']:+.3f}"
        )
    lines.append(
        f"**Judge accuracy** (blind verdict picks the answer that states the reference values, "
        f"on {s['decisive_questions']} questions where exactly one does): {s['judge_accuracy']:.3f}"
    )
    return "\n".join(lines) + "\n"


def write_judge_report(result: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``judge.json`` and ``report.md`` into ``out_dir``."""
    from ehrqa.lab.eval.report import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "judge.json", result)
    (out / "report.md").write_text(render_judge_report(result), encoding="utf-8")
    return {"json": str(out / "judge.json"), "report": str(out / "report.md")}
