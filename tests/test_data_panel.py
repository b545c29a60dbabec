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


# ----------------------------------------------------------------------------- issue 12: silent wrong results
def _long_file(path: Path, id_column: str = "PERMNO", n: int = 6, names: tuple[str, ...] = ("10001", "10002", "10003"),
               encoding: str = "utf-8") -> pd.DataFrame:
    df = _long(names, n=n).rename(columns={"instrument": id_column}).sample(frac=1.0, random_state=3)
    path.write_bytes(df.to_csv(index=False).encode(encoding))
    return df


def test_unrecognised_identifier_column_is_refused_with_the_fix(tmp_path: Path) -> None:
    # before: read as ONE instrument named after the file, 12 of 18 rows dropped as duplicates, exit 0
    _long_file(tmp_path / "crsp.csv")
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "crsp.csv", policy="drop")
    msg = str(err.value)
    assert "crsp.csv" in msg and "12 of 18 distinct rows repeat" in msg and "'PERMNO'" in msg
    assert "columns={'PERMNO': 'instrument'}" in msg and "data.columns: {PERMNO: instrument}" in msg
    panel = load_panel(tmp_path / "crsp.csv", columns={"PERMNO": "instrument"})
    assert panel.group_by("instrument").len().sort("instrument").rows() == [("10001", 6), ("10002", 6), ("10003", 6)]
    # one instrument with a single conflicting duplicate row is not a long file: validation reports it instead
    one = _bars(6)
    pd.concat([one, one.iloc[[2]].assign(close=99.0)]).to_csv(tmp_path / "ONE.csv", index=False)
    with pytest.raises(DataError, match=r"duplicate_timestamp: ONE: 2 \| at 2024-01-03 \| .*close 12 / 99"):
        load_panel(tmp_path / "ONE.csv")
    # a file saved twice over (identical copies) is not refused either: the copies are dropped and counted
    pd.concat([one, one]).to_csv(tmp_path / "TWICE.csv", index=False)
    panel, report = load_panel_with_report(tmp_path / "TWICE.csv")
    assert panel.height == 6 and report.dropped == {"identical_duplicates": 6}


def test_non_utf8_bytes_are_refused_naming_the_encoding(tmp_path: Path) -> None:
    # before: 'Tícker' in cp1252 was read as 'T\ufffdcker', not recognised, and the file collapsed to one instrument
    df = _long(("AAA", "BBB"), n=4).rename(columns={"instrument": "Tícker"})
    (tmp_path / "latin.csv").write_bytes(df.to_csv(index=False).encode("cp1252"))
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "latin.csv")
    msg = str(err.value)
    assert "latin.csv" in msg and "not valid utf-8" in msg and "byte 0xed in the header" in msg
    assert "encoding='gb18030'" in msg and "data.encoding" in msg
    with pytest.raises(DataError, match="no instrument column|distinct rows repeat"):  # decoded, but 'Tícker' is no alias
        load_panel(tmp_path / "latin.csv", encoding="cp1252")
    assert load_panel(tmp_path / "latin.csv", encoding="cp1252", columns={"Tícker": "instrument"}).height == 8
    with pytest.raises(DataError, match="unknown text encoding"):
        load_panel(tmp_path / "latin.csv", encoding="klingon")
    # a Chinese Excel export (GB18030) with akshare's column names
    cn = pd.DataFrame({"日期": ["2024-01-02", "2024-01-03"], "股票代码": ["000001", "000001"], "开盘": [10.0, 10.2],
                       "收盘": [10.1, 10.3], "最高": [10.5, 10.6], "最低": [9.9, 10.0], "成交量": [1e5, 2e5],
                       "成交额": [1e6, 2e6]})
    (tmp_path / "cn.csv").write_bytes(cn.to_csv(index=False).encode("gb18030"))
    with pytest.raises(DataError, match="not valid utf-8"):
        load_panel(tmp_path / "cn.csv")
    panel = load_panel(tmp_path / "cn.csv", encoding="gb18030")
    assert panel["instrument"].to_list() == ["000001"] * 2 and panel["close"].to_list() == [10.1, 10.3]


