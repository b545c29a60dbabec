"""Plain-JSON copies of result dicts: numpy/pandas scalars to Python, non-finite floats to None."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable"]


def jsonable(obj: Any) -> Any:
    """Recursively convert numpy/pandas scalars to Python, non-finite floats to None, paths and
    timestamps to text; mappings get string keys, tuples become lists."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, str):
        return str(obj)  # str subclasses (e.g. torch's version) as plain text
    if isinstance(obj, (pd.Timestamp, pd.Timedelta, Path)):
        return str(obj)
    return obj
