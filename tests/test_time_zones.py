"""Aware timestamps on the market's clock (issue 12, item 2): daily bars labelled at midnight in their own zone
or UTC offset keep their dates (in the loader with ``tz`` and in the workflow's ``conform_to_market``), intraday
bars are converted, and time-zone hints suggest the strategy's market zone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.config import load_config
from kronos_quant.data import load_panel, load_panel_with_report
from kronos_quant.data.exchange import exchange_calendar
from kronos_quant.errors import DataError
from kronos_quant.workflow import load_strategy_data
from kronos_quant.workflow.data_check import inspect_data, validate_data

NYSE_DAYS = pd.DatetimeIndex(exchange_calendar("XNYS").sessions_in_range("2017-01-03", "2017-03-31")).tz_localize(None)


def _frame(stamps: list[str] | pd.DatetimeIndex, instruments: tuple[str, ...] = ("AAA", "BBB")) -> pd.DataFrame:
    frames = []
    for k, name in enumerate(instruments):
        close = 10.0 * (k + 1) + np.arange(len(stamps), dtype=float) * 0.1
        frames.append(pd.DataFrame({"ticker": name, "timestamp": stamps, "open": close, "high": close + 0.5,
                                    "low": close - 0.5, "close": close, "volume": 1000.0}))
    return pd.concat(frames, ignore_index=True)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _cfg(path: Path, market: str, *extra: str) -> object:
    return load_config(None, overrides=[f"market={market}", "data.source=file", f"data.path={path}",
                                        "data.name=null", "data.start=null", "data.end=null",
                                        "universe.instruments=null", *extra])


# ----------------------------------------------------------------------------- workflow: conform_to_market
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_utc_midnight_daily_bars_keep_their_dates_under_us_equity(tmp_path: Path, suffix: str) -> None:
    # before: converted to New York, every bar moved to 19:00 the day before (Mondays became Sundays)
    if suffix == ".csv":
        stamps: object = [f"{d:%Y-%m-%d}T00:00:00Z" for d in NYSE_DAYS]
    else:
        stamps = NYSE_DAYS.tz_localize("UTC")  # a UTC datetime column
    path = _write(_frame(stamps), tmp_path / f"daily{suffix}")  # type: ignore[arg-type]
    panel, report = load_strategy_data(_cfg(path, "us_equity"))  # type: ignore[arg-type]
    ts = panel["timestamp"]
    assert ts.dtype == pl.Datetime("us", "America/New_York")
    assert ts.dt.hour().unique().to_list() == [0]
    assert ts.dt.weekday().max() <= 5  # no weekend (polars: Monday=1 .. Sunday=7)
    assert ts.min().date() == dt.date(2017, 1, 3)  # the file's first date
    assert sorted(set(ts.dt.date().to_list())) == list(NYSE_DAYS.date)
    assert any("daily bars labelled at midnight (UTC) keep their dates as midnight in America/New_York" in n
               for n in report.notes)
    assert not any("holidays or weekends" in n for n in report.notes)  # the calendar fits XNYS


def test_intraday_utc_bars_are_still_converted_to_the_market_zone(tmp_path: Path) -> None:
    days = NYSE_DAYS[:20]
    stamps = [f"{d:%Y-%m-%d}T{h:02d}:30:00Z" for d in days for h in range(14, 21)]  # 09:30 .. 15:30 New York
    path = _write(_frame(stamps), tmp_path / "hourly.csv")
    panel, report = load_strategy_data(_cfg(path, "us_equity"))  # type: ignore[arg-type]
    first = panel.filter(pl.col("instrument") == "AAA")["timestamp"]
    assert first[0] == pd.Timestamp("2017-01-03 09:30", tz="America/New_York")  # the same instant, in New York
    assert sorted(first.dt.hour().unique().to_list()) == list(range(9, 16))
    assert not any("keep their dates" in n for n in report.notes)


def test_kept_dates_move_the_reports_history_breaks_with_them(tmp_path: Path) -> None:
    # UTC midnights relabelled to Shanghai midnights (8 h earlier): a history break must still start at its bar
    days = pd.bdate_range("2024-01-02", periods=80)
    days = days[(days < days[30]) | (days >= days[50])]  # a 20-weekday hole
    path = _write(_frame([f"{d:%Y-%m-%d}T00:00:00Z" for d in days], ("AAA",)), tmp_path / "hole.csv")
    panel, report = load_strategy_data(_cfg(path, "crypto_24_7", "data.validation=drop"))  # type: ignore[arg-type]
    assert panel.schema["timestamp"] == pl.Datetime("us", "UTC")  # crypto is UTC: nothing to relabel
    panel, report = load_strategy_data(_cfg(path, "cn_a_share", "data.validation=drop"))  # type: ignore[arg-type]
    (start,) = report.segment_starts()["AAA"]
    assert start == pd.Timestamp("2024-03-12", tz="Asia/Shanghai")  # the first bar after the hole, relabelled
    assert start in panel["timestamp"].to_list()


def test_time_zone_hints_suggest_the_markets_zone(tmp_path: Path) -> None:
    stamps = [f"{d:%Y-%m-%d}T00:00:00{off}" for d in NYSE_DAYS[:10] for off in ("+08:00",)]
    frame = pd.concat([_frame(stamps, ("SH",)),
                       _frame([s.replace("+08:00", "-05:00") for s in stamps], ("NY",))], ignore_index=True)
    path = _write(frame, tmp_path / "mixed.csv")
    with pytest.raises(DataError) as err:
        load_strategy_data(_cfg(path, "cn_a_share"))  # type: ignore[arg-type]
    assert "data.tz: Asia/Shanghai" in str(err.value) and "America/New_York" not in str(err.value)
    with pytest.raises(DataError, match="data.tz: America/New_York"):
        load_panel(path)  # no market known: the default example


# ----------------------------------------------------------------------------- loader: data.tz / tz=
def test_midnight_in_the_source_offset_keeps_its_date_when_tz_is_set(tmp_path: Path) -> None:
    # before: "2024-01-02T00:00:00+08:00" is 16:00 UTC the day before, so the midnight check (on UTC) never
    # fired and the bars silently became 11:00 New York on the previous day
    days = pd.bdate_range("2024-01-02", periods=8)
    path = _write(_frame([f"{d:%Y-%m-%d}T00:00:00+08:00" for d in days]), tmp_path / "sh.csv")
    panel, report = load_panel_with_report(path, tz="America/New_York")
    ts = panel.filter(pl.col("instrument") == "AAA")["timestamp"]
    assert ts.dt.hour().unique().to_list() == [0] and ts.dt.date().to_list() == list(days.date)
    assert any("16 daily bars labelled at midnight (their UTC offset +08:00) keep their dates" in n and
               "moved 16 of them to another calendar day" in n for n in report.notes)
    # 08:00 in +08:00 is UTC midnight, but not midnight where the bars were labelled: converted as instants
    path = _write(_frame([f"{d:%Y-%m-%d}T08:00:00+08:00" for d in days]), tmp_path / "sh8.csv")
    panel, report = load_panel_with_report(path, tz="America/New_York")
    assert panel["timestamp"][0] == pd.Timestamp("2024-01-01 19:00", tz="America/New_York")
    assert not any("keep their dates" in n for n in report.notes)


def test_aware_and_epoch_daily_midnights_keep_their_dates(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-01-02", periods=6)
    utc = _frame(days.tz_localize("UTC"), ("X",))
    epoch = utc.assign(timestamp=(utc["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1))
    for source in (utc, epoch):  # a UTC datetime column; epoch seconds
        for tz in ("America/New_York", "Asia/Shanghai"):
            panel, report = load_panel_with_report(source, tz=tz)
            assert panel["timestamp"].dt.hour().unique().to_list() == [0], tz
            assert panel["timestamp"].dt.date().to_list() == list(days.date), tz
            assert any("keep their dates" in n for n in report.notes)
    # intraday aware bars are converted: 14:30 UTC is 09:30 in New York
    intraday = _frame(days.tz_localize("UTC") + pd.Timedelta(hours=14, minutes=30), ("X",))
    panel, report = load_panel_with_report(intraday, tz="America/New_York")
    assert panel["timestamp"][0] == pd.Timestamp("2024-01-02 09:30", tz="America/New_York")
    assert not any("keep their dates" in n for n in report.notes)


def test_naive_midnights_read_in_source_tz_keep_their_dates(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-01-02", periods=5)
    panel, report = load_panel_with_report(_frame(days, ("X",)), tz="America/New_York", source_tz="UTC")
    assert panel["timestamp"].dt.date().to_list() == list(days.date)
    assert panel["timestamp"].dt.hour().unique().to_list() == [0]
    assert not any("converted to America/New_York" in n for n in report.notes)


# ----------------------------------------------------------------------------- data inspect / validate --market
def test_data_check_compares_utc_midnight_dates_with_the_exchange(tmp_path: Path) -> None:
    path = _write(_frame([f"{d:%Y-%m-%d}T00:00:00Z" for d in NYSE_DAYS]), tmp_path / "daily.csv")
    check = inspect_data(path, market="us_equity").exchange_check
    assert check is not None and check["days_on_holidays"] == [] and check["sessions_without_bars"] == []
    report = validate_data(path, market="us_equity")
    assert any("keep their dates" in n for n in report.notes)
    assert report.by_check("gaps") == [] and report.by_check("non_trading_weekdays") == []


@pytest.mark.parametrize(("zone", "suggested"), [("America/NewYork", "America/New_York"), ("asia/shanghai",
                                                                                            "Asia/Shanghai")])
def test_a_misspelt_zone_is_one_line_with_the_closest_iana_names(tmp_path, zone, suggested):
    path = _write(_frame(["2017-01-03T00:00:00Z", "2017-01-04T00:00:00Z"]), tmp_path / "bars.csv")
    with pytest.raises(DataError) as info:
        load_panel(path, tz=zone, validate=False)
    message = str(info.value)
    assert "\n" not in message and "POLARS" not in message  # polars' own multi-line text does not leak
    assert zone in message and f"did you mean '{suggested}'" in message
