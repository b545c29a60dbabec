"""Scores of up-move probabilities: Brier (with Murphy's decomposition), log loss, reliability, accuracy.

Owns judging a forecast probability that the price goes up over the next h bars (the forecast
table's ``prob_up``) against what happened, and the climatology baseline it must beat: the
up-frequency of h-bar moves over a look-back window, using bars <= t only.

Conventions: an outcome is "up" when the realised return is > 0 (a zero return counts as not
up); array functions take any matching shapes and skip positions where either input is NaN;
panel functions take wide frames (index = as-of dates, columns = instruments) such as
``signals.prob_up(forecasts, step=h)`` and ``signals.forward_returns(panel, horizon=h)``. Pooled
scores average over every valid (date, instrument) cell; significance tests first average
cross-sectionally per date and then test the date series with HAC standard errors, because
h-bar outcomes of consecutive dates overlap.

References: Brier (1950); Murphy (1973), "A new vector partition of the probability score",
J. Appl. Meteor. 12; Stephenson, Coelho & Jolliffe (2008), "Two extra components in the Brier
score decomposition", Wea. Forecasting 23 (the within-bin terms); Newey & West (1987).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.metrics._validation import align_frames, as_float_array
from kronos_quant.metrics.inference import diebold_mariano, hac_mean_test

__all__ = [
    "brier_score",
    "log_loss",
    "ensemble_log_loss_eps",
    "reliability_curve",
    "brier_decomposition",
    "up_outcomes",
    "climatology_prob_up",
    "directional_accuracy_test",
    "probability_scores",
]


def _prob_outcome(prob: Any, outcome: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flat (n,) forecast probabilities and 0/1 outcomes where both are finite; validates ranges."""
    p = as_float_array(prob, "prob")
    o = as_float_array(outcome, "outcome")
    if p.shape != o.shape:
        raise ValueError(f"`prob` has shape {p.shape} but `outcome` has shape {o.shape}; they must match")
    keep = np.isfinite(p) & np.isfinite(o)
    p, o = p[keep], o[keep]
    if np.any((p < 0) | (p > 1)):
        raise ValueError("`prob` must hold probabilities in [0, 1]")
    if np.any((o != 0) & (o != 1)):
        raise ValueError("`outcome` must hold 0/1 (or False/True) outcomes; make them with up_outcomes(returns)")
    return p, o


def brier_score(prob: Any, outcome: Any) -> float:
    """Mean squared difference between forecast probability and 0/1 outcome; NaN when nothing is valid."""
    p, o = _prob_outcome(prob, outcome)
    return float(np.mean((p - o) ** 2)) if p.size else np.nan


