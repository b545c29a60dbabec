"""Kronos tokenizer and predictor modules and checkpoint I/O.

Knows nothing about market data frames, normalisation or sampling. ``Kronos`` and
``KronosTokenizer`` are imported on first use (PEP 562), so presets and the model catalog can
be read without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kronos_quant.model.presets import PRESETS, ModelPreset, get_preset

if TYPE_CHECKING:
    from kronos_quant.model.kronos import Kronos
    from kronos_quant.model.tokenizer import KronosTokenizer

_LAZY = {"Kronos": "kronos_quant.model.kronos", "KronosTokenizer": "kronos_quant.model.tokenizer"}

__all__ = ["Kronos", "KronosTokenizer", "PRESETS", "ModelPreset", "get_preset"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kronos_quant.model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
