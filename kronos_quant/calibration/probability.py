"""Walk-forward recalibration of up-move probabilities (isotonic regression or Platt scaling).

Owns turning the forecast table's raw ``prob_up`` into a recalibrated probability, fitted per
horizon step on past forecasts only. For the forecasts made at as-of t, the calibration set is
every forecast of the same step whose target timestamp is <= t (its outcome was known at t) and
whose outcome is present -- the same rule as the interval recalibration -- so a backtest using
the recalibrated probability does not look ahead.

Methods (``method``):
- "isotonic": a monotone step function from raw to observed frequency (Zadrozny & Elkan 2002),
  sklearn's ``IsotonicRegression``; flexible, needs a few hundred outcomes;
- "platt": a logistic regression on logit(prob) (Platt 1999), sklearn's ``LogisticRegression``
  without penalty; two parameters, stable with little history.

The outcome is "up" when the realised close is > the last close (``actual_col`` > ``last_col``),
or taken from a 0/1 ``outcome_col``. Knows nothing about models, signals, backtests or files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from kronos_quant.calibration._walkforward import (
    asof_and_target_times,
    require_columns,
    walk_forward_schedule,
)
from kronos_quant.metrics.direction import brier_decomposition, brier_score, log_loss, reliability_curve

logger = logging.getLogger(__name__)

__all__ = [
    "ProbMethod",
    "fit_prob_calibrator",
    "prob_outcomes",
    "recalibrate_prob_up_walk_forward",
    "prob_up_report",
]

ProbMethod = Literal["isotonic", "platt"]
_LOGIT_CLIP = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(q / (1.0 - q))[:, None]


def fit_prob_calibrator(
    prob: Any, outcome: Any, *, method: ProbMethod = "isotonic"
) -> Callable[[np.ndarray], np.ndarray] | None:
    """Fit a map raw probability -> calibrated probability on past (prob, 0/1 outcome) pairs.

    prob, outcome: (n,) arrays without NaN. Returns a function (m,) -> (m,) in
    [1 / (n + 2), 1 - 1 / (n + 2)] -- no finite sample justifies certainty (Laplace's rule of
    succession), and isotonic regression would otherwise return exactly 0 or 1 at the tails,
    which an occasional miss turns into an unbounded log loss -- or None when the outcomes hold
    a single class (nothing to learn; the caller keeps the raw value).
    """
    if method not in ("isotonic", "platt"):
        raise ValueError(f"method must be 'isotonic' or 'platt', got {method!r}")
    p = np.asarray(prob, dtype=np.float64)
    o = np.asarray(outcome, dtype=np.float64)
    if p.size < 2 or np.unique(o).size < 2:
        return None
    bound = 1.0 / (p.size + 2.0)
    # Both fits depend on the data only through (distinct prob, #up, #down): prob_up from S samples
    # takes at most S + 1 values, so fitting on those counts is exact and much faster.
    values, inverse = np.unique(p, return_inverse=True)
    ups = np.bincount(inverse, weights=o, minlength=values.size)
    counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=bound, y_max=1.0 - bound, increasing=True, out_of_bounds="clip")
        iso.fit(values, ups / counts, sample_weight=counts)
        return lambda new: np.asarray(iso.predict(np.asarray(new, dtype=np.float64)), dtype=np.float64)
    x = _logit(np.concatenate([values, values]))
    y = np.concatenate([np.ones(values.size), np.zeros(values.size)]).astype(np.int64)
    weight = np.concatenate([ups, counts - ups])
    keep = weight > 0
    platt = LogisticRegression(C=np.inf, solver="newton-cholesky").fit(x[keep], y[keep], sample_weight=weight[keep])
    return lambda new: np.clip(platt.predict_proba(_logit(np.asarray(new, dtype=np.float64)))[:, 1], bound, 1 - bound)


def prob_outcomes(
    frame: pd.DataFrame,
    *,
    actual_col: str = "actual_close",
    last_col: str = "last_close",
    outcome_col: str | None = None,
) -> np.ndarray:
    """(N,) 1.0 for up, 0.0 for not up, NaN where not known yet: ``outcome_col`` or actual > last."""
    if outcome_col is not None:
        require_columns(frame, [outcome_col])
        o = frame[outcome_col].to_numpy(dtype=np.float64)
        if np.any(np.isfinite(o) & (o != 0) & (o != 1)):
            raise ValueError(f"outcome column {outcome_col!r} must hold 0/1 (or NaN when unknown)")
        return o
    require_columns(frame, [actual_col, last_col])
    actual = frame[actual_col].to_numpy(dtype=np.float64)
    last = frame[last_col].to_numpy(dtype=np.float64)
    known = np.isfinite(actual) & np.isfinite(last)
    return np.where(known, (actual > last).astype(np.float64), np.nan)


def recalibrate_prob_up_walk_forward(
    forecasts: pd.DataFrame,
    *,
    prob_col: str = "prob_up",
    actual_col: str = "actual_close",
    last_col: str = "last_close",
    outcome_col: str | None = None,
    asof_col: str = "asof",
    target_time_col: str = "target_timestamp",
    step_col: str | None = "step",
    method: ProbMethod = "isotonic",
    window: int | None = None,
    min_history: int = 100,
    refit_every: int = 1,
) -> pd.DataFrame:
    """Recalibrated up-move probabilities for every forecast, fitted walk-forward per horizon step.

    forecasts: the tidy forecast table (one row per instrument x as-of x step) with ``prob_col``
    and the realised close joined as ``actual_col`` (NaN where not yet known), or a 0/1
    ``outcome_col``. For each as-of t and step h the calibrator is fitted on the rows of step h
    with target_timestamp <= t and a known outcome (the most recent ``window`` of them by target
    time; all when None). It is refitted at every ``refit_every``-th distinct as-of of the step
    (and only when new outcomes have arrived); in between the last fit is used, which is older,
    never newer. With fewer than ``min_history`` rows, or one outcome class only, the raw value
    is kept. ``step_col=None`` pools all steps.

    Cost: one fit per distinct as-of and step on up to ``window`` rows; fits use the counts per
    distinct probability (S + 1 values for prob_up from S samples), so they are cheap for sampled
    forecasts; raise ``refit_every`` for long histories of continuous probabilities.

    Returns a copy of ``forecasts`` (same index and row order) with ``{prob_col}_cal`` (the
    recalibrated probability, bounded away from 0 and 1 as in :func:`fit_prob_calibrator`; raw
    where not fitted) and ``{prob_col}_cal_n`` (calibration rows
    used; 0 where not fitted).
    """
    if not isinstance(forecasts, pd.DataFrame):
        raise ValueError(f"`forecasts` must be a pandas DataFrame, got {type(forecasts).__name__}")
    if min_history < 2 or refit_every < 1 or (window is not None and window < 2):
        raise ValueError(
            f"need min_history >= 2, refit_every >= 1 and window >= 2 or None, got {min_history}, "
            f"{refit_every}, {window}"
        )
    require_columns(forecasts, [prob_col, asof_col, target_time_col, step_col])
    t_asof, t_target = asof_and_target_times(forecasts, asof_col, target_time_col)
    prob = forecasts[prob_col].to_numpy(dtype=np.float64)
    outcome = prob_outcomes(forecasts, actual_col=actual_col, last_col=last_col, outcome_col=outcome_col)
    groups = forecasts[step_col].to_numpy() if step_col is not None else np.zeros(len(forecasts))
    calibrated = prob.copy()
    n_used = np.zeros(len(forecasts), dtype=np.int64)
    for group in pd.unique(pd.Series(groups)):
        rows = np.flatnonzero(groups == group)
        plan = walk_forward_schedule(rows, np.isfinite(outcome[rows]) & np.isfinite(prob[rows]), t_asof, t_target, window)
        by_asof = rows[np.argsort(plan.inverse, kind="stable")]  # the group's rows, as-of by as-of
        bounds = np.concatenate([[0], np.cumsum(np.bincount(plan.inverse, minlength=plan.ends.size))])
        mapping: Callable[[np.ndarray], np.ndarray] | None = None
        fitted_on = tried = (-1, -1)
        for j, (start, end) in enumerate(zip(plan.starts, plan.ends)):
            if end - start >= min_history and j % refit_every == 0 and (start, end) != tried:
                tried = (start, end)
                used = plan.known[start:end]
                fitted = fit_prob_calibrator(prob[used], outcome[used], method=method)
                if fitted is not None:  # one outcome class only: keep the previous fit, if any
                    mapping, fitted_on = fitted, tried
            if mapping is None:
                continue
            members = by_asof[bounds[j] : bounds[j + 1]]
            ok = members[np.isfinite(prob[members])]
            calibrated[ok] = mapping(prob[ok])
            n_used[members] = fitted_on[1] - fitted_on[0]
    out = forecasts.copy()
    out[f"{prob_col}_cal"] = calibrated
    out[f"{prob_col}_cal_n"] = n_used
    logger.info(
        "recalibrated %s (%s): %d of %d rows fitted (min_history=%d)",
        prob_col,
        method,
        int((n_used > 0).sum()),
        len(forecasts),
        min_history,
    )
    return out


def prob_up_report(
    recalibrated: pd.DataFrame,
    *,
    prob_col: str = "prob_up",
    actual_col: str = "actual_close",
    last_col: str = "last_close",
    outcome_col: str | None = None,
    n_bins: int = 10,
    only_recalibrated: bool = True,
    log_loss_eps: float = 1e-15,
) -> dict[str, Any]:
    """Brier score, log loss, Murphy decomposition and reliability data before and after recalibration.

    recalibrated: the output of :func:`recalibrate_prob_up_walk_forward` with outcomes known.
    Rows without an outcome are skipped; with ``only_recalibrated`` so are rows left raw, so both
    are scored on the same rows. Returns {n, before: {...}, after: {...}} with keys brier,
    log_loss (probabilities clipped to [log_loss_eps, 1 - log_loss_eps]), decomposition,
    reliability (see :mod:`kronos_quant.metrics.direction`).
    """
    cal_col, n_col = f"{prob_col}_cal", f"{prob_col}_cal_n"
    require_columns(recalibrated, [prob_col, cal_col, n_col])
    outcome = prob_outcomes(recalibrated, actual_col=actual_col, last_col=last_col, outcome_col=outcome_col)
    keep = np.isfinite(outcome)
    if only_recalibrated:
        keep &= recalibrated[n_col].to_numpy() > 0
    o = outcome[keep]
    report: dict[str, Any] = {"n": int(keep.sum())}
    for tag, col in (("before", prob_col), ("after", cal_col)):
        p = recalibrated[col].to_numpy(dtype=np.float64)[keep]
        report[tag] = {
            "brier": brier_score(p, o),
            "log_loss": log_loss(p, o, eps=log_loss_eps),
            "decomposition": brier_decomposition(p, o, n_bins=n_bins),
            "reliability": reliability_curve(p, o, n_bins=n_bins),
        }
    return report
