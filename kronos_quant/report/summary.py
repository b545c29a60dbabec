"""Run summaries: backtest and signal results as metric dicts, and the summary people read in a terminal.

``summarize_backtest`` and ``summarize_signal`` turn a ``BacktestResult`` and score frames into the
nested dicts a run's metrics.json holds; ``render_summary`` prints the headline of
``report.headline`` (the same as the tear sheet's) with the run's facts and verdicts as text.
Nothing here writes files.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape

from kronos_quant.backtest import BacktestResult
from kronos_quant.metrics import (
    ic_summary,
    information_coefficient,
    performance_summary,
    quantile_spread,
    rank_autocorrelation,
)
from kronos_quant.report import fmt
from kronos_quant.report.facts import run_facts
from kronos_quant.report.headline import TAGS, caveats, headline, verdicts

__all__ = ["summarize_backtest", "summarize_signal", "render_summary"]


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


def render_summary(metrics: Mapping[str, Any], title: str, *, config: Mapping[str, Any] | None = None,
                   provenance: Mapping[str, Any] | None = None, period: Any = None, width: int = 120) -> str:
    """The run summary as text, ``width`` columns: what was run (period, universe, costs, label,
    model), the headline table (strategy | each baseline | equal-weight benchmark, units formatted,
    portfolio rows net with gross in brackets) and the verdict lines.

    config / provenance: the resolved config and provenance of the run (facts read "n/a" without
    them); period: ``report.facts.backtest_period(result)``.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None, highlight=False)
    facts = dict(run_facts(metrics, config, provenance, period=period))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key in ("Period", "Universe", "Costs", "Horizon \u00b7 label", "Model"):
        grid.add_row(key, facts.get(key, fmt.NA))
    console.print(f"[bold]{escape(title)}[/bold]")
    console.print(grid)
    table_data = headline(metrics)
    table = Table(caption="portfolio rows: net of costs (gross); Rank IC t: Newey-West, * p < 0.05, ** p < 0.01 (Newey-West and EWC)",
                  caption_justify="left")
    table.add_column("metric")
    for column, kind in zip(table_data.columns, table_data.kinds):
        table.add_column(f"{escape(column)}\n({kind})", justify="right")
    group = None
    for row in table_data.rows:
        if group is not None and row.section != group:
            table.add_section()
        group = row.section
        table.add_row(row.label, *(escape(cell.plain()) for cell in row.cells))
    console.print(table)
    lines = verdicts(metrics)
    if lines:
        board = Table.grid(padding=(0, 1))
        board.add_column(no_wrap=True)
        board.add_column()
        for v in lines:
            board.add_row(Text(f"[{TAGS[v.tone]}]"), Text(v.text))
        console.print("[bold]Verdict[/bold]")
        console.print(board)
    for line in caveats(metrics):
        console.print(Text(f"warning: {line}"))
    return console.file.getvalue()
