"""A free question over the hospital's documents, and the patient's record when one is named.

The question retrieves document chunks; the sentences of the best chunks that share the
most content words with the question form the answer, each citing its chunk. With a
patient, the records-QA pipeline (Task 1 selection, extractive answer) adds the record's
facts, citing the resources. When no retrieved sentence shares enough of the question's
content words, and the record adds nothing, the answer abstains: the documents do not
cover it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from ehrqa.answer.extractive import compose
from ehrqa.cds.base import Advice, AdviceItem, Source, Statement
from ehrqa.cds.match import content_words
from ehrqa.cds.narrate import narrate
from ehrqa.cds.sources import Library, chunk_source, record_source
from ehrqa.core.errors import ConfigError
from ehrqa.llm.base import ChatModel
from ehrqa.select.base import Selection

SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9*])|\n+")
HEADING_RE = re.compile(r"^\s*#|^\s*>")
MAX_SENTENCES = 3
# A sentence must share this share of the question's content words (at least one word) to
# count as an answer; measured on the demo corpus's unanswerable probes (reports/docs).
MIN_OVERLAP = 0.5
INSTRUCTION = "Answer the question for a clinician in two to four sentences."


def ask(
    library: Library,
    question: str,
    *,
    selection: Selection | None = None,
    patient_id: str | None = None,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
    k: int = 5,
) -> Advice:
    """Answer ``question`` from the documents, and from ``selection`` (Task 1's selection of
    the records of ``patient_id``) when given."""
    wanted = content_words(question)
    if not wanted:
        raise ConfigError("the question is empty or has no content words")
    started = time.perf_counter()
    hits = library.search(question, k=k)
    scored = []
    for rank, hit in enumerate(hits):
        for sentence in _sentences(hit.chunk.text):
            shared = len(wanted & content_words(sentence))
            if shared / len(wanted) >= MIN_OVERLAP or shared >= 3:
                score = shared / math.sqrt(len(sentence.split())) - 0.01 * rank
                scored.append((score, hit.chunk, sentence))
    best = sorted(scored, key=lambda s: -s[0])[:MAX_SENTENCES]
    items: list[AdviceItem] = []
    sources: dict[str, Source] = {}
    if best:
        statements = [Statement(text, [f"doc:{chunk.id}"]) for _, chunk, text in best]
        items.append(AdviceItem("answer", "From the documents", statements=statements))
        sources.update({f"doc:{c.id}": chunk_source(c) for _, c, _ in best})
    if selection is not None and selection.items:
        records = [item.record for item in selection.items]
        facts = Statement(compose(selection), [r.ref for r in records])
        items.append(AdviceItem("answer", "From the patient's record", statements=[facts]))
        sources.update({r.ref: record_source(r) for r in records})
    if not items:
        return Advice(
            "ask",
            question,
            "The documents do not cover this question.",
            [],
            {},
            "abstain",
            patient_id=patient_id,
            abstain_reason="no retrieved passage shares enough of the question's words",
        )
    advice = Advice("ask", question, "", items, sources, "extractive", patient_id=patient_id)
    advice.text = "\n".join(
        f"{i.title}: " + " ".join(s.render() for s in i.statements) for i in items
    )
    advice.timings["retrieve"] = time.perf_counter() - started
    return narrate(advice, model, mode=mode, instruction=f"{INSTRUCTION} Question: {question}")


def _sentences(text: str) -> list[str]:
    """The sentences and bullets of a chunk, without headings and banners."""
    parts = (p.strip(" -*•\t") for p in SENTENCE_RE.split(text))
    return [p.replace("**", "") for p in parts if len(p.split()) >= 4 and not HEADING_RE.match(p)]
