"""On/off/auto switches read from environment variables (``KRONOS_QUANT_ONEDNN``, ``KRONOS_QUANT_NUMBA``)."""

from __future__ import annotations

import logging
import os
from typing import Literal

__all__ = ["env_switch"]

logger = logging.getLogger(__name__)

_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


def env_switch(name: str) -> Literal["on", "off", "auto"]:
    """The variable ``name`` read as ``"off"`` (0/false/no/off), ``"on"`` (1/true/yes/on) or ``"auto"``
    (unset, ``auto``, or anything else, which gets a warning naming the variable and its value)."""
    value = os.environ.get(name, "auto").strip().lower()
    if value in _OFF:
        return "off"
    if value in _ON:
        return "on"
    if value != "auto":
        logger.warning("%s=%r is not one of 0, 1, auto; using auto", name, value)
    return "auto"
