"""Training data from a gold-labelled QA dataset and a record store.

Task 1 pairs are ``(question + now, one resource's rendering) → 1 relevant / 0 not``:

- positives are the question's gold ``relevant_ids`` (those present in the store);
- hard negatives are the default selector's candidates that are not gold. They share the
  question's types, dates and codes, which is what a reranker must learn to tell apart. The
  hardest (best-ranked) half of the quota is always taken, the rest is a seeded sample of
  the remaining candidates;
- a few random records of the same types as the gold ones (or as the question's) add
  easy negatives, so the model also sees what "obviously unrelated" looks like.

Task 2 examples are the answerer's own prompt (:func:`ehrqa.answer.prompt.build_prompt`,
without few-shot turns) over the gold records plus a few distractors, and a target answer.
**Citation format:** the target cites the prompt's short aliases (``[1]``, ``[2]``), not
``[Type/id]``: a fine-tuned model then learns exactly the format it is served with, and the
answerer maps aliases back to references (``aliases`` is stored with each example). The
dataset's reference answers carry no citations, so every gold record's alias is cited at the
end of the answer's last sentence. Unanswerable questions keep their reference sentence
(no citation) over the default selector's top candidates, so the model learns to abstain.

Everything is seeded per question (``seed`` and the question id), so the output does not
depend on the order or subset of questions processed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ehrqa.answer.prompt import build_prompt
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.data.qa import QAItem, dataset_hash, read_dataset
from ehrqa.lab.data.qa import write_jsonl as write_rows
from ehrqa.llm.reranker import pair_document, pair_query
from ehrqa.select.base import Selection
from ehrqa.select.default import DefaultSelector
from ehrqa.store.base import RecordQuery, RecordStore


@dataclass
class TrainingDataConfig:
    """How many pairs and records to take per question. Stored in every manifest."""

    seed: int = field(default=0, metadata={"help": "seed of every sample (per question)"})
    max_positives: int = field(default=16, metadata={"help": "most gold pairs per question"})
    hard_negatives: int = field(
        default=12, metadata={"help": "most non-gold candidates of the default selector"}
    )
    random_negatives: int = field(
        default=4, metadata={"help": "random records of the same types per question"}
    )
    candidate_depth: int = field(
        default=100, metadata={"help": "how deep into the default ranking negatives are drawn"}
    )
    answer_max_records: int = field(
        default=20, metadata={"help": "most gold records in a Task 2 prompt"}
    )
    answer_distractors: int = field(
        default=2, metadata={"help": "non-gold candidates added to a Task 2 prompt"}
    )
    answer_budget: int = field(
        default=1200,
        metadata={"help": "token budget of a Task 2 prompt (≈ 4 chars a token; fits 1,024)"},
    )

    def __post_init__(self) -> None:
        for name in (
            "max_positives",
            "hard_negatives",
            "random_negatives",
            "answer_max_records",
            "answer_distractors",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.candidate_depth < 1:
            raise ConfigError(f"candidate_depth must be at least 1, got {self.candidate_depth}")
        if self.answer_budget < 200:
            raise ConfigError(f"answer_budget must be at least 200, got {self.answer_budget}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class Pair:
    """One Task 1 training pair: is ``ref`` relevant to the question?"""

    question_id: str
    patient_id: str
    query: str
    ref: str
    document: str
    label: int
    source: str  # "gold", "candidate" (hard negative) or "random"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class AnswerExample:
    """One Task 2 training example: prompt messages and the answer to learn."""

    id: str
    patient_id: str
    messages: list[dict[str, str]]
    target: str
    aliases: dict[str, str]
    answerable: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class TrainingDataReport:
    """What :func:`build_training_data` wrote."""

    pairs_path: Path
    answers_path: Path
    manifest_path: Path
    questions: int
    pairs: int
    positives: int
    answer_examples: int


def _rng(config: TrainingDataConfig, item: QAItem) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and Python versions.
    return random.Random(f"{config.seed}:{item.id}")


def _sample(rng: random.Random, items: Sequence[str], k: int) -> list[str]:
    """Up to ``k`` of ``items``, seeded, keeping their original order."""
    if len(items) <= k:
        return list(items)
    keep = set(rng.sample(range(len(items)), k))
    return [x for i, x in enumerate(items) if i in keep]


def hard_negative_refs(
    ranked: Sequence[str], gold: set[str], config: TrainingDataConfig, rng: random.Random
) -> list[str]:
    """Non-gold candidates: the best-ranked half of the quota, then a sample of the rest."""
    pool = [ref for ref in ranked[: config.candidate_depth] if ref not in gold]
    top = (config.hard_negatives + 1) // 2
    return pool[:top] + _sample(rng, pool[top:], config.hard_negatives - top)


def random_negative_refs(
    store: RecordStore,
    item: QAItem,
    types: Sequence[str],
    exclude: set[str],
    k: int,
    rng: random.Random,
) -> list[str]:
    """``k`` random records of ``types`` (the patient's, any date) not in ``exclude``."""
    if k == 0 or not types:
        return []
    refs = [
        r.ref
        for r in store.query(RecordQuery(item.patient_id, types=tuple(sorted(types))))
        if r.ref not in exclude
    ]
    return _sample(rng, sorted(refs), k)


def question_pairs(
    item: QAItem, store: RecordStore, selection: Selection, config: TrainingDataConfig
) -> list[Pair]:
    """The pairs of one question, given the default selector's ``selection`` for it."""
    rng = _rng(config, item)
    gold_records = store.get_many(item.relevant_ids)
    gold = set(item.relevant_ids)
    positives = _sample(rng, [r.ref for r in gold_records], config.max_positives)
    ranked = list(selection.details.get("ranked") or selection.refs)
    hard = hard_negative_refs(ranked, gold, config, rng)
    types = {r.resource_type for r in gold_records} or set(_plan_types(selection))
    easy = random_negative_refs(
        store, item, sorted(types), gold | set(hard), config.random_negatives, rng
    )
    sources = {**{r: "gold" for r in positives}, **{r: "candidate" for r in hard}}
    sources.update({r: "random" for r in easy})
    query = pair_query(item.question, item.now)
    return [
        Pair(
            item.id,
            item.patient_id,
            query,
            record.ref,
            pair_document(record),
            int(record.ref in gold),
            sources[record.ref],
        )
        for record in store.get_many(list(sources))
    ]


def _plan_types(selection: Selection) -> list[str]:
    types = list(selection.plan.resource_types)
    for concept in selection.plan.concepts:
        types.extend(t for t in concept.resource_types if t not in types)
    return types


def cite_answer(answer: str, aliases: Sequence[str]) -> str:
    """``answer`` with ``[alias]`` citations before its final full stop (or at its end)."""
    if not aliases:
        return answer
    marks = "".join(f"[{a}]" for a in aliases)
    text = answer.rstrip()
    if text.endswith("."):
        return f"{text[:-1]} {marks}."
    return f"{text} {marks}"


def _approx_tokens(text: str) -> int:
    return len(text) // 4 + 1


def answer_example(
    item: QAItem, store: RecordStore, selection: Selection, config: TrainingDataConfig
) -> AnswerExample:
    """The Task 2 example of one question: its prompt over gold + distractors, and the target."""
    rng = _rng(config, item)
    gold = set(item.relevant_ids)
    ranked = list(selection.details.get("ranked") or selection.refs)
    order = {ref: i for i, ref in enumerate(ranked)}
    gold_refs = sorted(gold, key=lambda r: (order.get(r, len(order)), r))
    gold_refs = gold_refs[: config.answer_max_records]
    n_distractors = config.answer_distractors if gold_refs else max(3, config.answer_distractors)
    distractors = [r for r in ranked if r not in gold][:n_distractors]
    refs = gold_refs + distractors
    rng.shuffle(refs)
    records = store.get_many(refs)
    prompt = build_prompt(
        item.question,
        item.now_date,
        records,
        count_tokens=_approx_tokens,
        budget=config.answer_budget,
        few_shot=False,
    )
    cited = [alias for alias, ref in prompt.aliases.items() if ref in gold and alias != ref]
    return AnswerExample(
        id=item.id,
        patient_id=item.patient_id,
        messages=[{"role": m.role, "content": m.content} for m in prompt.messages],
        target=cite_answer(item.answer, cited),
        aliases={a: r for a, r in prompt.aliases.items() if a != r},
        answerable=item.answerable,
    )


def build_examples(
    items: Iterable[QAItem], store: RecordStore, config: TrainingDataConfig
) -> tuple[list[Pair], list[AnswerExample]]:
    """Task 1 pairs and Task 2 examples of ``items`` (the default selector runs once each)."""
    selector = DefaultSelector()
    pairs: list[Pair] = []
    examples: list[AnswerExample] = []
    for item in items:
        selection = selector.select(store, item.patient_id, item.question, item.now_date)
        pairs += question_pairs(item, store, selection, config)
        examples.append(answer_example(item, store, selection, config))
    return pairs, examples


def write_jsonl(rows: Iterable[Pair | AnswerExample | dict[str, Any]], path: str | Path) -> int:
    """Write pairs, examples or dicts as JSONL atomically; returns the count."""
    return write_rows((row if isinstance(row, dict) else row.to_dict() for row in rows), path)


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist: build it with build_training_data")
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def read_pairs(path: str | Path) -> list[Pair]:
    """Read Task 1 pairs written by :func:`write_jsonl`."""
    return [Pair(**row) for row in _read_jsonl(path)]


def read_answer_examples(path: str | Path) -> list[AnswerExample]:
    """Read Task 2 examples written by :func:`write_jsonl`."""
    return [AnswerExample(**row) for row in _read_jsonl(path)]


def pairs_hash(pairs: Sequence[Pair]) -> str:
    """SHA-256 of the pairs' canonical JSONL (recorded with every trained model)."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(orjson.dumps(pair.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n")
    return digest.hexdigest()


def split_items(dataset: str | Path, split: str | None) -> list[QAItem]:
    """The dataset's questions of ``split`` (all when None); an empty split is an error."""
    items = [i for i in read_dataset(dataset) if split is None or i.split == split]
    if not items:
        raise NotFoundError(f"dataset {dataset} has no questions in split {split!r}")
    return items


def build_training_data(
    dataset: str | Path,
    store: RecordStore,
    split: str | None,
    out_dir: str | Path,
    config: TrainingDataConfig | None = None,
) -> TrainingDataReport:
    """Write ``t1_pairs.<split>.jsonl``, ``t2_answers.<split>.jsonl`` and a manifest."""
    config = config or TrainingDataConfig()
    out = Path(out_dir)
    items = split_items(dataset, split)
    pairs, examples = build_examples(items, store, config)
    name = split or "all"
    pairs_path, answers_path = out / f"t1_pairs.{name}.jsonl", out / f"t2_answers.{name}.jsonl"
    write_jsonl(pairs, pairs_path)
    write_jsonl(examples, answers_path)
    report = TrainingDataReport(
        pairs_path,
        answers_path,
        out / f"manifest.{name}.json",
        questions=len(items),
        pairs=len(pairs),
        positives=sum(p.label for p in pairs),
        answer_examples=len(examples),
    )
    manifest = {
        "dataset": str(dataset),
        "dataset_sha256": dataset_hash(dataset),
        "split": split,
        "config": config.to_dict(),
        "counts": {
            "questions": report.questions,
            "pairs": report.pairs,
            "positives": report.positives,
            "answer_examples": report.answer_examples,
        },
        "pairs_sha256": pairs_hash(pairs),
    }
    report.manifest_path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return report
