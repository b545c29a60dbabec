"""A run in a notebook: its tear sheet as HTML and its figures as matplotlib ``Figure`` objects.

Works on any run object with the fields of ``workflow.BacktestRun`` (metrics, config, provenance,
backtest, baselines (name -> an object with .backtest and .scores), scores, forward_returns, ic, forecasts,
panel); the
workflow's run calls these from ``_repr_html_`` and ``figures()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from kronos_quant.report.figures import make_figures
from kronos_quant.report.inputs import ReportInputs
from kronos_quant.report.tearsheet import render_tearsheet
from kronos_quant.report.writer import figure_png

__all__ = ["inputs_from_run", "run_figures", "run_tearsheet"]


def inputs_from_run(run: Any) -> ReportInputs:
    """The ``ReportInputs`` of a backtest run (missing optional fields read as absent)."""
    cfg = run.config
    bases = getattr(run, "baselines", None) or {}
    return ReportInputs(
        metrics=run.metrics, config=cfg.resolved(), provenance=run.provenance, backtest=run.backtest,
        baselines={name: b.backtest for name, b in bases.items()}, signals=run.scores,
        baseline_signals={name: b.scores for name, b in bases.items()},
        forward_returns=getattr(run, "forward_returns", None), forecasts=run.forecasts, panel=run.panel,
        ic=getattr(run, "ic", None), fan_instrument=cfg.output.fan_instrument, title=f"kronos-quant: {cfg.name}")


def run_figures(run: Any, names: Sequence[str] | None = None) -> dict[str, Figure]:
    """Figure name -> ``Figure`` of a run (``report.FIGURES``; default: every one it has the inputs for)."""
    return make_figures(inputs_from_run(run), names)


def run_tearsheet(run: Any) -> str:
    """The tear sheet of a run as an HTML fragment (scoped styles, inline images) for notebooks."""
    inputs = inputs_from_run(run)
    images = {name: figure_png(fig) for name, fig in make_figures(inputs).items()}
    return render_tearsheet(inputs, images, standalone=False)