def log_loss(prob: Any, outcome: Any, *, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood -[o log p + (1 - o) log(1 - p)], in nats; p clipped to [eps, 1 - eps].

    The clip keeps a confident miss (p = 0 for an up move) finite at -log(eps) nats (34.5 for the
    default, sklearn's old one). For probabilities estimated from S sample paths, where 0 and 1
    are common, the number is dominated by that choice: use ``ensemble_log_loss_eps(S)``.
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
    p, o = _prob_outcome(prob, outcome)
    if not p.size:
        return np.nan
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(o * np.log(p) + (1.0 - o) * np.log1p(-p)))


def ensemble_log_loss_eps(n_samples: int) -> float:
    """The log-loss clip for probabilities from ``n_samples`` paths: 1 / (2 S), half a sample.

    With S paths the estimated P[up] takes the values k / S; 0 / S and S / S mean "no path went that
    way", not certainty. Clipping at half a sample -- the continuity correction of a binomial
    proportion -- keeps a confident miss at log(2 S) nats (2.8 for S = 8) instead of 34.5 at
    1e-15, so the log loss measures the forecast, not the clip.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    return 1.0 / (2.0 * n_samples)


def _bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index 0..n_bins-1 of each probability: equal-width bins (lo, hi], the first one [0, hi]."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p, side="left")


def reliability_curve(prob: Any, outcome: Any, *, n_bins: int = 10) -> dict[str, list[float]]:
    """Reliability-diagram data: per equal-width forecast bin, the mean forecast and observed frequency.

    Bins are (lo, hi] over [0, 1] (the first includes 0), as sklearn's ``calibration_curve``.
    Returns lists of length n_bins: bin_lower, bin_upper, count, mean_forecast,
    observed_frequency (NaN for empty bins). A calibrated forecast lies on the diagonal.
    """
    p, o = _prob_outcome(prob, outcome)
    ids = _bins(p, n_bins)
    count = np.bincount(ids, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_f = np.where(count > 0, np.bincount(ids, weights=p, minlength=n_bins) / count, np.nan)
        freq = np.where(count > 0, np.bincount(ids, weights=o, minlength=n_bins) / count, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "bin_lower": edges[:-1].tolist(),
        "bin_upper": edges[1:].tolist(),
        "count": count.tolist(),
        "mean_forecast": mean_f.tolist(),
        "observed_frequency": freq.tolist(),
    }


def brier_decomposition(prob: Any, outcome: Any, *, n_bins: int = 10) -> dict[str, float]:
    """Murphy's partition of the Brier score over forecast bins, with the within-bin terms.

    brier = reliability - resolution + uncertainty + within_bin_variance - within_bin_covariance,
    exactly, where with N forecasts, bin counts n_k, bin mean forecasts f_k, bin outcome
    frequencies o_k and base rate o: reliability = sum n_k (f_k - o_k)^2 / N (lower is better),
    resolution = sum n_k (o_k - o)^2 / N (higher is better), uncertainty = o (1 - o),
    within_bin_variance = sum (p_i - f_k)^2 / N, within_bin_covariance = 2 sum (o_i - o_k)(p_i - f_k) / N
    (both 0 when forecasts are constant within bins, e.g. prob_up from S samples -- values k / S --
    with n_bins = 2 S). Returns those keys plus base_rate and n; NaN values when nothing is valid.
    """
    p, o = _prob_outcome(prob, outcome)
    n = p.size
    keys = ("brier", "reliability", "resolution", "uncertainty", "within_bin_variance",
            "within_bin_covariance", "base_rate")
    if n == 0:
        return {**{k: np.nan for k in keys}, "n": 0}
    ids = _bins(p, n_bins)
    count = np.bincount(ids, minlength=n_bins)
    safe = np.maximum(count, 1)
    f_k = np.bincount(ids, weights=p, minlength=n_bins) / safe
    o_k = np.bincount(ids, weights=o, minlength=n_bins) / safe
    base = float(o.mean())
    return {
        "brier": float(np.mean((p - o) ** 2)),
        "reliability": float(np.sum(count * (f_k - o_k) ** 2) / n),
        "resolution": float(np.sum(count * (o_k - base) ** 2) / n),
        "uncertainty": base * (1.0 - base),
        "within_bin_variance": float(np.sum((p - f_k[ids]) ** 2) / n),
        "within_bin_covariance": float(2.0 * np.sum((o - o_k[ids]) * (p - f_k[ids])) / n),
        "base_rate": base,
        "n": int(n),
    }


def up_outcomes(forward_returns: Any) -> Any:
    """1.0 where the realised return is > 0, 0.0 where it is <= 0, NaN where it is NaN (same shape/type)."""
    if isinstance(forward_returns, pd.DataFrame | pd.Series):
        values = forward_returns.astype(np.float64)
        return (values > 0).astype(np.float64).where(values.notna())
    r = as_float_array(forward_returns, "forward_returns")
    return np.where(np.isnan(r), np.nan, (r > 0).astype(np.float64))


def _wide_close(prices: Any, field: str) -> pd.DataFrame:
    """A wide (dates x instruments) frame from a wide frame or a long panel (polars or pandas)."""
    frame = prices.to_pandas() if hasattr(prices, "to_pandas") and not isinstance(prices, pd.DataFrame) else prices
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"`prices` must be a wide DataFrame or a long panel, got {type(prices).__name__}")
    if {"instrument", "timestamp", field} <= set(frame.columns):
        frame = frame.pivot(index="timestamp", columns="instrument", values=field).sort_index()
    return frame.astype(np.float64)


def climatology_prob_up(
    prices: Any,
    *,
    horizon: int,
    window: int = 250,
    min_periods: int = 20,
    pooled: bool = False,
    field: str = "close",
) -> pd.DataFrame:
    """Climatology baseline for prob_up: the up-frequency of h-bar moves in the look-back window.

    prices: a wide frame (T, N) of prices or a long panel with instrument/timestamp/``field``
    columns. For instrument i at date t the value is the share of its last ``window`` bars s <= t
    with price[s] > price[s - horizon], counted on the instrument's own bars (NaN prices are not
    bars) -- moves whose outcome is known at t, so there is no look-ahead. ``pooled`` shares one
    value per date across instruments: all their known moves in the last ``window`` rows of the
    frame. NaN until ``min_periods`` moves are known, and where the instrument has no price.
    Returns (T, N) in [0, 1], same index and columns as the wide prices.
    """
    if horizon < 1 or window < 1 or not 1 <= min_periods <= window:
        raise ValueError(
            f"need horizon >= 1, window >= 1 and 1 <= min_periods <= window, got {horizon}, {window}, {min_periods}"
        )
    wide = _wide_close(prices, field)
    ups = pd.DataFrame(np.nan, index=wide.index, columns=wide.columns)
    clim = ups.copy()
    for col in wide.columns:
        own = wide[col].dropna()
        own_ups = up_outcomes(own / own.shift(horizon) - 1.0)
        ups.loc[own.index, col] = own_ups.to_numpy()
        clim.loc[own.index, col] = own_ups.rolling(window, min_periods=min_periods).mean().to_numpy()
    if not pooled:
        return clim
    total = ups.fillna(0.0).rolling(window, min_periods=1).sum().sum(axis=1)
    count = ups.notna().astype(np.float64).rolling(window, min_periods=1).sum().sum(axis=1)
    shared = (total / count).where(count >= min_periods)
    return pd.DataFrame(
        np.where(wide.notna(), shared.to_numpy()[:, None], np.nan), index=wide.index, columns=wide.columns
    )


def _row_mean(values: np.ndarray) -> np.ndarray:
    """(T,) mean of the finite cells of each row of (T, N) values; NaN for a row without any."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def directional_accuracy_test(
    prob_up: pd.DataFrame,
    forward_returns: pd.DataFrame,
    *,
    horizon: int,
    rebalance: int = 1,
    threshold: float = 0.5,
    baseline_prob: pd.DataFrame | None = None,
    lags: int | None = None,
) -> dict[str, Any]:
    """Directional accuracy of prob_up with a HAC t-test that respects overlapping horizons.

    prob_up, forward_returns (and baseline_prob): (T, N) wide frames, inner-aligned. A call is
    "up" when prob > threshold and "down" when prob < threshold; prob == threshold is no call
    (counted in n_abstain; common with few samples). Hits are averaged per date over the cells
    with a call, and the per-date hit rate is t-tested against 0.5 with Newey-West lags
    (:func:`kronos_quant.metrics.inference.newey_west_lags`, at least ceil(h / rebalance) - 1).
    With ``baseline_prob`` the model's and the baseline's per-date hit rates on the cells where
    both call are compared too (``vs_baseline``: a HAC test of the mean difference).

    Returns {accuracy (pooled over cells), n_cells, n_abstain, n_dates, t_stat, p_value,
    t_stat_iid, p_value_iid, nw_lags, reason[, vs_baseline: {accuracy_model, accuracy_baseline,
    difference, n_cells, n_dates, t_stat, p_value, nw_lags, reason}]}.
    """
    p, r = align_frames(prob_up, forward_returns, "prob_up", "forward_returns")
    up = up_outcomes(r).to_numpy()
    pv = p.to_numpy()
    call = np.where(pv > threshold, 1.0, np.where(pv < threshold, 0.0, np.nan))
    call[~np.isfinite(pv) | ~np.isfinite(up)] = np.nan
    hit = np.where(np.isfinite(call), (call == up).astype(np.float64), np.nan)  # (T, N)
    valid = np.isfinite(hit)
    test = hac_mean_test(_row_mean(hit), horizon=horizon, rebalance=rebalance, lags=lags, null=0.5)
    out: dict[str, Any] = {
        "accuracy": float(hit[valid].mean()) if valid.any() else np.nan,
        "n_cells": int(valid.sum()),
        "n_abstain": int((np.isfinite(pv) & np.isfinite(up) & (pv == threshold)).sum()),
        "n_dates": test["n"],
        **{k: test[k] for k in ("t_stat", "p_value", "t_stat_iid", "p_value_iid", "nw_lags", "reason")},
    }
    if baseline_prob is not None:
        b, _ = align_frames(baseline_prob.reindex_like(p), p, "baseline_prob", "prob_up")
        bv = b.to_numpy()
        b_call = np.where(bv > threshold, 1.0, np.where(bv < threshold, 0.0, np.nan))
        both = valid & np.isfinite(b_call)
        b_hit = np.where(both, (b_call == up).astype(np.float64), np.nan)
        m_hit = np.where(both, hit, np.nan)
        vs = hac_mean_test(_row_mean(m_hit) - _row_mean(b_hit), horizon=horizon, rebalance=rebalance, lags=lags)
        out["vs_baseline"] = {
            "accuracy_model": float(m_hit[both].mean()) if both.any() else np.nan,
            "accuracy_baseline": float(b_hit[both].mean()) if both.any() else np.nan,
            "difference": vs["mean"],
            "n_cells": int(both.sum()),
            "n_dates": vs["n"],
            **{k: vs[k] for k in ("t_stat", "p_value", "nw_lags", "reason")},
        }
    return out


