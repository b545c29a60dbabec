"""Everything a report draws from, in one object: metrics, config, provenance, backtests, scores, forecasts.

``ReportInputs`` is what ``write_report``, the notebook view of a run and the figure functions
share; building it does no work. Baseline results and scores are keyed by the caller's names and
shown under the leaderboard's distinct labels (matched by name, else in order).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from kronos_quant.backtest import BENCHMARK_NAME, BacktestResult
from kronos_quant.report.facts import backtest_period
from kronos_quant.report.leaderboard import leaderboard

__all__ = ["ReportInputs"]


@dataclass
class ReportInputs:
    """The material of one run's report; every field but ``metrics`` is optional.

    metrics: the run's metrics dict (metrics.json); config: the resolved config (dict);
    provenance: the provenance dict; backtest: the strategy's ``BacktestResult``; baselines:
    name -> ``BacktestResult`` of each baseline strategy; signals: the strategy's scores (wide,
    dates x instruments); baseline_signals: name -> the baselines' scores; forward_returns: the
    label (wide, aligned with the scores); forecasts: the forecast table; panel: the standard
    panel; ic: the per-date IC table (date, forecaster, ic, rank_ic, n) when the evaluation made one.
    """

    metrics: Mapping[str, Any]
    config: Mapping[str, Any] | None = None
    provenance: Mapping[str, Any] | None = None
    backtest: BacktestResult | None = None
    baselines: Mapping[str, BacktestResult] = field(default_factory=dict)
    signals: pd.DataFrame | None = None
    baseline_signals: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    forward_returns: pd.DataFrame | None = None
    forecasts: Any = None
    panel: Any = None
    ic: pd.DataFrame | None = None
    fan_instrument: str | None = None
    n_quantiles: int = 5
    title: str = "kronos-quant report"

    @cached_property
    def entries(self) -> list[dict[str, Any]]:
        """The leaderboard (contract-shaped, model first), each entry with a distinct ``label``."""
        return leaderboard(self.metrics)

    @property
    def model_label(self) -> str:
        return next((e["label"] for e in self.entries if e.get("kind") == "model"), "strategy")

    @property
    def benchmark_label(self) -> str:
        return next((e["label"] for e in self.entries if e.get("kind") == "benchmark"), BENCHMARK_NAME)

    def _relabel(self, items: Mapping[str, Any]) -> dict[str, Any]:
        """Caller's baseline names -> leaderboard labels (by name or display name, else in order)."""
        bases = [e for e in self.entries if e.get("kind") == "baseline"]
        by_name = {str(e.get(k)): e["label"] for e in bases for k in ("name", "display_name") if e.get(k)}
        by_base = {str(e.get("name", "")).split("(")[0]: e["label"] for e in bases}
        out: dict[str, Any] = {}
        for i, (name, value) in enumerate(items.items()):
            label = by_name.get(name) or by_base.get(name) or (bases[i]["label"] if i < len(bases) else name)
            out[label if label not in out else name] = value
        return out

    @property
    def baseline_results(self) -> dict[str, BacktestResult]:
        """Label -> baseline ``BacktestResult``."""
        return self._relabel(self.baselines)

    @property
    def scores(self) -> dict[str, pd.DataFrame]:
        """Label -> wide scores, the model first (empty without signals)."""
        out = {self.model_label: self.signals} if self.signals is not None else {}
        return {**out, **self._relabel(self.baseline_signals)}

    @property
    def kinds(self) -> dict[str, str]:
        return {e["label"]: str(e.get("kind", "")) for e in self.entries}

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp, int] | None:
        return backtest_period(self.backtest)