def test_akshare_tushare_baostock_and_kronos_example_columns(tmp_path: Path) -> None:
    akshare = pd.DataFrame({"日期": ["2024-01-02", "2024-01-03"], "股票代码": ["600000", "600000"],
                            "开盘": [10.0, 10.2], "收盘": [10.1, 10.3], "最高": [10.5, 10.6], "最低": [9.9, 10.0],
                            "成交量": [1e5, 2e5], "成交额": [1e6, 2e6], "振幅": [1.0, 2.0], "涨跌幅": [0.5, 2.0]})
    akshare.to_csv(tmp_path / "ak.csv", index=False)  # UTF-8, as akshare users save it
    panel = load_panel(tmp_path / "ak.csv")
    assert panel.row(0) == ("600000", dt.datetime(2024, 1, 2), 10.0, 10.5, 9.9, 10.1, 1e5, 1e6)
    kronos = akshare.rename(columns={"开盘": "开盘价", "收盘": "收盘价", "最高": "最高价", "最低": "最低价"})
    assert load_panel(kronos).equals(panel)  # the original Kronos examples' names
    tushare = pd.DataFrame({"ts_code": ["600000.SH", "600000.SH"], "trade_date": [20240103, 20240102],
                            "open": [10.2, 10.0], "high": [10.6, 10.5], "low": [10.0, 9.9], "close": [10.3, 10.1],
                            "pre_close": [10.1, 9.8], "change": [0.2, 0.3], "pct_chg": [2.0, 3.0],
                            "vol": [2e3, 1e3], "amount": [2e3, 1e3]})
    ts = load_panel(tushare)
    assert ts["timestamp"].to_list() == [dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)]
    assert ts["close"].to_list() == [10.1, 10.3] and ts["volume"].to_list() == [1e3, 2e3]  # not pre_close
    (tmp_path / "bs.csv").write_text(
        "date,time,code,open,high,low,close,volume,amount,adjustflag\n"
        "2024-01-02,20240102093500000,sh.600000,10,10.2,9.9,10.1,1000,10100,3\n"
        "2024-01-02,20240102094000000,sh.600000,10.1,10.3,10,10.2,1200,12240,3\n")
    bs = load_panel(tmp_path / "bs.csv")
    assert bs["timestamp"].to_list() == [dt.datetime(2024, 1, 2, 9, 35), dt.datetime(2024, 1, 2, 9, 40)]
    assert bs["instrument"].unique().to_list() == ["sh.600000"]


def _offsets_file(path: Path, offsets: dict[str, str]) -> None:
    days = pd.bdate_range("2024-01-02", periods=8)
    rows = [(name, f"{d:%Y-%m-%d}T00:00:00{off}", 10.0, 11.0, 9.0, 10.0 + 0.1 * k) for name, off in offsets.items()
            for k, d in enumerate(days)]
    pd.DataFrame(rows, columns=["ticker", "timestamp", "open", "high", "low", "close"]).to_csv(path, index=False)


def test_mixed_utc_offsets_are_converted_to_the_market_zone_or_refused(tmp_path: Path) -> None:
    # before: both were converted to UTC and stripped: Shanghai midnights became 16:00 the day before (Sundays)
    _offsets_file(tmp_path / "mixed.csv", {"SH": "+08:00", "NY": "-05:00"})
    with pytest.raises(DataError) as err:
        load_panel(tmp_path / "mixed.csv")
    msg = str(err.value)
    assert "mixed.csv" in msg and "'+08:00': 8" in msg and "'-05:00': 8" in msg and "data.tz:" in msg
    panel = load_panel(tmp_path / "mixed.csv", tz="Asia/Shanghai")
    assert panel.schema["timestamp"].time_zone == "Asia/Shanghai"
    assert panel["timestamp"].dt.weekday().max() <= 5  # no weekend bars
    sh = panel.filter(pl.col("instrument") == "SH")["timestamp"]
    assert sh.dt.hour().unique().to_list() == [0] and sh.dt.date().to_list() == list(pd.bdate_range(
        "2024-01-02", periods=8).date)
    ny = panel.filter(pl.col("instrument") == "NY")["timestamp"]  # daily midnights in their offsets: dates kept
    assert ny.dt.hour().unique().to_list() == [0] and ny.to_list() == sh.to_list()
    # one offset throughout: kept as that fixed zone, dates unchanged; a UTC offset gives UTC
    _offsets_file(tmp_path / "sh.csv", {"SH": "+08:00"})
    one = load_panel(tmp_path / "sh.csv")
    assert one["timestamp"].dt.hour().unique().to_list() == [0] and one["timestamp"][0].utcoffset() == dt.timedelta(hours=8)
    _offsets_file(tmp_path / "z.csv", {"C": "Z"})
    assert load_panel(tmp_path / "z.csv").schema["timestamp"].time_zone == "UTC"


