"""Clinical decision support: advice grounded in the hospital's documents and the record.

Every advice task returns an :class:`~ehrqa.cds.base.Advice`: statements that each cite
document chunks (``[doc:ID#N]``) and patient resources (``[Type/id]``), the sources behind
the citations, a decision-support notice, and an abstention when the sources do not support
an answer.
"""

from ehrqa.cds.base import NOTICE, Advice, AdviceItem, Source, Statement
from ehrqa.meds.context import PatientContext, context_from_records, context_from_store

__all__ = [
    "NOTICE",
    "Advice",
    "AdviceItem",
    "PatientContext",
    "Source",
    "Statement",
    "context_from_records",
    "context_from_store",
]
