"""Inference on time series of per-date statistics: HAC (Newey-West) t-tests and Diebold-Mariano.

Owns the question "is the mean of this series different from zero, given that consecutive values
are correlated?" for series such as a per-date IC, a per-date hit rate or a per-date loss
difference. Overlapping labels (a 5-bar forward return scored every bar) make consecutive values
share most of their outcome, so the i.i.d. standard error sqrt(var / n) is too small and the
i.i.d. t-stat too large; a heteroskedasticity-and-autocorrelation-consistent (HAC) long-run
variance fixes that.

Conventions shared by every function here:
- inputs are 1-D (n,) in time order; NaNs are dropped first (the series is then treated as
  consecutive);
- two-sided p-values from Student's t with n - 1 degrees of freedom (both the HAC and the i.i.d.
  one; the i.i.d. one equals ``scipy.stats.ttest_1samp``, the HAC one statsmodels'
  ``OLS(y, ones).fit(cov_type="HAC", cov_kwds={"maxlags": L}, use_t=True)``);
- samples too short to say anything give NaN values with a ``reason`` string (None otherwise).

Knows nothing about signals, models, files or plots.

References: Newey & West (1987, 1994); Diebold & Mariano (1995); Harvey, Leybourne & Newbold (1997).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from kronos_quant.metrics._validation import as_float_array

logger = logging.getLogger(__name__)

__all__ = [
    "Kernel",
    "overlap_lags",
    "newey_west_lags",
    "long_run_variance",
    "ewc_dof",
    "ewc_long_run_variance",
    "hac_mean_test",
    "diebold_mariano",
    "diebold_mariano_table",
]

Kernel = Literal["bartlett", "uniform"]
_MIN_N = 3


def _finite_1d(values: Any, name: str) -> np.ndarray:
    arr = as_float_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional (a time series), got shape {arr.shape}")
    return arr[np.isfinite(arr)]


def _check_positive(value: int, name: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive whole number of bars, got {value}")
    return int(value)


def overlap_lags(horizon: int, *, rebalance: int = 1) -> int:
    """Number of lags over which consecutive labels overlap: ceil(horizon / rebalance) - 1.

    horizon: bars spanned by each label (5 for a 5-bar forward return); rebalance: bars between
    consecutive observations of the series. Daily scoring of a 5-bar label gives 4; scoring every
    5 bars (non-overlapping labels) gives 0.
    """
    h = _check_positive(horizon, "horizon")
    r = _check_positive(rebalance, "rebalance")
    return max(-(-h // r) - 1, 0)


def newey_west_lags(n: int, *, horizon: int = 1, rebalance: int = 1) -> int:
    """The lag count used by :func:`hac_mean_test` when none is given.

    max(ceil(horizon / rebalance) - 1, floor(4 (n / 100)^(2/9))): at least every lag over which
    labels overlap, and at least Newey & West's (1994) rule-of-thumb bandwidth for the Bartlett
    kernel, which guards against autocorrelation that does not come from overlap (a persistent
    signal). Capped at n - 1. n: number of observations (after dropping NaNs).
    """
    if n < 1:
        return 0
    auto = int(math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))
    return int(min(max(auto, overlap_lags(horizon, rebalance=rebalance)), n - 1))


def long_run_variance(values: Any, *, lags: int, kernel: Kernel = "bartlett") -> float:
    """HAC estimate of the long-run variance sum_j gamma_j of a series, in squared units of ``values``.

    gamma_0 + 2 sum_{j=1}^{lags} w_j gamma_j with gamma_j = (1/n) sum_t e_t e_{t-j}, e = x - mean(x),
    w_j = 1 - j / (lags + 1) ("bartlett", Newey & West 1987; never negative) or 1 ("uniform",
    the truncated kernel of Hansen & Hodrick 1980 / Diebold & Mariano 1995; may be negative).
    The variance of the sample mean is this over n. NaNs are dropped; NaN when fewer than 2 values.
    """
    if kernel not in ("bartlett", "uniform"):
        raise ValueError(f"kernel must be 'bartlett' or 'uniform', got {kernel!r}")
    if lags < 0:
        raise ValueError(f"lags must be >= 0, got {lags}")
    x = _finite_1d(values, "values")
    n = x.size
    if n < 2:
        return np.nan
    e = x - x.mean()
    total = float(e @ e) / n
    for j in range(1, min(int(lags), n - 1) + 1):
        weight = 1.0 - j / (lags + 1.0) if kernel == "bartlett" else 1.0
        total += 2.0 * weight * float(e[j:] @ e[:-j]) / n
    return total


def ewc_dof(n: int) -> int:
    """Degrees of freedom B of the equal-weighted cosine (EWC) test: floor(0.4 n^(2/3)), at least 2
    and at most n - 1 (Lazarus, Lewis, Stock & Watson 2018, "HAR Inference: Recommendations for
    Practice", JBES 36(4), their rule of thumb)."""
    return int(max(2, min(math.floor(0.4 * n ** (2.0 / 3.0)), n - 1)))


def ewc_long_run_variance(values: Any, *, dof: int | None = None) -> float:
    """Equal-weighted cosine estimate of the long-run variance of a series (squared units of ``values``).

    The mean of Lambda_j^2 over j = 1..B, with Lambda_j = sqrt(2 / n) sum_t cos(pi j (t - 1/2) / n) e_t
    and e = x - mean(x): the projections of the demeaned series on the first B cosines (a type-II
    DCT). mean(x) / sqrt(this / n) follows Student's t with B degrees of freedom under the null
    (fixed-b asymptotics), which keeps the test's size in samples where Newey-West over-rejects.
    dof: B (default :func:`ewc_dof`). NaNs are dropped; NaN when fewer than 3 values.
    """
    x = _finite_1d(values, "values")
    n = x.size
    if n < _MIN_N:
        return np.nan
    b = ewc_dof(n) if dof is None else int(dof)
    if not 1 <= b < n:
        raise ValueError(f"dof must lie in [1, n - 1 = {n - 1}], got {dof}")
    e = x - x.mean()
    t = np.arange(1, n + 1) - 0.5
    basis = np.cos(np.pi * np.outer(np.arange(1, b + 1), t) / n)  # (B, n)
    lam = math.sqrt(2.0 / n) * (basis @ e)  # (B,)
    return float(lam @ lam) / b


def _two_sided_t(t: float, df: int) -> float:
    return float(2.0 * stats.t.sf(abs(t), df)) if np.isfinite(t) else np.nan


def hac_mean_test(
    values: Any,
    *,
    horizon: int = 1,
    rebalance: int = 1,
    lags: int | None = None,
    null: float = 0.0,
) -> dict[str, Any]:
    """t-test of mean(values) == ``null`` with Newey-West (Bartlett HAC) and i.i.d. standard errors.

    values: (n,) a per-date series in time order (e.g. daily IC; NaNs dropped). horizon / rebalance
    in bars set the default lag count (:func:`newey_west_lags`); ``lags`` overrides it. The HAC
    standard error is sqrt(long_run_variance / n) without a small-sample factor, as statsmodels'
    OLS on a constant with cov_type="HAC" (use_correction=False, its default).

    Beside them, the equal-weighted cosine test (``t_stat_ewc``, ``p_value_ewc`` from Student's t with
    ``ewc_dof`` degrees of freedom; :func:`ewc_long_run_variance`): Newey-West with few dates and
    overlapping labels over-rejects (measured: about 13% at the 5% level for a persistent no-skill
    signal over ~54 dates), the EWC test keeps its size (about 5%) -- quote a difference as
    significant only when both agree.

    Returns {mean, std (ddof=1), n, nw_lags, std_error, t_stat, p_value (HAC), std_error_iid,
    t_stat_iid, p_value_iid, t_stat_ewc, p_value_ewc, ewc_dof, reason}. With n < 3, or zero
    variance, the test values are NaN and ``reason`` says why.
    """
    x = _finite_1d(values, "values")
    n = int(x.size)
    used = newey_west_lags(n, horizon=horizon, rebalance=rebalance) if lags is None else int(lags)
    if used < 0:
        raise ValueError(f"lags must be >= 0, got {lags}")
    out: dict[str, Any] = {
        "mean": float(x.mean()) if n else np.nan,
        "std": float(x.std(ddof=1)) if n > 1 else np.nan,
        "n": n,
        "nw_lags": used,
        "std_error": np.nan,
        "t_stat": np.nan,
        "p_value": np.nan,
        "std_error_iid": np.nan,
        "t_stat_iid": np.nan,
        "p_value_iid": np.nan,
        "t_stat_ewc": np.nan,
        "p_value_ewc": np.nan,
        "ewc_dof": ewc_dof(n) if n >= _MIN_N else 0,
        "reason": None,
    }
    if n < _MIN_N:
        out["reason"] = f"need at least {_MIN_N} finite values for a t-test, got {n}"
        return out
    if used >= n:
        out["reason"] = f"{used} lags need more than {n} values"
        return out
    if not out["std"] > 0:
        out["reason"] = "the series is constant (zero variance)"
        return out
    diff = out["mean"] - null
    se_iid = out["std"] / math.sqrt(n)
    lrv = long_run_variance(x, lags=used, kernel="bartlett")
    out.update(std_error_iid=se_iid, t_stat_iid=diff / se_iid, p_value_iid=_two_sided_t(diff / se_iid, n - 1))
    if lrv > 0:
        se = math.sqrt(lrv / n)
        out.update(std_error=se, t_stat=diff / se, p_value=_two_sided_t(diff / se, n - 1))
    else:
        out["reason"] = "the HAC long-run variance is zero"
    ewc = ewc_long_run_variance(x)
    if ewc > 0:
        t_ewc = diff / math.sqrt(ewc / n)
        out.update(t_stat_ewc=t_ewc, p_value_ewc=_two_sided_t(t_ewc, out["ewc_dof"]))
    return out


def diebold_mariano(
    loss_model: Any,
    loss_baseline: Any,
    *,
    horizon: int = 1,
    rebalance: int = 1,
    lags: int | None = None,
    kernel: Kernel = "bartlett",
) -> dict[str, Any]:
    """Diebold-Mariano test of equal expected loss, with the Harvey-Leybourne-Newbold correction.

    loss_model, loss_baseline: (n,) per-date losses in time order (e.g. squared errors averaged
    over the instruments of each date); pairs with a NaN on either side are dropped. d = model -
    baseline; DM = mean(d) / sqrt(V / n) with V the long-run variance of d over ``lags`` lags.
    The default lags and kernel are those of every other t-test here (:func:`hac_mean_test`, the IC
    t-stats): :func:`newey_west_lags` -- at least the ceil(horizon / rebalance) - 1 lags over which
    the losses overlap, and at least the Newey-West bandwidth -- with the Bartlett kernel.
    ``kernel="uniform"`` (with ``lags`` = h - 1) is the truncated kernel of the original test; when
    its variance is not positive the Bartlett kernel is used instead (``kernel_used`` says which).
    The HLN statistic is DM * sqrt((n + 1 - 2k + k (k - 1) / n) / n) with k = ceil(horizon /
    rebalance), the forecast horizon in observations (HLN's h), compared with Student's t with
    n - 1 degrees of freedom.

    Returns {n, lags, kernel_used, mean_loss_model, mean_loss_baseline, mean_difference,
    loss_ratio (model / baseline), dm_stat (HLN-corrected), dm_stat_uncorrected, p_value
    (two-sided), reason}. Negative statistics favour the model. NaN values with a ``reason``
    when fewer than 3 pairs remain or the difference is constant.
    """
    a = as_float_array(loss_model, "loss_model")
    b = as_float_array(loss_baseline, "loss_baseline")
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"loss_model and loss_baseline must be 1-D series of the same length, got {a.shape} and {b.shape}"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = a - b
    n = int(d.size)
    used = newey_west_lags(n, horizon=horizon, rebalance=rebalance) if lags is None else int(lags)
    mean_b = float(b.mean()) if n else np.nan
    out: dict[str, Any] = {
        "n": n,
        "lags": used,
        "kernel_used": kernel,
        "mean_loss_model": float(a.mean()) if n else np.nan,
        "mean_loss_baseline": mean_b,
        "mean_difference": float(d.mean()) if n else np.nan,
        "loss_ratio": float(a.mean()) / mean_b if n and mean_b != 0 else np.nan,
        "dm_stat": np.nan,
        "dm_stat_uncorrected": np.nan,
        "p_value": np.nan,
        "reason": None,
    }
    k = overlap_lags(horizon, rebalance=rebalance) + 1
    correction = (n + 1 - 2 * k + k * (k - 1) / n) / n if n else np.nan
    if n < _MIN_N or used >= n or not correction > 0:
        out["reason"] = f"{n} paired losses are too few for a DM test with {used} lags"
        return out
    lrv = long_run_variance(d, lags=used, kernel=kernel)
    if not lrv > 0 and kernel == "uniform":
        lrv = long_run_variance(d, lags=used, kernel="bartlett")
        out["kernel_used"] = "bartlett"
    if not lrv > 0:
        out["reason"] = "the loss difference is constant (zero long-run variance)"
        return out
    dm = out["mean_difference"] / math.sqrt(lrv / n)
    hln = dm * math.sqrt(correction)
    out.update(dm_stat=hln, dm_stat_uncorrected=dm, p_value=_two_sided_t(hln, n - 1))
    return out


def _dated_means(frame: pd.DataFrame, date_col: str, cols: tuple[str, str]) -> pd.DataFrame:
    return frame.groupby(date_col, sort=True)[list(cols)].mean()


def diebold_mariano_table(
    losses: pd.DataFrame,
    *,
    model_col: str,
    baseline_col: str,
    date_col: str = "asof",
    step_col: str | None = "step",
    rebalance: int = 1,
    kernel: Kernel = "bartlett",
) -> dict[str, Any]:
    """DM tests, pooled and per horizon step, from a long table of per-cell losses.

    losses: one row per (date, instrument, step) with the model's and the baseline's loss of the
    same forecast target (e.g. squared return error or CRPS). Only rows where both losses are
    finite count, so both are scored on the same cells. The losses are first averaged
    cross-sectionally per date (over instruments, and for "pooled" over steps too), then the DM
    test runs on the resulting date series: the cross-sectional mean removes the
    within-date correlation the test cannot handle, and the date series keeps the time
    dependence it can. Lags follow :func:`diebold_mariano` (the Newey-West rule of every t-test here):
    per step s at least ceil(s / rebalance) - 1 (an s-step loss overlaps the next s - 1 daily ones),
    pooled at least ceil(H / rebalance) - 1 with H the largest step.

    Returns {"pooled": {...}, "per_step": [{"step": s, ...}, ...]} with the keys of
    :func:`diebold_mariano`. Without ``step_col`` the table is one horizon (H = 1) and
    "per_step" is empty.
    """
    need = [c for c in (model_col, baseline_col, date_col, step_col) if c is not None]
    missing = [c for c in need if c not in losses.columns]
    if missing:
        raise ValueError(
            f"the loss table lacks column(s) {missing}; it has {list(losses.columns)}. "
            "Pass model_col=, baseline_col=, date_col=, step_col= naming its columns"
        )
    cols = (model_col, baseline_col)
    values = losses[list(cols)].astype(np.float64)
    frame = losses.loc[np.isfinite(values.to_numpy()).all(axis=1), need]
    steps: list[Any] = sorted(pd.unique(frame[step_col])) if step_col is not None else []
    max_step = int(max(steps)) if steps else 1
    pooled_means = _dated_means(frame, date_col, cols)
    pooled = diebold_mariano(
        pooled_means[model_col], pooled_means[baseline_col], horizon=max_step, rebalance=rebalance, kernel=kernel
    )
    per_step: list[Mapping[str, Any]] = []
    for step in steps:
        means = _dated_means(frame.loc[frame[step_col] == step], date_col, cols)
        result = diebold_mariano(
            means[model_col], means[baseline_col], horizon=int(step), rebalance=rebalance, kernel=kernel
        )
        per_step.append({"step": int(step), **result})
    return {"pooled": pooled, "per_step": per_step}
