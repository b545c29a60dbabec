"""Inputs for the report tests: a hand-written metrics dict that follows the comparison contract
(/work/notes/metrics-contract.md: leaderboard, comparisons, verdicts, unscored) and a real tiny run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kronos_quant.config import load_config

NAN = float("nan")


def _ic(mean: float, t: float, p: float, n: int = 120) -> dict[str, Any]:
    return {"mean": mean, "std": 0.2, "icir": mean / 0.2, "t_stat": t, "t_stat_iid": t * 1.3, "p_value": p,
            "p_value_iid": p / 2, "nw_lags": 4, "n": n, "p_value_ewc": p * 1.5, "ewc_dof": 9}


def _perf(ret: float, vol: float, sharpe: float, mdd: float, turnover: float | None = None) -> dict[str, Any]:
    out = {"annual_return": ret, "annual_volatility": vol, "sharpe_ratio": sharpe, "sortino_ratio": sharpe * 1.4,
           "max_drawdown": mdd, "calmar_ratio": ret / abs(mdd), "total_return": ret * 2}
    if turnover is not None:
        out.update(mean_turnover=turnover, annual_turnover=turnover * 50)
    return out


def contract_metrics() -> dict[str, Any]:
    """A run of kronos-demo against a random-walk forecaster, a momentum signal and the benchmark."""
    model = {
        "name": "kronos-demo", "kind": "model", "display_name": "kronos-demo expected return",
        "ic": _ic(0.061, 2.9, 0.004), "rank_ic": _ic(0.052, 2.52, 0.012),
        "rank_ic_ci": {"low": 0.011, "high": 0.093, "confidence": 0.95},
        "return_mse": 0.00145, "return_mse_rw": 0.001, "mse_ratio_rw": 1.45, "crps": 0.0123,
        "coverage_90_last_step": {"coverage": 0.66, "attainable": 0.78, "recalibrated": 0.88},
        "coverage_90_all_steps": {"coverage": 0.70, "attainable": 0.78, "recalibrated": 0.89},
        "prob_up": {"brier": 0.26, "brier_climatology": 0.25, "brier_skill": -0.04},
        "backtest": {"net": _perf(0.12, 0.18, 0.90, -0.15, 0.35), "gross": _perf(0.141, 0.18, 1.02, -0.14)},
        "cost_drag": 0.021, "sharpe_ci": {"low": -0.2, "high": 1.9, "confidence": 0.95},
        "psr": 0.93, "psr_vs_benchmark": 0.71, "dsr": 0.64,
    }
    random_walk = {
        "name": "random_walk", "kind": "baseline", "display_name": "random walk",
        "ic": _ic(NAN, NAN, NAN), "rank_ic": _ic(NAN, NAN, NAN),
        "return_mse": 0.001, "return_mse_rw": 0.001, "mse_ratio_rw": 1.0, "crps": 0.0101,
        "coverage_90_all_steps": {"coverage": 0.80, "attainable": 0.78, "recalibrated": 0.90},
        "backtest": {"net": _perf(0.04, 0.2, 0.3, -0.2, 0.1), "gross": _perf(0.05, 0.2, 0.35, -0.19)},
        "cost_drag": 0.01,
    }
    momentum = {
        "name": "momentum(20, skip 1)", "kind": "baseline", "display_name": "momentum(20, skip 1)",
        "ic": _ic(0.02, 0.9, 0.37), "rank_ic": _ic(0.018, 0.85, 0.4),
        "return_mse": None, "return_mse_rw": None, "mse_ratio_rw": NAN, "crps": None,
        "backtest": {"net": _perf(0.07, 0.19, 0.55, -0.18, 0.2), "gross": _perf(0.08, 0.19, 0.6, -0.17)},
        "cost_drag": 0.012, "sharpe_ci": {"low": -0.5, "high": 1.6, "confidence": 0.95},
    }
    benchmark = {"name": "equal_weight", "kind": "benchmark", "display_name": "equal-weight benchmark",
                 "backtest": {"net": _perf(0.06, 0.16, 0.40, -0.16), "gross": None}}
    comparisons = [
        {"model": "kronos-demo", "against": "random_walk", "kind": "baseline",
         "dm_mse": {"statistic": 4.1, "p_value": 0.0004, "n": 500, "lags": 4},
         "dm_mse_per_step": [{"step": s, "statistic": 3.0, "p_value": 0.01} for s in range(1, 6)],
         "dm_crps": {"statistic": 2.2, "p_value": 0.03, "n": 500, "lags": 4},
         "rank_ic_diff": NAN, "rank_ic_diff_t": NAN, "rank_ic_diff_p": NAN,
         "sharpe_diff": 0.6, "sharpe_diff_ci": {"low": -0.4, "high": 1.5, "confidence": 0.95},
         "verdict": "kronos-demo vs random walk: return MSE x1.45 (DM p < 0.001, worse); Sharpe 0.90 vs 0.30, "
                    "difference 95% CI [-0.4, 1.5]"},
        {"model": "kronos-demo", "against": "momentum(20, skip 1)", "kind": "baseline", "dm_mse": None,
         "rank_ic_diff": 0.034, "rank_ic_diff_t": 1.2, "rank_ic_diff_p": 0.23,
         "sharpe_diff": 0.35, "sharpe_diff_ci": {"low": -0.6, "high": 1.2, "confidence": 0.95},
         "verdict": "kronos-demo vs momentum(20, skip 1): Rank IC +0.034 (NW t 1.20: no evidence of a difference); "
                    "Sharpe 0.90 vs 0.55, difference 95% CI [-0.6, 1.2]"},
        {"model": "kronos-demo", "against": "equal_weight", "kind": "benchmark", "dm_mse": None,
         "sharpe_diff": 0.5, "sharpe_diff_ci": {"low": 0.05, "high": 1.1, "confidence": 0.95},
         "verdict": "kronos-demo vs equal-weight benchmark: Sharpe 0.90 vs 0.40, difference 95% CI [0.05, 1.1] <&>"},
    ]
    return {
        "ic": 0.061, "rank_ic": 0.052, "icir": 0.3, "rank_icir": 0.26, "mse": 0.00145, "mse_random_walk": 0.001,
        "sharpe": 0.9, "max_drawdown": -0.15, "annual_return": 0.12, "turnover": 0.35,
        "label": "next_open", "label_description": "open t+1 \u2192 open t+1+5", "horizon": 5, "rebalance": 5,
        "n_trials": 3, "leaderboard": [model, random_walk, momentum, benchmark], "comparisons": comparisons,
        "verdicts": [c["verdict"] for c in comparisons],
        "unscored": [{"instrument": "ZZZ", "reason": "too little history (40 bars < lookback 128)"}],
    }


CONTRACT_CONFIG = {
    "name": "momentum", "description": "Kronos expected-return momentum, top-5 long-only.",
    "data": {"source": "file", "path": "data/prices.csv"},
    "model": {"id": "kronos-demo", "revision": None},
    "forecast": {"horizon": 5, "rebalance": 5, "samples": 8, "T": 1.0, "top_p": 0.9, "lookback": 128, "seed": 0},
    "signal": {"name": "expected_return", "params": {"path": "mean"}, "transforms": ["winsorize", "zscore"]},
    "baseline": [{"name": "random_walk"}, {"name": "momentum", "params": {"lookback": 20, "skip": 1}}],
    "portfolio": {"name": "topk", "params": {"k": 5}, "max_weight": 0.25, "cash_buffer": 0.02},
    "costs": {"fees": 0.0005, "slippage": 0.0005, "min_fee": 0.0, "sell_tax": 0.0},
    "trading": {"lot_size": None, "settlement": "T+0", "price_limit": None},
    "backtest": {"start": "2015-09-01", "end": None},
}
CONTRACT_PROVENANCE = {
    "kronos_quant": "0.1.0", "data_fingerprint": "0123456789abcdef0123", "seed": 0, "started": "2026-01-02T03:04:05",
    "model": {"kind": "kronos", "model_id": "kronos-demo", "revision": "0a1b2c3d4e5f6a7b", "weights": "feedbeef"},
    "data": {"instruments": 25, "rows": 12000, "first": "2015-01-02", "last": "2016-12-30"},
    "validation": {"source": "data/prices.csv", "policy": "drop", "n_rows_in": 12010, "n_rows_out": 12000,
                   "n_instruments": 25, "calendar": "daily bars, Mon-Fri", "ok": True, "adjust": "none",
                   "dropped": {"duplicate": 10}, "max_gap_bars": 10,
                   "issues": [{"check": "duplicates", "severity": "warning", "instrument": "AAA", "count": 10,
                               "action": "dropped", "timestamps": ["2015-03-02T00:00:00"], "detail": ""}],
                   "exclusions": [{"instrument": "QQQ", "check": "jumps", "n_rows": 480, "detail": "3 jumps > 40%"}],
                   "breaks": [{"instrument": "BBB", "start": "2016-02-01T00:00:00", "previous": "2016-01-04T00:00:00",
                               "missing_bars": 19}],
                   "notes": ["timestamps read as UTC"]},
}

TINY_OVERRIDES = ["name=tiny", "data.synthetic={n_instruments: 8, n_bars: 260, mode: planted, strength: 0.3, seed: 1}",
                  "forecast.lookback=60", "forecast.samples=4", "backtest.start=2015-06-01",
                  "model.id=baseline:linear", "portfolio.params={k: 3}"]


def tiny_config(tmp: Path, *, figures: bool = True) -> Any:
    """The tiny strategy of the CLI tests (a linear forecaster, 8 instruments, one year)."""
    return load_config(None, overrides=[*TINY_OVERRIDES, f"forecast.cache_dir={tmp / 'cache'}",
                                        f"output.dir={tmp / 'run'}", f"output.figures={str(figures).lower()}"])


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
