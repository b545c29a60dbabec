"""Calibration of finite ensembles: what S sample paths can attain, rank histograms, size checks.

Owns the finite-sample side of interval calibration. From S exchangeable samples and an
observation drawn from the same distribution, the observation's rank among the S + 1 values is
uniform on 0..S, so the interval between the k-th and the (S + 1 - k)-th smallest sample covers
it with probability exactly (S + 1 - 2k) / (S + 1) -- whatever the distribution. Empirical 5% /
95% quantiles of few samples are therefore biased inwards: a perfectly calibrated 8-sample
forecast covers about 0.70 of its "90%" interpolated band and a 20-sample one about 0.81.
Coverage must be scored against what S samples can attain, not against the nominal level.

Shapes as in :mod:`kronos_quant.metrics.probabilistic`: ``samples`` (N, S) with NaN members
ignored row by row, ``obs`` (N,). Knows nothing about models, dates, files or plots.

References: Hamill (2001), "Interpretation of rank histograms for verifying ensemble forecasts",
Mon. Wea. Rev. 129; David & Nagaraja (2003), "Order Statistics", sec. 7.2 (distribution-free
tolerance intervals).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from kronos_quant.metrics.probabilistic import _rank_counts, _samples_obs

logger = logging.getLogger(__name__)

__all__ = [
    "attainable_coverage",
    "order_statistic_interval",
    "finite_sample_coverage",
    "rank_histogram",
    "check_ensemble_size",
]


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1 (0.9 = 90% interval), got {level}")
    return float(level)


def _rank_k(n_samples: np.ndarray, level: float) -> np.ndarray:
    """The order-statistic index k (>= 1) of the central interval reaching ``level``, per S."""
    k = np.floor((n_samples + 1) * (1.0 - level) / 2.0 + 1e-9).astype(np.int64)
    return np.maximum(k, 1)


def attainable_coverage(n_samples: int, *, level: float) -> dict[str, Any]:
    """The order-statistic interval S samples offer for a nominal central ``level`` interval.

    k = floor((S + 1)(1 - level) / 2): the interval [X_(k), X_(S+1-k)] is the narrowest whose
    calibrated coverage (S + 1 - 2k) / (S + 1) is >= level. When k would be 0 (S too small, e.g. 8
    samples for 90%) the widest interval [min, max] is used and ``reachable`` is False.

    Returns {n_samples, level, lower_rank (k, 1-based), upper_rank (S + 1 - k), coverage,
    reachable}.
    """
    level = _check_level(level)
    if n_samples < 2:
        raise ValueError(f"an interval needs at least 2 samples, got {n_samples}")
    raw_k = math.floor((n_samples + 1) * (1.0 - level) / 2.0 + 1e-9)
    k = max(raw_k, 1)
    return {
        "n_samples": int(n_samples),
        "level": level,
        "lower_rank": k,
        "upper_rank": n_samples + 1 - k,
        "coverage": (n_samples + 1 - 2 * k) / (n_samples + 1),
        "reachable": raw_k >= 1,
    }


def order_statistic_interval(samples: Any, *, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the (lower, upper) order-statistic interval of :func:`attainable_coverage` and its coverage.

    samples: (N, S), NaN members ignored (each row uses its own count S_i). Returns three (N,)
    arrays: lower, upper (NaN for rows with fewer than 2 members) and the calibrated coverage
    (S_i + 1 - 2 k_i) / (S_i + 1) of each row's interval.
    """
    level = _check_level(level)
    x, _ = _samples_obs(samples, np.zeros(np.shape(samples)[0]))
    s = np.isfinite(x).sum(axis=1)
    ok = s >= 2
    if not ok.any():
        empty = np.full(x.shape[0], np.nan)
        return empty, empty.copy(), empty.copy()
    ordered = np.sort(x, axis=1)  # NaNs last
    k = _rank_k(s, level)
    rows = np.arange(x.shape[0])
    lower = np.where(ok, ordered[rows, np.where(ok, k - 1, 0)], np.nan)
    upper = np.where(ok, ordered[rows, np.where(ok, s - k, 0)], np.nan)
    coverage = np.where(ok, (s + 1 - 2 * k) / (s + 1.0), np.nan)
    return lower, upper, coverage


