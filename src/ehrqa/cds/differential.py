"""Differential diagnosis from symptoms and the patient's history, grounded in pathways.

1. The symptoms retrieve chunks of the hospital's documents; the documents hit best that
   describe diagnoses (a heading with a ``Features for:`` bullet, as presenting-complaint
   pathways are written) are read whole, so every diagnosis they list is a candidate.
2. Each candidate is weighed: reported symptoms among its typical features count for it,
   symptoms among its ``Features against`` and denied typical features count against it,
   and risk factors found in the record (active conditions, current medicines, age, sex)
   count for it, each citing the record.
3. Candidates with no matching symptom are dropped; the rest are ranked by that weight,
   then by how well their document matched. Red flags the symptoms match come first.

Everything is extracted and cited; no model is needed. The chat model may then phrase the
result (:func:`ehrqa.cds.narrate.narrate`), checked like every model text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ehrqa.cds.base import Advice, AdviceItem, Source, Statement
from ehrqa.cds.match import covers, mentions, negation, split_items
from ehrqa.cds.narrate import narrate
from ehrqa.cds.sources import (
    Block,
    Library,
    blocks,
    chunk_source,
    document_chunks,
    record_source,
    result_phrase,
)
from ehrqa.core.errors import ConfigError
from ehrqa.fhir.record import Record
from ehrqa.knowledge.exclusions import excluded
from ehrqa.llm.base import ChatModel
from ehrqa.meds.context import PatientContext, results_named

if TYPE_CHECKING:
    from ehrqa.docs import DocHit

SEARCH_K = 12
MAX_DOCUMENTS = 3
MAX_DIAGNOSES = 6
MAX_RISK_REFS = 3  # records cited for one risk factor
# Weights of the evidence: a symptom outweighs a risk factor, as in clinical reasoning.
SYMPTOM_FOR, SYMPTOM_AGAINST, DENIED_TYPICAL, RISK_FACTOR = 2.0, 2.0, 1.0, 1.0
OLDER_RE = re.compile(r"older age|elderly|older adult")
AGE_RE = re.compile(r"(?:age[d]?|older than)\s*(?:over|above|>=?|≥)?\s*(\d{2})", re.I)
INSTRUCTION = (
    "Summarise this differential diagnosis for a clinician, most likely first, with the "
    "key evidence for and against each diagnosis."
)


@dataclass
class Candidate:
    """One diagnosis of a pathway and the evidence found for and against it."""

    block: Block
    score: float = 0.0
    matched: list[str] = field(default_factory=list)
    evidence_for: list[Statement] = field(default_factory=list)
    evidence_against: list[Statement] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The diagnosis, as its heading names it."""
        return self.block.heading


def differential(
    library: Library,
    context: PatientContext | None,
    symptoms: str,
    *,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
    max_diagnoses: int = MAX_DIAGNOSES,
) -> Advice:
    """A ranked, cited differential diagnosis for ``symptoms`` (and the patient's history)."""
    started = time.perf_counter()
    phrases = [negation(p) for p in split_items(symptoms)]
    if not phrases:
        raise ConfigError('no symptoms given: list them, e.g. --symptoms "fever, dysuria"')
    hits = library.search(symptoms, k=SEARCH_K)
    pathway_blocks = _diagnosis_blocks(library, [h.chunk.doc_id for h in hits])
    doc_rank = {h.chunk.doc_id: i for i, h in reversed(list(enumerate(hits)))}
    glossary = _glossary(pathway_blocks)
    candidates = [_weigh(b, phrases, context, glossary) for b in pathway_blocks]
    fitting, excluded = split_excluded([c for c in candidates if c.matched], context)
    ranked = sorted(
        fitting, key=lambda c: (-c.score, doc_rank.get(c.block.chunk.doc_id, SEARCH_K))
    )[:max_diagnoses]
    flags = _red_flags(hits, phrases)
    advice = _advice(symptoms, context, ranked, flags, excluded)
    advice.timings["retrieve"] = time.perf_counter() - started
    return narrate(
        advice,
        model,
        mode=mode,
        instruction=INSTRUCTION,
        required=[c.name for c in ranked[:3]],
        forbidden=_forbidden(context),
    )


