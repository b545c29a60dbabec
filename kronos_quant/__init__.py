"""kronos-quant: quantitative research and backtesting on Kronos, the foundation model for
financial candlesticks.

``from kronos_quant import Kronos, KronosTokenizer, KronosPredictor`` is enough for code
written for the original Kronos project. Those names are imported on first use (PEP 562), so
``import kronos_quant`` (and the CLI's ``--help``) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kronos_quant._version import __version__

if TYPE_CHECKING:
    from kronos_quant.model import Kronos, KronosTokenizer
    from kronos_quant.predictor import KronosPredictor
    from kronos_quant.schema import ForecastResult, SamplingSpec

_LAZY = {
    "Kronos": "kronos_quant.model",
    "KronosTokenizer": "kronos_quant.model",
    "KronosPredictor": "kronos_quant.predictor",
    "ForecastResult": "kronos_quant.schema",
    "SamplingSpec": "kronos_quant.schema",
}

__all__ = ["__version__", "Kronos", "KronosTokenizer", "KronosPredictor", "ForecastResult", "SamplingSpec"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kronos_quant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
