"""Evaluation of a run: every forecaster scored and traded on the same cells, with honest statistics.

- ``evaluation.cells``: the common (date, instrument) cells, the IC labels (``LABELS``) and the
  simulation window;
- ``evaluation.scoring``: one forecaster's signal, forecast, prob_up and strategy scores;
- ``evaluation.compare``: Diebold-Mariano, Rank IC difference and Sharpe difference tests, verdicts;
- ``evaluation.run``: the shared protocol and one forecaster under it;
- ``evaluation.leaderboard``: ``evaluate_strategy``, the metrics.json of a run and ic.parquet.
"""

from __future__ import annotations

from kronos_quant.evaluation.cells import LABELS, cell_mask, label_returns, on_forecast_cells
from kronos_quant.evaluation.leaderboard import Evaluation, evaluate_strategy, ic_table
from kronos_quant.evaluation.run import baseline_name

__all__ = ["LABELS", "cell_mask", "label_returns", "on_forecast_cells", "Evaluation", "evaluate_strategy", "ic_table",
           "baseline_name"]
