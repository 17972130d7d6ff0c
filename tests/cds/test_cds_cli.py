"""``ehrqa cds …`` as a user runs it: the demo patients, the demo corpus, no model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehrqa.cli.main import main
from ehrqa.lab.data.demo import DEMO_CDS_PATIENT, demo_corpus_dir, demo_dir

NOW = ("--now", "2025-01-01", "--answer-mode", "extractive")
LISINOPRIL_ALLERGY_PATIENT = "2b1149df-e8d7-437a-b676-011dc0551dde"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo patients and the demo corpus, embedded with the fast lexical embedder."""
    home = str(tmp_path_factory.mktemp("cds-home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EHRQA_EMBEDDER", "hash")
        for args in (["ingest", str(demo_dir())], ["docs", "add", str(demo_corpus_dir())]):
            with pytest.raises(SystemExit) as exit_info:
                main(["--home", home, *args])
            assert exit_info.value.code in (0, None)
        yield home


@pytest.fixture(autouse=True)
def _hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRQA_EMBEDDER", "hash")


def cds(capsys: pytest.CaptureFixture[str], home: str, *args: str) -> dict:
    code, out, err = run(capsys, "--home", home, "cds", *args, *NOW, "--json")
    assert code == 0, err
    return json.loads(out)


def test_differential_for_urinary_symptoms(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    advice = cds(
        capsys,
        home,
        "differential",
        "--patient",
        DEMO_CDS_PATIENT,
        "--symptoms",
        "burning when passing urine, urinary frequency, no fever",
    )
    titles = [item["title"] for item in advice["items"]]
    assert titles[0] == "Acute cystitis", titles
    assert advice["source"] == "extractive" and not advice["abstained"]
    assert "not a diagnosis" in advice["notice"]
    risks = [s for s in advice["items"][0]["evidence_for"] if "risk factor" in s["text"]]
    assert any(ref.startswith("Condition/") for s in risks for ref in s["citations"])
    assert set(advice["citations"]) <= set(advice["sources"])


def test_treat_warns_of_the_triple_whammy(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    advice = cds(
        capsys, home, "treat", "--patient", DEMO_CDS_PATIENT, "--condition", "hypertension"
    )
    warnings = [w["text"] for item in advice["items"] for w in item["warnings"]]
    assert any("triple whammy" in w.lower() and w.startswith("CRITICAL") for w in warnings)
    options = [item["title"] for item in advice["items"] if item["kind"] == "treatment"]
    assert any("ramipril" in t for t in options)
    assert not any("tests" in t.lower() for t in options), options


def test_treat_flags_an_ace_inhibitor_allergy(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    advice = cds(
        capsys,
        home,
        "treat",
        "--patient",
        LISINOPRIL_ALLERGY_PATIENT,
        "--condition",
        "hypertension",
    )

    def allergy_warnings(drug: str) -> list[list[str]]:
        """Per option naming ``drug``: its warnings that cite the allergy record."""
        return [
            [
                w["text"]
                for w in item["warnings"]
                if any(ref.startswith("AllergyIntolerance/") for ref in w["citations"])
            ]
            for item in advice["items"]
            if item["title"].endswith(f": {drug}")
        ]

    # One warning per allergy record, however many drugs Synthea coded it with.
    ramipril, losartan = allergy_warnings("ramipril"), allergy_warnings("losartan")
    assert ramipril and all(len(ws) == 1 for ws in ramipril + losartan)
    assert all(ws[0].startswith("CRITICAL") and "allergy recorded" in ws[0] for ws in ramipril)
    assert losartan and all(ws[0].startswith("WARNING") for ws in losartan)


def test_ask_answers_and_abstains(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    answered = cds(capsys, home, "ask", "At what eGFR should metformin be stopped?")
    assert "30" in answered["text"] and answered["citations"]
    assert all(c.startswith("doc:") for c in answered["citations"])
    missing = cds(capsys, home, "ask", "What is the dose of ondansetron for children?")
    assert missing["abstained"] and missing["citations"] == []


def test_summarize_a_patient(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    advice = cds(capsys, home, "summarize", "--patient", DEMO_CDS_PATIENT)
    titles = [item["title"] for item in advice["items"]]
    assert "Active problems" in titles and "Current medications" in titles
    assert set(advice["citations"]) <= set(advice["sources"])


def test_plain_output_shows_sources_and_the_notice(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--home", home, "cds", "ask", "What is the CURB-65 score?", *NOW)
    assert code == 0
    assert "Sources:" in out and "[doc:community-acquired-pneumonia#" in out
    assert "Decision support, not a diagnosis" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summarize"], "exactly one of --patient, --report and --file"),
        (["summarize", "--patient", "x", "--file", "y"], "exactly one"),
        (["summarize", "--file", "/no/such/note.txt"], "no file"),
        (["differential", "--symptoms", " , "], "no symptoms"),
        (["treat", "--patient", "nobody", "--condition", "asthma"], "nobody"),
        (["ask", "What is sepsis?", "--answer-mode", "fancy"], "fancy"),
        (["ask", "and of the?"], "no content words"),
    ],
)
def test_bad_input_is_one_red_line(
    home: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "--home", home, "cds", *args)
    assert code == 2 and message in err, err


def test_an_empty_library_says_how_to_fill_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--home", str(tmp_path), "cds", "ask", "What is sepsis?", *NOW)
    assert code == 2 and "ehrqa docs add" in err
