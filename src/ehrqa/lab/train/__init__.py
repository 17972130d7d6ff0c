"""Training data and fine-tuning for ehrqa's models.

- :mod:`ehrqa.lab.train.data` turns a gold-labelled QA dataset and a record store into Task 1
  relevance pairs (with hard negatives from the default selector) and Task 2 answer
  examples in the answerer's prompt format.
- :mod:`ehrqa.lab.train.reranker` fine-tunes a MiniLM cross-encoder on the Task 1 pairs; the
  ``rerank`` selector (:mod:`ehrqa.select.rerank`) serves it.

Heavy imports (torch, sentence-transformers) happen inside the functions that need them.
"""
