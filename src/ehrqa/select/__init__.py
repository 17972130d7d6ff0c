"""Task 1: selecting the resources that answer a question."""

from ehrqa.select.base import SELECTORS, Selected, Selection, Selector, get_selector
from ehrqa.select.baselines import register_baselines

# The benchmark's baselines sit beside the default strategy in one registry (lazy entries).
register_baselines(SELECTORS)

__all__ = ["SELECTORS", "Selected", "Selection", "Selector", "get_selector"]
