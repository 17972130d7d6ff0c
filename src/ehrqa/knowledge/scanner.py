"""The phrase scanner: find the concepts and record-kind cues of the knowledge files in text.

Matching is word-based and longest-first: the text is split into words, each word gets a
light plural folding ("allergies" → "allergy", "labs" → "lab"), and at every position the
longest known phrase wins, so "high blood pressure" is hypertension, not the blood-pressure
vital, and "blood pressure medicine" is the antihypertensive class.

A misspelt word ("cholestrol", "trigylcerides") is read as the known word it is closest to,
when it is no English word and shares its first two letters with that word: see
:meth:`PhraseIndex.spelled`.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import defaultdict
from dataclasses import dataclass

from ehrqa.knowledge.loader import load_knowledge
from ehrqa.knowledge.model import Concept, Cue, Knowledge, KnowledgeError

_WORD_RE = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case words of ``text``; apostrophes vanish ("Alzheimer's" → "alzheimers"), and an
    acronym used as a verb is written out ("OD'd" → "oded", not the word "odd")."""
    text = _ACRONYM_VERB_RE.sub(r"\1ed", text)
    return _WORD_RE.findall(text.lower().replace("’", "").replace("'", ""))


_ACRONYM_VERB_RE = re.compile(r"\b([A-Z]{2,})['’]e?d\b")


def fold(word: str) -> str:
    """Fold a plural onto its singular: "allergies" → "allergy", "labs" → "lab".

    Deliberately crude and applied to both texts and phrases, so it only has to be
    consistent, not correct ("diabetes" → "diabete" on both sides still matches).
    """
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def phrase_key(phrase: str) -> tuple[str, ...]:
    """The folded words of ``phrase``: the index key it is found under."""
    return tuple(fold(w) for w in words(phrase))


@dataclass(frozen=True)
class Match:
    """One recognised phrase of a text, as word positions ``[start, end)``."""

    phrase: str
    start: int
    end: int
    concepts: tuple[Concept, ...]
    cue: Cue | None
    plural: bool


@dataclass(frozen=True)
class _Entry:
    concepts: tuple[str, ...] = ()
    cue: Cue | None = None
    # Last words as the files spell them: "diabetes" is listed, so it is not a plural.
    forms: frozenset[str] = frozenset()


class PhraseIndex:
    """Every concept synonym, group phrase and cue phrase of a :class:`Knowledge`, by key."""

    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self._entries: dict[tuple[str, ...], _Entry] = {}
        for concept in kb.concepts:
            for phrase in concept.synonyms:
                self._merge(phrase, (concept.name,), kb.concept_cues.get(concept.name))
        for phrase, names in kb.groups.items():
            self._merge(phrase, names)
        for rule in kb.cues:
            for phrase in rule.phrases:
                self._merge(phrase, cue=rule.cue)
        self.max_words = max(len(key) for key in self._entries)
        self._vocabulary = {word for key in self._entries for word in key}
        by_start: dict[str, list[str]] = defaultdict(list)
        for word in sorted(self._vocabulary):
            if len(word) >= MIN_SPELLED:
                by_start[word[:2]].append(word)
        self._by_start = dict(by_start)

    def _merge(self, phrase: str, concepts: tuple[str, ...] = (), cue: Cue | None = None) -> None:
        """Add ``phrase``; two meanings for one phrase is a mistake in the files."""
        key = phrase_key(phrase)
        if not key:
            raise KnowledgeError(f"phrase {phrase!r} has no words")
        old = self._entries.get(key, _Entry())
        if concepts and old.concepts and old.concepts != concepts:
            raise KnowledgeError(
                f"phrase {phrase!r} names both {list(old.concepts)} and {list(concepts)}; "
                "keep it in one concept (or make it a [groups] phrase in cues.toml)"
            )
        if cue and old.cue and old.cue != cue:
            raise KnowledgeError(f"phrase {phrase!r} is a cue for two kinds of record (cues.toml)")
        # Keep the spelling, not the folded form: "diabetes" is not the plural of "diabete".
        self._entries[key] = _Entry(
            concepts or old.concepts, cue or old.cue, old.forms | {words(phrase)[-1]}
        )

    def __contains__(self, phrase: str) -> bool:
        return phrase_key(phrase) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def spelled(self, word: str) -> str:
        """``word`` (folded), or the known word it misspells.

        A word is read as a misspelling only when it is unknown to the files and to an
        English dictionary ("should" is never "shoulder"), is at least :data:`MIN_SPELLED`
        letters long, and is at least :data:`SPELLING_CUTOFF` similar to one known word with
        the same first two letters.
        """
        if word in self._vocabulary or len(word) < MIN_SPELLED or not word.isalpha():
            return word
        close = difflib.get_close_matches(
            word, self._by_start.get(word[:2], ()), n=1, cutoff=SPELLING_CUTOFF
        )
        if not close or is_english(word):
            return word
        return close[0]

    def scan(self, text: str) -> list[Match]:
        """Every known phrase of ``text``, left to right, the longest one at each position."""
        raw = words(text)
        folded = [self.spelled(fold(w)) for w in raw]
        by_name = self.kb.by_name
        found: list[Match] = []
        i = 0
        while i < len(folded):
            for n in range(min(self.max_words, len(folded) - i), 0, -1):
                entry = self._entries.get(tuple(folded[i : i + n]))
                if entry is not None:
                    concepts = tuple(by_name[c] for c in entry.concepts)
                    last = raw[i + n - 1]
                    plural = last != folded[i + n - 1] and last not in entry.forms
                    phrase = " ".join(raw[i : i + n])
                    found.append(Match(phrase, i, i + n, concepts, entry.cue, plural))
                    i += n
                    break
            else:
                i += 1
        return found


# Spelling: shorter words are too often other words; below this similarity, other words.
MIN_SPELLED = 5
SPELLING_CUTOFF = 0.85


@functools.cache
def _english() -> dict[str, int] | None:
    """The English dictionary of pyspellchecker (word → how often it is seen), or None when
    it is not installed."""
    try:
        from spellchecker import SpellChecker
    except ImportError:  # pragma: no cover - a dependency; without it nothing is corrected
        return None
    return dict(SpellChecker(language="en").word_frequency.dictionary)


def is_english(word: str) -> bool:
    """Whether ``word`` is an English word (True when no dictionary is installed, so that
    nothing is read as a misspelling without one)."""
    english = _english()
    return english is None or word in english


# A word seen fewer times than this in pyspellchecker's English frequency list is rare
# enough to be read as a name ("hilario" 50, "george" 2,069) rather than a word ("rose"
# 27,460, "max" 5,140, "may" 927,594).
COMMON_WORD_COUNT = 5000


def is_common_word(word: str) -> bool:
    """Whether ``word`` (lower case) is an everyday English word, not merely a name the
    dictionary also lists (True when no dictionary is installed: nothing is dropped)."""
    english = _english()
    return english is None or english.get(word, 0) >= COMMON_WORD_COUNT


@functools.cache
def default_index() -> PhraseIndex:
    """The index over the packaged knowledge files, built once."""
    return PhraseIndex(load_knowledge())


def scan(text: str) -> list[Match]:
    """Every known phrase of ``text`` (packaged knowledge), longest first at each position."""
    return default_index().scan(text)


def find_concepts(text: str) -> list[Concept]:
    """Concepts named in ``text``, in order of mention, each once."""
    seen: dict[str, Concept] = {}
    for match in scan(text):
        for concept in match.concepts:
            seen.setdefault(concept.name, concept)
    return list(seen.values())
