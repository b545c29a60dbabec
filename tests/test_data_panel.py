"""Loading market data into the standard panel: sources, aliases, dtypes, time zones, filters, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.data import (
    PANEL_SCHEMA,
    check_panel,
    data_fingerprint,
    empty_panel,
    load_panel,
    load_panel_with_report,
    panel_to_wide,
    read_panel,
)
from kronos_quant.errors import DataError
from kronos_quant.schema import PANEL_COLUMNS

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _bars(n: int = 5, start: str = "2024-01-01", freq: str = "B", base: float = 10.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=freq)
    close = base + np.arange(n, dtype=float)
    return pd.DataFrame({"timestamp": ts, "open": close - 0.5, "high": close + 1, "low": close - 1,
                         "close": close, "volume": 100.0 + np.arange(n), "amount": 1000.0 + np.arange(n)})


def _long(instruments: tuple[str, ...] = ("AAA", "BBB"), n: int = 5) -> pd.DataFrame:
    frames = [_bars(n, base=10.0 * (k + 1)).assign(instrument=name) for k, name in enumerate(instruments)]
    return pd.concat(frames, ignore_index=True)


def _assert_standard(panel: pl.DataFrame) -> None:
    assert tuple(panel.columns) == PANEL_COLUMNS
    for col, dtype in PANEL_SCHEMA.items():
        if col == "timestamp":
            assert isinstance(panel.schema[col], pl.Datetime) and panel.schema[col].time_unit == "us"
        else:
            assert panel.schema[col] == dtype, col
    check_panel(panel)  # sorted by (instrument, timestamp)


# ----------------------------------------------------------------------------- sources
def test_long_csv_and_parquet_give_the_same_panel(tmp_path: Path) -> None:
    df = _long()
    df.sample(frac=1.0, random_state=0).to_csv(tmp_path / "prices.csv", index=False)  # shuffled rows
    df.to_parquet(tmp_path / "prices.parquet", index=False)
    from_csv = load_panel(tmp_path / "prices.csv")
    from_parquet = load_panel(tmp_path / "prices.parquet")
    _assert_standard(from_csv)
    assert from_csv.height == 10 and from_csv["instrument"].unique().sort().to_list() == ["AAA", "BBB"]
    assert from_csv.equals(from_parquet)
    assert data_fingerprint(from_csv) == data_fingerprint(from_parquet)


def test_directory_of_per_instrument_files(tmp_path: Path) -> None:
    _bars(4).to_csv(tmp_path / "AAPL.csv", index=False)
    _bars(3, base=50).to_parquet(tmp_path / "MSFT.parquet", index=False)
    (tmp_path / "README.md").write_text("not data")
    panel, report = load_panel_with_report(tmp_path)
    _assert_standard(panel)
    assert panel.group_by("instrument").len().sort("instrument").rows() == [("AAPL", 4), ("MSFT", 3)]
    assert any("read 2 files" in n for n in report.notes)
    only = load_panel(tmp_path, instruments=["MSFT"])
    assert only["instrument"].unique().to_list() == ["MSFT"]


def test_list_of_files_and_single_instrument_file_uses_stem_or_name(tmp_path: Path) -> None:
    _bars(3).to_csv(tmp_path / "XYZ.csv", index=False)
    assert load_panel(tmp_path / "XYZ.csv")["instrument"].unique().to_list() == ["XYZ"]
    assert load_panel(tmp_path / "XYZ.csv", instrument="Z")["instrument"].unique().to_list() == ["Z"]
    assert load_panel([tmp_path / "XYZ.csv"]).height == 3


def test_pandas_and_polars_frames() -> None:
    df = _long()
    from_pandas = load_panel(df)
    from_polars = load_panel(pl.from_pandas(df))
    _assert_standard(from_pandas)
    assert from_pandas.equals(from_polars)
    indexed = _bars(4).set_index("timestamp")  # DatetimeIndex, no instrument column
    with pytest.raises(DataError, match="instrument='NAME'"):
        load_panel(indexed)
    assert load_panel(indexed, instrument="SPY")["instrument"].to_list() == ["SPY"] * 4
    multi = df.set_index(["instrument", "timestamp"])
    assert load_panel(multi).equals(from_pandas)


def test_yfinance_style_column_levels() -> None:
    a, b = _bars(3), _bars(3, base=20)
    wide = pd.concat({"AAA": a.set_index("timestamp"), "BBB": b.set_index("timestamp")}, axis=1)
    wide = wide.swaplevel(axis=1)  # (field, ticker) like yfinance
    wide.columns = wide.columns.set_names(["Price", "Ticker"])
    wide = wide.rename(columns=str.capitalize, level=0)
    panel = load_panel(wide)
    assert panel.height == 6
    assert panel.filter(pl.col("instrument") == "BBB")["close"].to_list() == [20.0, 21.0, 22.0]


# ----------------------------------------------------------------------------- columns
def test_aliases_case_insensitive_and_adj_close(tmp_path: Path) -> None:
    df = _long().rename(columns={"timestamp": "Date", "instrument": "Ticker", "open": "Open", "high": "HIGH",
                                 "low": "low", "close": "Adj Close", "volume": "Vol", "amount": "amt"})
    panel = load_panel(df)
    assert panel["close"].to_list()[:2] == [10.0, 11.0] and panel["volume"][0] == 100.0
    df2 = _long().rename(columns={"instrument": "symbol", "timestamp": "timestamps"})
    df2["Adj Close"] = df2["close"] * 0.5
    panel2, report = load_panel_with_report(df2)
    assert panel2["close"][0] == 10.0  # 'close' wins over 'Adj Close' ...
    assert any("Adj Close" in n for n in report.notes)  # ... and the report says how to use it
    for name in ("code", "Name"):
        assert load_panel(_long().rename(columns={"instrument": name})).height == 10


def test_explicit_mapping_and_missing_column_error(tmp_path: Path) -> None:
    df = _bars(3).rename(columns={"timestamp": "MyDate", "close": "Last Price"})
    df.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "prices.csv")
    msg = str(err.value)
    assert "prices.csv" in msg and "no timestamp column" in msg and "MyDate" in msg and "columns={" in msg
    panel = load_panel(tmp_path / "prices.csv", columns={"MyDate": "timestamp", "Last Price": "close"})
    assert panel["close"].to_list() == [10.0, 11.0, 12.0]
    with pytest.raises(DataError, match="unknown panel column"):
        load_panel(df, columns={"MyDate": "when"}, instrument="X")


def test_missing_amount_and_volume_are_derived_and_noted() -> None:
    df = _bars(3).drop(columns=["amount", "volume"])
    panel, report = load_panel_with_report(df, instrument="X")
    assert panel["volume"].to_list() == [0.0, 0.0, 0.0] and panel["amount"].to_list() == [0.0, 0.0, 0.0]
    assert any("no volume column" in n for n in report.notes)
    df = _bars(2).drop(columns=["amount"])
    panel, report = load_panel_with_report(df, instrument="X")
    row = df.iloc[0]
    expected = row["volume"] * (row["open"] + row["high"] + row["low"] + row["close"]) / 4
    assert panel["amount"][0] == pytest.approx(expected)
    assert any("amount = volume x mean(open, high, low, close)" in n for n in report.notes)


def test_dtype_coercion_strings_ints_and_bad_values(tmp_path: Path) -> None:
    text = ("date,open,high,low,close,volume\n"
            "20240102,10,11,9,10.5,\"1,000\"\n"
            "20240103,10,11,9,abc,2000\n"
            "20240104,10,11,9,10.2,NA\n")
    (tmp_path / "x.csv").write_text(text)
    frame, notes = read_panel(tmp_path / "x.csv")
    assert frame["timestamp"].to_list()[0] == dt.datetime(2024, 1, 2)  # yyyymmdd integers
    assert frame["volume"].to_list()[:2] == [1000.0, 2000.0] and frame["volume"][2] is None
    assert frame["close"][1] is None and any("non-numeric" in n and "abc" in n for n in notes)
    with pytest.raises(DataError, match="missing_values"):
        load_panel(tmp_path / "x.csv")  # policy 'raise' lists the resulting gaps in the data
    assert load_panel(tmp_path / "x.csv", policy="drop").height == 1


def test_date_and_time_columns_epochs_and_bad_timestamps(tmp_path: Path) -> None:
    df = pd.DataFrame({"Date": ["2024-06-18", "2024-06-18"], "Time": ["09:35:00", "09:40:00"],
                       "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0]})
    panel = load_panel(df, instrument="X")
    assert panel["timestamp"].to_list() == [dt.datetime(2024, 6, 18, 9, 35), dt.datetime(2024, 6, 18, 9, 40)]
    epoch = df.drop(columns=["Date", "Time"]).assign(ts=[1_718_700_000, 1_718_700_300])
    utc = dt.UTC  # epoch numbers are instants in UTC: aware, never read as local time
    assert load_panel(epoch, instrument="X")["timestamp"][0] == dt.datetime(2024, 6, 18, 8, 40, tzinfo=utc)
    assert load_panel(epoch, instrument="X", tz="Asia/Shanghai")["timestamp"][0].hour == 16
    (tmp_path / "bad.csv").write_text("date,open,high,low,close\nnot a date,1,1,1,1\nfoo,1,1,1,1\n")
    with pytest.raises(DataError, match="bad.csv.*cannot parse timestamp column 'date'"):
        load_panel(tmp_path / "bad.csv")
    dayfirst = df.drop(columns=["Time"]).assign(Date=["13/06/2024", "14/06/2024"])
    out = load_panel(dayfirst, instrument="X", timestamp_format="%d/%m/%Y")
    assert out["timestamp"][0] == dt.datetime(2024, 6, 13)


def test_missing_file_and_empty_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: no such file"):
        load_panel(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data files"):
        load_panel(tmp_path / "empty")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataError, match="unsupported file type"):
        load_panel(tmp_path / "x.xlsx")


# ----------------------------------------------------------------------------- time zones, filters
def test_time_zones() -> None:
    df = _bars(3, start="2024-03-08 16:00", freq="D")
    assert load_panel(df, instrument="X").schema["timestamp"].time_zone is None
    ny = load_panel(df, instrument="X", tz="America/New_York")
    assert ny.schema["timestamp"].time_zone == "America/New_York"
    assert ny["timestamp"][0].hour == 16  # naive input is taken as already in tz
    utc_in = load_panel(df, instrument="X", tz="America/New_York", source_tz="UTC")
    assert utc_in["timestamp"][0].hour == 11  # 16:00 UTC = 11:00 EST
    aware = df.assign(timestamp=df["timestamp"].dt.tz_localize("Asia/Shanghai"))
    kept = load_panel(aware, instrument="X")  # an aware zone is kept, never stripped
    assert kept.schema["timestamp"].time_zone == "Asia/Shanghai" and kept["timestamp"][0].hour == 16
    converted = load_panel(aware, instrument="X", tz="UTC")
    assert converted["timestamp"][0].hour == 8
    with pytest.raises(DataError, match="IANA"):
        load_panel(df, instrument="X", tz="Not/AZone")


def test_filters_instruments_and_dates() -> None:
    df = _long(("AAA", "BBB", "CCC"), n=10)
    panel = load_panel(df, instruments=["CCC", "AAA", "ZZZ"], start="2024-01-03", end="2024-01-05")
    assert panel["instrument"].unique().sort().to_list() == ["AAA", "CCC"]
    assert panel["timestamp"].min() == dt.datetime(2024, 1, 3) and panel["timestamp"].max() == dt.datetime(2024, 1, 5)
    with pytest.raises(DataError, match="none of instruments"):
        load_panel(df, instruments=["ZZZ"])
    with pytest.raises(DataError, match="no rows left"):
        load_panel(df, start="2030-01-01")
    intraday = _bars(30, start="2024-01-02 09:30", freq="30min")
    day = load_panel(intraday, instrument="X", end="2024-01-02")  # a date-only end includes the whole day
    assert day["timestamp"].max() == dt.datetime(2024, 1, 2, 23, 30)


# ----------------------------------------------------------------------------- views, fingerprints
def test_panel_to_wide_and_fingerprint() -> None:
    df = _long(n=4)
    df = df[~((df["instrument"] == "BBB") & (df["timestamp"] == "2024-01-03"))]
    panel = load_panel(df)
    wide = panel_to_wide(panel, "close")
    assert list(wide.columns) == ["AAA", "BBB"] and wide.shape == (4, 2)
    assert wide.index.is_monotonic_increasing and np.isnan(wide.loc["2024-01-03", "BBB"])
    with pytest.raises(ValueError, match="field must be one of"):
        panel_to_wide(panel, "price")
    fp = data_fingerprint(panel)
    assert len(fp) == 64 and fp == data_fingerprint(panel.sample(fraction=1.0, shuffle=True, seed=1))
    changed = panel.with_columns(pl.when(pl.col("close") == 10.0).then(10.01).otherwise(pl.col("close")).alias("close"))
    assert data_fingerprint(changed) != fp
    assert data_fingerprint(panel.head(panel.height - 1)) != fp


def test_check_panel_and_empty_panel() -> None:
    empty = empty_panel("UTC")
    assert tuple(empty.columns) == PANEL_COLUMNS and empty.schema["timestamp"].time_zone == "UTC"
    check_panel(empty)
    with pytest.raises(DataError, match="columns"):
        check_panel(empty.drop("amount"))
    panel = load_panel(_long())
    with pytest.raises(DataError, match="not sorted"):
        check_panel(panel.reverse())
    with pytest.raises(DataError, match="polars DataFrame"):
        check_panel(panel.to_pandas())


@pytest.mark.skipif(not (SHARED / "data").exists(), reason="../shared/data not beside this checkout")
def test_real_files_load() -> None:
    panel = load_panel(SHARED / "data" / "cn_a_share_5min.csv", instrument="600000")
    _assert_standard(panel)
    assert panel.height == 2500 and panel["amount"][0] == 427161.0
    sp = load_panel(SHARED / "data" / "sp500_daily_2013_2017.parquet", policy="drop", instruments=["AAPL", "A"])
    assert sp["instrument"].unique().sort().to_list() == ["A", "AAPL"]


def test_instrument_codes_keep_leading_zeros(tmp_path: Path) -> None:
    (tmp_path / "cn.csv").write_text("code,date,open,high,low,close,volume\n"
                                     "000001,2024-01-02,1,1,1,1,1\n600000,2024-01-02,2,2,2,2,2\n")
    assert load_panel(tmp_path / "cn.csv")["instrument"].to_list() == ["000001", "600000"]
