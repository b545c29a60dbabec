"""Walk-forward recalibration of forecasts on past outcomes only.

Owns recalibrating the forecast table's intervals (split conformal, :mod:`.intervals`) and its
up-move probabilities (isotonic / Platt, :mod:`.probability`), each fitted per horizon step at
every as-of t on the forecasts whose target timestamp is <= t. Every name a submodule lists in
its ``__all__`` is re-exported here.
"""

from __future__ import annotations

from kronos_quant.calibration import intervals, probability
from kronos_quant.calibration.intervals import *  # noqa: F403
from kronos_quant.calibration.probability import *  # noqa: F403

__all__ = [name for module in (intervals, probability) for name in module.__all__]