def probability_scores(
    prob_up: pd.DataFrame,
    forward_returns: pd.DataFrame,
    *,
    climatology: pd.DataFrame | None = None,
    horizon: int = 1,
    rebalance: int = 1,
    n_bins: int = 10,
    log_loss_eps: float = 1e-15,
) -> dict[str, Any]:
    """Brier, log loss, decomposition and reliability of prob_up, beside a climatology baseline.

    prob_up, forward_returns, climatology: (T, N) wide frames, inner-aligned. Every forecaster is
    scored on the same cells: those where prob_up, the outcome and (when given) the climatology
    are all finite; both log losses clip at ``log_loss_eps`` (recorded as ``log_loss_eps``). Returns {n, model: {brier, log_loss, decomposition, reliability}} and, with
    ``climatology``, the same for it plus brier_skill_score (1 - Brier / Brier_climatology; > 0
    beats climatology) and dm_brier (Diebold-Mariano test of the per-date mean Brier scores,
    lags ceil(horizon / rebalance) - 1; negative favours the model).
    """
    p, r = align_frames(prob_up, forward_returns, "prob_up", "forward_returns")
    up = up_outcomes(r)
    frames = {"model": p}
    if climatology is not None:
        frames["climatology"] = climatology.reindex_like(p).astype(np.float64)
    ok = np.isfinite(up.to_numpy())
    for frame in frames.values():
        ok &= np.isfinite(frame.to_numpy())
    out: dict[str, Any] = {"n": int(ok.sum()), "log_loss_eps": log_loss_eps}
    o = up.to_numpy()[ok]
    daily: dict[str, pd.Series] = {}
    for name, frame in frames.items():
        f = frame.to_numpy()[ok]
        out[name] = {
            "brier": brier_score(f, o),
            "log_loss": log_loss(f, o, eps=log_loss_eps),
            "decomposition": brier_decomposition(f, o, n_bins=n_bins),
            "reliability": reliability_curve(f, o, n_bins=n_bins),
        }
        daily[name] = ((frame - up) ** 2).where(ok).mean(axis=1)
    if climatology is not None:
        clim = out["climatology"]["brier"]
        out["brier_skill_score"] = 1.0 - out["model"]["brier"] / clim if clim > 0 else np.nan
        out["dm_brier"] = diebold_mariano(
            daily["model"].to_numpy(), daily["climatology"].to_numpy(), horizon=horizon, rebalance=rebalance
        )
    return out
