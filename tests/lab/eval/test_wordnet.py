"""ensure_wordnet: nltk's WordNet built offline from Debian's wordnet-base + wordnet-sense-index."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from ehrqa.core.errors import BackendUnavailableError
from ehrqa.lab.eval.wordnet import (
    APT_FIX,
    DEBIAN_WORDNET,
    LEXNAMES,
    REQUIRED_FILES,
    build_wordnet,
    ensure_wordnet,
)

needs_debian_wordnet = pytest.mark.skipif(
    not DEBIAN_WORDNET.is_dir(),
    reason=f"{DEBIAN_WORDNET} is absent: {APT_FIX}",
)
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


@pytest.fixture
def nltk():
    """nltk, with ``nltk.data.path`` restored after the test."""
    module = pytest.importorskip("nltk", reason="nltk is not installed (pip install nltk)")
    saved = list(module.data.path)
    yield module
    module.data.path[:] = saved


def test_lexnames_constant_has_the_45_wordnet_30_files_in_order():
    rows = [line.split("\t") for line in LEXNAMES.splitlines()]
    assert len(rows) == 45
    assert [int(number) for number, _, _ in rows] == list(range(45))
    assert rows[0] == ["00", "adj.all", "3"]
    assert rows[2] == ["02", "adv.all", "4"]
    assert rows[3] == ["03", "noun.Tops", "1"]
    assert rows[44] == ["44", "adj.ppl", "3"]
    for _, name, category in rows:
        assert CATEGORY[name.split(".")[0]] == int(category)


@needs_debian_wordnet
def test_lexnames_agree_with_the_debian_data_files():
    # Every synset's lex_filenum (second field) must name a lexicographer file of its part
    # of speech, and every one of the 45 files is used by WordNet 3.0.
    names = {int(n): name for n, name, _ in (line.split("\t") for line in LEXNAMES.splitlines())}
    used: set[int] = set()
    for pos in CATEGORY:
        with (DEBIAN_WORDNET / f"data.{pos}").open(encoding="utf-8") as handle:
            numbers = {int(line.split()[1]) for line in handle if not line.startswith("  ")}
        assert {names[n].split(".")[0] for n in numbers} == {pos}
        used |= numbers
    assert used == set(range(45))


@needs_debian_wordnet
def test_ensure_wordnet_builds_a_corpus_nltk_reads(tmp_path: Path, nltk):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    corpus = ensure_wordnet(tmp_path)

    assert corpus == tmp_path / "corpora" / "wordnet"
    for name in (*REQUIRED_FILES, "lexnames", "cntlist.rev"):
        assert (corpus / name).is_file(), name
    assert not list(corpus.glob("*.partial"))
    assert (corpus / "lexnames").read_text(encoding="utf-8") == LEXNAMES
    assert str(tmp_path) in nltk.data.path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        reader = WordNetCorpusReader(str(corpus), None)
    assert reader.get_version() == "3.0"
    assert "sick" in {lemma.name() for lemma in reader.synset("ill.a.01").lemmas()}
    assert reader.synset("dog.n.01").lexname() == "noun.animal"


@needs_debian_wordnet
def test_ensure_wordnet_keeps_a_complete_copy(tmp_path: Path, nltk):
    corpus = ensure_wordnet(tmp_path)
    marker = corpus / "data.noun"
    before = marker.stat().st_mtime_ns
    assert ensure_wordnet(tmp_path) == corpus
    assert marker.stat().st_mtime_ns == before


@needs_debian_wordnet
def test_ensure_wordnet_without_dir_returns_what_nltk_finds(tmp_path: Path, nltk):
    ensure_wordnet(tmp_path)
    found = ensure_wordnet()
    assert found.name in {"wordnet", "wordnet.zip"}
    assert found.exists()


@needs_debian_wordnet
def test_missing_sense_index_names_both_debian_packages(tmp_path: Path):
    source = tmp_path / "debian"
    source.mkdir()
    for name in REQUIRED_FILES:
        if name != "index.sense":
            shutil.copyfile(DEBIAN_WORDNET / name, source / name)
    with pytest.raises(BackendUnavailableError) as caught:
        build_wordnet(tmp_path / "data", source)
    message = str(caught.value)
    assert "index.sense" in message
    assert "apt-get install -y wordnet-base wordnet-sense-index" in message


def test_missing_debian_directory_says_how_to_fix(tmp_path: Path):
    with pytest.raises(BackendUnavailableError, match="apt-get install -y wordnet-base"):
        ensure_wordnet(tmp_path / "data", source=tmp_path / "nowhere")
