"""Treatment suggestions from the hospital's protocol, checked against the patient.

1. The condition retrieves the protocol whose title names it (else the best-matching
   document with treatment sections).
2. Every bullet of its treatment sections is an option, in the protocol's order (first
   line first); the protocol's cautions that name the same drug or class go with it.
3. Each drug is checked against the patient's allergies, current medicines, renal function
   and conditions (:mod:`ehrqa.meds.safety`); warnings cite the records behind them, and a
   drug the patient already takes says so.
4. The latest results the protocol relies on (eGFR, HbA1c, potassium…) are listed.

Nothing is dropped for being unsafe: the clinician sees the option and why it is not
suitable for this patient.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ehrqa.cds.base import Advice, AdviceItem, Source, Statement
from ehrqa.cds.match import content_words, covers
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
from ehrqa.llm.base import ChatModel
from ehrqa.meds.context import PatientContext, results_named
from ehrqa.text.units import show_value

if TYPE_CHECKING:
    from ehrqa.meds.safety import Drug, SafetyWarning

MAX_LEAD_WORDS = 8  # a longer text before a colon is a sentence, not a drug or class name
LEAD_RE = re.compile(r"^\*\*([^*]+)\*\*")
TREATMENT_WORDS = ("treatment", "management", "line", "therapy", "option", "step", "prevention")
NOT_OPTIONS = ("monitoring", "assessment", "diagnosis", "test", "referral")
# Ages (inclusive) at which a woman's pregnancy status matters before a drug harmful in
# pregnancy: a prompt to check, not an exclusion.
FERTILE_AGES = (12, 55)
_SEVERITY_ORDER = ("CRITICAL", "WARNING", "INFO")
CAUTION_WORDS = ("caution", "contraindication", "interaction", "avoid", "safety")
INSTRUCTION = (
    "Summarise the treatment options for this patient in the protocol's order. Keep every "
    "warning about allergies, interactions and kidney function."
)


def treat(
    library: Library,
    context: PatientContext,
    condition: str,
    *,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
) -> Advice:
    """Cited treatment options for ``condition`` from the local protocol, with warnings."""
    if not content_words(condition):
        raise ConfigError('no condition given: name one, e.g. --condition "type 2 diabetes"')
    started = time.perf_counter()
    hits = library.search(f"{condition} treatment", k=10)
    protocol = _protocol_blocks(library, condition, [h.chunk.doc_id for h in hits])
    options = [(b, bullet) for b in protocol if _is_treatment(b) for bullet in b.bullets]
    if not options:
        return _abstain(condition, context)
    cautions = [(b, bullet) for b in protocol if b.under(*CAUTION_WORDS) for bullet in b.bullets]
    items = [_option(b, bullet, cautions, context) for b, bullet in options]
    items.insert(0, _patient_item(condition, context, protocol))
    chunks = {f"doc:{b.chunk.id}": chunk_source(b.chunk) for b in protocol}
    advice = _advice(condition, context, [i for i in items if i.all_statements()], chunks)
    advice.timings["retrieve"] = time.perf_counter() - started
    critical = [i.title for i in items if any(w.text.startswith("CRITICAL") for w in i.warnings)]
    return narrate(advice, model, mode=mode, instruction=INSTRUCTION, required=critical)


def _protocol_blocks(library: Library, condition: str, doc_ids: list[str]) -> list[Block]:
    """The blocks of the protocol for ``condition``: titled for it first, else best match."""
    wanted = content_words(condition)
    docs = list(dict.fromkeys(doc_ids))
    documents = {d.id: d for d in library.documents()}
    titled = [d for d in docs if d in documents and wanted & content_words(documents[d].title)]
    for doc_id in titled + docs:
        found = [b for c in document_chunks(library, doc_id) for b in blocks(c)]
        # A document not titled for the condition must at least name it.
        named = doc_id in titled or wanted <= content_words(" ".join(b.chunk.text for b in found))
        if named and any(_is_treatment(b) for b in found):
            return found
    return []


def _is_treatment(block: Block) -> bool:
    """A block of the protocol's treatment section (its top heading says so), other than
    its cautions and monitoring."""
    top = block.path[0].lower() if block.path else ""
    return any(w in top for w in TREATMENT_WORDS) and not block.under(*CAUTION_WORDS, *NOT_OPTIONS)


def _option(
    block: Block, bullet: str, cautions: list[tuple[Block, str]], ctx: PatientContext
) -> AdviceItem:
    from ehrqa.meds.safety import check_medication, drugs_of, find_drugs

    cite = [f"doc:{block.chunk.id}"]
    lead = LEAD_RE.match(bullet)  # protocols name the option's drug first, in bold
    drugs = find_drugs(lead.group(1) if lead else bullet)
    names = ", ".join(d.name for d in drugs)
    title = f"{block.heading}: {names}" if names else block.heading
    item = AdviceItem("treatment", title, statements=[Statement(bullet.replace("**", ""), cite)])
    passed: list[Statement] = []
    for drug in drugs:
        for c_block, caution in cautions:
            if any(covers(_subject(caution), name) for name in (drug.name, *drug.classes)):
                text = f"Caution: {caution.replace('**', '')}"
                if text not in [s.text for s in item.statements]:
                    item.statements.append(Statement(text, [f"doc:{c_block.chunk.id}"]))
        for record in ctx.medications:
            if any(d.name == drug.name for d in drugs_of(record)):
                day = f" since {record.day}" if record.day else ""
                text = f"Already prescribed: {record.display}{day}"
                item.statements.append(Statement(text, [record.ref]))
        warnings = check_medication(drug, ctx)
        for warning in warnings:
            text = f"{warning.severity.upper()}: {warning.message} {warning.basis}".strip()
            item.warnings.append(Statement(text, list(warning.refs)))
        passed += checks_passed(drug, ctx, warnings)
    # Problems first (for every drug of the option), then what was checked and found clear.
    item.warnings.sort(key=lambda w: _SEVERITY_ORDER.index(w.text.split(":", 1)[0]))
    item.warnings += list({s.text: s for s in passed}.values())
    return item


def checks_passed(
    drug: Drug, ctx: PatientContext, warnings: list[SafetyWarning]
) -> list[Statement]:
    """What was checked for ``drug`` and found no problem, each citing what it rests on, so
    the reader sees that allergies, interactions, kidney function and pregnancy were
    looked at (and what could not be checked), not only the problems found."""
    from ehrqa.meds.drugs import CONDITION_RULES
    from ehrqa.meds.safety import latest_egfr, matches

    kinds = {w.kind for w in warnings}
    patient = [ctx.patient.ref] if ctx.patient is not None else []
    found: list[Statement] = []
    if "allergy" not in kinds:
        if ctx.allergies:
            text = f"Allergies checked: no recorded allergy concerns {drug.name}"
            found.append(Statement(text, [a.ref for a in ctx.allergies]))
        else:
            found.append(Statement("Allergies checked: no allergy recorded", patient))
    if not kinds & {"interaction", "duplicate"}:
        if ctx.medications:
            text = f"Interactions checked: none known between {drug.name} and the current medicines"
            found.append(Statement(text, [m.ref for m in ctx.medications]))
        else:
            found.append(Statement("Interactions checked: no current medicine recorded", patient))
    egfr = latest_egfr(ctx)
    if egfr is None or egfr.value is None:
        text = "Kidney function not checked: no eGFR result in the last 2 years"
        found.append(Statement(text, patient))
    elif "renal" not in kinds:
        shown = show_value(egfr.value, egfr.unit)
        text = (
            f"Kidney function checked: eGFR {shown} on {egfr.day} needs no change for {drug.name}"
        )
        found.append(Statement(text, [egfr.ref]))
    risky = [r for r in CONDITION_RULES if "pregnan" in r[1] and matches(drug, r[0])]
    pregnant = any("pregnan" in w.message.lower() for w in warnings)
    could_be = (
        ctx.gender == "female"
        and ctx.age is not None
        and FERTILE_AGES[0] <= ctx.age <= FERTILE_AGES[1]
    )
    if risky and not pregnant and could_be:
        text = f"Pregnancy: no pregnancy recorded, but {drug.name} {risky[0][3]}: check first"
        found.append(Statement(text, patient))
    return found


def _subject(caution: str) -> str:
    """What a caution is about: its lead before the colon ("**Nitrofurantoin**: avoid …"),
    else all of it. The rest may name other drugs ("… when other antibiotics fail")."""
    lead, colon, _ = caution.replace("**", "").partition(":")
    return lead if colon and len(lead.split()) <= MAX_LEAD_WORDS else caution


def _patient_item(condition: str, ctx: PatientContext, protocol: list[Block]) -> AdviceItem:
    """The condition as recorded and the latest results the protocol mentions."""
    item = AdviceItem("summary", "This patient's condition and latest results")
    for record in ctx.conditions:
        if covers(record.display, condition) or covers(condition, record.display.split("(")[0]):
            since = f" since {record.day}" if record.day else ""
            item.statements.append(Statement(f"{record.display} recorded{since}", [record.ref]))
    for result in results_named(ctx, " ".join(b.chunk.text for b in protocol)):
        item.statements.append(
            Statement(f"Latest result: {result_phrase(result, ctx.gender, ctx.age)}", [result.ref])
        )
    return item


def _advice(
    condition: str, ctx: PatientContext, items: list[AdviceItem], chunks: dict[str, Source]
) -> Advice:
    records = {r.ref: r for r in [*ctx.records(), *([ctx.patient] if ctx.patient else [])]}
    advice = Advice("treat", condition, "", items, {}, "extractive", patient_id=ctx.patient_id)
    for ref in advice.citations():
        if ref in records:
            advice.sources[ref] = record_source(records[ref])
        elif ref in chunks:
            advice.sources[ref] = chunks[ref]
    advice.text = render_treatment(advice)
    return advice


def _abstain(condition: str, ctx: PatientContext) -> Advice:
    return Advice(
        "treat",
        condition,
        f"The documents hold no treatment protocol for {condition}.",
        [],
        {},
        "abstain",
        patient_id=ctx.patient_id,
        abstain_reason="no document with treatment sections matches the condition",
    )


def render_treatment(advice: Advice) -> str:
    """The options as text: one paragraph each, the protocol's words, then the safety
    checks for this patient under their heading; all cited."""
    lines = [f"Treatment options for {advice.query}:"]
    for n, item in enumerate(advice.items):
        prefix = f"{n}. {item.title}" if item.kind == "treatment" else item.title
        body = " ".join(s.render() for s in item.statements)
        if item.warnings:
            checks = " ".join(s.render() for s in item.warnings)
            body += f" {item.headings['warnings']}: {checks}"
        lines.append(f"{prefix}: {body.strip()}")
    return "\n".join(lines)
