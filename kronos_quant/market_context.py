"""What a strategy's ``market:`` means for one run (used by ``workflow``).

- ``conform_to_market``: aware timestamps put on the market's clock (``data.to_time_zone``: intraday
  bars converted, daily bars labelled at midnight in their own zone keep their dates), and a warning for
  every way the data contradicts the market: trading days against the exchange's holidays,
  intraday bar times against its sessions and lunch break, weekends under ``crypto_24_7``, an
  explicit ``data.tz`` other than the market's. Each warning names the market that fits the data
  better (or ``custom``). The warnings also go into the validation report's notes, so into the
  provenance.
- ``market_calendar`` / ``next_session``: the bar calendar with the exchange's holidays (or the
  data's own, for ``custom``) and ``trading.holidays``, for nightly next sessions and forecast
  target timestamps. ``next_session`` also says how its date is known (``NextSession.basis``) and
  warns when it is only inferred from the data.
- ``backtest_options``: the keyword arguments of ``backtest.backtest_weights`` (costs, trading
  rules, periods per year = the preset's trading days x the data's bars per day).
- ``check_backtest_period``: a DataError naming both date ranges and the config keys when the
  backtest period lies outside the data or holds fewer than 2 bars of it. ``market_provenance``:
  the preset, what it filled in, and the resolved values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import polars as pl

from kronos_quant.config import StrategyConfig
from kronos_quant.data import to_time_zone
from kronos_quant.data.calendar import BarCalendar, infer_panel_calendar
from kronos_quant.data.exchange import (
    CalendarMismatch,
    calendar_mismatch,
    exchange_calendar,
    next_sessions,
    session_basis,
    session_mismatch,
    trading_calendar,
)
from kronos_quant.errors import DataError
from kronos_quant.markets import MARKETS, MarketPreset, get_market

__all__ = ["conform_to_market", "market_timestamps", "market_warnings", "market_calendar", "NextSession",
           "next_session", "backtest_options", "check_backtest_period", "market_provenance"]

logger = logging.getLogger(__name__)

_MIN_DAYS_COMPARED = 15  # trading days the data must share with two calendars before one is preferred


def _stamps(panel: pl.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(panel["timestamp"].unique().sort().to_pandas())


def _days(dates: tuple[Any, ...], n: int = 3) -> str:
    return ", ".join(str(d) for d in dates[:n]) + (" ..." if len(dates) > n else "")


def _fits(stamps: pd.DatetimeIndex, preset: MarketPreset) -> bool:
    """Whether ``stamps`` look like trading days (and hours) of ``preset``."""
    if preset.exchange is not None:
        if calendar_mismatch(stamps, preset.exchange, tz=preset.tz).contradicts():
            return False
    elif preset.weekdays == tuple(range(7)) and not _has_weekends(stamps):
        return False
    outside, uncovered = session_mismatch(stamps, preset.sessions, tz=preset.tz)
    return outside <= 0.02 and uncovered <= 0.25


def _has_weekends(stamps: pd.DatetimeIndex) -> bool:
    return bool((stamps.day_of_week >= 5).any()) or (stamps.max() - stamps.min()) < pd.Timedelta(days=14)


def _better(stamps: pd.DatetimeIndex, current: str) -> str:
    for name, preset in MARKETS.items():
        if name not in (current, "custom") and _fits(stamps, preset):
            return f"the data looks like market: {name}; set it (or market: custom to infer the calendar from the data)"
    return "set the market the data comes from, or market: custom to infer the calendar from the data"


def _offset(when: pd.Timestamp, zone: str) -> float:
    """UTC offset of ``zone`` at ``when``, in hours."""
    stamp = when if when.tzinfo else when.tz_localize("UTC")
    return stamp.tz_convert(zone).utcoffset().total_seconds() / 3600.0


def _exact_other_exchange(stamps: pd.DatetimeIndex, preset: MarketPreset, mm: CalendarMismatch) -> str | None:
    """Another preset's exchange whose calendar the data follows day for day where ``preset``'s disagrees on a
    day or two (too few for ``CalendarMismatch.contradicts``: a short window, e.g. two months of US data
    under cn_a_share miss only Thanksgiving and Christmas). Real data of the right market fits its own
    exchange exactly or nearly, and then never fits another's exactly, so this raises no false alarm."""
    if not (mm.closed_days or mm.missing_sessions) or mm.n_days < _MIN_DAYS_COMPARED:
        return None
    for other in MARKETS.values():
        if other.exchange and other.exchange != preset.exchange:
            alt = calendar_mismatch(stamps, other.exchange, tz=other.tz)
            if alt.n_days >= mm.n_days and not alt.closed_days and not alt.missing_sessions:
                return other.exchange
    return None


