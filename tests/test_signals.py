"""Signals on a hand-made forecast table and a tiny panel; transforms; the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import norm

from kronos_quant.errors import ConfigError, DataError
from kronos_quant.schema import DEFAULT_QUANTILES, quantile_column
from kronos_quant.signals import (
    SIGNALS,
    apply_transforms,
    compute_signal,
    cs_demean,
    cs_rank,
    cs_winsorize,
    cs_zscore,
    forward_returns,
    momentum,
)
from tests.conftest import panel_from_prices

D1, D2 = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")


def _row(inst: str, asof: pd.Timestamp, step: int, last: float, mean: float, median: float, p_up: float,
         samples: list[float]) -> dict:
    row = {"instrument": inst, "asof": asof, "step": step, "target_timestamp": asof + pd.Timedelta(days=step),
           "last_close": last, "close_mean": mean, "close_median": median, "prob_up": p_up,
           "close_samples": samples}
    for q in DEFAULT_QUANTILES:  # quantiles: median +/- 10 * z(q) (so q5/q95 spread = 2 * 1.645 * 10)
        row[quantile_column("close", q)] = median + 10.0 * norm.ppf(q)
    return row


@pytest.fixture(scope="module")
def forecasts() -> pd.DataFrame:
    rows = [
        _row("AAA", D1, 1, 100.0, 101.0, 100.5, 0.6, [99.0, 101.0, 103.0]),
        _row("AAA", D1, 2, 100.0, 104.0, 103.0, 0.7, [100.0, 104.0, 108.0]),
        _row("BBB", D1, 1, 50.0, 49.0, 49.5, 0.4, [48.0, 49.0, 50.0]),
        _row("BBB", D1, 2, 50.0, 51.0, 50.5, 0.55, [50.0, 51.0, 52.0]),
        _row("AAA", D2, 1, 104.0, 103.0, 103.5, 0.45, [102.0, 103.0, 104.0]),
        _row("AAA", D2, 2, 104.0, 102.0, 102.5, 0.3, [100.0, 102.0, 104.0]),
        _row("BBB", D2, 1, 51.0, 52.0, 51.5, 0.65, [51.0, 52.0, 53.0]),
        _row("BBB", D2, 2, 51.0, 56.1, 55.0, 0.8, [54.1, 56.1, 58.1]),
    ]
    return pd.DataFrame(rows)


def test_expected_return_mean_median_and_step(forecasts: pd.DataFrame) -> None:
    s = compute_signal("expected_return", forecasts)
    assert list(s.index) == [D1, D2] and list(s.columns) == ["AAA", "BBB"]
    assert s.loc[D1, "AAA"] == pytest.approx(0.04)
    assert s.loc[D2, "BBB"] == pytest.approx(0.1)
    med = compute_signal("expected_return", forecasts, path="median", step=1)
    assert med.loc[D1, "BBB"] == pytest.approx(49.5 / 50 - 1)
    with pytest.raises(ValueError, match="step must lie in 1..2"):
        compute_signal("expected_return", forecasts, step=3)
    with pytest.raises(ValueError, match="'mean' or 'median'"):
        compute_signal("expected_return", forecasts, path="mode")


def test_polars_input_gives_same_scores(forecasts: pd.DataFrame) -> None:
    pl_scores = compute_signal("prob_up", pl.from_pandas(forecasts))
    pd.testing.assert_frame_equal(pl_scores, compute_signal("prob_up", forecasts), check_index_type=False)
    assert pl_scores.loc[D2, "BBB"] == pytest.approx(0.8)
    assert compute_signal("prob_up", forecasts, step=1).loc[D1, "BBB"] == pytest.approx(0.4)


def test_risk_adjusted_uses_samples_then_quantile_fallback(forecasts: pd.DataFrame) -> None:
    s = compute_signal("risk_adjusted_return", forecasts)
    sd = np.std(np.array([100.0, 104.0, 108.0]) / 100.0 - 1.0, ddof=1)  # 0.04
    assert s.loc[D1, "AAA"] == pytest.approx(0.04 / sd)
    no_samples = forecasts.drop(columns=["close_samples"])
    q = compute_signal("risk_adjusted_return", no_samples)
    # q5/q95 spread = 2 * 10 * z(0.95); normal-equivalent sigma = 10 / last_close
    assert q.loc[D1, "AAA"] == pytest.approx(0.04 / (10.0 / 100.0))
    assert q.loc[D2, "BBB"] == pytest.approx(0.1 / (10.0 / 51.0))
    with pytest.raises(DataError, match="symmetric pair"):
        compute_signal("risk_adjusted_return", no_samples.drop(columns=["close_q5", "close_q10", "close_q25"]))


def test_quantile_signals(forecasts: pd.DataFrame) -> None:
    q10 = compute_signal("quantile_return", forecasts, q=0.1)
    assert q10.loc[D1, "AAA"] == pytest.approx((103.0 + 10 * norm.ppf(0.1)) / 100 - 1)
    ud = compute_signal("upside_downside", forecasts, q_high=0.9, q_low=0.1)
    # symmetric quantiles around the median: up - down = 2 * (median - last) / last
    assert ud.loc[D1, "AAA"] == pytest.approx(2 * 0.03)
    assert ud.loc[D2, "AAA"] == pytest.approx(2 * (102.5 - 104) / 104)
    with pytest.raises(DataError, match="close_q1"):
        compute_signal("quantile_return", forecasts, q=0.01)


def test_path_signals(forecasts: pd.DataFrame) -> None:
    last = compute_signal("path_last", forecasts)
    pd.testing.assert_frame_equal(last, compute_signal("expected_return", forecasts))
    assert compute_signal("path_mean", forecasts).loc[D1, "AAA"] == pytest.approx((0.01 + 0.04) / 2)
    assert compute_signal("path_max", forecasts).loc[D2, "AAA"] == pytest.approx(103 / 104 - 1)
    assert compute_signal("path_min", forecasts).loc[D1, "BBB"] == pytest.approx(49 / 50 - 1)
    assert compute_signal("path_max", forecasts, path="median").loc[D1, "BBB"] == pytest.approx(50.5 / 50 - 1)


def _panel(closes: dict[str, list[float]]) -> pl.DataFrame:
    return panel_from_prices(closes)


def test_momentum_values_and_only_past_bars() -> None:
    closes = {"X": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0], "Y": [20.0, 18.0, 16.0, 18.0, 20.0, 22.0]}
    mom = momentum(_panel(closes), lookback=2, skip=1)
    assert mom["X"].isna().sum() == 3
    # at bar 4: close[3] / close[1] - 1
    assert mom["X"].iloc[4] == pytest.approx(13 / 11 - 1)
    assert mom["Y"].iloc[5] == pytest.approx(20 / 16 - 1)
    # changing future bars must not change earlier scores
    changed = {k: v[:4] + [999.0, 0.5] for k, v in closes.items()}
    mom2 = compute_signal("momentum", panel=_panel(changed), lookback=2, skip=1)
    pd.testing.assert_frame_equal(mom.iloc[:4], mom2.iloc[:4])
    assert not np.allclose(mom.iloc[5].to_numpy(), mom2.iloc[5].to_numpy())


def test_forward_returns_are_future_labels() -> None:
    fwd = forward_returns(_panel({"X": [10.0, 11.0, 12.0, 15.0]}), horizon=2)
    assert fwd["X"].iloc[:2].tolist() == pytest.approx([12 / 10 - 1, 15 / 11 - 1])
    assert fwd["X"].iloc[2:].isna().all()


def test_momentum_counts_each_instruments_own_bars() -> None:
    panel = _panel({"X": [10.0, 11.0, 12.0, 13.0], "Y": [20.0, 21.0, 22.0, 23.0]})
    panel = panel.filter(~((pl.col("instrument") == "Y") & (pl.col("close") == 21.0)))  # Y misses bar 1
    mom = momentum(panel, lookback=1)
    assert mom["Y"].iloc[2] == pytest.approx(22 / 20 - 1)


def test_transforms() -> None:
    s = pd.DataFrame([[1.0, 2.0, 3.0, np.nan], [5.0, 5.0, 5.0, 5.0]], columns=list("abcd"))
    r = cs_rank(s)
    assert r.iloc[0].tolist()[:3] == pytest.approx([1 / 3, 2 / 3, 1.0]) and np.isnan(r.iloc[0, 3])
    z = cs_zscore(s)
    assert z.iloc[0, :3].mean() == pytest.approx(0.0) and z.iloc[0, :3].std(ddof=0) == pytest.approx(1.0)
    assert z.iloc[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert cs_demean(s).iloc[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0])
    wide = pd.DataFrame([np.arange(11, dtype=float)])
    w = cs_winsorize(wide, lower=0.1, upper=0.9)
    assert w.iloc[0].min() == pytest.approx(1.0) and w.iloc[0].max() == pytest.approx(9.0)
    chained = apply_transforms(wide, ["winsorize", ("zscore", {})])
    pd.testing.assert_frame_equal(chained, cs_zscore(cs_winsorize(wide)))
    with pytest.raises(ValueError, match="did you mean 'zscore'"):
        apply_transforms(wide, ["zscor"])
    with pytest.raises(ConfigError, match="transform 'rank' has no parameter 'pct'.*it takes no parameters"):
        apply_transforms(wide, [("rank", {"pct": False})])


def test_registry_errors(forecasts: pd.DataFrame) -> None:
    assert {"expected_return", "prob_up", "momentum", "path_max"} <= set(SIGNALS)
    with pytest.raises(ValueError, match="did you mean 'prob_up'"):
        compute_signal("prob_upp", forecasts)
    with pytest.raises(ValueError, match="pass panel="):
        compute_signal("momentum", forecasts)
    with pytest.raises(ConfigError, match="signal 'prob_up' has no parameter 'horizon'"):
        compute_signal("prob_up", forecasts, horizon=3)
    with pytest.raises(ConfigError, match=r"signal 'prob_up' parameter 'step': Input should be greater than or equal to 1 \(got 0\)"):
        compute_signal("prob_up", forecasts, step=0)
    with pytest.raises(DataError, match="close_mean"):
        compute_signal("expected_return", forecasts.drop(columns=["close_mean"]))
    with pytest.raises(DataError, match="duplicate"):
        compute_signal("prob_up", pd.concat([forecasts, forecasts.iloc[:1]]))
    ranked = compute_signal("expected_return", forecasts, transforms=["rank"])
    assert ranked.loc[D2].tolist() == [0.5, 1.0]


def test_registry_schemas_match_the_signals_and_transforms() -> None:
    """The load-time parameter schemas (kronos_quant.registry) describe the real keyword options."""
    import inspect

    from kronos_quant.registry import SIGNAL_PARAMS, TRANSFORM_PARAMS
    from kronos_quant.signals import TRANSFORMS

    assert set(SIGNAL_PARAMS) == set(SIGNALS) and set(TRANSFORM_PARAMS) == set(TRANSFORMS)
    funcs = {**{("signal", k): v.func for k, v in SIGNALS.items()}, **{("transform", k): v for k, v in TRANSFORMS.items()}}
    for (kind, name), func in funcs.items():
        options = dict(list(inspect.signature(func).parameters.items())[1:])
        fields = (SIGNAL_PARAMS if kind == "signal" else TRANSFORM_PARAMS)[name].model_fields
        assert set(fields) == set(options), name
        for key, field in fields.items():
            assert not field.is_required() and field.default == options[key].default, (name, key)


def test_momentum_and_forward_returns_need_a_standard_panel() -> None:
    frame = _panel({"X": [10.0, 11.0, 12.0]}).drop("amount")
    with pytest.raises(DataError, match="expected exactly"):
        momentum(frame, lookback=1)
    with pytest.raises(DataError, match="polars DataFrame"):
        forward_returns(_panel({"X": [10.0, 11.0, 12.0]}).to_pandas())
