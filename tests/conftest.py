"""Shared fixtures: tiny hand-made bundles and a store holding one real demo patient."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_PATIENT, demo_dir
from ehrqa.store import SqliteStore

PATIENT_ID = "p1"


def patient(pid: str = PATIENT_ID, **extra: Any) -> dict[str, Any]:
    """A minimal valid Patient."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": ["Ada"], "family": "Lovelace"}],
        "gender": "female",
        "birthDate": "1970-05-01",
        **extra,
    }


def observation(
    oid: str,
    day: str,
    value: float,
    *,
    code: str = "4548-4",
    display: str = "Hemoglobin A1c/Hemoglobin.total in Blood",
    unit: str = "%",
    pid: str = PATIENT_ID,
    **extra: Any,
) -> dict[str, Any]:
    """A laboratory Observation with a quantity value."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": unit},
        **extra,
    }


def bundle(*resources: dict[str, Any], urn: bool = False) -> dict[str, Any]:
    """A transaction Bundle of ``resources`` (with ``urn:uuid`` fullUrls when asked)."""
    entries = []
    for res in resources:
        full_url = (
            f"urn:uuid:{res['id']}"
            if urn
            else f"http://example.org/fhir/{res['resourceType']}/{res['id']}"
        )
        entries.append(
            {
                "fullUrl": full_url,
                "resource": res,
                "request": {"method": "POST", "url": res["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def write_json(path: Path, data: Any, *, gz: bool = False) -> Path:
    """Write ``data`` as JSON (gzip'd when asked) and return the path."""
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """An empty store in a temporary folder."""
    s = SqliteStore(tmp_path / "store.sqlite3")
    yield s
    s.close()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    """A store holding the 3,172-resource demo patient (read-only for tests)."""
    home = tmp_path_factory.mktemp("demo")
    s = SqliteStore(home / "store.sqlite3")
    report = ingest_paths(s, [demo_dir() / f"patient-{DEMO_PATIENT}.json.gz"])
    assert not report.issues
    yield s
    s.close()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random Llama checkpoint using SmolLM2's tokenizer and chat template."""
    pytest.importorskip("trl")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ehrqa.llm import smollm2_path

    gguf = smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
