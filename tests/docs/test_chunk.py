"""Chunking: heading paths, ##-level boundaries, merging, size limits and overlap."""

from __future__ import annotations

import itertools

import pytest

from ehrqa.core.errors import ConfigError
from ehrqa.docs.chunk import ChunkConfig, chunk_text, count_tokens, parse_sections

GUIDE = """# Urinary tract infection

Intro about UTI.

## Differential diagnosis

### Acute cystitis

Dysuria and frequency.

### Pyelonephritis

Fever and flank pain.

## Treatment

Nitrofurantoin for 3 days.
"""


def long_section(paragraphs: int = 12, sentences: int = 8) -> str:
    """A ## section of numbered sentences, so overlap and order can be checked."""
    body = "\n\n".join(
        " ".join(f"Fact {p}-{s} concerns dosing of drug number {s}." for s in range(sentences))
        for p in range(paragraphs)
    )
    return f"# Guide\n\n## Dosing\n\n{body}\n\n## Monitoring\n\nCheck renal function.\n"


def test_parse_sections_builds_heading_paths_without_the_title() -> None:
    sections = parse_sections(GUIDE)
    assert [s.path for s in sections] == [
        (),
        ("Differential diagnosis",),
        ("Differential diagnosis", "Acute cystitis"),
        ("Differential diagnosis", "Pyelonephritis"),
        ("Treatment",),
    ]
    assert sections[2].context == ("# Urinary tract infection", "## Differential diagnosis")
    assert sections[2].heading == "### Acute cystitis"


def test_several_h1_headings_stay_in_paths() -> None:
    sections = parse_sections("# Part A\n\ntext\n\n# Part B\n\n## Sub\n\nmore")
    assert [s.path for s in sections] == [("Part A",), ("Part B",), ("Part B", "Sub")]


def test_hashes_inside_code_fences_are_not_headings() -> None:
    sections = parse_sections("## Real\n\n```\n# not a heading\n```\n")
    assert [s.path for s in sections] == [("Real",)]
    assert "# not a heading" in sections[0].body


def test_plain_text_is_one_section_without_path() -> None:
    assert [(s.path, s.body) for s in parse_sections("# no\nheadings", markdown=False)] == [
        ((), "# no\nheadings")
    ]


def test_small_siblings_merge_but_never_across_h2() -> None:
    chunks = chunk_text(GUIDE)
    assert [c.section for c in chunks] == [
        "",
        "Differential diagnosis > Acute cystitis; Pyelonephritis",
        "Treatment",
    ]
    assert "Nitrofurantoin" not in chunks[1].text
    assert "### Acute cystitis" in chunks[1].text and "### Pyelonephritis" in chunks[1].text


def test_every_chunk_starts_with_its_heading_context() -> None:
    for chunk in chunk_text(GUIDE):
        assert chunk.text.startswith("# Urinary tract infection")
    treatment = chunk_text(GUIDE)[-1]
    assert treatment.text.splitlines()[2] == "## Treatment"


def test_long_section_is_split_within_limits_with_overlap() -> None:
    config = ChunkConfig(target_tokens=120, max_tokens=200, overlap_tokens=30)
    chunks = [c for c in chunk_text(long_section(), config=config) if c.section == "Dosing"]
    assert len(chunks) > 3
    for chunk in chunks:
        assert count_tokens(chunk.text) <= config.max_tokens
        assert chunk.text.startswith("# Guide\n\n## Dosing\n\n")
    for before, after in itertools.pairwise(chunks):
        first_new = after.text.removeprefix("# Guide\n\n## Dosing\n\n").split(". ")[0]
        assert first_new in before.text  # the next chunk opens with the previous tail


def test_split_keeps_every_sentence_in_order() -> None:
    config = ChunkConfig(target_tokens=100, max_tokens=160, overlap_tokens=0)
    chunks = [c for c in chunk_text(long_section(), config=config) if c.section == "Dosing"]
    joined = " ".join(c.text.removeprefix("# Guide\n\n## Dosing\n\n") for c in chunks)
    facts = [w for w in joined.replace("\n", " ").split() if "-" in w and w[0].isdigit()]
    assert facts == [f"{p}-{s}" for p in range(12) for s in range(8)]


def test_a_sentence_longer_than_the_budget_is_cut_at_words() -> None:
    config = ChunkConfig(target_tokens=40, max_tokens=60, overlap_tokens=5)
    text = "## Long\n\n" + " ".join(f"word{i}" for i in range(200))
    chunks = chunk_text(text, config=config)
    assert len(chunks) >= 4
    assert all(count_tokens(c.text) <= config.max_tokens for c in chunks)


def test_default_sizes_give_300_to_500_token_chunks_for_long_text() -> None:
    chunks = chunk_text(long_section(paragraphs=40))
    sizes = [count_tokens(c.text) for c in chunks if c.section == "Dosing"]
    assert all(sz <= 500 for sz in sizes)
    assert all(sz >= 250 for sz in sizes[:-1])


def test_identical_chunk_texts_are_kept_once() -> None:
    text = "Same paragraph.\n\n## A\n\nRepeat.\n\n## A\n\nRepeat."
    assert [c.section for c in chunk_text(text)] == ["", "A"]


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_text("") == [] and chunk_text("  \n", markdown=False) == []


def test_count_tokens_counts_words_and_punctuation() -> None:
    assert count_tokens("eGFR < 45 ml/min.") == 7


@pytest.mark.parametrize(
    ("target", "maximum", "overlap"), [(100, 50, 10), (100, 200, 100), (100, 200, -1)]
)
def test_bad_chunk_config(target: int, maximum: int, overlap: int) -> None:
    with pytest.raises(ConfigError, match="chunk sizes"):
        ChunkConfig(target_tokens=target, max_tokens=maximum, overlap_tokens=overlap)
