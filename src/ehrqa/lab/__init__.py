"""The lab: data (generators, gold), train (reranker, LoRA), eval (metrics, runner, reports).

Nothing in the product imports it.
"""
