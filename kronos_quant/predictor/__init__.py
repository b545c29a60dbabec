"""Forecasting with Kronos: normalise, tokenise, prefill + cached decode, sample, denormalise.

``BatchPredictor`` (core.py) is array-level; ``KronosPredictor`` (frames.py) adds the
original DataFrame API.
"""

from kronos_quant.predictor.core import BatchPredictor, select_device
from kronos_quant.predictor.frames import KronosPredictor

__all__ = ["BatchPredictor", "KronosPredictor", "select_device"]
