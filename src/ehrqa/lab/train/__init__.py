"""Training data and fine-tuning for ehrqa's models.

- :mod:`ehrqa.lab.train.data` turns a gold-labelled QA dataset and a record store into Task 1
  relevance pairs (with hard negatives from the default selector) and Task 2 answer
  examples in the answerer's prompt format.
- :mod:`ehrqa.lab.train.reranker` fine-tunes a MiniLM cross-encoder on the Task 1 pairs with
  sentence-transformers' ``CrossEncoderTrainer``; the ``rerank`` selector
  (:mod:`ehrqa.select.rerank`) serves it.
- :mod:`ehrqa.lab.train.lora` LoRA-tunes the chat model with trl's ``SFTTrainer``.

Every trained folder's ``ehrqa_config.json`` is a typed dataclass of the product
(:mod:`ehrqa.llm.trained`), written here and read back by the loaders.

Heavy imports (torch, sentence-transformers) happen inside the functions that need them.
"""
