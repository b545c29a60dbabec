"""Sharpe ratios under estimation error and multiple testing: probabilistic and deflated Sharpe.

Owns the probabilistic Sharpe ratio (PSR: the probability that the true Sharpe exceeds a
reference, given the track record's length, skewness and kurtosis; Bailey & Lopez de Prado 2012,
"The Sharpe Ratio Efficient Frontier", J. of Risk 15(2)) and the deflated Sharpe ratio (DSR: the
PSR against the Sharpe the best of N skill-less trials is expected to reach; Bailey & Lopez de
Prado 2014, "The Deflated Sharpe Ratio", J. of Portfolio Management 40(5)).

Units: the formulas work with per-period (non-annualised) Sharpe ratios; the public functions take
and return *annualised* Sharpe ratios and variances (per-period x sqrt(periods_per_year) and
x periods_per_year) so they can be compared with ``metrics.sharpe_ratio``. Skewness and kurtosis
are the plain sample moments (kurtosis not in excess: 3 for a normal distribution), as in the
papers. Short samples (< 3 returns) or degenerate moments give NaN with a ``reason``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from kronos_quant.metrics._validation import as_return_series, check_periods_per_year
from kronos_quant.metrics.portfolio import _per_period_rate

__all__ = [
    "EULER_GAMMA",
    "sharpe_moments",
    "psr_from_moments",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "deflated_sharpe_ratio",
]

EULER_GAMMA = 0.5772156649015329
_MIN_N = 3


def sharpe_moments(returns: Any, *, periods_per_year: float = 252, risk_free: float = 0.0) -> dict[str, float]:
    """Sharpe ratio and the moments the PSR needs, from (n,) per-period simple returns.

    Returns {sharpe (annualised, ddof=1 std), sharpe_per_period, n, skew, kurtosis (non-excess)};
    NaN values when n < 3 or the returns are constant.
    """
    ppy = check_periods_per_year(periods_per_year)
    x = as_return_series(returns).to_numpy() - _per_period_rate(risk_free, ppy)
    n = int(x.size)
    out = {"sharpe": np.nan, "sharpe_per_period": np.nan, "n": n, "skew": np.nan, "kurtosis": np.nan}
    if n < _MIN_N or np.ptp(x) == 0:
        return out
    e = x - x.mean()
    m2 = float(np.mean(e**2))
    sr = float(x.mean() / x.std(ddof=1))
    out.update(
        sharpe=sr * math.sqrt(ppy),
        sharpe_per_period=sr,
        skew=float(np.mean(e**3) / m2**1.5),
        kurtosis=float(np.mean(e**4) / m2**2),
    )
    return out


def psr_from_moments(
    *, sharpe: float, n: int, skew: float, kurtosis: float, benchmark_sharpe: float = 0.0
) -> float:
    """PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2)).

    All Sharpe ratios per period (not annualised); kurtosis non-excess. NaN when n < 3, an input
    is NaN, or the variance term is not positive.
    """
    if n < _MIN_N or not all(np.isfinite(v) for v in (sharpe, skew, kurtosis, benchmark_sharpe)):
        return np.nan
    var_term = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if var_term <= 0:
        return np.nan
    z = (sharpe - benchmark_sharpe) * math.sqrt(n - 1) / math.sqrt(var_term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(*, n_trials: int, trial_sharpe_variance: float) -> float:
    """Expected largest of ``n_trials`` Sharpe ratios of skill-less strategies (true Sharpe 0).

    sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))), g the Euler-Mascheroni constant
    (the false strategy theorem, Bailey & Lopez de Prado 2014, eq. in Appendix A.1). V is the
    variance of the trials' Sharpe ratios, in the squared units of the result. 0 for one trial.
    """
    if n_trials < 1 or int(n_trials) != n_trials:
        raise ValueError(f"n_trials must be a positive whole number of configurations tried, got {n_trials}")
    if not trial_sharpe_variance >= 0:
        raise ValueError(f"trial_sharpe_variance must be >= 0, got {trial_sharpe_variance}")
    if n_trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * stats.norm.ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(trial_sharpe_variance) * quantiles)


def probabilistic_sharpe_ratio(
    returns: Any,
    *,
    benchmark_sharpe: float = 0.0,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """Probability that the true Sharpe ratio of ``returns`` exceeds ``benchmark_sharpe``.

    returns: (n,) per-period simple returns. benchmark_sharpe: annualised reference Sharpe (0, or
    the benchmark's own ``sharpe_ratio``). Returns {psr, sharpe, benchmark_sharpe (annualised),
    n, skew, kurtosis, reason}; psr in [0, 1], > 0.95 is the usual bar for "significant".
    """
    ppy = check_periods_per_year(periods_per_year)
    mom = sharpe_moments(returns, periods_per_year=ppy, risk_free=risk_free)
    psr = psr_from_moments(
        sharpe=mom["sharpe_per_period"],
        n=mom["n"],
        skew=mom["skew"],
        kurtosis=mom["kurtosis"],
        benchmark_sharpe=benchmark_sharpe / math.sqrt(ppy),
    )
    reason = None
    if not np.isfinite(psr):
        reason = (
            f"need at least {_MIN_N} non-constant returns and a finite benchmark Sharpe, got n={mom['n']}"
            if not np.isfinite(mom["sharpe"]) or not np.isfinite(benchmark_sharpe)
            else "the Sharpe ratio's variance term 1 - skew SR + (kurtosis - 1) / 4 SR^2 is not positive"
        )
    return {
        "psr": psr,
        "sharpe": mom["sharpe"],
        "benchmark_sharpe": float(benchmark_sharpe),
        "n": mom["n"],
        "skew": mom["skew"],
        "kurtosis": mom["kurtosis"],
        "reason": reason,
    }


def deflated_sharpe_ratio(
    returns: Any,
    *,
    n_trials: int,
    trial_sharpe_variance: float | None = None,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """Deflated Sharpe ratio: the PSR against the expected best Sharpe of ``n_trials`` skill-less trials.

    returns: (n,) per-period simple returns of the selected strategy. n_trials: number of
    configurations tried (a sweep's size, ``--trials N``). trial_sharpe_variance: variance of the
    trials' *annualised* Sharpe ratios; when None it is the sampling variance of a zero Sharpe
    estimated from n returns, ppy / (n - 1) annualised -- what skill-less, independent trials
    would show (say so when reporting; ``trial_sharpe_variance_source`` records it).

    Returns {dsr, expected_max_sharpe (annualised SR0), sharpe, n, n_trials,
    trial_sharpe_variance, trial_sharpe_variance_source, skew, kurtosis, reason}.
    """
    ppy = check_periods_per_year(periods_per_year)
    expected_max_sharpe(n_trials=n_trials, trial_sharpe_variance=0.0)  # validates n_trials
    mom = sharpe_moments(returns, periods_per_year=ppy, risk_free=risk_free)
    source = "given"
    if trial_sharpe_variance is None:
        source = "null sampling variance ppy / (n - 1)"
        trial_sharpe_variance = ppy / (mom["n"] - 1) if mom["n"] > 1 else np.nan
    sr0 = (
        expected_max_sharpe(n_trials=n_trials, trial_sharpe_variance=trial_sharpe_variance / ppy)
        if np.isfinite(trial_sharpe_variance)
        else np.nan
    )
    result = probabilistic_sharpe_ratio(
        returns, benchmark_sharpe=sr0 * math.sqrt(ppy), periods_per_year=ppy, risk_free=risk_free
    )
    return {
        "dsr": result["psr"],
        "expected_max_sharpe": sr0 * math.sqrt(ppy),
        "sharpe": mom["sharpe"],
        "n": mom["n"],
        "n_trials": int(n_trials),
        "trial_sharpe_variance": float(trial_sharpe_variance),
        "trial_sharpe_variance_source": source,
        "skew": mom["skew"],
        "kurtosis": mom["kurtosis"],
        "reason": result["reason"],
    }
