"""Issue 15's comparison bugs, one regression test each, on a ragged synthetic market run end to end.

The market has a delisted instrument (its data ends before backtest.start) and a late listing
(enough history for the momentum baseline weeks before the model can forecast it). The strategy
winsorizes and z-scores, rebalances every bar with a 3-bar horizon and stops at backtest.end,
weeks before the data does. One run (model-free forecasters, so it takes seconds) is shared.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.backtest import backtest_weights
from kronos_quant.config import BaselineConfig, load_config
from kronos_quant.data import synthetic_market
from kronos_quant.evaluation import cell_mask, on_forecast_cells
from kronos_quant.report import summarize_backtest
from kronos_quant.signals import apply_transforms, compute_signal, momentum
from kronos_quant.workflow import (
    evaluate_forecasts,
    forecast_table,
    load_strategy_data,
    run_backtest,
    run_signals,
)
from tests.conftest import REPO, panel_from_prices

START, END = "2015-06-01", "2015-09-15"
DELISTED, LATE = "SYN005", "SYN006"


def _ragged_panel() -> pl.DataFrame:
    panel = synthetic_market(7, 220, mode="planted", strength=0.3, start="2015-01-02", seed=4)
    ts = pl.col("timestamp")
    keep = ((pl.col("instrument") != DELISTED) | (ts < pd.Timestamp("2015-05-01"))) & \
           ((pl.col("instrument") != LATE) | (ts >= pd.Timestamp("2015-05-20")))
    return panel.filter(keep)


def _overrides(tmp, data: str) -> list[str]:
    return ["name=ragged", "data.source=file", f"data.path={data}", "model.id=baseline:historical_drift",
            "forecast.horizon=3", "forecast.lookback=40", "forecast.samples=8", "forecast.rebalance=1",
            f"forecast.cache_dir={tmp / 'cache'}", f"backtest.start={START}", f"backtest.end={END}",
            "signal.transforms=[winsorize, zscore]", "portfolio.params={k: 2}", "output.figures=false",
            f"output.dir={tmp / 'runs'}/{{name}}", "baseline=[momentum, random_walk]",
            "evaluation.bootstrap_samples=200"]


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ragged")
    path = tmp / "panel.parquet"
    _ragged_panel().write_parquet(path)
    cfg = load_config(None, overrides=_overrides(tmp, str(path)))
    return run_backtest(cfg, quiet=True)


def test_baselines_are_scored_and_traded_on_the_models_cells(ragged):
    """Bug 1: the momentum baseline used to score LATE before the model could forecast it."""
    cells = cell_mask(ragged.forecasts)
    raw_momentum = momentum(ragged.panel, lookback=20, skip=1).reindex(index=cells.index, columns=cells.columns)
    before_model = ~cells[LATE] & raw_momentum[LATE].notna()
    assert before_model.sum() > 5  # momentum is defined on dates where the model has no forecast of LATE
    for base in ragged.baselines.values():
        assert base.scores.index.equals(cells.index) and list(base.scores.columns) == list(cells.columns)
        assert not base.scores.where(~cells).notna().to_numpy().any()  # nothing outside the cells
        held = base.weights.fillna(0).ne(0)
        assert not (held & ~cells.reindex_like(held).fillna(False)).to_numpy().any()
    ic = pl.read_parquet(ragged.output_dir / "ic.parquet").to_pandas()
    assert list(ic.columns) == ["date", "forecaster", "ic", "rank_ic", "n"]
    counts = ic.pivot(index="date", columns="forecaster", values="n")
    assert counts.shape[1] == 3 and (counts.nunique(axis=1) == 1).all()  # the same pairs on every date


def test_baselines_get_the_strategys_transforms(ragged):
    """Bug 2: baseline scores were raw while the model's were winsorized and z-scored."""
    base = ragged.baselines["momentum(20, skip 1)"]
    cells = cell_mask(ragged.forecasts)
    expected_raw = on_forecast_cells(momentum(ragged.panel, lookback=20, skip=1), cells)
    pd.testing.assert_frame_equal(base.raw, expected_raw)
    pd.testing.assert_frame_equal(base.scores, apply_transforms(expected_raw, ["winsorize", "zscore"]))
    assert np.allclose(base.scores.mean(axis=1), 0.0) and np.allclose(base.scores.std(axis=1, ddof=0), 1.0)
    assert not np.allclose(base.scores.to_numpy(), base.raw.to_numpy(), equal_nan=True)
    own = ragged.config.model_copy(update={"baseline": [BaselineConfig(name="momentum", transforms=["rank"])]})
    ranked = evaluate_forecasts(own, ragged.panel, ragged.forecasts, write=False).baselines["momentum(20, skip 1)"]
    pd.testing.assert_frame_equal(ranked.scores, apply_transforms(expected_raw, ["rank"]))  # its own, when given


def test_a_delisted_instrument_is_unscored_not_fatal(ragged):
    """Bug 3: an instrument whose data ends before backtest.start crashed the run after forecasting."""
    assert {"instrument": DELISTED,
            "reason": "no bars in the forecast period (its bars run from 2015-01-02 to 2015-04-30)"} \
        in ragged.metrics["unscored"]
    assert DELISTED not in ragged.backtest.positions.columns
    assert DELISTED not in ragged.forecasts["instrument"].unique().to_list()


