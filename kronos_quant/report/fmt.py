"""Number formatting for people: percentages, basis points, ratios, t-stats and p-values.

Every formatter takes a plain fraction or number (0.12 = 12%) and returns text; missing values
(None, NaN, non-numbers) become ``NA`` ("n/a"), so a table cell never shows "nan" or crashes.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["NA", "number", "pct", "bp", "ratio", "fixed", "tstat", "pvalue", "as_float", "count"]

NA = "n/a"


def as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, inf, bool, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fixed(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, a true minus sign: -0.07 -> '−0.07'."""
    x = as_float(value)
    if x is None:
        return NA
    text = f"{x:.{digits}f}"
    return "\u2212" + text[1:] if text.startswith("-") and any(c not in "-0." for c in text) else text.lstrip("-")


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: 0.2530 -> '25.3%'."""
    x = as_float(value)
    return NA if x is None else fixed(x * 100.0, digits) + "%"


def bp(value: Any, digits: int | None = None) -> str:
    """A fraction in basis points: 0.0566 -> '566 bp', 0.00052 -> '5.2 bp' (digits None: one decimal
    below 100 bp, none above)."""
    x = as_float(value)
    if x is None:
        return NA
    return fixed(x * 1e4, digits if digits is not None else 1 if abs(x) < 0.01 else 0) + " bp"


def ratio(value: Any, digits: int = 2) -> str:
    """A multiple: 1.45 -> '×1.45'."""
    x = as_float(value)
    return NA if x is None else "\u00d7" + fixed(x, digits)


def tstat(value: Any) -> str:
    """A t-statistic: 't 2.52'."""
    x = as_float(value)
    return NA if x is None else "t " + fixed(x, 2)


def pvalue(value: Any) -> str:
    """A p-value: 'p 0.031', 'p < 0.001'."""
    x = as_float(value)
    if x is None:
        return NA
    return "p < 0.001" if x < 0.001 else f"p {x:.3f}"


def count(value: Any) -> str:
    """An integer with thousands separators: 12345 -> '12,345'."""
    x = as_float(value)
    return NA if x is None else f"{round(x):,}"


def number(value: Any) -> str:
    """A metric of unknown unit for a table cell: 'n/a' when missing, 4 significant digits for floats."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if value is None:
        return NA
    x = as_float(value)
    if x is None:
        return NA if isinstance(value, float) else str(value)
    return f"{x:.4g}"