def market_warnings(cfg: StrategyConfig, panel: pl.DataFrame, *, data_zone: str | None = None) -> list[str]:
    """Every way the panel's calendar contradicts ``cfg.market`` (empty for ``custom`` and for data that fits):
    timestamps in a zone with another UTC offset (UTC itself is neutral), trading days against the exchange's
    (many disagreeing days, or a few where another exchange fits exactly), weekends, session hours, data.tz.
    data_zone: the zone the data came in, when ``panel`` is already on the market's clock (default: its own)."""
    preset = get_market(cfg.market)
    if preset.name == "custom" or panel.height == 0:
        return []
    stamps, out = _stamps(panel), []
    where = f"{cfg.source_path}: market: {preset.name}"
    zone = data_zone or panel.schema["timestamp"].time_zone  # type: ignore[union-attr]
    if zone and preset.tz and not cfg.data.tz and _offset(stamps.max(), zone) not in (_offset(stamps.max(), preset.tz), 0.0):
        out.append(f"{where} is in {preset.tz} (UTC{_offset(stamps.max(), preset.tz):+g}h), but the data's timestamps "
                   f"are in {zone} (UTC{_offset(stamps.max(), zone):+g}h)")
    if preset.exchange is not None:
        mm = calendar_mismatch(stamps, preset.exchange, tz=preset.tz)
        twin = None if mm.contradicts() else _exact_other_exchange(stamps, preset, mm)
        if mm.contradicts() or twin:
            out.append(f"{where} ({preset.exchange} calendar), but {len(mm.closed_days)} of the data's {mm.n_days} "
                       f"trading days are {preset.exchange} holidays or weekends ({_days(mm.closed_days)}) and "
                       f"{len(mm.missing_sessions)} {preset.exchange} sessions have no bar "
                       f"({_days(mm.missing_sessions)})" + (f", while every day fits the {twin} calendar" if twin else ""))
    elif preset.weekdays == tuple(range(7)) and not _has_weekends(stamps):
        out.append(f"{where} trades every day, but the data has no bar on any weekend")
    outside, uncovered = session_mismatch(stamps, preset.sessions, tz=preset.tz)
    if outside > 0.02 or uncovered > 0.25:
        hours = ", ".join(f"{a}-{b}" for a, b in preset.sessions)
        out.append(f"{where} trades {hours} ({preset.tz}), but {outside:.0%} of the data's bars fall outside "
                   f"those hours (or in the lunch break) and {uncovered:.0%} of the trading hours have no bars")
    if cfg.data.tz and preset.tz and cfg.data.tz != preset.tz and preset.name != "crypto_24_7":
        out.append(f"{where} is in {preset.tz}, but data.tz is {cfg.data.tz}")
    if out:
        out[-1] += f"; {_better(stamps, preset.name)}"
    return out


def market_timestamps(panel: pl.DataFrame, tz: str | None) -> tuple[pl.DataFrame, str | None]:
    """``panel`` with aware timestamps on the clock of ``tz`` (a market's zone; None: unchanged) by
    ``data.to_time_zone``, and its note when daily bars labelled at midnight kept their dates. Naive timestamps
    are the market's local time already: unchanged."""
    zone = panel.schema["timestamp"].time_zone  # type: ignore[union-attr]
    if not tz or not zone or zone == tz:
        return panel, None
    stamps, note = to_time_zone(panel["timestamp"], tz)
    return panel.with_columns(stamps), note


