"""A rolling backtest on 5-minute A-share bars, end to end: the session calendar with its lunch break,
horizons in bars, annualisation by bars per year, T+1 and lots (strategies/cn_5min_intraday.yaml)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kronos_quant.config import load_config
from kronos_quant.data.exchange import next_sessions
from kronos_quant.workflow import run_backtest
from tests.conftest import REPO, shared_path


@pytest.mark.slow
def test_five_minute_rolling_backtest_on_the_a_share_sessions(tmp_path: Path) -> None:
    data = shared_path("data", "cn_a_share_5min.csv")
    cfg = load_config(REPO / "strategies" / "cn_5min_intraday.yaml", overrides=[
        f"data.path={data}", "forecast.samples=2", "forecast.cache_dir=null", "backtest.start=2024-08-27",
        f"output.dir={tmp_path / 'run'}", "output.figures=false"])
    run = run_backtest(cfg, quiet=True)
    assert run.backtest.periods_per_year == 243 * 48  # bars per year = trading days x 48 bars a day
    fc = run.forecasts.to_pandas()
    assert fc["step"].max() == 12  # the horizon is in bars: one hour of 5-minute bars
    minutes = fc["target_timestamp"].dt.hour * 60 + fc["target_timestamp"].dt.minute
    assert not ((minutes > 11 * 60 + 30) & (minutes < 13 * 60 + 5)).any()  # no target in the lunch break
    assert not (minutes > 15 * 60).any() and not (minutes < 9 * 60 + 35).any()
    # Within a forecast, the step after 11:30 is 13:05: the afternoon session follows the morning one.
    nxt = fc.assign(step=fc["step"] - 1).set_index(["asof", "step"])["target_timestamp"]
    noon = fc[fc["target_timestamp"].dt.strftime("%H:%M") == "11:30"].set_index(["asof", "step"])
    after = nxt.reindex(noon.index).dropna()
    assert len(after) and (after.dt.strftime("%H:%M") == "13:05").all()
    s = run.backtest.settings
    assert (s["settlement"], s["lot_size"], s["price_limit"], s["sell_tax"]) == ("T+1", 100, 0.1, 0.0005)
    orders = run.backtest.orders
    assert (orders["size"] % 100 == 0).all()
    signed = orders["size"].where(orders["side"] == "buy", -orders["size"])
    day = orders["timestamp"].dt.date
    held_at_open = signed.groupby(day).sum().cumsum().shift(1, fill_value=0.0)  # shares held before each day
    sold = orders.loc[orders["side"] == "sell"].groupby(day)["size"].sum()
    assert len(sold) and (sold <= held_at_open.reindex(sold.index) + 1e-9).all()  # T+1: only older shares are sold
    assert run.provenance["market"]["periods_per_year"] == 243 * 48
    stamps = run.panel["timestamp"].unique().sort().to_pandas()
    assert next_sessions(stamps, 1, exchange="XSHG")[0] == pd.Timestamp("2024-08-29 13:05")
