"""Signal-quality metrics on wide frames (index = dates, columns = instruments).

Owns cross-sectional information coefficients, quantile (bucket) returns, turnover and rank
autocorrelation. ``scores`` at date t must only use information available at t and
``forward_returns`` at t is the return realised *after* t; aligning them is the caller's job.
Knows nothing about how scores are made, about trading costs, files or plots.

Conventions shared by every function here:
- the two frames are inner-aligned on dates and instruments;
- NaNs are ignored pairwise (an instrument counts on a date only when both values are finite);
- dates with fewer than ``min_obs`` valid pairs are dropped from the result, so the result may be
  shorter than the input; dates where one side is constant keep a NaN (the IC is undefined).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd

from kronos_quant.metrics._validation import align_frames
from kronos_quant.metrics.inference import hac_mean_test

logger = logging.getLogger(__name__)

__all__ = [
    "NO_SIGNAL",
    "has_cross_section",
    "information_coefficient",
    "rank_information_coefficient",
    "ic_summary",
    "quantile_returns",
    "quantile_spread",
    "signal_turnover",
    "rank_autocorrelation",
]


NO_SIGNAL = "no cross-sectional signal"  # the ``reason`` of an IC summary whose scores never differ across names


def has_cross_section(scores: pd.DataFrame) -> bool:
    """Whether the scores differ across instruments on at least one date (two distinct finite values).

    scores: (T, N) wide frame. A score that is the same for every instrument on every date (e.g. an
    expected return of exactly 0 everywhere) ranks nothing: its IC is undefined, not zero.
    """
    values = scores.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    high = np.where(finite, values, -np.inf).max(axis=1, initial=-np.inf)
    low = np.where(finite, values, np.inf).min(axis=1, initial=np.inf)
    return bool(np.any((finite.sum(axis=1) >= 2) & (high > low)))


def _masked_pair(
    scores: pd.DataFrame, forward_returns: pd.DataFrame, left_name: str, right_name: str
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Align both frames and blank out every cell where either side is not finite.

    Returns (x, y, n_valid) with x, y float frames (NaN where invalid) and n_valid (T,) int.
    """
    x, y = align_frames(scores, forward_returns, left_name, right_name)
    valid = np.isfinite(x.to_numpy()) & np.isfinite(y.to_numpy())  # (T, N)
    x = x.where(valid)
    y = y.where(valid)
    return x, y, valid.sum(axis=1)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x with the same row of y; NaN marks missing cells.

    x, y: (T, N) with NaN in the same cells. Returns (T,); NaN where a row has zero variance.
    """
    count = np.maximum(np.isfinite(x).sum(axis=1, keepdims=True), 1)  # (T, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = x - np.nansum(x, axis=1, keepdims=True) / count
        dy = y - np.nansum(y, axis=1, keepdims=True) / count
        cov = np.nansum(dx * dy, axis=1)
        var_x = np.nansum(dx * dx, axis=1)
        var_y = np.nansum(dy * dy, axis=1)
        denom = np.sqrt(var_x * var_y)
        r = np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def _check_min_obs(min_obs: int) -> None:
    if min_obs < 2:
        raise ValueError(f"min_obs must be >= 2 (a correlation needs two pairs), got {min_obs}")


def information_coefficient(
    scores: pd.DataFrame,
    forward_returns: pd.DataFrame,
    *,
    method: Literal["pearson", "spearman"] = "pearson",
    min_obs: int = 3,
) -> pd.Series:
    """Cross-sectional correlation between scores and forward returns, one value per date.

    scores, forward_returns: (T, N) wide frames. method: "pearson" (linear IC) or "spearman"
    (rank IC: Pearson correlation of the average ranks of the valid pairs). Returns a float
    Series named "ic" indexed by the dates with at least ``min_obs`` valid pairs.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    _check_min_obs(min_obs)
    x, y, n_valid = _masked_pair(scores, forward_returns, "scores", "forward_returns")
    if method == "spearman":
        x = x.rank(axis=1, method="average")
        y = y.rank(axis=1, method="average")
    ic = pd.Series(_rowwise_pearson(x.to_numpy(), y.to_numpy()), index=x.index, name="ic")
    keep = n_valid >= min_obs
    if not keep.all():
        logger.debug(
            "information_coefficient: skipped %d of %d dates with < %d pairs",
            int((~keep).sum()),
            keep.size,
            min_obs,
        )
    return ic[keep]


def rank_information_coefficient(
    scores: pd.DataFrame, forward_returns: pd.DataFrame, *, min_obs: int = 3
) -> pd.Series:
    """Spearman rank IC per date; see :func:`information_coefficient` (method="spearman")."""
    return information_coefficient(scores, forward_returns, method="spearman", min_obs=min_obs)


