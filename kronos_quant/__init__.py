"""kronos-quant: quantitative research and backtesting on Kronos, the foundation model for
financial candlesticks.

``from kronos_quant import Kronos, KronosTokenizer, KronosPredictor`` is enough for code
written for the original Kronos project.
"""

__version__ = "0.1.0"

from kronos_quant.model import Kronos, KronosTokenizer  # noqa: E402
from kronos_quant.predictor import KronosPredictor  # noqa: E402
from kronos_quant.schema import ForecastResult, SamplingSpec  # noqa: E402

__all__ = ["__version__", "Kronos", "KronosTokenizer", "KronosPredictor", "ForecastResult", "SamplingSpec"]