def split_excluded(
    candidates: list[Candidate], ctx: PatientContext | None
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """The candidates the patient's sex and age allow, and the others with the reason.

    The rules live in ``knowledge/exclusions.toml``; without a patient nothing is excluded.
    """
    if ctx is None:
        return candidates, []
    kept: list[Candidate] = []
    dropped: list[tuple[Candidate, str]] = []
    for cand in candidates:
        found = excluded(cand.name, ctx.gender, ctx.age)
        if found is None:
            kept.append(cand)
        else:
            dropped.append((cand, f"{cand.name} {found[1]}"))
    return kept, dropped


def _forbidden(ctx: PatientContext | None) -> Callable[[str], str | None]:
    """A check a model's text must pass: it names no diagnosis excluded for the patient."""

    def check(text: str) -> str | None:
        if ctx is None:
            return None
        for sentence in re.split(r"(?<=[.;:\n])\s*", text):
            found = excluded(sentence, ctx.gender, ctx.age)
            if found is not None:
                return f"it names a diagnosis excluded for this patient ({found[1]})"
        return None

    return check


def _diagnosis_blocks(library: Library, doc_ids: list[str]) -> list[Block]:
    """The diagnosis blocks of the best-matching documents that list diagnoses."""
    found: list[Block] = []
    used = 0
    for doc_id in dict.fromkeys(doc_ids):
        diagnoses = [
            b
            for chunk in document_chunks(library, doc_id)
            for b in blocks(chunk)
            if "features for" in b.labelled and b.heading
        ]
        if diagnoses:
            found += _unique(diagnoses)
            used += 1
        if used == MAX_DOCUMENTS:
            break
    return found


def _unique(diagnoses: list[Block]) -> list[Block]:
    """One block per diagnosis: overlapping chunks repeat a subsection."""
    seen: dict[str, Block] = {}
    for block in diagnoses:
        seen.setdefault(block.heading.lower(), block)
    return list(seen.values())


def _glossary(diagnoses: list[Block]) -> dict[str, str]:
    """Lay words a pathway gives for a term once ("dysuria (pain on passing urine)"), so
    the term means the same under every diagnosis of the pathway."""
    glossary: dict[str, str] = {}
    for block in diagnoses:
        for items in block.labelled.values():
            for item in items:
                term, _, gloss = item.partition("(")
                if gloss:
                    glossary.setdefault(term.strip().lower(), gloss.rstrip(") "))
    return glossary


def _glossed(items: list[str], glossary: dict[str, str]) -> list[str]:
    return [
        f"{i} ({glossary[i.strip().lower()]})" if i.strip().lower() in glossary else i
        for i in items
    ]


def _weigh(
    block: Block,
    phrases: list[tuple[str, bool]],
    ctx: PatientContext | None,
    glossary: dict[str, str],
) -> Candidate:
    cand = Candidate(block)
    cite = [f"doc:{block.chunk.id}"]
    typical = _glossed(block.labelled.get("features for", []), glossary)
    against = _glossed(block.labelled.get("features against", []), glossary)
    for phrase, denied in phrases:
        found = [f for f in (_typical(phrase, denied, i) for i in typical) if f]
        found += [f for f in (_contrary(phrase, denied, i) for i in against) if f]
        side = _side(found, denied)
        if side is None:
            continue
        # One statement per fact, on one side only, weighed once: the strongest reason.
        weight, text = max(((w, t) for s, w, t in found if s == side), key=lambda wt: wt[0])
        if side == "for":
            cand.score += weight
            cand.evidence_for.append(Statement(text, cite))
            if not denied:
                cand.matched.append(phrase)
        else:
            cand.score -= weight
            cand.evidence_against.append(Statement(text, cite))
    for risk in block.labelled.get("risk factors", []):
        on_record = _risk_on_record(risk, ctx)
        if on_record:  # one statement and one weight per risk factor, however many records
            refs = list(dict.fromkeys(r for _, rs in on_record for r in rs))[:MAX_RISK_REFS]
            text = f"risk factor on record: {risk} ({on_record[0][0]})"
            cand.score += RISK_FACTOR
            cand.evidence_for.append(Statement(text, [*refs, *cite]))
    return cand


Side = Literal["for", "against"]
Finding = tuple[Side, float, str]  # the side a finding supports, its weight, the statement


def _polarity(item: str) -> tuple[str, bool]:
    """A pathway item and whether it states an absence ("no fever and no loin pain")."""
    return negation(item)


def _typical(phrase: str, denied: bool, item: str) -> Finding | None:
    """How a typical feature ``item`` weighs the patient's ``phrase`` (None: unrelated)."""
    text, absent = _polarity(item)
    if not mentions(text, phrase):
        return None
    if denied == absent:  # the item holds: "fever" and fever, "no urgency" and no urgency
        shown = f"no {phrase}" if denied else phrase
        return "for", SYMPTOM_FOR, f"{shown}: a typical feature"
    if denied:
        return "against", DENIED_TYPICAL, f"no {phrase}, though it is a typical feature"
    return "against", DENIED_TYPICAL, f"{phrase}, though it is typically absent"


def _contrary(phrase: str, denied: bool, item: str) -> Finding | None:
    """How a feature against, ``item``, weighs the patient's ``phrase`` (None: unrelated)."""
    text, absent = _polarity(item)
    if not mentions(text, phrase):
        return None
    shown = f"no {phrase}" if denied else phrase
    if denied == absent:  # the item holds: the patient has what argues against it
        return "against", SYMPTOM_AGAINST, f"{shown} argues against it (pathway: “{item}”)"
    # The patient lacks what would argue against it: weak support, no weight.
    return "for", 0.0, f"{shown} (the pathway lists “{item}” against it)"


def _side(found: list[Finding], denied: bool) -> Side | None:
    """The one side a fact is listed on. When a pathway's items pull it both ways, an
    absent finding counts only against and a present one only for."""
    sides = {side for side, _, _ in found}
    if not sides:
        return None
    if len(sides) == 1:
        return next(iter(sides))
    return "against" if denied else "for"


def _risk_on_record(risk: str, ctx: PatientContext | None) -> list[tuple[str, list[str]]]:
    """The patient's facts that are the risk factor ``risk`` (text, cited references)."""
    if ctx is None:
        return []
    found: list[tuple[str, list[str]]] = []
    patient = [ctx.patient.ref] if ctx.patient else []
    age = AGE_RE.search(risk)
    lowered = risk.lower()
    if (ctx.age is not None and age and ctx.age > int(age.group(1))) or (
        ctx.age is not None and ctx.age >= 65 and OLDER_RE.search(lowered)
    ):
        found.append((f"age {ctx.age}", patient))
    sex_words = set(re.findall(r"[a-z]+", lowered))
    if ctx.gender == "female" and sex_words & {"female", "women", "woman"}:
        found.append(("female", patient))
    elif ctx.gender == "male" and sex_words & {"male", "men", "man"}:
        found.append(("male", patient))
    for record in ctx.conditions:
        if covers(record.display, risk):
            found.append((_since(record), [record.ref]))
    found += _medicine_risks(risk, ctx)
    return found


def _medicine_risks(risk: str, ctx: PatientContext) -> list[tuple[str, list[str]]]:
    from ehrqa.meds.safety import drugs_of

    found = []
    for record in ctx.medications:
        for drug in drugs_of(record):
            if any(covers(risk, name) for name in (drug.name, *drug.classes)):
                kind = drug.classes[0] if drug.classes else drug.name
                found.append((f"{record.display} ({kind})", [record.ref]))
                break
    return found


def _since(record: Record) -> str:
    return f"{record.display} since {record.day}" if record.day else record.display


def _red_flags(hits: list[DocHit], phrases: list[tuple[str, bool]]) -> list[Statement]:
    flags: list[Statement] = []
    for hit in hits:
        for block in blocks(hit.chunk):
            if not block.under("red flag"):
                continue
            for bullet in block.bullets:
                if any(not denied and covers(bullet, p) for p, denied in phrases):
                    text = f"Red flag: {bullet.rstrip('.')}"
                    flags.append(Statement(text, [f"doc:{hit.chunk.id}"]))
    return list({s.text: s for s in flags}.values())


def _advice(
    symptoms: str,
    ctx: PatientContext | None,
    ranked: list[Candidate],
    flags: list[Statement],
    dropped: list[tuple[Candidate, str]],
) -> Advice:
    sources: dict[str, Source] = {}
    items: list[AdviceItem] = []
    for cand in ranked:
        tests = cand.block.labelled.get("tests", [])
        cite = [f"doc:{cand.block.chunk.id}"]
        results = results_named(ctx, " ".join(tests)) if ctx is not None else []
        items.append(
            AdviceItem(
                "diagnosis",
                cand.name,
                statements=[
                    Statement(f"{cand.name} fits {', '.join(cand.matched)}", cite),
                    *(Statement(f"recent result: {_phrase(r, ctx)}", [r.ref]) for r in results),
                ],
                evidence_for=cand.evidence_for,
                evidence_against=cand.evidence_against,
                warnings=[],
                next_steps=[Statement(t, cite) for t in tests],
                score=round(cand.score, 2),
            )
        )
        sources[cite[0]] = chunk_source(cand.block.chunk)
    if items and flags:
        items[0].warnings = flags
    for flag in flags:
        for ref in flag.citations:
            sources.setdefault(ref, Source(ref, "document", "Red flags", flag.text))
    patient = [ctx.patient.ref] if ctx is not None and ctx.patient is not None else []
    for cand, reason in dropped:
        chunk_ref = f"doc:{cand.block.chunk.id}"
        sources[chunk_ref] = chunk_source(cand.block.chunk)
        statement = Statement(f"Excluded: {reason}", [*patient, chunk_ref])
        items.append(AdviceItem("excluded", cand.name, statements=[statement]))
    if ctx is not None:
        for record in [*ctx.conditions, *ctx.medications, *ctx.labs, *ctx.vitals]:
            sources[record.ref] = record_source(record)
        if ctx.patient is not None:
            sources[ctx.patient.ref] = record_source(ctx.patient)
    patient_id = ctx.patient_id if ctx else None
    if not ranked:
        advice = Advice(
            "differential",
            symptoms,
            "The documents describe no diagnosis with these symptoms among its features.",
            items,
            {},
            "abstain",
            patient_id=patient_id,
            abstain_reason="no pathway in the library lists these symptoms",
        )
        if dropped:
            advice.abstain_reason = "every diagnosis the pathways list for these symptoms is "
            advice.abstain_reason += "excluded by the patient's sex or age"
    else:
        advice = Advice("differential", symptoms, "", items, sources, "extractive")
        advice.patient_id = patient_id
    advice.sources = {r: sources[r] for r in advice.citations() if r in sources}
    advice.text = render_differential(advice)
    return advice


def render_differential(advice: Advice) -> str:
    """The ranked differential as text: one paragraph per diagnosis, then the diagnoses
    excluded for the patient and why; every statement cited, every list headed."""
    diagnoses = [i for i in advice.items if i.kind == "diagnosis"]
    excluded_items = [i for i in advice.items if i.kind == "excluded"]
    if not diagnoses:
        lines = [advice.text or "The documents describe no diagnosis with these symptoms."]
    else:
        lines = [f"Possible diagnoses for: {advice.query}"]
    for flag in diagnoses[0].warnings if diagnoses else []:
        lines.append(flag.render())
    for n, item in enumerate(diagnoses, 1):
        parts = [f"{n}. {item.title}."]
        for key in ("evidence_for", "evidence_against", "next_steps"):
            statements: list[Statement] = getattr(item, key)
            if statements:
                body = "; ".join(s.render().rstrip(".") for s in statements)
                parts.append(f"{item.headings[key]}: {body}.")
        lines.append(" ".join(parts))
    if excluded_items:
        lines.append("Excluded for this patient (by sex or age):")
        lines += [f"- {s.render()}" for i in excluded_items for s in i.statements]
    return "\n".join(lines)


def _phrase(record: Record, ctx: PatientContext | None) -> str:
    """A result as the differential states it, flagged for the patient's sex and age."""
    return result_phrase(record, ctx.gender if ctx else None, ctx.age if ctx else None)