def test_daylight_saving_offsets_need_the_zone_and_then_keep_the_dates(tmp_path: Path) -> None:
    days = pd.bdate_range("2024-03-06", periods=6, tz="America/New_York")  # DST starts 2024-03-10
    stamps = [d.isoformat() for d in days]  # ...-05:00 then ...-04:00
    df = pd.DataFrame({"symbol": "SPY", "date": stamps, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    with pytest.raises(DataError, match="daylight-saving"):
        load_panel(df)
    panel = load_panel(df, tz="America/New_York")
    assert panel["timestamp"].dt.hour().unique().to_list() == [0]
    assert panel["timestamp"].dt.date().to_list() == list(days.date)


def test_naive_and_aware_mix_recommends_tz_not_a_missing_key(tmp_path: Path) -> None:
    df = pd.DataFrame({"symbol": "X", "date": ["2024-01-02 10:00", "2024-01-03T10:00:00+08:00"],
                       "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    with pytest.raises(DataError) as err:
        load_panel(df)
    msg = str(err.value)
    assert "mixes timestamps with a UTC offset" in msg and "data.tz:" in msg and "timestamp_format" not in msg
    panel = load_panel(df, tz="Asia/Shanghai")  # naive = local time in tz, aware converted to it
    assert [t.hour for t in panel["timestamp"].to_list()] == [10, 10]


def test_files_in_different_zones_need_tz(tmp_path: Path) -> None:
    aware = _bars(3).assign(timestamp=lambda f: f["timestamp"].dt.tz_localize("Asia/Shanghai"))
    aware.to_parquet(tmp_path / "A.parquet", index=False)
    _bars(3).to_csv(tmp_path / "B.csv", index=False)
    with pytest.raises(DataError, match="different time zones.*A.parquet.*data.tz"):
        load_panel(tmp_path)
    panel = load_panel(tmp_path, tz="Asia/Shanghai")
    assert panel.height == 6 and panel["timestamp"].dt.hour().unique().to_list() == [0]


def test_log_lines_name_the_file_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _bars(4).drop(columns=["amount"]).to_csv(tmp_path / "one.csv", index=False)
    with caplog.at_level("INFO", logger="kronos_quant.data"):
        load_panel(tmp_path / "one.csv")
    lines = [r.getMessage() for r in caplog.records if "no amount column" in r.getMessage()]
    assert lines and all(line.count("one.csv") == 1 for line in lines), lines


# ----------------------------------------------------------------------------- adjust (issue 14)
def _split_and_dividend() -> pd.DataFrame:
    """A 2-for-1 split on day 3 and a 1.00 dividend going ex on day 4; Adj Close computed as Yahoo does."""
    close = np.array([100.0, 102.0, 104.0, 52.0, 53.0, 54.0])
    split_mult = np.where(np.arange(6) < 3, 0.5, 1.0)
    div_mult = np.where(np.arange(6) < 4, 1 - 1.0 / 52.0, 1.0)  # 1 - dividend / close before the ex-date
    return pd.DataFrame({"Date": pd.bdate_range("2024-01-02", periods=6), "Open": close - 1, "High": close + 2,
                         "Low": close - 2, "Close": close, "Adj Close": close * split_mult * div_mult,
                         "Volume": [1000.0, 1000, 1000, 2000, 2000, 2000], "Stock Splits": [0, 0, 0, 2.0, 0, 0]})


def test_adjust_total_return_and_splits_known_answers() -> None:
    df = _split_and_dividend()
    raw, report = load_panel_with_report(df, instrument="X")
    assert raw["close"].to_list() == df["Close"].tolist() and report.adjust == "none"
    assert report.by_check("suspicious_jump")  # the split looks like a -69% day
    assert any("adjust='total_return'" in n for n in report.notes)
    total, report = load_panel_with_report(df, instrument="X", adjust="total_return")
    factor = df["Adj Close"] / df["Close"]
    np.testing.assert_allclose(total["close"].to_numpy(), df["Adj Close"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(total["open"].to_numpy(), (df["Open"] * factor).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(total["volume"].to_numpy(), (df["Volume"] / factor).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(total["amount"].to_numpy(), (raw["amount"]).to_numpy(), rtol=1e-12)  # unchanged
    assert not report.by_check("suspicious_jump") and report.adjust == "total_return"
    assert report.to_dict()["adjust"] == "total_return"
    splits, report = load_panel_with_report(df, instrument="X", adjust="splits")
    assert splits["close"].to_list() == [50.0, 51.0, 52.0, 52.0, 53.0, 54.0]  # the dividend is not adjusted
    assert splits["volume"].to_list() == [2000.0] * 6 and not report.by_check("suspicious_jump")


def test_adjust_splits_refuses_prices_that_are_already_split_adjusted() -> None:
    # yfinance style: Close already divided by the 2-for-1 split, Stock Splits = 2 on the ex-date. Adjusting
    # again would halve the first three closes (to 50, 51, 52) -- a fake doubling on the ex-date.
    df = _split_and_dividend()
    df["Close"] = df["Close"] * np.where(np.arange(6) < 3, 0.5, 1.0)
    df["Open"], df["High"], df["Low"] = df["Close"] - 0.5, df["Close"] + 1, df["Close"] - 1
    with pytest.raises(DataError, match=r"already look split-adjusted: on 1 of 1 split ex-dates.*X 2024-01-05 "
                                        r"ratio 2: close \+0\.0% \(unadjusted: -50\.0%\).*adjust='none'"):
        load_panel(df, instrument="X", adjust="splits")
    assert load_panel(df, instrument="X")["close"].to_list() == df["Close"].tolist()  # adjust: none is right
    # Two instruments, one raw and one adjusted: the majority is raw, so it adjusts and notes the other.
    raw = _split_and_dividend().assign(Ticker="RAW")
    both = pd.concat([raw, df.assign(Ticker="ADJ"), raw.assign(Ticker="RAW2")])
    panel, report = load_panel_with_report(both, adjust="splits")
    assert panel.filter(pl.col("instrument") == "RAW")["close"].to_list() == [50.0, 51.0, 52.0, 52.0, 53.0, 54.0]
    assert any("1 of 3 split(s) show no drop" in n and "ADJ 2024-01-05" in n for n in report.notes)


def test_adjust_without_the_needed_columns_says_why() -> None:
    df = _split_and_dividend()
    with pytest.raises(DataError, match="adjust='splits' needs a split-ratio column.*cannot be split apart"):
        load_panel(df.drop(columns=["Stock Splits"]), instrument="X", adjust="splits")
    with pytest.raises(DataError, match="adjust='total_return' needs a raw close and an adjusted-close column"):
        load_panel(df.drop(columns=["Adj Close"]), instrument="X", adjust="total_return")
    with pytest.raises(DataError, match="adjust='total_return' needs"):  # 'Adj Close' alone is used as the close
        load_panel(df.drop(columns=["Close"]), instrument="X", adjust="total_return")
    mapped = df.rename(columns={"Adj Close": "px_adj"})
    out = load_panel(mapped, instrument="X", adjust="total_return", columns={"px_adj": "adj_close"})
    assert out["close"][3] == pytest.approx(51.0)


def test_date_labelled_daily_bars_keep_their_dates_in_tz() -> None:
    # before: converted (2024-01-01 19:00 New York for 2024-01-02 UTC) with a warning; now the date is kept
    utc_midnights = _bars(3).assign(timestamp=lambda f: f["timestamp"].dt.tz_localize("UTC"))
    panel, report = load_panel_with_report(utc_midnights, instrument="X", tz="America/New_York")
    assert panel["timestamp"].to_list() == list(pd.date_range("2024-01-01", periods=3, freq="B", tz="America/New_York"))
    assert any("3 daily bars labelled at midnight (UTC) keep their dates as midnight in America/New_York; converting "
               "the instants would have moved 3 of them to another calendar day" in n for n in report.notes)
    panel, report = load_panel_with_report(utc_midnights, instrument="X", tz="Asia/Shanghai")
    assert panel["timestamp"].dt.hour().unique().to_list() == [0]  # midnight, not 08:00 Shanghai
    assert not any("another calendar day" in n for n in report.notes)  # no date would have moved
