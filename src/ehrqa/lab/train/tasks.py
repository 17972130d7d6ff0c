"""The fine-tuning commands: Task 2 answerer, Task 1 LLM relevance judge, sequential T1↔T2.

Each turns the QA dataset's train split (and val, for the validation loss) into chat
examples in exactly the format the model is served with, then calls
:func:`ehrqa.lab.train.lora.train_lora`:

- **t2** — the answerer's prompt (:func:`ehrqa.answer.prompt.build_prompt`, no few-shot
  turns) over gold + distractor records → the reference answer citing ``[n]`` aliases
  (:func:`ehrqa.lab.train.data.answer_example`); unanswerable questions teach abstention.
- **t1** (LLM) — the ``llm-pairwise`` selector's judge prompt
  (:func:`ehrqa.select.baselines.judge_messages`, JSON form) for each relevance pair →
  ``{"relevant": true}`` or ``{"relevant": false}``, the reply its grammar allows.
- **seq** — the first task, then the second starting from the first's adapter; the
  intermediate adapter is kept in ``<out>/stage1-<task>`` for the comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import ConfigError
from ehrqa.lab.data.qa import QAItem, dataset_hash
from ehrqa.lab.train.data import (
    AnswerExample,
    Pair,
    TrainingDataConfig,
    build_examples,
    split_items,
)
from ehrqa.lab.train.lora import ChatExample, LoraTrainConfig, examples_hash, train_lora
from ehrqa.select.baselines import judge_messages
from ehrqa.store.base import RecordStore

TASKS = ("t1", "t2")


def answer_chat_examples(examples: Sequence[AnswerExample]) -> list[ChatExample]:
    """Task 2 examples as chat examples."""
    return [ChatExample(e.id, e.messages, e.target) for e in examples]


def relevance_target(label: int) -> str:
    """The judge's reply for a pair's label, as the JSON grammar lets it answer."""
    return orjson.dumps({"relevant": bool(label)}).decode().replace(":", ": ")


def relevance_chat_examples(
    pairs: Sequence[Pair], items: Sequence[QAItem], store: RecordStore
) -> list[ChatExample]:
    """Task 1 pairs as chat examples in the ``llm-pairwise`` judge's prompt."""
    by_id = {item.id: item for item in items}
    records = {r.ref: r for r in store.get_many(sorted({p.ref for p in pairs}))}
    out = []
    for pair in pairs:
        item = by_id[pair.question_id]
        messages = judge_messages(item.question, item.now_date, records[pair.ref], json_answer=True)
        out.append(
            ChatExample(
                f"{pair.question_id}:{pair.ref}",
                [{"role": m.role, "content": m.content} for m in messages],
                relevance_target(pair.label),
            )
        )
    return out


def task_examples(
    items: Sequence[QAItem], store: RecordStore, data_config: TrainingDataConfig
) -> dict[str, list[ChatExample]]:
    """Both tasks' chat examples of ``items``: ``{"t1": […], "t2": […]}``."""
    pairs, answers = build_examples(items, store, data_config)
    return {
        "t1": relevance_chat_examples(pairs, items, store),
        "t2": answer_chat_examples(answers),
    }


def _data(
    dataset: str | Path, store: RecordStore, data_config: TrainingDataConfig
) -> tuple[dict[str, list[ChatExample]], dict[str, list[ChatExample]], dict[str, Any]]:
    train = task_examples(split_items(dataset, "train"), store, data_config)
    val = task_examples(split_items(dataset, "val"), store, data_config)
    extra = {
        "dataset": str(dataset),
        "dataset_sha256": dataset_hash(dataset),
        "data_config": data_config.to_dict(),
        "val_examples_sha256": {task: examples_hash(val[task]) for task in TASKS},
    }
    return train, val, extra


def train_task(
    task: str,
    dataset: str | Path,
    store: RecordStore,
    out_dir: str | Path,
    config: LoraTrainConfig | None = None,
    data_config: TrainingDataConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
) -> Path:
    """Fine-tune one task (``t1`` LLM judge or ``t2`` answerer); returns the adapter folder."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    config = config or LoraTrainConfig()
    train, val, extra = _data(dataset, store, data_config or TrainingDataConfig())
    return train_lora(
        train[task],
        config,
        out_dir,
        task=task,
        val_examples=val[task],
        extra=extra,
        cache_dir=cache_dir,
    )


def train_sequential(
    order: Sequence[str],
    dataset: str | Path,
    store: RecordStore,
    out_dir: str | Path,
    config: LoraTrainConfig | None = None,
    data_config: TrainingDataConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
) -> Path:
    """Sequential fine-tuning: ``order[0]``, then ``order[1]`` from the first's adapter.

    The first stage is saved in ``<out>/stage1-<task>``, the final adapter in ``out``
    (task ``seq``). How much of the first task the second stage kept is measured by
    evaluating the final adapter on both tasks (``ehrqa eval``), as for single-task ones.
    """
    if sorted(order) != sorted(TASKS):
        raise ConfigError(f"order must name t1 and t2 once each (t1,t2 or t2,t1), got {order}")
    config = config or LoraTrainConfig()
    train, val, extra = _data(dataset, store, data_config or TrainingDataConfig())
    out = Path(out_dir)
    first, second = order
    stage1 = train_lora(
        train[first],
        config,
        out / f"stage1-{first}",
        task=first,
        val_examples=val[first],
        extra=extra,
        cache_dir=cache_dir,
    )
    extra = {**extra, "order": list(order), "stage1": str(stage1.name)}
    return train_lora(
        train[second],
        config,
        out,
        task="seq",
        val_examples=val[second],
        init_adapter=stage1 / "adapter",
        extra=extra,
        cache_dir=cache_dir,
    )
