"""Bootstrap confidence intervals over questions, alone and paired (one implementation).

A corpus number is a *pool* of per-question values: a mean of scores, micro-F1 of summed
counts, corpus BLEU of summed n-gram statistics, a percentile of latencies. The bootstrap
draws ``resamples`` samples of the questions with replacement, pools each, and reports the
2.5th and 97.5th percentiles of the pooled values (the percentile method, 95% by default).

Draws are seeded and made with :class:`random.Random`, so a seed gives the same intervals
on every machine. The same draws serve every metric and every system of a run, which makes
a comparison *paired*: each draw pools both systems over the same questions, and the
interval of the differences says whether a margin is larger than the questions' noise. A
difference whose interval contains 0 is a **tie**; only otherwise is it "better" or "worse".
Draws whose pool is undefined (NaN: e.g. precision over draws that selected nothing) are
left out of the percentiles.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95

Pool = Callable[[Sequence[Any]], float]


@dataclass(frozen=True)
class Interval:
    """A pooled value and its bootstrap interval (``low``/``high`` NaN when undefined)."""

    value: float
    low: float
    high: float

    def to_list(self) -> list[float]:
        """``[low, high]``, the form reports store."""
        return [self.low, self.high]


@dataclass(frozen=True)
class Difference:
    """B minus A, its paired-bootstrap interval and what it means."""

    a: float
    b: float
    delta: float
    low: float
    high: float
    verdict: str  # "tie" | "better" | "worse" (B against A) | "undefined"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "low": self.low,
            "high": self.high,
            "verdict": self.verdict,
        }


@functools.lru_cache(maxsize=32)
def resample_indices(
    n: int, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[tuple[int, ...], ...]:
    """``resamples`` draws of ``n`` question indices with replacement, seeded (cached)."""
    if n < 1 or resamples < 1:
        raise ValueError(
            f"need at least one question and one draw, got n={n}, resamples={resamples}"
        )
    rng = random.Random(seed)
    return tuple(tuple(rng.randrange(n) for _ in range(n)) for _ in range(resamples))


def _percentiles(draws: list[float], level: float) -> tuple[float, float]:
    """The two-sided percentile interval of the defined draws (NaN when none is)."""
    kept = sorted(d for d in draws if not math.isnan(d))
    if not kept:
        return math.nan, math.nan
    tail = (1 - level) / 2
    # Same order statistics as the natural benchmark's summary has always used.
    low = kept[int(tail * len(kept))]
    high = kept[max(0, min(len(kept) - 1, int((1 - tail) * len(kept)) - 1))]
    return low, high


def bootstrap_intervals(
    values: Sequence[Any],
    pool: Callable[[Sequence[Any]], dict[str, float]],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Interval]:
    """Intervals of several numbers pooled at once from the same values (one pool per draw:
    micro precision, recall and F1 come from one sum of counts)."""
    values_at = pool(values)
    if not values:
        return {key: Interval(v, math.nan, math.nan) for key, v in values_at.items()}
    draws = [
        pool([values[i] for i in row]) for row in resample_indices(len(values), resamples, seed)
    ]
    return {
        key: Interval(value, *_percentiles([d[key] for d in draws], level))
        for key, value in values_at.items()
    }


def bootstrap_interval(
    values: Sequence[Any],
    pool: Pool,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Interval:
    """``pool(values)`` with its bootstrap interval, resampling the per-question ``values``."""
    found = bootstrap_intervals(
        values, lambda vs: {"": pool(vs)}, resamples=resamples, seed=seed, level=level
    )
    return found[""]


def verdict(low: float, high: float, *, higher_is_better: bool) -> str:
    """ "tie" when the interval holds 0, else whether B is better or worse than A."""
    if math.isnan(low) or math.isnan(high):
        return "undefined"
    if low <= 0 <= high:
        return "tie"
    return "better" if (low > 0) == higher_is_better else "worse"


def paired_differences(
    a: Sequence[Any],
    b: Sequence[Any],
    pool: Callable[[Sequence[Any]], dict[str, float]],
    higher_is_better: dict[str, bool],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Difference]:
    """``pool(b) - pool(a)`` for each number the pool gives, with paired-bootstrap intervals.

    ``a`` and ``b`` are per-question values of two systems, aligned question by question;
    every draw pools both over the same questions.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values must be aligned, got {len(a)} and {len(b)}")
    at_a, at_b = pool(a), pool(b)
    if not a:
        return {
            k: Difference(at_a[k], at_b[k], math.nan, math.nan, math.nan, "undefined") for k in at_a
        }
    draws = []
    for row in resample_indices(len(a), resamples, seed):
        pa, pb = pool([a[i] for i in row]), pool([b[i] for i in row])
        draws.append({k: pb[k] - pa[k] for k in at_a})
    out = {}
    for key in at_a:
        low, high = _percentiles([d[key] for d in draws], level)
        out[key] = Difference(
            at_a[key],
            at_b[key],
            at_b[key] - at_a[key],
            low,
            high,
            verdict(low, high, higher_is_better=higher_is_better[key]),
        )
    return out


def paired_difference(
    a: Sequence[Any],
    b: Sequence[Any],
    pool: Pool,
    *,
    higher_is_better: bool,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Difference:
    """``pool(b) - pool(a)`` over the same questions, with its paired-bootstrap interval.

    ``a`` and ``b`` are per-question values of two systems, aligned question by question.
    """
    found = paired_differences(
        a,
        b,
        lambda vs: {"": pool(vs)},
        {"": higher_is_better},
        resamples=resamples,
        seed=seed,
        level=level,
    )
    return found[""]
