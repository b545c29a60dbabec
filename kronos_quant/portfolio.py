"""Portfolio construction: wide scores -> wide target weights.

Owns the named constructors (an explicit registry, ``PORTFOLIOS``; their parameter schemas live in
``kronos_quant.registry`` so configs are checked at load time): top-k equal weight, top-k with
dropout (qlib's TopkDropout), long-short by quantile and a long/flat/short threshold rule.

Conventions shared by every constructor:
- input ``scores`` (T, N): index = rebalance (as-of) dates, columns = instruments, NaN = no score;
- output weights (T, N), same index and columns: the fraction of portfolio value to hold in
  each instrument after rebalancing at that date (negative = short). Instruments not selected
  get 0.0. A row whose scores are all NaN becomes an all-NaN row: "do not rebalance, keep what
  is held". A NaN cell in an otherwise valid row means "leave this instrument as it is";
- ``cash_buffer`` (fraction in [0, 1)) is kept in cash: weights sum in absolute value to at
  most ``1 - cash_buffer``; ``max_weight`` caps each |weight| and the excess stays in cash
  (it is not redistributed).
Knows nothing about prices, execution, costs or the forecast table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.registry import check_params

__all__ = [
    "PORTFOLIOS",
    "topk_equal_weight",
    "topk_dropout",
    "long_short_quantile",
    "threshold_weights",
    "build_weights",
    "every_nth_rebalance",
]

logger = logging.getLogger(__name__)


def _check_common(scores: pd.DataFrame, max_weight: float, cash_buffer: float) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"`scores` must be a wide pandas DataFrame (dates x instruments), got {type(scores).__name__}")
    if not 0.0 < max_weight <= 1.0:
        raise ValueError(f"max_weight must lie in (0, 1], got {max_weight}")
    if not 0.0 <= cash_buffer < 1.0:
        raise ValueError(f"cash_buffer must lie in [0, 1), got {cash_buffer}")


def _warn_if_k_exceeds(scores: pd.DataFrame, k: int) -> None:
    """Warn once when k is more than the instruments that ever get a score (the rest stays in cash)."""
    eligible = int(np.isfinite(scores.to_numpy(dtype=np.float64)).any(axis=0).sum())
    if k > eligible:
        logger.warning("portfolio k=%d but only %d instrument(s) were eligible (had a score); each holding gets "
                       "1/k and the rest stays in cash: lower k or widen the universe", k, eligible)


def _finish(weights: np.ndarray, scores: pd.DataFrame, max_weight: float) -> pd.DataFrame:
    """Cap |w| at max_weight, blank all-NaN score rows, wrap as a frame like ``scores``."""
    capped = np.clip(weights, -max_weight, max_weight)
    empty = scores.isna().all(axis=1).to_numpy()
    capped[empty, :] = np.nan
    return pd.DataFrame(capped, index=scores.index, columns=scores.columns)


def topk_equal_weight(scores: pd.DataFrame, *, k: int, max_weight: float = 1.0, cash_buffer: float = 0.0) -> pd.DataFrame:
    """Hold the k best-scored instruments at (1 - cash_buffer) / k each, re-selected at every row.

    With fewer than k scored instruments, each selected one still gets (1 - cash_buffer) / k and the
    rest stays in cash. Ties are broken by column order.
    """
    _check_common(scores, max_weight, cash_buffer)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _warn_if_k_exceeds(scores, k)
    values = scores.to_numpy(dtype=np.float64)  # (T, N)
    weights = np.zeros_like(values)
    per_name = (1.0 - cash_buffer) / k
    for t, row in enumerate(values):
        valid = np.flatnonzero(np.isfinite(row))
        best = valid[np.argsort(-row[valid], kind="stable")[:k]]
        weights[t, best] = per_name
    return _finish(weights, scores, max_weight)


def topk_dropout(
    scores: pd.DataFrame,
    *,
    k: int,
    n_drop: int,
    min_hold: int = 1,
    max_weight: float = 1.0,
    cash_buffer: float = 0.0,
) -> pd.DataFrame:
    """qlib TopkDropout: hold k names, replace at most ``n_drop`` of them per rebalance.

    At each row: the held names and the best (n_drop + k - n_held) unheld names are ranked
    together by score; held names among the worst n_drop of that combined list are sold (a held
    name with a NaN score ranks last) unless held for fewer than ``min_hold`` rebalances (1 = no
    restriction); as many of the best unheld names are bought as keep the book at k. Every held
    name weighs (1 - cash_buffer) / k. All-NaN rows keep the book unchanged (NaN output row).
    """
    _check_common(scores, max_weight, cash_buffer)
    if k < 1 or n_drop < 0 or min_hold < 1:
        raise ValueError(f"need k >= 1, n_drop >= 0, min_hold >= 1; got k={k}, n_drop={n_drop}, min_hold={min_hold}")
    _warn_if_k_exceeds(scores, k)
    values = scores.to_numpy(dtype=np.float64)  # (T, N)
    weights = np.zeros_like(values)
    held: dict[int, int] = {}  # column -> rebalances held so far
    per_name = (1.0 - cash_buffer) / k
    for t, row in enumerate(values):
        if not np.isfinite(row).any():
            continue
        ranked = np.where(np.isfinite(row), row, -np.inf)
        order = np.argsort(-ranked, kind="stable")  # best first
        last = [c for c in order if c in held]  # held names, best first
        n_new = n_drop + k - len(last)
        today = [c for c in order if c not in held and np.isfinite(row[c])][: max(n_new, 0)]
        comb = sorted(last + today, key=lambda c: -ranked[c])  # stable: ties keep column order
        worst = set(comb[len(comb) - n_drop:]) if n_drop > 0 else set()
        sell = [c for c in last if c in worst and held[c] >= min_hold]
        n_buy = len(sell) + k - len(last)
        buy = today[: max(n_buy, 0)]
        for c in sell:
            del held[c]
        for c in held:
            held[c] += 1
        for c in buy:
            held[c] = 1
        weights[t, list(held)] = per_name
    return _finish(weights, scores, max_weight)


def long_short_quantile(
    scores: pd.DataFrame, *, quantile: float = 0.2, max_weight: float = 1.0, cash_buffer: float = 0.0
) -> pd.DataFrame:
    """Long the top ``quantile`` of scored names, short the bottom one, equal weight per leg.

    Each leg holds n = max(1, floor(n_scored * quantile)) names (at most n_scored // 2) and sums to
    (1 - cash_buffer) / 2 in absolute value (gross exposure 1 - cash_buffer, dollar neutral). Rows
    with fewer than 2 scored names are all zero.
    """
    _check_common(scores, max_weight, cash_buffer)
    if not 0.0 < quantile <= 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5], got {quantile}")
    values = scores.to_numpy(dtype=np.float64)  # (T, N)
    weights = np.zeros_like(values)
    for t, row in enumerate(values):
        valid = np.flatnonzero(np.isfinite(row))
        if valid.size < 2:
            continue
        n_leg = min(max(1, int(np.floor(valid.size * quantile))), valid.size // 2)
        order = valid[np.argsort(-row[valid], kind="stable")]
        leg = (1.0 - cash_buffer) / 2.0 / n_leg
        weights[t, order[:n_leg]] = leg
        weights[t, order[-n_leg:]] = -leg
    return _finish(weights, scores, max_weight)


def threshold_weights(
    scores: pd.DataFrame,
    *,
    long_above: float = 0.0,
    short_below: float | None = None,
    max_weight: float = 1.0,
    cash_buffer: float = 0.0,
) -> pd.DataFrame:
    """Long/flat/short per instrument: +w if score > long_above, -w if score < short_below, else 0.

    w = (1 - cash_buffer) / N for N columns (one instrument: the whole book). ``short_below=None``
    never shorts. A NaN score gives a NaN weight (keep the position).
    """
    _check_common(scores, max_weight, cash_buffer)
    if short_below is not None and short_below > long_above:
        raise ValueError(f"short_below ({short_below}) must not exceed long_above ({long_above})")
    values = scores.to_numpy(dtype=np.float64)  # (T, N)
    w = (1.0 - cash_buffer) / max(values.shape[1], 1)
    weights = np.where(values > long_above, w, 0.0)
    if short_below is not None:
        weights = np.where(values < short_below, -w, weights)
    weights = np.where(np.isfinite(values), weights, np.nan)
    return _finish(weights, scores, max_weight)


def every_nth_rebalance(weights: pd.DataFrame, *, every: int) -> pd.DataFrame:
    """Keep every ``every``-th row of a weight (or score) frame, starting with the first."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    return weights.iloc[::every]


PORTFOLIOS: dict[str, Callable[..., pd.DataFrame]] = {
    "topk": topk_equal_weight,
    "topk_dropout": topk_dropout,
    "long_short": long_short_quantile,
    "threshold": threshold_weights,
}


def build_weights(name: str, scores: pd.DataFrame, *, max_weight: float = 1.0, cash_buffer: float = 0.0,
                  **params: Any) -> pd.DataFrame:
    """Target weights from the registered constructor ``name`` (see ``PORTFOLIOS``).

    ``params`` are the constructor's own options (checked by ``kronos_quant.registry``: ConfigError,
    a ValueError, for an unknown name or a bad parameter); max_weight and cash_buffer as above.
    """
    params = check_params("portfolio", name, params)
    weights = PORTFOLIOS[name](scores, max_weight=max_weight, cash_buffer=cash_buffer, **params)
    logger.debug("portfolio %s: %d rebalances x %d instruments", name, *weights.shape)
    return weights
