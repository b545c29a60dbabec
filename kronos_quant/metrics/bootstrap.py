"""Stationary block bootstrap (Politis & Romano 1994): seeded confidence intervals for time series.

Owns resampling of dependent series and the intervals built on it: the Sharpe ratio, the
difference of two Sharpe ratios on paired return series (strategy vs benchmark, strategy vs
baseline) and the mean of a series (e.g. the per-date Rank IC). Blocks of consecutive values are
resampled with geometric lengths of mean ``block_length`` (wrapping around the end), which keeps
the short-range dependence that overlapping labels and volatility clustering create; the default
block length is Politis & White's (2004) automatic choice with the correction of Patton,
Politis & White (2009).

Conventions: inputs are (n,) series in time order (pandas Series are aligned on their index, NaNs
dropped); every result is a plain dict {estimate, ci_low, ci_high, std_error, p_value, confidence,
block_length, n, n_resamples, n_invalid, method, reason}. Intervals are percentile intervals; the
p-value is two-sided for ``null`` from the centred resamples, (1 + #{|t* - t| >= |t - null|}) /
(1 + B). The same seed gives the same numbers. Short samples (< 8 values) give NaN with a reason.

Knows nothing about how the returns were produced, files or plots.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.metrics._validation import as_float_array, check_periods_per_year
from kronos_quant.metrics.portfolio import _per_period_rate

logger = logging.getLogger(__name__)

__all__ = [
    "optimal_block_length",
    "stationary_bootstrap_indices",
    "stationary_bootstrap",
    "sharpe_ratio_ci",
    "sharpe_difference_ci",
    "mean_ci",
]

Statistic = Callable[[np.ndarray], np.ndarray]
_MIN_N = 8
_BATCH_ELEMENTS = 1_000_000  # values per resampling batch (8 MB of float64)


def _flat_top(x: np.ndarray) -> np.ndarray:
    """Politis & Romano's trapezoidal flat-top lag window: 1 on |x| <= 1/2, 2 (1 - |x|) up to 1, then 0."""
    ax = np.abs(x)
    return np.where(ax <= 0.5, 1.0, np.where(ax <= 1.0, 2.0 * (1.0 - ax), 0.0))


