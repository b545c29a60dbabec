"""Run summaries: backtest and signal results as metric dicts, and the summary table people read.

``summarize_backtest`` and ``summarize_signal`` turn a ``BacktestResult`` and score frames into the
nested dicts a run's metrics.json holds; ``summary_rows``/``render_summary`` lay out the
model-vs-baseline table that the CLI prints and notebooks show. Nothing here writes files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kronos_quant.backtest import BacktestResult
from kronos_quant.metrics import (
    ic_summary,
    information_coefficient,
    performance_summary,
    quantile_spread,
    rank_autocorrelation,
)

__all__ = ["summarize_backtest", "summarize_signal", "summary_rows", "format_value", "render_summary"]


def summarize_backtest(result: BacktestResult) -> dict[str, Any]:
    """Performance of net, gross and benchmark returns from the first execution bar on.

    Keys: "net" (with benchmark-relative stats and turnover), "gross" (None without a gross run),
    "benchmark", "costs" (total fees, slippage, orders, blocked orders, annual cost drag = gross
    minus net annual return), "periods_per_year". Turnover passed on is the one-way turnover of
    the bars that traded.
    """
    executed = np.flatnonzero(result.targets.notna().any(axis=1).to_numpy())
    start = int(executed[0]) if executed.size else 0
    ppy = result.periods_per_year
    net, bench = result.returns.iloc[start:], result.benchmark_returns.iloc[start:]
    traded = result.turnover.iloc[start:]
    out: dict[str, Any] = {
        "net": performance_summary(net, benchmark=bench, periods_per_year=ppy, turnover=traded[traded > 0]),
        "benchmark": performance_summary(bench, periods_per_year=ppy),
        "gross": None,
        "periods_per_year": ppy,
    }
    costs = {
        "total_fees": float(result.costs["fees"].sum()),
        "total_slippage": float(result.costs["slippage"].sum()),
        "n_orders": int(len(result.orders)),
        "n_blocked_orders": int(result.blocked.to_numpy().sum()),
    }
    if result.gross_returns is not None and result.gross_benchmark_returns is not None:
        gross = result.gross_returns.iloc[start:]
        out["gross"] = performance_summary(gross, benchmark=result.gross_benchmark_returns.iloc[start:],
                                           periods_per_year=ppy)
        costs["annual_cost_drag"] = out["gross"]["annual_return"] - out["net"]["annual_return"]
    out["costs"] = costs
    return out


def summarize_signal(scores: pd.DataFrame, forward_returns: pd.DataFrame, *, n_quantiles: int = 5) -> dict[str, Any]:
    """Signal quality: IC and rank IC summaries, mean top-minus-bottom bucket spread, mean rank autocorrelation.

    scores, forward_returns: wide (dates x instruments), forward_returns[t] realised after t.
    """
    spread = quantile_spread(scores, forward_returns, n_quantiles=n_quantiles)
    autocorr = rank_autocorrelation(scores)
    return {
        "ic": ic_summary(information_coefficient(scores, forward_returns)),
        "rank_ic": ic_summary(information_coefficient(scores, forward_returns, method="spearman")),
        "quantile_spread_mean": float(spread.mean()) if len(spread) else float("nan"),
        "rank_autocorrelation_mean": float(autocorr.mean()) if len(autocorr) else float("nan"),
        "n_quantiles": n_quantiles,
    }


_SUMMARY_KEYS = (("IC", "ic"), ("Rank IC", "rank_ic"), ("ICIR", "icir"), ("Rank ICIR", "rank_icir"),
                 ("MSE (h-step return)", "mse"), ("MSE random walk", "mse_random_walk"), ("Sharpe", "sharpe"),
                 ("Max drawdown", "max_drawdown"), ("Annual return", "annual_return"), ("Turnover", "turnover"))


def summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(label, model value, baseline value) rows of a run's headline metrics (``workflow`` metrics dict).

    The random walk's MSE is the same reference for both columns; the baseline (a model-free
    signal) has no forecast MSE of its own.
    """
    base = metrics.get("baseline", {})
    rows = []
    for label, key in _SUMMARY_KEYS:
        base_value = metrics.get(key) if key == "mse_random_walk" else None if key == "mse" else base.get(key)
        rows.append((label, metrics.get(key), base_value))
    return rows


def format_value(value: Any) -> str:
    """A metric for a table cell: '-' for None, 'nan', 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return str(value)


def render_summary(metrics: Mapping[str, Any], title: str, *, width: int = 100) -> str:
    """The model-vs-baseline summary table as text (box-drawn, ``width`` columns)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column(f"baseline ({metrics.get('baseline', {}).get('name', 'baseline')})", justify="right")
    for label, model_value, base_value in summary_rows(metrics):
        table.add_row(label, format_value(model_value), format_value(base_value))
    buffer = io.StringIO()
    Console(file=buffer, width=width).print(table)
    return buffer.getvalue()
