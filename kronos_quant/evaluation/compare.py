"""The model against each baseline and the benchmark: tests on paired series, and one verdict line each.

Diebold-Mariano tests of the per-forecast losses (return MSE and CRPS, pooled over steps and per
step; Newey-West variance with the lags of the IC tests, Harvey-Leybourne-Newbold correction), a Newey-West test
of the per-date Rank IC difference and a stationary-bootstrap interval of the Sharpe difference.
Both sides are always scored on the same cells (``evaluation.cells``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.evaluation.scoring import Bootstrap, interval
from kronos_quant.metrics import NO_SIGNAL, diebold_mariano_table, hac_mean_test, sharpe_difference_ci

__all__ = ["dm_tests", "compare", "verdict"]

_KEYS = ["asof", "instrument", "step"]
_ALPHA = 0.05


def _dm_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    return {"statistic": result["dm_stat"], "p_value": result["p_value"], "n": result["n"], "lags": result["lags"],
            "loss_ratio": result["loss_ratio"], "mean_difference": result["mean_difference"],
            "kernel": result["kernel_used"], "reason": result["reason"]}


def dm_tests(model: pd.DataFrame, other: pd.DataFrame, *, loss: str, rebalance: int
             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """Pooled and per-step DM tests of ``loss`` ("se" or "crps" of ``metrics.forecast_losses``) on the
    forecasts both made; (None, None) when no pair has both losses. Negative statistics favour the model."""
    merged = model.merge(other, on=_KEYS, suffixes=("_model", "_other"))
    cols = [f"{loss}_model", f"{loss}_other"]
    if merged.empty or not np.isfinite(merged[cols].to_numpy(dtype=np.float64)).all(axis=1).any():
        return None, None
    table = diebold_mariano_table(merged, model_col=cols[0], baseline_col=cols[1], rebalance=rebalance)
    steps = [{"step": s["step"], **_dm_summary(s)} for s in table["per_step"]]
    return _dm_summary(table["pooled"]), steps


def compare(model: Mapping[str, Any], other: Mapping[str, Any], *, horizon: int, rebalance: int, boot: Bootstrap,
            periods_per_year: float) -> dict[str, Any]:
    """The comparison entry of metrics.json for the model against ``other``.

    model, other: {"row": leaderboard row, "series": per-date frame (ic, rank_ic), "returns": net
    returns from the first execution, "losses": ``forecast_losses`` frame or None}.
    """
    row, against = model["row"], other["row"]
    out: dict[str, Any] = {"model": row["name"], "against": against["name"], "kind": against["kind"],
                           "dm_mse": None, "dm_mse_per_step": None, "dm_mse_last_step": None, "dm_crps": None,
                           "dm_crps_per_step": None}
    if model.get("losses") is not None and other.get("losses") is not None:
        for loss, key in (("se", "dm_mse"), ("crps", "dm_crps")):
            out[key], out[f"{key}_per_step"] = dm_tests(model["losses"], other["losses"], loss=loss,
                                                        rebalance=rebalance)
        # the h-step test: the same forecasts as the leaderboard's return_mse / mse_ratio_rw, so the verdict's
        # ratio is the table's (against the random walk, whose mean is the no-change forecast, exactly)
        out["dm_mse_last_step"] = next((s for s in out["dm_mse_per_step"] or [] if s["step"] == horizon), None)
    diff = pd.Series(np.nan, dtype=np.float64)
    if other.get("series") is not None:
        diff = (model["series"]["rank_ic"] - other["series"]["rank_ic"]).dropna()
    test = hac_mean_test(diff.to_numpy(), horizon=horizon, rebalance=rebalance)
    out.update(rank_ic_diff=test["mean"], rank_ic_diff_t=test["t_stat"], rank_ic_diff_p=test["p_value"],
               rank_ic_diff_nw_lags=test["nw_lags"], rank_ic_diff_p_ewc=test["p_value_ewc"])
    sharpe = sharpe_difference_ci(model["returns"], other["returns"], periods_per_year=periods_per_year,
                                  **boot.kwargs())
    out.update(sharpe_diff=sharpe["estimate"], sharpe_diff_ci=interval(sharpe), sharpe_model=sharpe["sharpe"],
               sharpe_other=sharpe["sharpe_other"])
    out["verdict"] = verdict(out, row, against)
    return out


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) and math.isfinite(value) else "n/a"


def _p(p: Any) -> str:
    if not isinstance(p, int | float) or not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p {p:.3f}"


def _significant(p: Any) -> bool:
    return isinstance(p, int | float) and math.isfinite(p) and p < _ALPHA


def _ic_significant(p_nw: Any, p_ewc: Any) -> bool:
    """An IC (or IC difference) is called significant only when the Newey-West and the size-robust
    EWC tests agree: Newey-West alone over-rejects over few dates with overlapping labels."""
    return _significant(p_nw) and _significant(p_ewc)


def _ewc(p: Any) -> str:
    return f", EWC {_p(p)}" if isinstance(p, int | float) and math.isfinite(p) else ""


def verdict(comparison: Mapping[str, Any], model: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """One line in words and numbers, e.g. ``kronos-demo vs historical drift: 5-step return MSE x1.45 (DM
    p < 0.001, worse); Rank IC +0.012 vs -0.003 (difference NW t 0.85: no significant difference); Sharpe
    0.90 vs 0.65, difference +0.25, 95% CI [-0.40, +0.90]``. Significance at 5%, two-sided.

    The MSE clause is the h-step test (``dm_mse_last_step``: the forecasts of the leaderboard's
    return_mse), so against the random walk its ratio is the table's "vs no change" ratio; without it
    (an older comparison) the pooled ``dm_mse``."""
    parts = []
    dm = comparison.get("dm_mse_last_step") or comparison.get("dm_mse")
    if dm:
        stat = dm["statistic"]
        word = ("better" if stat < 0 else "worse") if _significant(dm["p_value"]) else "no significant difference"
        step = f"{dm['step']}-step " if dm.get("step") else ""
        parts.append(f"{step}return MSE x{_num(dm['loss_ratio'], '.2f')} (DM {_p(dm['p_value'])}, {word})")
    parts.append(_rank_ic_part(comparison, model, other))
    ci = comparison["sharpe_diff_ci"]
    parts.append(f"Sharpe {_num(comparison['sharpe_model'], '.2f')} vs {_num(comparison['sharpe_other'], '.2f')}, "
                 f"difference {_num(comparison['sharpe_diff'], '+.2f')}, {round(ci['confidence'] * 100)}% CI "
                 f"[{_num(ci['low'], '+.2f')}, {_num(ci['high'], '+.2f')}]")
    if other["kind"] == "benchmark":
        parts.append(f"PSR {_num(model.get('psr'), '.2f')}, DSR {_num(model.get('dsr'), '.2f')} "
                     f"({model.get('n_trials', 1)} trial{'s' if model.get('n_trials', 1) != 1 else ''})")
    return f"{_label(model)} vs {_label(other)}: " + "; ".join(parts)


def _no_signal(ic: Mapping[str, Any] | None) -> bool:
    return bool(ic) and ic.get("reason") == NO_SIGNAL  # type: ignore[union-attr]


def _rank_ic_part(comparison: Mapping[str, Any], model: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """The Rank IC clause: the model's own Newey-West test against the benchmark (no IC) or a baseline
    without a cross-sectional signal (a constant score: its IC is undefined, so the model's IC is what
    is tested), else the test of the per-date difference; "n/a" when the model has no signal itself."""
    m_ic = model["rank_ic"]
    if _no_signal(m_ic):
        return f"Rank IC n/a: {NO_SIGNAL}"
    if other.get("rank_ic") is None or _no_signal(other["rank_ic"]):
        t, p_ewc = m_ic["t_stat"], m_ic.get("p_value_ewc")
        word = ("evidence of skill" if t > 0 else "significantly negative") \
            if _ic_significant(m_ic["p_value"], p_ewc) else "no evidence of skill"
        text = (f"Rank IC {_num(m_ic['mean'], '+.3f')} (NW t {_num(t, '.2f')}, {m_ic['nw_lags']} lags"
                f"{_ewc(p_ewc)}: {word})")
        return text + (f", {_label(other)} n/a: {NO_SIGNAL}" if other.get("rank_ic") is not None else "")
    t, p_ewc = comparison["rank_ic_diff_t"], comparison.get("rank_ic_diff_p_ewc")
    word = ("higher" if t > 0 else "lower") if _ic_significant(comparison["rank_ic_diff_p"], p_ewc) \
        else "no significant difference"
    return (f"Rank IC {_num(m_ic['mean'], '+.3f')} vs {_num(other['rank_ic']['mean'], '+.3f')} "
            f"(difference NW t {_num(t, '.2f')}{_ewc(p_ewc)}: {word})")


def _label(row: Mapping[str, Any]) -> str:
    """The leaderboard row's display name: the one name tables, verdicts and figures use."""
    return str(row.get("display_name") or row["name"])
