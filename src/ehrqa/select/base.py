"""The selector protocol and registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, cast

from ehrqa.core.registry import Registry
from ehrqa.fhir.record import Record
from ehrqa.select.query import QueryPlan, asks_yes_no
from ehrqa.store.base import RecordStore

if TYPE_CHECKING:
    from ehrqa.core.config import EhrqaConfig


@dataclass(frozen=True)
class Selected:
    """One selected resource with its score in [0, 1] and why it was chosen."""

    record: Record
    score: float
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: reference, rounded score and reasons."""
        return {
            "ref": self.record.ref,
            "score": round(self.score, 4),
            "reasons": list(self.reasons),
        }


# Reasons that say only which kind of record an item is, or how a list was cut: never that
# it is about the question's words.
_KIND_REASONS = ("type ", "reranker", "status ", "category ", "newest match")


def by_kind_only(item: Selected) -> bool:
    """Whether only its kind of record brought the item in (no concept, word or meaning)."""
    return all(r.startswith(_KIND_REASONS) for r in item.reasons)


@dataclass
class Selection:
    """The outcome of Task 1 for one question."""

    plan: QueryPlan
    items: list[Selected]
    candidates: int = 0
    # Set when nothing was selected: what the record lacks, in words for the user.
    empty_reason: str | None = None
    # True when an empty selection answers the question ("No", "none recorded") rather
    # than leaving it open ("the record does not contain this information").
    negative: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    # A question of several parts ("Do I have diabetes and how well is it controlled?"):
    # one selection per part, each answered in turn; ``items`` is their union.
    facets: list[Selection] = field(default_factory=list)
    # Records shown near an answer that found nothing ("I could not match 'apgar'; the
    # observations on record: …"): cited for the reader, never selected as relevant.
    nearby: list[Selected] = field(default_factory=list)

    @property
    def refs(self) -> list[str]:
        """References of the selected resources, best first."""
        return [item.record.ref for item in self.items]


class Selector(Protocol):
    """Chooses the resources of one patient that answer a question."""

    name: str

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Return the selected resources, best first."""
        ...


SELECTORS: Registry[type[Selector]] = Registry("selector", "ehrqa.selectors")
SELECTORS.register(
    "default",
    "ehrqa.select.default:DefaultSelector",
    "question understanding + structured and lexical retrieval + intent-aware cut-off",
)

SELECTORS.register(
    "auto",
    "ehrqa.select.rerank:AutoSelector",
    "rerank when a reranker is available (trained, packaged or $EHRQA_RERANKER), else default",
)

SELECTORS.register(
    "rerank",
    "ehrqa.select.rerank:RerankSelector",
    "default candidates re-scored by a fine-tuned MiniLM cross-encoder (needs a trained model)",
)


def get_selector(name: str = "default", config: EhrqaConfig | None = None) -> Selector:
    """Instantiate a selector by registry name, from ``config`` when it has ``from_config``
    (so ``ehrqa --home D`` selects with the reranker trained in ``D``)."""
    factory = SELECTORS.get(name)
    from_config = getattr(factory, "from_config", None)
    if config is not None and from_config is not None:
        return cast("Selector", from_config(config))
    return factory()


def kind_listing(selection: Selection, *, yes_no: bool = True) -> bool:
    """Whether ``selection`` (for a yes/no question, unless ``yes_no`` is False) is records of
    the asked kind brought in by kind alone, because the question's other words matched
    nothing ("has he ever had a heart problem?" over a record with no heart condition): the
    answer says so and shows them ("I could not match 'heart'; the conditions on record:
    …"), never a "Yes", and the reranker may not trim that list."""
    plan = selection.plan
    return (
        (not yes_no or asks_yes_no(plan.question))
        and bool(plan.keywords)
        and not plan.concepts
        and bool(selection.items)
        and all(map(by_kind_only, selection.items))
    )
