"""How a loader error names its fix: the Python keyword and the strategy-file key side by side."""

from __future__ import annotations

from typing import Any

__all__ = ["option_hint", "columns_hint"]


def option_hint(name: str, value: Any) -> str:
    """``"tz='America/New_York' (strategy file: data.tz: America/New_York)"``."""
    return f"{name}={value!r} (strategy file: data.{name}: {value})"


def columns_hint(source: str, target: str) -> str:
    """``"columns={'PERMNO': 'instrument'} (strategy file: data.columns: {PERMNO: instrument})"``."""
    return f"columns={{{source!r}: {target!r}}} (strategy file: data.columns: {{{source}: {target}}})"