def optimal_block_length(values: Any) -> float:
    """Expected block length for the stationary bootstrap of the mean, in observations (>= 1).

    Politis & White (2004) with the correction of Patton, Politis & White (2009):
    b = (2 G^2 / D)^(1/3) n^(1/3), G = sum_{|k|<=M} lambda(k/M) |k| gamma_k, D = 2 g^2,
    g = sum_{|k|<=M} lambda(k/M) gamma_k, lambda the flat-top window, gamma_k the sample
    autocovariances (divisor n). The bandwidth M = 2 m_hat, where m_hat is the smallest *positive*
    lag m such that the K = max(5, ceil(sqrt(log10 n))) autocorrelations at lags m .. m + K - 1 all
    lie within +-2 sqrt(log10 n / n) (Patton's code, R ``np::b.star``, ``arch``); M is capped at
    m_max = ceil(sqrt(n)) + K, which is also used when no such run exists. So M >= 2 always: a
    series without significant autocorrelation still gets a block length from its first two lags
    (about 1-3 for daily returns), not a fixed 1. The result is clipped to [1, ceil(min(3 sqrt(n),
    n / 3))] (a g <= 0 -- a long-run variance estimate that is not positive -- still goes through
    the formula and usually meets the upper clip, as in the references). Cross-checked against
    ``arch.bootstrap.optimal_block_length`` in the tests; the autocorrelations here are the standard
    ones (gamma_k / gamma_0, as R's ``acf``), which arch normalises slightly differently, so on a
    few series near the significance band the two pick different M. values: (n,), NaNs dropped;
    with fewer than 8 values the fallback n^(1/3) is returned.
    """
    x = as_float_array(values, "values").ravel()
    x = x[np.isfinite(x)]
    n = x.size
    if n < _MIN_N:
        return max(1.0, n ** (1.0 / 3.0))
    e = x - x.mean()
    k_n = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = math.ceil(math.sqrt(n)) + k_n
    b_max = math.ceil(min(3.0 * math.sqrt(n), n / 3.0))
    max_lag = min(m_max, n - 1)
    gamma = np.array([e[k:] @ e[: n - k] / n for k in range(max_lag + 1)])
    if gamma[0] <= 0:
        return 1.0
    insignificant = np.abs(gamma / gamma[0]) < 2.0 * math.sqrt(math.log10(n) / n)  # lag k -> |rho_k| in the band
    big_m = m_max
    for m in range(1, max_lag - k_n + 2):  # the first run of K insignificant lags m .. m + K - 1
        if insignificant[m : m + k_n].all():
            big_m = 2 * m
            break
    big_m = min(big_m, m_max, max_lag)
    k = np.arange(1, big_m + 1)
    lam = _flat_top(k / big_m)
    g = gamma[0] + 2.0 * np.sum(lam * gamma[1 : big_m + 1])
    big_g = 2.0 * np.sum(lam * k * gamma[1 : big_m + 1])
    if g == 0:
        return float(b_max)
    b = (2.0 * big_g**2 / (2.0 * g**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)  # g < 0 too, as np::b.star and arch
    return float(min(max(b, 1.0), b_max))


def stationary_bootstrap_indices(
    n: int, *, block_length: float, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_resamples, n) int indices of stationary-bootstrap resamples of a length-n series.

    Each resample starts a new block at t = 0 and, independently at every later position, with
    probability 1 / block_length; a block starts at a uniform random index and continues with
    consecutive indices, wrapping from n - 1 to 0 (Politis & Romano 1994).
    """
    if block_length < 1:
        raise ValueError(f"block_length must be >= 1 observation, got {block_length}")
    new_block = rng.random((n_resamples, n)) < 1.0 / block_length
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(n_resamples, n))
    pos = np.arange(n)
    last = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)  # (B, n) where each block began
    return (np.take_along_axis(starts, last, axis=1) + pos - last) % n


def _empty(n: int, n_resamples: int, confidence: float, block_length: float, reason: str) -> dict[str, Any]:
    return {
        "estimate": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "std_error": np.nan,
        "p_value": np.nan,
        "confidence": confidence,
        "block_length": block_length,
        "n": n,
        "n_resamples": n_resamples,
        "n_invalid": 0,
        "method": "stationary bootstrap, percentile interval",
        "reason": reason,
    }


def stationary_bootstrap(
    data: Any,
    statistic: Statistic,
    *,
    n_resamples: int = 2000,
    block_length: float | None = None,
    confidence: float = 0.95,
    null: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> dict[str, Any]:
    """Percentile interval of ``statistic`` under the stationary block bootstrap.

    data: (n,) or (n, k) array in time order (rows are resampled together, so paired series stay
    paired); rows with a NaN are dropped. statistic: maps a (B, n, k) batch of resamples to (B,)
    values (vectorised; the estimate is statistic(data[None])). block_length: expected block
    length in rows; default the largest :func:`optimal_block_length` over the k columns.
    Non-finite resample statistics are left out of the interval and counted in ``n_invalid``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (0.95 = 95%), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    x = as_float_array(data, "data")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"`data` must have shape (n,) or (n, k), got {x.shape}")
    x = x[np.isfinite(x).all(axis=1)]
    n = x.shape[0]
    if block_length is None:
        block_length = max(optimal_block_length(col) for col in x.T) if n else 1.0
    if n < _MIN_N:
        return _empty(n, n_resamples, confidence, float(block_length), f"need at least {_MIN_N} values, got {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    estimate = float(np.asarray(statistic(x[None]))[0])
    batch = max(1, _BATCH_ELEMENTS // x.size)
    draws = np.empty(n_resamples)
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        idx = stationary_bootstrap_indices(n, block_length=block_length, n_resamples=size, rng=rng)
        draws[start : start + size] = statistic(x[idx])
    finite = draws[np.isfinite(draws)]
    out = _empty(n, n_resamples, confidence, float(block_length), "")
    out.update(estimate=estimate, n_invalid=int(n_resamples - finite.size), reason=None)
    if finite.size < 2 or not np.isfinite(estimate):
        out["reason"] = "the statistic is undefined on the data or on (almost) every resample"
        return out
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    extreme = np.count_nonzero(np.abs(finite - estimate) >= abs(estimate - null))
    out.update(
        ci_low=float(low),
        ci_high=float(high),
        std_error=float(finite.std(ddof=1)),
        p_value=float((1 + extreme) / (1 + finite.size)),
    )
    return out


def _sharpe_batch(x: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe of each resample: x (B, n, k) -> (B, k); NaN where the std is zero."""
    std = x.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 0, x.mean(axis=1) / np.where(std > 0, std, 1.0), np.nan) * math.sqrt(
            periods_per_year
        )


def _series(values: Any, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.astype(np.float64)
    arr = as_float_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    return pd.Series(arr)


def sharpe_ratio_ci(
    returns: Any,
    *,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
    n_resamples: int = 2000,
    block_length: float | None = None,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Any]:
    """Bootstrap interval of the annualised Sharpe ratio (as ``metrics.sharpe_ratio``).

    returns: (n,) per-period simple returns; risk_free an annual rate. p_value tests Sharpe == 0.
    """
    ppy = check_periods_per_year(periods_per_year)
    excess = _series(returns, "returns").to_numpy() - _per_period_rate(risk_free, ppy)
    return stationary_bootstrap(
        excess,
        lambda x: _sharpe_batch(x, ppy)[:, 0],
        n_resamples=n_resamples,
        block_length=block_length,
        confidence=confidence,
        seed=seed,
    )


def sharpe_difference_ci(
    returns: Any,
    other: Any,
    *,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
    n_resamples: int = 2000,
    block_length: float | None = None,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Any]:
    """Bootstrap interval of Sharpe(returns) - Sharpe(other) on paired periods (annualised).

    returns, other: (n,) per-period simple returns of e.g. the strategy and its benchmark or
    baseline strategy. Series are inner-aligned on their index, arrays matched by position;
    periods with a NaN on either side are dropped. Both series are resampled with the same
    indices, so their correlation is kept (Ledoit & Wolf 2008 motivate this paired design).
    p_value tests a zero difference. Adds sharpe and sharpe_other (the two point estimates).
    """
    ppy = check_periods_per_year(periods_per_year)
    a, b = _series(returns, "returns"), _series(other, "other")
    if isinstance(returns, pd.Series) and isinstance(other, pd.Series):
        a, b = a.align(b, join="inner")
    elif len(a) != len(b):
        raise ValueError(f"`returns` ({len(a)}) and `other` ({len(b)}) must have the same length")
    rf = _per_period_rate(risk_free, ppy)
    paired = np.column_stack([a.to_numpy(), b.to_numpy()]) - rf  # (n, 2)

    def diff(x: np.ndarray) -> np.ndarray:
        s = _sharpe_batch(x, ppy)
        return s[:, 0] - s[:, 1]

    out = stationary_bootstrap(
        paired, diff, n_resamples=n_resamples, block_length=block_length, confidence=confidence, seed=seed
    )
    kept = paired[np.isfinite(paired).all(axis=1)]
    both = _sharpe_batch(kept[None], ppy)[0] if kept.shape[0] >= 2 else np.full(2, np.nan)
    out.update(sharpe=float(both[0]), sharpe_other=float(both[1]))
    return out


def mean_ci(
    values: Any,
    *,
    n_resamples: int = 2000,
    block_length: float | None = None,
    confidence: float = 0.95,
    null: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> dict[str, Any]:
    """Bootstrap interval of the mean of a series, e.g. the per-date Rank IC (values: (n,))."""
    return stationary_bootstrap(
        _series(values, "values").to_numpy(),
        lambda x: x.mean(axis=1)[:, 0],
        n_resamples=n_resamples,
        block_length=block_length,
        confidence=confidence,
        null=null,
        seed=seed,
    )