def finite_sample_coverage(samples: Any, obs: Any, *, level: float = 0.9) -> dict[str, Any]:
    """Coverage of the order-statistic interval scored against what the ensemble size can attain.

    samples: (N, S); obs: (N,). Rows with a NaN observation or fewer than 2 members are skipped.
    Returns {level, n, n_samples_min, n_samples_max, coverage (observed share inside
    [X_(k), X_(S+1-k)], inclusive), attainable_coverage (mean of (S_i + 1 - 2k_i)/(S_i + 1)),
    coverage_gap (observed - attainable: < 0 too narrow, > 0 too wide), z, p_value, reachable
    (False when S is too small for ``level`` on some row), reason}. z and the two-sided p-value
    compare the hit count with its Poisson-binomial mean under calibration; they assume
    independent rows, so rows sharing dates or overlapping horizons make them optimistic.
    """
    level = _check_level(level)
    x, y = _samples_obs(samples, obs)
    lower, upper, expected = order_statistic_interval(x, level=level)
    keep = np.isfinite(y) & np.isfinite(expected)
    s = np.isfinite(x).sum(axis=1)[keep]
    out: dict[str, Any] = {
        "level": level,
        "n": int(keep.sum()),
        "n_samples_min": int(s.min()) if s.size else 0,
        "n_samples_max": int(s.max()) if s.size else 0,
        "coverage": np.nan,
        "attainable_coverage": np.nan,
        "coverage_gap": np.nan,
        "z": np.nan,
        "p_value": np.nan,
        "reachable": bool(np.all((s + 1) * (1.0 - level) / 2.0 + 1e-9 >= 1)) if s.size else False,
        "reason": None,
    }
    if not keep.any():
        out["reason"] = "no row with a finite observation and at least 2 ensemble members"
        return out
    hits = (y[keep] >= lower[keep]) & (y[keep] <= upper[keep])
    p = expected[keep]
    var = float(np.sum(p * (1.0 - p)))
    z = (hits.sum() - p.sum()) / math.sqrt(var) if var > 0 else np.nan
    out.update(
        coverage=float(hits.mean()),
        attainable_coverage=float(p.mean()),
        coverage_gap=float(hits.mean() - p.mean()),
        z=float(z),
        p_value=float(2.0 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
    )
    return out


def rank_histogram(
    samples: Any, obs: Any, *, rng: np.random.Generator | int | None = 0
) -> dict[str, Any]:
    """Rank histogram (Talagrand diagram): counts of the observation's rank among the S + 1 values.

    samples: (N, S); obs: (N,). The rank is the number of members below the observation, with
    ties to members broken uniformly at random (``rng`` seeds it), so a calibrated ensemble gives
    a flat histogram over ranks 0..S. Only rows with the most common member count S and a finite
    observation are used (``n_dropped`` counts the others).

    Returns {counts (list of S + 1 ints), n, n_samples, n_dropped, chi2, p_value (chi-square test
    of flatness, S degrees of freedom), extreme_share (share in ranks 0 and S), expected_extreme_share
    (2 / (S + 1)), reason}. A U shape / high extreme share means under-dispersed ensembles, a hump
    over-dispersed ones, a slope a bias. The chi-square p-value assumes independent rows.
    """
    x, y = _samples_obs(samples, obs)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_members, below, equal = _rank_counts(x, y)
    usable = np.isfinite(y) & (n_members > 0)
    out: dict[str, Any] = {"counts": [], "n": 0, "n_samples": 0, "n_dropped": int(x.shape[0]),
                           "chi2": np.nan, "p_value": np.nan, "extreme_share": np.nan,
                           "expected_extreme_share": np.nan, "reason": None}
    if not usable.any():
        out["reason"] = "no row with a finite observation and at least one ensemble member"
        return out
    s = int(np.bincount(n_members[usable]).argmax())
    keep = usable & (n_members == s)
    u = generator.random(x.shape[0])
    rank = below + np.floor(u * (equal + 1)).astype(np.int64)  # uniform on below..below+equal
    counts = np.bincount(rank[keep], minlength=s + 1)
    n = int(keep.sum())
    out.update(counts=counts.tolist(), n=n, n_samples=s, n_dropped=int(x.shape[0] - n),
               extreme_share=float((counts[0] + counts[-1]) / n), expected_extreme_share=2.0 / (s + 1))
    if s >= 1:
        chi = stats.chisquare(counts)
        out.update(chi2=float(chi.statistic), p_value=float(chi.pvalue))
    return out


def check_ensemble_size(
    n_samples: int, quantile_levels: Sequence[float], *, warn: bool = True
) -> dict[str, Any]:
    """Whether S samples can resolve the requested quantile levels; logs a warning when not.

    The most extreme quantile an order statistic of S samples can target is 1 / (S + 1) (and
    S / (S + 1)): a level q with min(q, 1 - q) < 1 / (S + 1) -- e.g. 0.05 with fewer than 19
    samples -- is estimated by interpolating inside [min, max], which is biased inwards (8 samples
    cover about 0.70 of a nominal 90% band). For a central interval of level L pass
    ((1 - L) / 2, (1 + L) / 2).

    Returns {n_samples, resolvable_from (1 / (S + 1)), unresolvable (the offending levels),
    min_samples_needed (the smallest S resolving every level), ok}.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    levels = [float(q) for q in quantile_levels]
    if any(not 0.0 < q < 1.0 for q in levels):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {levels}")
    floor = 1.0 / (n_samples + 1)
    bad = [q for q in levels if min(q, 1.0 - q) < floor - 1e-12]
    tails = [min(q, 1.0 - q) for q in levels]
    needed = max((math.ceil(1.0 / t - 1e-9) - 1 for t in tails), default=1)
    if bad and warn:
        logger.warning(
            "%d samples cannot resolve quantile level(s) %s (the most extreme an order statistic reaches is "
            "%.3g); empirical quantiles will be biased inwards and intervals will under-cover. Use at least %d "
            "samples, or score coverage against metrics.attainable_coverage",
            n_samples,
            bad,
            floor,
            needed,
        )
    return {
        "n_samples": int(n_samples),
        "resolvable_from": floor,
        "unresolvable": bad,
        "min_samples_needed": int(max(needed, 1)),
        "ok": not bad,
    }