def _relabel_report(report: Any, tz: str) -> None:
    """After ``market_timestamps`` kept daily dates: the report's breaks (which cut forecast windows) and example
    timestamps relabelled the same way (midnight of the same date in ``tz``)."""
    def day(t: Any) -> Any:
        return pd.Timestamp(t).tz_localize(None).tz_localize(tz).to_pydatetime() if getattr(t, "tzinfo", None) else t

    if hasattr(report, "breaks"):
        report.breaks = [replace(b, start=day(b.start), previous=day(b.previous)) for b in report.breaks]
    if hasattr(report, "issues"):
        report.issues = [replace(i, timestamps=tuple(day(t) for t in i.timestamps)) for i in report.issues]


def conform_to_market(cfg: StrategyConfig, panel: pl.DataFrame, report: Any = None) -> pl.DataFrame:
    """The panel with aware timestamps on the market's clock (``market_timestamps``; not when ``data.tz`` is
    set: the loader did it); logs ``market_warnings`` and the note of dates kept (and adds them to
    ``report.notes``). Naive timestamps are taken as the market's local time, unchanged."""
    preset = get_market(cfg.market)
    zone = panel.schema["timestamp"].time_zone  # type: ignore[union-attr]
    notes = []
    if not cfg.data.tz:
        panel, note = market_timestamps(panel, preset.tz)
        if note:
            logger.info("%s: %s", cfg.source_path, note)
            notes.append(note)
            if report is not None:
                _relabel_report(report, preset.tz)  # type: ignore[arg-type]
        elif zone != panel.schema["timestamp"].time_zone:  # type: ignore[union-attr]
            logger.info("%s: timestamps converted from %s to the market's time zone %s", cfg.source_path, zone,
                        preset.tz)
    warnings = market_warnings(cfg, panel, data_zone=zone)  # the data's own zone is one of the checks
    for warning in warnings:
        logger.warning("%s", warning)
    if report is not None and hasattr(report, "notes"):
        report.notes.extend(notes + warnings)
    return panel


def market_calendar(cfg: StrategyConfig, panel: pl.DataFrame) -> BarCalendar:
    """The panel's bar calendar with the market exchange's holidays (``custom``: holidays inferred from the data)
    and ``trading.holidays``."""
    preset = get_market(cfg.market)
    return trading_calendar(_stamps(panel), exchange=preset.exchange, tz=preset.tz, holidays=cfg.trading.holidays)


@dataclass(frozen=True)
class NextSession:
    """The bar after the data's last one. basis: how its date is known -- ``"XSHG"`` (the exchange calendar),
    ``"trading.holidays"``, ``"every day"`` (a 24/7 market) or ``"inferred"`` (weekends and the holidays the
    data itself shows: not confirmed). warning: a sentence for the user when the date is not confirmed."""

    timestamp: pd.Timestamp | None
    basis: str
    warning: str | None = None


def next_session(cfg: StrategyConfig, panel: pl.DataFrame) -> NextSession:
    """The next session on the market's calendar, how its date is known, and a warning when an exchange market's
    date is only inferred from the data: its calendar ends before it (XSHG: 2026-12-31) and no
    ``trading.holidays`` cover its year (``next_sessions`` logs it too). ``market: custom`` is always
    ``inferred``, without a warning: the data's own calendar is what it asks for."""
    preset = get_market(cfg.market)
    stamps = _stamps(panel)
    holidays = cfg.trading.holidays
    try:
        nxt = pd.Timestamp(next_sessions(stamps, 1, exchange=preset.exchange, tz=preset.tz, holidays=holidays)[0])
    except Exception as exc:  # noqa: BLE001 - an irregular calendar: the next session is then unknown
        logger.warning("could not infer the next session after %s: %s", stamps.max(), exc)
        return NextSession(None, "unknown", f"could not infer the next session after {stamps.max()}: {exc}")
    if preset.exchange is None and preset.weekdays == tuple(range(7)):
        return NextSession(nxt, "every day")
    basis = session_basis(nxt.tz_localize(None) if nxt.tzinfo else nxt, exchange=preset.exchange, holidays=holidays)
    if basis != "inferred":
        return NextSession(nxt, preset.exchange if basis == "exchange" else "trading.holidays")
    if preset.exchange is None:  # market: custom -- the data's own calendar, by choice
        logger.info("next session %s: inferred from the data's calendar (market: %s)", nxt, preset.name)
        return NextSession(nxt, "inferred")
    when = nxt.date() if nxt == nxt.normalize() else nxt  # daily bars: the date
    last = pd.Timestamp(exchange_calendar(preset.exchange).last_session).date()
    return NextSession(nxt, "inferred", (
        f"next session {when} is inferred from the data (weekends and the holidays it shows), not confirmed: the "
        f"{preset.exchange} calendar (exchange_calendars) ends {last}; check it against the exchange's published "
        "holidays, or list that year's closures in trading.holidays"))


