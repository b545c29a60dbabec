"""Evaluation metrics: pure functions from arrays / frames to numbers / frames.

Owns signal quality (IC, quantile returns, turnover), point-forecast accuracy, probabilistic
scores (CRPS, pinball loss, interval coverage, PIT), finite-ensemble calibration (attainable
coverage, rank histograms), scores of up-move probabilities (Brier, log loss, reliability),
portfolio statistics (Sharpe, drawdown, ...) and their inference: Newey-West t-stats,
Diebold-Mariano tests, stationary block bootstrap intervals, probabilistic and deflated Sharpe
ratios. No I/O, no plotting, no backtest engine: ``backtest`` produces the returns and
``report`` draws and writes what these functions compute.

Every name a submodule lists in its ``__all__`` is re-exported here; ``__all__`` is composed
from the submodules' lists, so a new public function is added in one place only.
"""

from __future__ import annotations

from kronos_quant.metrics import (
    accuracy,
    bootstrap,
    direction,
    ensemble,
    forecast_quality,
    inference,
    portfolio,
    probabilistic,
    sharpe_tests,
    signal,
)
from kronos_quant.metrics.accuracy import *  # noqa: F403
from kronos_quant.metrics.bootstrap import *  # noqa: F403
from kronos_quant.metrics.direction import *  # noqa: F403
from kronos_quant.metrics.ensemble import *  # noqa: F403
from kronos_quant.metrics.forecast_quality import *  # noqa: F403
from kronos_quant.metrics.inference import *  # noqa: F403
from kronos_quant.metrics.portfolio import *  # noqa: F403
from kronos_quant.metrics.probabilistic import *  # noqa: F403
from kronos_quant.metrics.sharpe_tests import *  # noqa: F403
from kronos_quant.metrics.signal import *  # noqa: F403

_SUBMODULES = (accuracy, signal, probabilistic, ensemble, direction, portfolio, inference, bootstrap, sharpe_tests,
               forecast_quality)

__all__ = [name for module in _SUBMODULES for name in module.__all__]
