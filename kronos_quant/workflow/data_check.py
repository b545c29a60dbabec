"""``kronos-quant data inspect`` / ``data validate`` with ``--market``: a data file against a market's calendar.

``inspect_data``: ``data.inspect_panel`` with the market's exchange (trading days compared with its
sessions) and trading days a year (bars a year = the preset's days x bars per day, as the backtest
annualises). ``validate_data``: ``data.validate_panel`` with the exchange's calendar as the expected
one, so exchange holidays are not reported as days without bars and sessions without bars are called
missing data. Daily bars labelled at midnight in another zone are compared by their dates
(``market_context.market_timestamps``). Without a market (or for ``custom``) both use the calendar
inferred from the data; ``crypto_24_7`` has no exchange: only its 365 days a year apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

from kronos_quant.data import (
    hint_zone,
    inspect_panel,
    load_panel,
    load_panel_with_report,
    read_panel,
    trading_calendar,
)
from kronos_quant.data.builtin import resolve_data_path
from kronos_quant.data.inspect import PanelSummary
from kronos_quant.data.panel import ReadOptions
from kronos_quant.data.report import ValidationReport
from kronos_quant.data.validate import validate_panel
from kronos_quant.errors import DataError
from kronos_quant.market_context import market_timestamps
from kronos_quant.markets import MarketPreset, get_market

__all__ = ["inspect_data", "validate_data"]


def _source(path: str | Path) -> Path:
    resolved = resolve_data_path(Path(path))
    if not resolved.exists():
        raise DataError(f"{resolved} does not exist")
    return resolved


def _preset(market: str | None) -> MarketPreset | None:
    return None if market is None else get_market(market)


def inspect_data(path: str | Path, *, market: str | None = None, **options: Unpack[ReadOptions]) -> PanelSummary:
    """The summary of the data at ``path`` (file, directory or ``builtin:NAME``), read without validation,
    against ``market`` (a preset name; None: the data's own calendar). options: how to read it
    (``data.ReadOptions``: columns, tz, encoding ...)."""
    preset = _preset(market)
    with hint_zone(None if preset is None else preset.tz):
        panel = load_panel(_source(path), validate=False, **options)
    if preset is None:
        return inspect_panel(panel)
    relabelled, note = market_timestamps(panel, preset.tz)
    panel = relabelled if note else panel  # daily bars at midnight in their zone: their dates, not instants
    return inspect_panel(panel, exchange=preset.exchange, tz=preset.tz, days_per_year=preset.days_per_year)


def validate_data(path: str | Path, *, policy: str = "drop", market: str | None = None,
                  **options: Unpack[ReadOptions]) -> ValidationReport:
    """The validation report of the data at ``path`` under ``policy``, expecting the calendar of ``market``'s
    exchange when it has one; options: how to read it (``data.ReadOptions``: columns, tz, encoding ...).
    Raises ``PanelValidationError`` (with the report) under ``raise``."""
    preset = _preset(market)
    source = _source(path)
    with hint_zone(None if preset is None else preset.tz):
        if preset is None or preset.exchange is None:
            return load_panel_with_report(source, policy=policy, **options)[1]  # type: ignore[arg-type]
        frame, notes = read_panel(source, **options)
    relabelled, note = market_timestamps(frame, preset.tz)
    if note:  # daily bars at midnight in their zone: compared with the exchange by their dates
        frame = relabelled
        notes.append(note)
    stamps = frame["timestamp"].drop_nulls().unique().sort()
    calendar = trading_calendar(stamps.to_pandas(), exchange=preset.exchange, tz=preset.tz) if stamps.len() > 1 \
        else None
    notes.append(f"expected calendar: {preset.exchange} sessions (market: {preset.name}; exchange holidays are not "
                 "missing days)")
    return validate_panel(frame, policy=policy, source=str(source), notes=notes, calendar=calendar)[1]  # type: ignore[arg-type]
