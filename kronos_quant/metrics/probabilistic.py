"""Probabilistic-forecast scores: CRPS, pinball loss, interval coverage, PIT.

Owns proper scoring rules and calibration diagnostics for ensembles (sample forecasts) and
quantile forecasts. Shapes: ``samples`` (N, S) -- S ensemble members for each of N
observations; ``obs`` (N,). NaN ensemble members are ignored row by row (ragged ensembles);
a NaN observation gives a NaN per-observation value and is skipped by averages. Knows nothing
about models, dates, files or plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kronos_quant.metrics._validation import as_float_array

__all__ = [
    "crps_ensemble",
    "pinball_loss",
    "interval_coverage",
    "interval_score",
    "interval_metrics_from_samples",
    "pit_values",
    "pit_histogram",
]


def _samples_obs(samples: Any, obs: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(samples, "samples")
    y = as_float_array(obs, "obs")
    if x.ndim != 2:
        raise ValueError(
            f"`samples` must have shape (N, S) (S ensemble members per observation), got {x.shape}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"`obs` must have shape (N,) = ({x.shape[0]},) to match `samples` {x.shape}, got {y.shape}"
        )
    return x, y


def _level_label(level: float) -> str:
    return f"{level * 100:g}"


def crps_ensemble(samples: Any, obs: Any, *, fair: bool = True) -> np.ndarray:
    """Continuous ranked probability score of each ensemble forecast, (N,), in units of ``obs``.

    CRPS = mean_i |X_i - y| - 1/(2 D) sum_{i,j} |X_i - X_j| with D = S (S - 1) for the "fair"
    (unbiased) estimator -- the CRPS the ensemble's underlying distribution would get, which
    does not reward small ensembles for being under-dispersed -- and D = S^2 for the plain
    estimator (the CRPS of the empirical distribution). Lower is better; a single point
    forecast (all members equal) gives |X - y|. The pair sum is computed from sorted members,
    sum_{i,j} |X_i - X_j| = 2 sum_k (2k - S - 1) X_(k), so time is O(N S log S) and memory O(N S).
    Rows with no finite member are NaN; with ``fair`` rows with a single member are NaN too.
    """
    x, y = _samples_obs(samples, obs)
    finite = np.isfinite(x)
    n_members = finite.sum(axis=1)  # (N,)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.where(finite, np.abs(x - y[:, None]), 0.0).sum(axis=1) / n_members
    centre = (np.where(finite, x, 0.0).sum(axis=1) / np.maximum(n_members, 1))[:, None]  # (N, 1)
    ordered = np.sort(x - centre, axis=1)  # NaNs sort last; centring only helps precision
    rank = np.arange(1, x.shape[1] + 1)[None, :]  # (1, S)
    weight = np.where(rank <= n_members[:, None], 2 * rank - n_members[:, None] - 1, 0)
    pair_sum = 2.0 * np.where(weight != 0, weight * np.nan_to_num(ordered), 0.0).sum(axis=1)
    denom = n_members * (n_members - 1) if fair else n_members * n_members
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(denom > 0, pair_sum / (2.0 * np.maximum(denom, 1)), np.nan)
        crps = abs_err - spread
    crps[~np.isfinite(y) | (n_members == 0)] = np.nan
    return crps


def pinball_loss(quantile_preds: Any, obs: Any, levels: Sequence[float]) -> np.ndarray:
    """Mean pinball (quantile) loss per level, (Q,).

    quantile_preds: (N, Q) predicted quantiles; obs: (N,); levels: (Q,) in (0, 1). The loss of
    prediction q at level tau is max(tau (y - q), (tau - 1) (y - q)); rows with a NaN prediction
    or observation are skipped per level (NaN when a level has no valid row).
    """
    q = as_float_array(quantile_preds, "quantile_preds")
    y = as_float_array(obs, "obs")
    tau = as_float_array(levels, "levels")
    if q.ndim != 2 or tau.shape != (q.shape[1],) or y.shape != (q.shape[0],):
        raise ValueError(
            f"expected quantile_preds (N, Q), obs (N,), levels (Q,); got {q.shape}, {y.shape}, {tau.shape}"
        )
    if np.any((tau <= 0) | (tau >= 1)):
        raise ValueError(f"levels must lie strictly between 0 and 1, got {tau.tolist()}")
    diff = y[:, None] - q  # (N, Q)
    loss = np.maximum(tau * diff, (tau - 1.0) * diff)
    valid = np.isfinite(loss)
    count = valid.sum(axis=0)
    total = np.where(valid, loss, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _interval_arrays(lower: Any, upper: Any, obs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = as_float_array(lower, "lower")
    hi = as_float_array(upper, "upper")
    y = as_float_array(obs, "obs")
    if not lo.shape == hi.shape == y.shape:
        raise ValueError(
            f"lower, upper and obs must have the same shape, got {lo.shape}, {hi.shape}, {y.shape}"
        )
    valid = ~np.isnan(lo) & ~np.isnan(hi) & np.isfinite(y)  # infinite bounds are allowed
    lo, hi, y = lo[valid], hi[valid], y[valid]
    if np.any(lo > hi):
        raise ValueError(f"{int((lo > hi).sum())} intervals have lower > upper; check the bound columns")
    return lo, hi, y


def interval_coverage(lower: Any, upper: Any, obs: Any) -> dict[str, float]:
    """Share of observations inside [lower, upper] (inclusive) and the mean interval width.

    Any matching shapes; positions with a NaN bound or a non-finite observation are skipped.
    Returns {"coverage", "mean_width", "n"}; coverage and mean_width are NaN when n == 0.
    """
    lo, hi, y = _interval_arrays(lower, upper, obs)
    if y.size == 0:
        return {"coverage": np.nan, "mean_width": np.nan, "n": 0}
    return {
        "coverage": float(np.mean((y >= lo) & (y <= hi))),
        "mean_width": float(np.mean(hi - lo)),
        "n": int(y.size),
    }


def interval_score(lower: Any, upper: Any, obs: Any, *, level: float) -> float:
    """Mean interval (Winkler) score of central ``level`` intervals; lower is better.

    (u - l) + 2/alpha (l - y) 1{y < l} + 2/alpha (y - u) 1{y > u} with alpha = 1 - level
    (Gneiting & Raftery 2007): width plus a penalty for each miss. NaN when nothing is valid.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    lo, hi, y = _interval_arrays(lower, upper, obs)
    if y.size == 0:
        return np.nan
    alpha = 1.0 - level
    score = (hi - lo) + 2.0 / alpha * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return float(np.mean(score))


