"""Evaluation: metrics (pure functions over lists), answer normalisation, offline WordNet."""