def periods_per_year(cfg: StrategyConfig, panel: pl.DataFrame) -> float | None:
    """``backtest.periods_per_year``, else the preset's trading days x the data's bars per day (None for
    ``custom``: the backtest infers it from the bars)."""
    if cfg.backtest.periods_per_year is not None:
        return cfg.backtest.periods_per_year
    return get_market(cfg.market).periods_per_year(infer_panel_calendar(panel).bars_per_day)


def backtest_options(cfg: StrategyConfig, panel: pl.DataFrame) -> dict[str, Any]:
    """Keyword arguments of ``backtest_weights`` from the resolved ``costs`` and ``trading`` sections."""
    c, t = cfg.costs, cfg.trading
    return {"fees": c.fees, "slippage": c.slippage, "min_fee": c.min_fee, "sell_tax": c.sell_tax,
            "lot_size": t.lot_size, "settlement": t.settlement, "price_limit": t.price_limit,
            "st_instruments": tuple(t.st_instruments), "periods_per_year": periods_per_year(cfg, panel)}


def check_backtest_period(cfg: StrategyConfig, panel: pl.DataFrame) -> None:
    """DataError naming the backtest period (its config keys) and the data's range when they do not overlap,
    or overlap on fewer than 2 bars (a trade executes at the bar after its decision)."""
    b = cfg.backtest
    if panel.height == 0 or (b.start is None and b.end is None):
        return
    first, last = (pd.Timestamp(panel["timestamp"].min()), pd.Timestamp(panel["timestamp"].max()))
    lo = first.tz_localize(None).normalize() if first.tzinfo else first.normalize()
    hi = last.tz_localize(None).normalize() if last.tzinfo else last.normalize()
    period = f"backtest.start .. backtest.end = {b.start or 'start of data'} .. {b.end or 'end of data'}"
    covers = f"the data, which covers {lo.date()} .. {hi.date()} (after data.start/end and universe filters)"
    if (b.start is not None and pd.Timestamp(b.start) > hi) or (b.end is not None and pd.Timestamp(b.end) < lo):
        raise DataError(f"{cfg.source_path}: the backtest period {period} lies outside {covers}; move "
                        "backtest.start/end into that range or load data that covers the period")
    stamps = _stamps(panel)
    days = stamps.tz_localize(None).normalize() if stamps.tz is not None else stamps.normalize()
    inside = stamps[(days >= pd.Timestamp(b.start or lo)) & (days <= pd.Timestamp(b.end or hi))]
    if len(inside) < 2:
        held = f"1 bar ({inside[0].date() if inside[0] == inside[0].normalize() else inside[0]})" if len(inside) \
            else "no bar"
        raise DataError(f"{cfg.source_path}: the backtest period {period} holds {held} of {covers}; a trade "
                        "decided at one bar executes "
                        "at the next bar's open, so the period needs at least 2 bars: move backtest.start earlier "
                        "or backtest.end later")


def market_provenance(cfg: StrategyConfig, panel: pl.DataFrame) -> dict[str, Any]:
    """The preset, the values it filled in, the resolved periods per year and the data's calendar."""
    preset = get_market(cfg.market)
    return {**preset.to_dict(), "applied_defaults": dict(cfg.market_defaults),
            "periods_per_year": periods_per_year(cfg, panel),
            "calendar": infer_panel_calendar(panel).describe() if panel.height else None}
