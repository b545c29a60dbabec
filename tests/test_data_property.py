"""Property test of the loader (issue 12): any messy long file either becomes a panel that keeps the
contract with every dropped row counted, or is refused with a DataError -- never an exception from
inside pandas/polars, never rows lost without a count.

Files vary: column names (aliases, case, Chinese names, an unrecognised identifier) and order,
identifier columns, timestamp encodings (naive, one UTC offset, several, Z, naive/aware mixes,
epoch seconds, yyyymmdd integers), identical and conflicting duplicate rows, NaN/inf/empty cells,
row order, the policy and the requested time zone.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kronos_quant.data import check_panel, load_panel_with_report  # noqa: E402
from kronos_quant.errors import DataError  # noqa: E402

ID_NAMES = ["instrument", "Ticker", "symbol", "ts_code", "股票代码", "代码", "PERMNO"]  # the last is not recognised
TS_NAMES = ["timestamp", "Date", "trade_date", "日期", "datetime"]
FIELD_NAMES = {"open": ["open", "Open", "开盘", "开盘价"], "high": ["high", "HIGH", "最高"], "low": ["low", "Low", "最低"],
               "close": ["close", "Close", "收盘"], "volume": ["volume", "vol", "成交量"], "amount": ["amount", "成交额"]}
TS_MODES = ["naive_date", "naive_time", "one_offset", "offsets", "zulu", "naive_aware_mix", "epoch", "yyyymmdd"]
OFFSETS = ["+08:00", "-05:00", "+00:00", "+01:00"]
BAD_CELLS = ["nan", "inf", "-inf", "", "NA"]


@st.composite
def messy_files(draw: Any) -> dict[str, Any]:
    n_inst = draw(st.integers(1, 3))
    n_bars = draw(st.integers(2, 7))
    codes = draw(st.lists(st.sampled_from(["AAA", "BBB", "000001", "600000", "X1"]), min_size=n_inst,
                          max_size=n_inst, unique=True))
    mode = draw(st.sampled_from(TS_MODES))
    days = pd.bdate_range("2024-01-02", periods=n_bars)
    rows = []
    for k, code in enumerate(codes):
        offset = OFFSETS[k % len(OFFSETS)] if mode == "offsets" else "+08:00"
        for j, day in enumerate(days):
            close = draw(st.floats(1.0, 100.0))
            lo, hi = close * draw(st.floats(0.9, 1.0)), close * draw(st.floats(1.0, 1.1))
            opn = draw(st.floats(lo, hi))
            if mode in ("naive_date",):
                stamp: Any = f"{day:%Y-%m-%d}"
            elif mode == "naive_time" or (mode == "naive_aware_mix" and j % 2 == 0):
                stamp = f"{day:%Y-%m-%d} 09:30:00"
            elif mode in ("one_offset", "offsets", "naive_aware_mix"):
                stamp = f"{day:%Y-%m-%d}T09:30:00{offset}"
            elif mode == "zulu":
                stamp = f"{day:%Y-%m-%d}T09:30:00Z"
            elif mode == "epoch":
                stamp = int(day.timestamp())
            else:
                stamp = int(f"{day:%Y%m%d}")
            rows.append({"id": code, "ts": stamp, "open": opn, "high": hi, "low": lo, "close": close,
                         "volume": float(draw(st.integers(0, 10_000))), "amount": float(draw(st.integers(0, 10**6)))})
    n_clean = len(rows)
    n_copies = draw(st.integers(0, 2))
    rows += [dict(rows[draw(st.integers(0, n_clean - 1))]) for _ in range(n_copies)]
    n_conflicts = draw(st.integers(0, 2))
    for _ in range(n_conflicts):
        row = dict(rows[draw(st.integers(0, n_clean - 1))])
        row["close"] = row["close"] * 1.5
        rows.append(row)
    n_bad = draw(st.integers(0, 3))
    cells = []
    for _ in range(n_bad):
        r = draw(st.integers(0, len(rows) - 1))
        col = draw(st.sampled_from(["open", "high", "low", "close", "volume", "amount", "ts"]))
        cells.append((r, col, draw(st.sampled_from(BAD_CELLS))))
    names = {"id": draw(st.sampled_from(ID_NAMES)), "ts": draw(st.sampled_from(TS_NAMES))}
    keep = [c for c in ("volume", "amount") if draw(st.booleans())]
    for c in ("open", "high", "low", "close", *keep):
        names[c] = draw(st.sampled_from(FIELD_NAMES[c]))
        if draw(st.booleans()):
            names[c] = f" {names[c].upper()} "  # stray spaces and upper case
    for extra in draw(st.sets(st.sampled_from(["pre_close", "note"]))):  # columns to be ignored
        names[extra] = extra
        for row in rows:
            row[extra] = row["close"] * 0.99 if extra == "pre_close" else "x"
    order = draw(st.permutations(list(names)))
    shuffle_seed = draw(st.integers(0, 2**16))
    return {"rows": rows, "cells": cells, "names": names, "order": order, "seed": shuffle_seed, "mode": mode,
            "n_inst": n_inst, "n_clean": n_clean, "dirty": bool(n_copies or n_conflicts or n_bad),
            "policy": draw(st.sampled_from(["raise", "drop", "fill"])),
            "tz": draw(st.sampled_from([None, None, "UTC", "Asia/Shanghai", "America/New_York"])),
            "map_id": draw(st.booleans()), "format": draw(st.sampled_from(["csv", "csv", "parquet", "pandas"]))}


_TYPED = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "": None, "NA": None}


def _write(case: dict[str, Any], path: Path) -> tuple[Any, int]:
    """The source to load (a file path or a pandas frame) and its number of rows."""
    frame = pd.DataFrame(case["rows"]).astype(object)
    for r, col, value in case["cells"]:
        typed = value if case["format"] == "csv" else (None if col == "ts" else _TYPED[value])
        frame.at[r, col] = typed
    frame = frame[case["order"]].rename(columns=case["names"])
    frame = frame.sample(frac=1.0, random_state=case["seed"])
    if case["format"] == "pandas":
        return frame.infer_objects(), len(frame)
    path = path.with_suffix(f".{case['format']}")
    if case["format"] == "parquet":
        frame.infer_objects().to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path, len(frame)


def _assert_contract(panel: pl.DataFrame) -> None:
    check_panel(panel)  # schema, sorted by (instrument, timestamp)
    assert panel.select(pl.struct("instrument", "timestamp").is_duplicated().any()).item() is False
    assert panel.null_count().sum_horizontal().item() == 0
    o, h, low, c = (panel[x].to_numpy() for x in ("open", "high", "low", "close"))
    assert np.isfinite(np.stack([o, h, low, c])).all() and (low > 0).all()
    assert (low <= o).all() and (low <= c).all() and (o <= h).all() and (c <= h).all()
    v, a = panel["volume"].to_numpy(), panel["amount"].to_numpy()
    assert np.isfinite(v).all() and np.isfinite(a).all() and (v >= 0).all() and (a >= 0).all()


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(messy_files())
def test_loader_returns_a_valid_panel_or_a_data_error(case: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, n_written = _write(case, Path(tmp) / "prices")
        id_name = case["names"]["id"]
        columns = {id_name: "instrument"} if case["map_id"] else None
        unrecognised = id_name == "PERMNO" and not case["map_id"]
        try:
            panel, report = load_panel_with_report(source, policy=case["policy"], tz=case["tz"], columns=columns)
        except DataError as exc:
            msg = str(exc)
            assert ("prices." if case["format"] != "pandas" else "DataFrame") in msg, msg  # names the source
            if unrecognised and case["n_inst"] > 1 and "time zone" not in msg and "timestamp" not in msg:
                assert "PERMNO" in msg or "validation error" in msg, msg
            return
        # unrecognised identifiers on a multi-instrument file must never load as one instrument
        assert not (unrecognised and case["n_inst"] > 1 and not case["dirty"]), "long file read as one instrument"
        _assert_contract(panel)
        assert report.n_rows_in == n_written
        assert report.n_rows_in == report.n_rows_out + sum(report.dropped.values()), report.dropped
        if not case["dirty"] and not unrecognised:
            assert panel.height == case["n_clean"] and report.dropped == {}
            expected = sorted(round(r["close"], 9) for r in case["rows"])
            assert sorted(round(x, 9) for x in panel["close"].to_list()) == expected
        if case["mode"] in ("one_offset", "zulu", "epoch") and case["tz"] is None:
            assert panel.schema["timestamp"].time_zone is not None  # aware input is never stripped
        if case["tz"] is not None:
            assert panel.schema["timestamp"].time_zone == case["tz"]
        assert math.isfinite(float(panel["close"].sum()))