def ic_summary(
    ic: pd.Series, *, horizon: int = 1, rebalance: int = 1, lags: int | None = None
) -> dict[str, Any]:
    """Summary of a per-date IC series (NaNs dropped), with Newey-West and i.i.d. t-stats.

    ic: (T,) per-date IC in date order. horizon: bars spanned by the forward-return label;
    rebalance: bars between consecutive IC dates; they set the HAC lag count (at least
    ceil(horizon / rebalance) - 1, see :func:`kronos_quant.metrics.inference.newey_west_lags`);
    ``lags`` overrides it.

    Keys: mean, std (sample, ddof=1), icir (mean / std, not annualised), t_stat (Newey-West HAC,
    the one to quote when labels overlap), p_value (two-sided), t_stat_iid (mean / (std /
    sqrt(n)), what alphalens and qlib report), p_value_iid, t_stat_ewc / p_value_ewc / ewc_dof (the
    size-robust equal-weighted cosine test), nw_lags (lags used), hit_rate (share
    of dates with IC > 0), n (number of dates). With n == 0 every value but n is NaN; with n < 3
    or zero std the t-stats and p-values are NaN.
    """
    values = np.asarray(pd.Series(ic, dtype=np.float64).to_numpy(), dtype=np.float64)
    values = values[np.isfinite(values)]
    n = values.size
    test = hac_mean_test(values, horizon=horizon, rebalance=rebalance, lags=lags)
    std = test["std"]
    ok = np.isfinite(std) and std > 0
    return {
        "mean": test["mean"],
        "std": std,
        "icir": test["mean"] / std if ok else np.nan,
        "t_stat": test["t_stat"],
        "p_value": test["p_value"],
        "t_stat_iid": test["t_stat_iid"],
        "p_value_iid": test["p_value_iid"],
        "t_stat_ewc": test["t_stat_ewc"],
        "p_value_ewc": test["p_value_ewc"],
        "ewc_dof": test["ewc_dof"],
        "nw_lags": test["nw_lags"],
        "hit_rate": float((values > 0).mean()) if n else np.nan,
        "n": n,
    }


def _quantile_buckets(x: pd.DataFrame, n_valid: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Bucket 1..n_quantiles of each valid cell by its within-date score rank; 0 where invalid.

    Bucket = floor((rank - 0.5) / n_valid * n_quantiles) + 1 with average ranks, so equal scores
    share a bucket and N = k * n_quantiles distinct scores give k names per bucket.
    """
    ranks = x.rank(axis=1, method="average").to_numpy()  # (T, N), NaN where invalid
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = (ranks - 0.5) / n_valid[:, None]
        buckets = np.floor(pct * n_quantiles) + 1
    return np.where(np.isfinite(buckets), np.clip(buckets, 1, n_quantiles), 0).astype(np.int64)


def quantile_returns(
    scores: pd.DataFrame, forward_returns: pd.DataFrame, *, n_quantiles: int = 5
) -> pd.DataFrame:
    """Mean forward return of each score bucket per date.

    Each date's valid instruments are split into ``n_quantiles`` equal-count buckets by score
    rank (1 = lowest scores, n_quantiles = highest; ties share a bucket). Dates with fewer valid
    pairs than ``n_quantiles`` are dropped. Returns a (T', n_quantiles) frame with columns 1..n;
    a bucket left empty on a date (possible with ties) is NaN.
    """
    if n_quantiles < 2:
        raise ValueError(f"n_quantiles must be >= 2, got {n_quantiles}")
    x, y, n_valid = _masked_pair(scores, forward_returns, "scores", "forward_returns")
    buckets = _quantile_buckets(x, n_valid, n_quantiles)  # (T, N)
    returns = np.nan_to_num(y.to_numpy(), nan=0.0)
    out = np.full((x.shape[0], n_quantiles), np.nan)
    for b in range(1, n_quantiles + 1):
        member = buckets == b
        count = member.sum(axis=1)
        total = (returns * member).sum(axis=1)
        out[:, b - 1] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    frame = pd.DataFrame(out, index=x.index, columns=pd.Index(range(1, n_quantiles + 1), name="quantile"))
    return frame[n_valid >= n_quantiles]


def quantile_spread(
    scores: pd.DataFrame, forward_returns: pd.DataFrame, *, n_quantiles: int = 5
) -> pd.Series:
    """Top-bucket minus bottom-bucket mean forward return per date (see :func:`quantile_returns`)."""
    q = quantile_returns(scores, forward_returns, n_quantiles=n_quantiles)
    return (q[n_quantiles] - q[1]).rename("quantile_spread")


def signal_turnover(weights: pd.DataFrame) -> pd.Series:
    """One-way turnover per rebalance: 0.5 * sum_i |w_t,i - w_{t-1},i|.

    weights: (T, N) target weights (fractions of capital), rows in rebalance order; NaN means
    "not held" (weight 0). With this convention swapping a fully invested long-only book into
    disjoint names is 1.0 (100%), and a long-short book that flips every position with gross
    exposure 2 is 2.0. The first row has no previous weights and is NaN (the initial build-up
    from cash, 0.5 * sum |w_0|, is deliberately not counted as trading).
    """
    if not isinstance(weights, pd.DataFrame):
        raise ValueError(
            f"`weights` must be a wide DataFrame (dates x instruments), got {type(weights).__name__}"
        )
    w = weights.astype(np.float64).fillna(0.0)
    turnover = 0.5 * w.diff().abs().sum(axis=1)
    if len(turnover):
        turnover.iloc[0] = np.nan
    return turnover.rename("turnover")


def rank_autocorrelation(scores: pd.DataFrame, *, lag: int = 1, min_obs: int = 3) -> pd.Series:
    """Spearman correlation across instruments between scores at t and scores at t - lag.

    Indexed by date t (dates with fewer than ``min_obs`` instruments scored at both dates are
    dropped). Values near 1 mean a slow, cheap-to-trade signal; near 0 a signal that reshuffles.
    """
    if lag < 1:
        raise ValueError(f"lag must be a positive number of rows, got {lag}")
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(
            f"`scores` must be a wide DataFrame (dates x instruments), got {type(scores).__name__}"
        )
    ac = rank_information_coefficient(scores, scores.shift(lag), min_obs=min_obs)
    return ac.rename("rank_autocorrelation")
