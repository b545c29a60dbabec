"""How a loader error names its fix: the Python keyword and the strategy-file key side by side, and the
time zone its examples suggest (the strategy's market zone inside ``hint_zone``, else America/New_York)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["option_hint", "columns_hint", "example_zone", "zone_examples", "hint_zone"]

_DEFAULT_ZONE = "America/New_York"
_EXAMPLE_ZONE: ContextVar[str] = ContextVar("kronos_quant_example_zone", default=_DEFAULT_ZONE)


def option_hint(name: str, value: Any) -> str:
    """``"tz='America/New_York' (strategy file: data.tz: America/New_York)"``."""
    return f"{name}={value!r} (strategy file: data.{name}: {value})"


def columns_hint(source: str, target: str) -> str:
    """``"columns={'PERMNO': 'instrument'} (strategy file: data.columns: {PERMNO: instrument})"``."""
    return f"columns={{{source!r}: {target!r}}} (strategy file: data.columns: {{{source}: {target}}})"


def example_zone() -> str:
    """The IANA zone a time-zone hint suggests: the market's inside ``hint_zone``, else America/New_York."""
    return _EXAMPLE_ZONE.get()


def zone_examples() -> str:
    """Two IANA names for a hint, the example zone first: ``"'Asia/Shanghai' or 'America/New_York'"``."""
    first = example_zone()
    return f"'{first}' or '{'Asia/Shanghai' if first != 'Asia/Shanghai' else _DEFAULT_ZONE}'"


@contextmanager
def hint_zone(zone: str | None) -> Iterator[None]:
    """Inside the block, time-zone hints suggest ``zone`` (the strategy's market zone; None: the default)."""
    token = _EXAMPLE_ZONE.set(zone or _DEFAULT_ZONE)
    try:
        yield
    finally:
        _EXAMPLE_ZONE.reset(token)
