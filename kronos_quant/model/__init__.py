"""Kronos tokenizer and predictor modules and checkpoint I/O.

Knows nothing about market data frames, normalisation or sampling.
"""

from kronos_quant.model.kronos import Kronos
from kronos_quant.model.presets import PRESETS, ModelPreset, get_preset
from kronos_quant.model.tokenizer import KronosTokenizer

__all__ = ["Kronos", "KronosTokenizer", "PRESETS", "ModelPreset", "get_preset"]