def interval_metrics_from_samples(
    samples: Any, obs: Any, *, levels: Sequence[float] = (0.5, 0.9)
) -> dict[str, float]:
    """Coverage, width and interval score of central intervals taken from the ensembles.

    The central ``level`` interval of each row runs from its (1 - level)/2 to its (1 + level)/2
    sample quantile (linear interpolation, NaN members ignored). Keys per level, e.g. for 0.9:
    coverage_90, mean_width_90, interval_score_90.
    """
    x, y = _samples_obs(samples, obs)
    out: dict[str, float] = {}
    has_members = np.isfinite(x).any(axis=1)
    for level in levels:
        if not 0.0 < level < 1.0:
            raise ValueError(f"levels must lie strictly between 0 and 1, got {level}")
        bounds = np.full((2, x.shape[0]), np.nan)
        if has_members.any():
            bounds[:, has_members] = np.nanquantile(
                x[has_members], [(1 - level) / 2, (1 + level) / 2], axis=1
            )
        cov = interval_coverage(bounds[0], bounds[1], y)
        label = _level_label(level)
        out[f"coverage_{label}"] = cov["coverage"]
        out[f"mean_width_{label}"] = cov["mean_width"]
        out[f"interval_score_{label}"] = interval_score(bounds[0], bounds[1], y, level=level)
    return out


def _rank_counts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of x (N, S) and y (N,): finite members, members strictly below y, members equal to y."""
    finite = np.isfinite(x)
    return (
        finite.sum(axis=1),
        (finite & (x < y[:, None])).sum(axis=1),
        (finite & (x == y[:, None])).sum(axis=1),
    )


def pit_values(samples: Any, obs: Any, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Randomised probability integral transform of each observation, (N,) in [0, 1].

    With k members strictly below y, e members equal to y and S members in all,
    PIT = (k + U (e + 1)) / (S + 1), U ~ Uniform(0, 1): the observation's rank among the S + 1
    values with ties broken at random, made continuous. For a calibrated ensemble the PIT is
    exactly Uniform(0, 1); a U-shape means too narrow, a hump too wide, a slope bias. NaN when
    the observation is NaN or the row has no finite member. ``rng`` seeds the tie-breaking.
    """
    x, y = _samples_obs(samples, obs)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_members, below, equal = _rank_counts(x, y)
    u = generator.random(x.shape[0])
    pit = (below + u * (equal + 1)) / (n_members + 1)
    pit[~np.isfinite(y) | (n_members == 0)] = np.nan
    return pit


def pit_histogram(pit: Any, *, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts of PIT values in ``n_bins`` equal bins over [0, 1]: (counts (n_bins,), edges (n_bins + 1,)).

    Non-finite values are skipped. A calibrated forecast gives roughly equal counts.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    values = as_float_array(pit, "pit").ravel()
    values = values[np.isfinite(values)]
    if np.any((values < 0) | (values > 1)):
        raise ValueError("PIT values must lie in [0, 1]; compute them with pit_values(samples, obs)")
    counts, edges = np.histogram(values, bins=n_bins, range=(0.0, 1.0))
    return counts, edges
