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
  (it is not redistributed);
- ties: ``tiebreak`` (T, N), the untransformed score (a winsorized or ranked score ties where
  the raw one does not), orders names with equal scores. Column order never decides a holding:
  names still tied on both at the edge of a top-k or a leg share its remaining slots equally
  (topk_dropout, which holds whole names, warns instead and keeps column order).
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


def _tiebreak(scores: pd.DataFrame, tiebreak: pd.DataFrame | None) -> np.ndarray:
    """(T, N) secondary sort key aligned with ``scores``; NaN where absent."""
    if tiebreak is None:
        return np.full(scores.shape, np.nan)
    if not isinstance(tiebreak, pd.DataFrame):
        raise ValueError(f"`tiebreak` must be a wide DataFrame like `scores`, got {type(tiebreak).__name__}")
    return tiebreak.reindex(index=scores.index, columns=scores.columns).to_numpy(dtype=np.float64)


def _ranked(row: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Columns with a finite score, best first: by score, then by ``tie`` (NaN ranks below any value)."""
    valid = np.flatnonzero(np.isfinite(row))
    second = np.where(np.isfinite(tie[valid]), tie[valid], -np.inf)
    return valid[np.lexsort((-second, -row[valid]))]


def _top_slots(row: np.ndarray, tie: np.ndarray, k: int) -> np.ndarray:
    """(N,) share of a slot per column for the k best (1 = a whole slot): names tied on (score, tie)
    with the k-th best share the slots left after the strictly better ones."""
    out = np.zeros(row.shape)
    order = _ranked(row, tie)
    if order.size <= k:
        out[order] = 1.0
        return out
    second = np.where(np.isfinite(tie), tie, -np.inf)
    kth = order[k - 1]
    same = (row[order] == row[kth]) & (second[order] == second[kth])
    better = order[:k][~same[:k]]
    group = order[same]
    out[better] = 1.0
    out[group] = (k - better.size) / group.size
    return out


def _finish(weights: np.ndarray, scores: pd.DataFrame, max_weight: float) -> pd.DataFrame:
    """Cap |w| at max_weight, blank all-NaN score rows, wrap as a frame like ``scores``."""
    capped = np.clip(weights, -max_weight, max_weight)
    empty = scores.isna().all(axis=1).to_numpy()
    capped[empty, :] = np.nan
    return pd.DataFrame(capped, index=scores.index, columns=scores.columns)


def topk_equal_weight(scores: pd.DataFrame, *, k: int, max_weight: float = 1.0, cash_buffer: float = 0.0,
                      tiebreak: pd.DataFrame | None = None) -> pd.DataFrame:
    """Hold the k best-scored instruments at (1 - cash_buffer) / k each, re-selected at every row.

    With fewer than k scored instruments, each selected one still gets (1 - cash_buffer) / k and the
    rest stays in cash. Ties are broken by ``tiebreak``, then shared (module docstring).
    """
    _check_common(scores, max_weight, cash_buffer)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    _warn_if_k_exceeds(scores, k)
    values, ties = scores.to_numpy(dtype=np.float64), _tiebreak(scores, tiebreak)  # (T, N)
    weights = np.zeros_like(values)
    per_name = (1.0 - cash_buffer) / k
    for t, row in enumerate(values):
        weights[t] = _top_slots(row, ties[t], k) * per_name
    return _finish(weights, scores, max_weight)


def topk_dropout(
    scores: pd.DataFrame,
    *,
    k: int,
    n_drop: int,
    min_hold: int = 1,
    max_weight: float = 1.0,
    cash_buffer: float = 0.0,
    tiebreak: pd.DataFrame | None = None,
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
    values, ties = scores.to_numpy(dtype=np.float64), _tiebreak(scores, tiebreak)  # (T, N)
    weights = np.zeros_like(values)
    held: dict[int, int] = {}  # column -> rebalances held so far
    per_name = (1.0 - cash_buffer) / k
    for t, row in enumerate(values):
        if not np.isfinite(row).any():
            continue
        scored = _ranked(row, ties[t])
        order = [*scored, *np.flatnonzero(~np.isfinite(row))]  # best first, unscored last
        position = {c: i for i, c in enumerate(order)}
        if scored.size > k and _tied_at(row, ties[t], scored, k):
            logger.warning("topk_dropout: names tie on score and tiebreak at rank %d on row %s; column order "
                           "decides between them", k, scores.index[t])
        last = [c for c in order if c in held]  # held names, best first
        n_new = n_drop + k - len(last)
        today = [c for c in order if c not in held and np.isfinite(row[c])][: max(n_new, 0)]
        comb = sorted(last + today, key=lambda c: position[c])
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


def _tied_at(row: np.ndarray, tie: np.ndarray, order: np.ndarray, k: int) -> bool:
    """Whether the k-th and (k+1)-th best of ``order`` tie on both score and tiebreak."""
    a, b = order[k - 1], order[k]
    same_tie = tie[a] == tie[b] or not (np.isfinite(tie[a]) or np.isfinite(tie[b]))
    return bool(row[a] == row[b] and same_tie)


def long_short_quantile(
    scores: pd.DataFrame, *, quantile: float = 0.2, max_weight: float = 1.0, cash_buffer: float = 0.0,
    tiebreak: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long the top ``quantile`` of scored names, short the bottom one, equal weight per leg.

    Each leg holds n = max(1, floor(n_scored * quantile)) names (at most n_scored // 2) and sums to
    (1 - cash_buffer) / 2 in absolute value (gross exposure 1 - cash_buffer, dollar neutral). Rows
    with fewer than 2 scored names are all zero.
    """
    _check_common(scores, max_weight, cash_buffer)
    if not 0.0 < quantile <= 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5], got {quantile}")
    values, ties = scores.to_numpy(dtype=np.float64), _tiebreak(scores, tiebreak)  # (T, N)
    weights = np.zeros_like(values)
    for t, row in enumerate(values):
        n_valid = int(np.isfinite(row).sum())
        if n_valid < 2:
            continue
        n_leg = min(max(1, int(np.floor(n_valid * quantile))), n_valid // 2)
        leg = (1.0 - cash_buffer) / 2.0 / n_leg
        weights[t] = (_top_slots(row, ties[t], n_leg) - _top_slots(-row, -ties[t], n_leg)) * leg
    return _finish(weights, scores, max_weight)


def threshold_weights(
    scores: pd.DataFrame,
    *,
    long_above: float = 0.0,
    short_below: float | None = None,
    max_weight: float = 1.0,
    cash_buffer: float = 0.0,
    tiebreak: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long/flat/short per instrument: +w if score > long_above, -w if score < short_below, else 0.

    w = (1 - cash_buffer) / N for N columns (one instrument: the whole book). ``short_below=None``
    never shorts. A NaN score gives a NaN weight (keep the position). ``tiebreak`` is accepted for a
    common interface and unused: nothing is ranked.
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
                  tiebreak: pd.DataFrame | None = None, **params: Any) -> pd.DataFrame:
    """Target weights from the registered constructor ``name`` (see ``PORTFOLIOS``).

    ``params`` are the constructor's own options (checked by ``kronos_quant.registry``: ConfigError,
    a ValueError, for an unknown name or a bad parameter); max_weight, cash_buffer and tiebreak
    (pass the untransformed scores) as above.
    """
    params = check_params("portfolio", name, params)
    weights = PORTFOLIOS[name](scores, max_weight=max_weight, cash_buffer=cash_buffer, tiebreak=tiebreak, **params)
    logger.debug("portfolio %s: %d rebalances x %d instruments", name, *weights.shape)
    return weights
