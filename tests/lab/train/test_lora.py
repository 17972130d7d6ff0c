"""LoRA fine-tuning: config checks, a few steps on a tiny model that reload to the same
logits, resume from a checkpoint, the tasks' example formats, sequential training, and the
GGUF export checked against llama.cpp itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.fhir.record import Record
from ehrqa.lab.data.demo import DEMO_PATIENT
from ehrqa.lab.train.lora import (
    CARD_FILE,
    ChatExample,
    LoraTrainConfig,
    example_length,
    fit_lora,
    read_meta,
    train_lora,
)
from ehrqa.lab.train.tasks import relevance_target
from ehrqa.llm import resolve_adapter
from ehrqa.select.baselines import judge_messages, parse_relevance


def _examples(n: int = 8) -> list[ChatExample]:
    system = {"role": "system", "content": "Answer from the records. Cite them like [1]."}
    return [
        ChatExample(
            f"q{i}",
            [
                system,
                {
                    "role": "user",
                    "content": f"Records:\n[1] 2024-0{i % 9 + 1}-01 HbA1c {5 + i}.1 %\nQuestion: last HbA1c?",
                },
            ],
            f"Your last HbA1c was {5 + i}.1 % [1].",
        )
        for i in range(n)
    ]


def _config(base: Path, **kwargs: Any) -> LoraTrainConfig:
    values: dict[str, Any] = {
        "base_model": str(base),
        "batch_size": 2,
        "max_steps": 3,
        "lr": 1e-2,  # large, so three steps visibly change the model
        "rank": 4,
        "alpha": 8.0,
        "dropout": 0.0,
        "max_length": 256,
        "save_steps": 1,
        "val_examples": 2,
    }
    return LoraTrainConfig(**{**values, **kwargs})


def _logits(model: Any, tokenizer: Any, text: str = "Your last HbA1c was") -> Any:
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1].float()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rank", 0, "rank"),
        ("epochs", 0, "epochs"),
        ("batch_size", 3, "multiple of micro_batch_size"),
        ("lr", 2.0, "lr"),
        ("max_length", 8, "max_length"),
        ("max_examples", 0, "max_examples"),
        ("dtype", "int8", "dtype"),
        ("dropout", 1.0, "dropout"),
    ],
)
def test_config_rejects_bad_values(field: str, value: Any, message: str) -> None:
    kwargs: dict[str, Any] = {field: value}
    if field == "batch_size":
        kwargs["micro_batch_size"] = 2
    with pytest.raises(ConfigError, match=message):
        LoraTrainConfig(**kwargs)


def test_base_model_must_be_local_weights() -> None:
    with pytest.raises(ConfigError, match="local weights"):
        fit_lora(_examples(), LoraTrainConfig(base_model="http://127.0.0.1:1/v1#m"), "unused")


def test_train_save_and_reload_gives_the_same_logits(tiny_base: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen: dict[str, Any] = {}

    def capture(model: Any, tokenizer: Any) -> None:
        seen["logits"] = _logits(model, tokenizer)

    out = train_lora(
        _examples(),
        _config(tiny_base),
        tmp_path / "run",
        task="t2",
        val_examples=_examples(3),
        extra={"dataset_sha256": "abc"},
        on_trained=capture,
    )
    meta = read_meta(out)
    assert meta.task == "t2" and meta.config == _config(tiny_base) and meta.config.rank == 4
    assert meta.training.steps == 3 and meta.training.trained_examples == 8
    assert meta.training.val_loss and meta.training.val_loss > 0
    assert meta.training.val_examples == 2 and meta.dataset_sha256 == "abc"
    assert meta.adapter_gguf is None  # a transformers base has no GGUF to convert for
    assert (out / CARD_FILE).read_text(encoding="utf-8").startswith("# ehrqa LoRA adapter (t2)")
    assert not (out / "checkpoints").exists()

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_base))
    before = _logits(base, tokenizer)
    reloaded = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    after = _logits(reloaded, tokenizer)
    assert (after - seen["logits"]).abs().max() < 1e-4
    assert (after - before).abs().max() > 1e-2  # the adapter is loaded and changes the model


def test_reloaded_adapter_serves_through_the_chat_backend(tiny_base: Path, tmp_path: Path) -> None:
    from ehrqa.llm import load_chat_model
    from ehrqa.llm.base import ChatMessage, GenerationOptions

    out = train_lora(_examples(), _config(tiny_base, max_steps=1), tmp_path / "run", task="t2")
    messages = [ChatMessage(**m) for m in _examples(1)[0].messages]
    options = GenerationOptions(max_tokens=8, temperature=0.0)
    first = "".join(
        load_chat_model(f"hf:{tiny_base}", adapter=str(out)).generate(messages, options)
    )
    again = "".join(
        load_chat_model(f"hf:{tiny_base}", adapter=str(out)).generate(messages, options)
    )
    assert first == again


def test_resume_continues_from_the_last_checkpoint(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _, _, first = fit_lora(_examples(), _config(tiny_base, max_steps=2), out)
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and not first.resumed
    _, _, second = fit_lora(_examples(), _config(tiny_base, max_steps=4), out)
    assert second.resumed and second.steps == 4


def test_examples_longer_than_max_length_are_dropped(tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    examples = _examples(4)
    long = ChatExample("long", examples[0].messages, "word " * 400)
    assert example_length(tokenizer, long) > 256
    _, _, run = fit_lora([*examples, long], _config(tiny_base, max_steps=1), tmp_path / "r")
    assert run.dropped_too_long == 1 and run.trained_examples == 4
    with pytest.raises(ConfigError, match="longer than max_length"):
        fit_lora([long], _config(tiny_base), tmp_path / "r2")


def test_relevance_target_is_what_the_judge_parses() -> None:
    assert relevance_target(1) == '{"relevant": true}'
    assert parse_relevance(relevance_target(1)) is True
    assert parse_relevance(relevance_target(0)) is False


def test_relevance_examples_use_the_llm_pairwise_prompt(demo_store: Any) -> None:
    from ehrqa.lab.data.qa import read_dataset
    from ehrqa.lab.train.data import TrainingDataConfig
    from ehrqa.lab.train.tasks import task_examples

    sample = Path(__file__).parents[2] / "fixtures" / "qa_sample" / "qa.jsonl"
    items = [i for i in read_dataset(sample) if i.patient_id == DEMO_PATIENT][:3]
    assert items
    examples = task_examples(items, demo_store, TrainingDataConfig(hard_negatives=2))
    first = examples["t1"][0]
    item = next(i for i in items if first.id.startswith(i.id + ":"))
    record: Record = demo_store.get(first.id.split(":", 1)[1])
    expected = judge_messages(item.question, item.now_date, record, json_answer=True)
    assert first.messages == [{"role": m.role, "content": m.content} for m in expected]
    assert {e.target for e in examples["t1"]} <= {relevance_target(0), relevance_target(1)}
    assert len(examples["t2"]) == len(items)


def test_resolve_adapter_picks_the_file_each_backend_loads(tmp_path: Path) -> None:
    (tmp_path / "ehrqa_config.json").write_text("{}", encoding="utf-8")
    assert resolve_adapter(str(tmp_path), "transformers") == str(tmp_path / "adapter")
    with pytest.raises(NotFoundError, match=r"no adapter\.gguf"):
        resolve_adapter(str(tmp_path), "llamacpp")
    (tmp_path / "adapter.gguf").write_bytes(b"")
    assert resolve_adapter(str(tmp_path), "llamacpp") == str(tmp_path / "adapter.gguf")
    assert resolve_adapter("other.gguf", "llamacpp") == "other.gguf"


@pytest.fixture(scope="module")
def smollm2_base(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """SmolLM2-135M dequantised from its GGUF into a transformers checkpoint (~30 s)."""
    pytest.importorskip("trl")
    pytest.importorskip("llama_cpp")
    from ehrqa.lab.train.lora import resolve_base

    return resolve_base("smollm2", cache_dir=tmp_path_factory.mktemp("models"))


@pytest.mark.integration
@pytest.mark.parametrize("targets", [["q_proj", "k_proj"], "all-linear"])
def test_gguf_adapter_changes_llama_cpp_as_peft_changes_transformers(
    smollm2_base: Any, tmp_path: Path, targets: Any
) -> None:
    """A random adapter moves llama.cpp's next-token logits as it moves transformers' ones.

    Query/key-only adapters check the rotary row permutation: without it the two changes
    are barely correlated (measured 0.28, against 0.95 with it).
    """
    import llama_cpp
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ehrqa.lab.train.gguf_lora import export_gguf_lora

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_base.checkpoint))
    ids = tokenizer("The patient's last HbA1c was")["input_ids"]

    def hf(model: Any) -> Any:
        with torch.no_grad():
            return model(torch.tensor([ids])).logits[0, -1].numpy()

    def cpp(lora: Path | None) -> Any:
        llm = llama_cpp.Llama(
            str(smollm2_base.gguf),
            lora_path=str(lora) if lora else None,
            n_ctx=256,
            logits_all=True,
            verbose=False,
        )
        llm.eval(ids)
        return np.array(llm.scores[llm.n_tokens - 1])

    model = AutoModelForCausalLM.from_pretrained(str(smollm2_base.checkpoint))
    hf_base, cpp_base = hf(model), cpp(None)
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False)
    adapted = get_peft_model(model, config)
    adapted.save_pretrained(str(tmp_path / "adapter"))
    gguf = export_gguf_lora(tmp_path / "adapter", smollm2_base.gguf, tmp_path / "a.gguf")
    hf_delta, cpp_delta = hf(adapted) - hf_base, cpp(gguf) - cpp_base
    assert np.linalg.norm(hf_delta) > 10  # the adapter does change the model
    assert np.corrcoef(hf_delta, cpp_delta)[0, 1] > 0.9


@pytest.mark.integration
def test_gguf_export_rejects_an_adapter_of_another_model(
    smollm2_base: Any, tiny_base: Path, tmp_path: Path
) -> None:
    from ehrqa.lab.train.gguf_lora import export_gguf_lora

    out = train_lora(_examples(), _config(tiny_base, max_steps=1), tmp_path / "run", task="t2")
    with pytest.raises(ConfigError, match=r"another base model"):
        export_gguf_lora(out / "adapter", smollm2_base.gguf, tmp_path / "x.gguf")
