"""The forecast-table contract's helpers: quantile column names, central intervals, sample lists,
the realised-close join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.errors import DataError
from kronos_quant.schema import (
    DEFAULT_QUANTILES,
    central_intervals,
    join_realized,
    quantile_column,
    quantile_columns,
    sample_matrix,
)
from tests.conftest import make_panel


def test_quantile_columns_invert_quantile_column():
    levels = (0.025, *DEFAULT_QUANTILES, 0.975)
    names = [quantile_column("close", q) for q in levels] + ["close_mean", "open_q5", "close_qx", "close_q100"]
    assert quantile_columns(names) == {q: quantile_column("close", q) for q in sorted(levels)}
    assert quantile_columns(names, "open") == {0.05: "open_q5"}


def test_central_intervals_pair_symmetric_levels():
    assert central_intervals(DEFAULT_QUANTILES) == {0.5: (0.25, 0.75), 0.8: (0.1, 0.9), 0.9: (0.05, 0.95)}
    assert central_intervals([0.05, 0.5, 0.9]) == {}
    assert central_intervals(quantile_columns(["close_q2.5", "close_q97.5"])) == {0.95: (0.025, 0.975)}


def test_sample_matrix_pads_ragged_and_missing_rows():
    m = sample_matrix([[1.0, 2.0, 3.0], [4.0], None, float("nan")])
    assert m.shape == (4, 3)
    np.testing.assert_array_equal(m[0], [1, 2, 3])
    assert m[1, 0] == 4 and np.isnan(m[1, 1:]).all() and np.isnan(m[2:]).all()
    assert sample_matrix([]).shape == (0, 0)


def test_join_realized_matches_a_pandas_merge_and_keeps_row_order():
    panel = make_panel(["A", "B"], n_days=10, seed=3)
    stamps = panel["timestamp"].unique().sort().to_list()
    rows = [("B", stamps[8]), ("A", stamps[2]), ("A", stamps[9] + pd.Timedelta(days=3)), ("B", stamps[0])]
    fc = pl.DataFrame({"instrument": [r[0] for r in rows], "target_timestamp": [r[1] for r in rows],
                       "step": [1, 2, 3, 4]}).with_columns(pl.col("target_timestamp").dt.cast_time_unit("us"))
    out = join_realized(fc, panel)
    expected = fc.to_pandas().merge(panel.to_pandas().rename(columns={"timestamp": "target_timestamp"}),
                                    on=["instrument", "target_timestamp"], how="left")["close"]
    assert out["step"].to_list() == [1, 2, 3, 4]  # the forecasts' order
    np.testing.assert_array_equal(out["actual_close"].to_numpy(), expected.to_numpy())
    assert out["actual_close"].null_count() == 1  # the target after the data ends is not known yet
    # forecasts made on tz-aware timestamps join a naive panel as wall-clock time in their zone
    aware = fc.with_columns(pl.col("target_timestamp").dt.replace_time_zone("America/New_York"))
    np.testing.assert_array_equal(join_realized(aware.to_pandas(), panel)["actual_close"].to_numpy(), expected)
    with pytest.raises(DataError, match="target_timestamp"):
        join_realized(fc.drop("target_timestamp"), panel)