def test_backtest_end_bounds_the_simulation(ragged):
    """Bug 4: the simulation ran to the panel's last bar whatever backtest.end said."""
    end = pd.Timestamp(END) + pd.Timedelta(days=1)
    assert ragged.panel["timestamp"].max() > end  # the data goes on
    for bt in (ragged.backtest, *(b.backtest for b in ragged.baselines.values())):
        assert bt.returns.index.max() < end and bt.returns.index.min() >= pd.Timestamp(START)


def test_turnover_counts_the_first_purchase():
    """Bug 7: the docs said the first purchase was not counted and the summary counted it. It counts:
    buying the book from cash is 0.5, replacing it 1.0; mean_turnover averages the bars that traded."""
    days = pd.date_range("2024-01-01", periods=6, freq="D")
    flat = [10.0] * 6
    panel = panel_from_prices({"A": flat, "B": flat}, stamps=days)
    weights = pd.DataFrame({"A": [1.0, 0.0], "B": [0.0, 1.0]}, index=[days[0], days[2]])
    bt = backtest_weights(panel, weights, init_cash=1000.0)
    assert bt.turnover.loc[days[1]] == pytest.approx(0.5) and bt.turnover.loc[days[3]] == pytest.approx(1.0)
    assert summarize_backtest(bt)["net"]["mean_turnover"] == pytest.approx(0.75)


def _tiny_overrides(tmp) -> list[str]:
    return ["data.synthetic={n_instruments: 6, n_bars: 200, mode: planted, strength: 0.3, seed: 3}",
            "forecast.lookback=40", "forecast.samples=4", f"forecast.cache_dir={tmp / 'cache'}",
            "backtest.start=2015-06-01", "backtest.end=2015-08-31", "output.figures=false",
            f"output.dir={tmp / 'runs'}/{{name}}", "evaluation.bootstrap_samples=200"]


def test_momentum_baseline_strategy_follows_the_schedule(tmp_path):
    """Bug 5: strategies/momentum_baseline.yaml traded daily from the first bar, ignoring the schedule."""
    cfg = load_config(REPO / "strategies" / "momentum_baseline.yaml", overrides=[  # on the synthetic market
        *_tiny_overrides(tmp_path), "data.source=synthetic", "data.start=null", "market=custom",
        "universe.instruments=null"])
    run = run_backtest(cfg, quiet=True, write=False)
    asofs = pd.DatetimeIndex(sorted(run.forecasts["asof"].unique().to_list()))
    assert run.scores.index.equals(asofs) and run.weights.index.equals(asofs)
    assert asofs.min() >= pd.Timestamp("2015-06-01") and asofs.max() < pd.Timestamp("2015-09-01")
    bars = pd.DatetimeIndex(run.panel["timestamp"].unique().sort().to_list())
    assert set(np.diff(bars.get_indexer(asofs))) == {5}  # forecast.rebalance: every 5th bar
    traded = run.backtest.orders["timestamp"]
    assert traded.min() > asofs.min() and traded.max() < pd.Timestamp("2015-09-01")


def test_ties_are_broken_by_the_raw_score_in_the_backtest_and_the_nightly_file(tmp_path):
    """Bug 6: winsorizing makes the top names tie; the alphabetically first used to win."""
    cfg = load_config(None, overrides=[
        *_tiny_overrides(tmp_path), "data.synthetic={n_instruments: 40, n_bars: 120, mode: planted, seed: 5}",
        "model.id=baseline:historical_drift", "signal.transforms=[winsorize]", "portfolio.params={k: 1}",
        "forecast.rebalance=1", "backtest.start=2015-05-01", "backtest.end=2015-05-29", "baseline=[]",
        f"output.signals_file={tmp_path / 'signals'}/{{name}}_{{asof}}.csv"])
    panel, _ = load_strategy_data(cfg)
    table, _ = forecast_table(cfg, panel, quiet=True)
    raw = compute_signal("expected_return", forecasts=table)
    scores = apply_transforms(raw, ["winsorize"])
    top = scores.eq(scores.max(axis=1), axis=0)
    assert (top.sum(axis=1) >= 2).all()  # the top score is shared on every date
    best_raw = raw.where(top).idxmax(axis=1)
    first_name = top.idxmax(axis=1)  # what column order picked
    differ = best_raw[best_raw != first_name].index
    assert len(differ) > 0
    run = run_backtest(cfg, quiet=True, write=False)
    held = run.weights.fillna(0).gt(0)
    assert (held.idxmax(axis=1) == best_raw).all() and (held.sum(axis=1) == 1).all()
    nightly = run_signals(cfg, differ[0].date(), quiet=True).table
    tied = nightly[nightly["score"] == nightly["score"].max()]
    assert tied["instrument"].tolist() == raw.loc[differ[0], tied["instrument"]].sort_values(ascending=False).index.tolist()
    assert tied["rank"].tolist() == list(range(1, len(tied) + 1))
    assert nightly.loc[nightly["weight"] > 0, "instrument"].tolist() == [best_raw[differ[0]]]


def test_evaluation_settings_are_recorded(ragged):
    prov = json.loads((ragged.output_dir / "provenance.json").read_text())
    assert prov["provenance"]["evaluation"]["label"] == "next_open" == ragged.metrics["label"]
    assert prov["config"]["evaluation"]["bootstrap_samples"] == 200
    assert ragged.metrics["label_description"] == "open t+1 -> open t+1+h"
    assert prov["provenance"]["evaluation"]["baselines"] == ["momentum(20, skip 1)", "random_walk"]
