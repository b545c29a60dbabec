"""Market presets in strategy files: defaults that explicit values override, provenance, warnings when
the data contradicts the market, next sessions in the nightly signals, the backtest period check and
model revisions that must not leak from one model to another."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
import yaml

from kronos_quant.config import load_config
from kronos_quant.config_market import MarketName
from kronos_quant.data import load_builtin, load_panel
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.market_context import backtest_options, market_warnings
from kronos_quant.markets import MARKETS
from kronos_quant.model.spec import ModelSpec
from kronos_quant.workflow import load_strategy_data, make_forecaster, run_backtest, run_signals
from tests.conftest import REPO, shared_path

STRATEGIES = REPO / "strategies"
US = ["data.source=builtin", "data.name=sp500-2013-2017", "data.start=2017-05-01", "data.end=2018-01-01",
      "data.validation=drop", "universe.instruments=[AAPL, AMZN, BA, BAC, CAT]"]


def test_market_names_match_the_presets() -> None:
    assert set(MarketName.__args__) == set(MARKETS)  # type: ignore[attr-defined]


def test_every_strategy_file_declares_its_market() -> None:
    for path in sorted(STRATEGIES.glob("*.yaml")):
        if path.name.startswith("finetune"):
            continue
        raw = yaml.safe_load(path.read_text())
        assert raw.get("market") in MARKETS, f"{path.name} does not declare market: (one of {list(MARKETS)})"


def test_preset_defaults_and_explicit_overrides() -> None:
    cfg = load_config(None, overrides=["market=cn_a_share", "costs.fees=0.0003", "trading.settlement=T+0"])
    assert (cfg.costs.fees, cfg.costs.min_fee, cfg.costs.sell_tax) == (0.0003, 5.0, 0.0005)
    assert (cfg.trading.lot_size, cfg.trading.settlement, cfg.trading.price_limit) == (100, "T+0", "a_share")
    assert "costs.fees" not in cfg.market_defaults and cfg.market_defaults["costs.min_fee"] == 5.0
    assert "trading.settlement" not in cfg.market_defaults
    custom = load_config(None)
    assert custom.market == "custom" and custom.market_defaults == {}
    assert (custom.costs.fees, custom.trading.lot_size, custom.trading.settlement) == (0.0005, None, "T+0")
    crypto = load_config(None, overrides=["market=crypto_24_7"])
    assert crypto.costs.fees == 0.001 and MARKETS["crypto_24_7"].periods_per_year(1) == 365.0
    with pytest.raises(ConfigError, match="unknown key 'market_defaults'"):
        load_config(None, overrides=["market_defaults={costs.fees: 1}"])
    with pytest.raises(ConfigError, match="moved to trading.price_limit"):
        load_config(None, overrides=["costs.price_limit=0.1"])
    with pytest.raises(ConfigError, match="market: Input should be"):
        load_config(None, overrides=["market=nyse"])
    with pytest.raises(ConfigError, match="data.name is 'sp500'.*sp500-2013-2017"):
        load_config(None, overrides=["data.source=builtin", "data.name=sp500"])


def test_resolved_values_reach_the_backtest_and_the_provenance(tmp_path: Path) -> None:
    cfg = load_config(STRATEGIES / "momentum_baseline.yaml", overrides=[
        *US, "data.start=2017-01-01", "backtest.start=2017-10-02", "costs.slippage=0.001",
        f"output.dir={tmp_path / 'run'}", "output.figures=false"])
    panel, _ = load_strategy_data(cfg)
    opts = backtest_options(cfg, panel)
    assert opts["slippage"] == 0.001 and opts["fees"] == 0.0001 and opts["min_fee"] == 1.0
    assert opts["periods_per_year"] == 252.0
    run = run_backtest(cfg, quiet=True)
    market = run.provenance["market"]
    assert market["name"] == "us_equity" and market["exchange"] == "XNYS"
    assert market["applied_defaults"]["costs.fees"] == 0.0001 and "costs.slippage" not in market["applied_defaults"]
    assert run.backtest.settings["min_fee"] == 1.0 and run.backtest.settings["slippage"] == 0.001
    assert run.backtest.periods_per_year == 252.0


def test_us_data_under_the_a_share_strategy_warns(caplog: pytest.LogCaptureFixture) -> None:
    # The README's real-data recipe with US data under kronos_small_topk.yaml: warned, not silent.
    cfg = load_config(STRATEGIES / "kronos_small_topk.yaml", overrides=US)
    with caplog.at_level(logging.WARNING, logger="kronos_quant.market_context"):
        panel, report = load_strategy_data(cfg)
    assert "market: cn_a_share (XSHG calendar), but" in caplog.text
    assert "looks like market: us_equity" in caplog.text
    assert any("XSHG" in n for n in report.notes)  # ... and it is in the provenance
    fixed = load_config(STRATEGIES / "kronos_small_topk.yaml", overrides=[*US, "market=us_equity"])
    assert market_warnings(fixed, panel) == []
    assert fixed.trading.lot_size is None and fixed.costs.sell_tax == 0.0 and fixed.trading.settlement == "T+0"


def test_intraday_data_under_the_wrong_market_warns() -> None:
    days = pd.bdate_range("2024-06-03", "2024-06-28")
    stamps = [d + pd.Timedelta(minutes=m) for d in days for m in range(9 * 60 + 35, 16 * 60 + 1, 5)]
    import polars as pl

    panel = pl.DataFrame({"instrument": "X", "timestamp": stamps}).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    cfg = load_config(None, overrides=["market=cn_a_share"])
    warnings = market_warnings(cfg, panel)
    assert any("fall outside" in w for w in warnings)
    crypto = load_config(None, overrides=["market=crypto_24_7"])
    assert any("no bar on any weekend" in w for w in market_warnings(crypto, panel))


@pytest.mark.parametrize("asof, expected", [("2017-07-03", "2017-07-05"), ("2017-12-22", "2017-12-26"),
                                            ("2017-12-29", "2018-01-02")])
@pytest.mark.parametrize("market", ["us_equity", "custom"])
def test_nightly_next_session_is_never_a_holiday(tmp_path: Path, market: str, asof: str, expected: str) -> None:
    cfg = load_config(STRATEGIES / "momentum_baseline.yaml", overrides=[
        *US, f"market={market}", "forecast.cache_dir=null", "data.start=2013-01-01" if market == "custom" else
        "data.start=2017-05-01", "universe.instruments=[AAPL, AMZN, BA]", "forecast.lookback=20"])
    res = run_signals(cfg, pd.Timestamp(asof), output=tmp_path / "signals.csv", quiet=True)
    assert res.next_session == pd.Timestamp(expected)
    assert (pd.read_csv(tmp_path / "signals.csv")["next_session"] == expected).all()


def test_backtest_start_after_the_data_names_both_ranges() -> None:
    cfg = load_config(STRATEGIES / "momentum_baseline.yaml", overrides=[*US, "backtest.start=2019-01-02",
                                                                                "backtest.end=null"])
    with pytest.raises(DataError, match=r"2019-01-02 \.\. end of data lies outside the data, which covers "
                                        r"2017-05-01 \.\. 2017-12-29"):
        run_backtest(cfg, quiet=True, write=False)


def test_a_backtest_period_of_one_bar_names_the_keys_and_both_ranges() -> None:
    cfg = load_config(STRATEGIES / "momentum_baseline.yaml", overrides=[*US, "backtest.start=2017-12-29"])
    with pytest.raises(DataError, match=r"backtest.start \.\. backtest.end = 2017-12-29 \.\. 2017-12-31 holds 1 bar "
                                        r"\(2017-12-29\) of the data, which covers 2017-05-01 \.\. 2017-12-29.*at "
                                        r"least 2 bars: move backtest.start earlier"):
        run_backtest(cfg, quiet=True, write=False)


def test_pinned_revisions_never_reach_another_model() -> None:
    # kronos_small_topk.yaml relies on the kronos-small preset's pins; --set model.id=kronos-demo gets none.
    cfg = load_config(STRATEGIES / "kronos_small_topk.yaml", overrides=["model.id=kronos-demo"])
    assert cfg.model.revision is None and cfg.model.tokenizer_revision is None
    identity = make_forecaster(cfg).identity
    assert identity["revision"] is None and identity["tokenizer_revision"] is None
    small = ModelSpec.resolve("kronos-small")
    assert small.revision == "901c26c1332695a2a8f243eb2f37243a37bea320"
    with pytest.raises(ConfigError, match="bundled with kronos-quant and has no Hub revisions"):
        ModelSpec.resolve("kronos-demo", revision="901c26c1332695a2a8f243eb2f37243a37bea320")


def test_a_short_us_window_under_the_a_share_market_warns() -> None:
    # Nov-Dec 2017: only Thanksgiving and Christmas disagree with XSHG (too few days to count), but the data
    # follows the NYSE day for day -- so it warns, and names the better market.
    panel = load_builtin("sp500-2013-2017", instruments=["AAPL", "AMZN"], start="2017-11-01")
    cn = load_config(None, overrides=["market=cn_a_share"])
    (warning,) = market_warnings(cn, panel)
    assert "2 XSHG sessions have no bar (2017-11-23, 2017-12-25), while every day fits the XNYS calendar" in warning
    assert "looks like market: us_equity" in warning


def test_short_windows_of_matching_data_raise_no_false_alarm() -> None:
    us_data = load_builtin("sp500-2013-2017", instruments=["AAPL", "AMZN", "CAT"])
    us, cn = (load_config(None, overrides=[f"market={m}"]) for m in ("us_equity", "cn_a_share"))
    caught = 0
    for start in pd.date_range("2013-03-01", "2017-10-01", freq="3MS"):
        window = us_data.filter(pl.col("timestamp").is_between(start.date(), (start + pd.DateOffset(months=2)).date()))
        assert market_warnings(us, window) == [], start
        caught += bool(market_warnings(cn, window))
    assert caught >= 17  # of 19 two-month windows, under the wrong market


def test_real_a_share_bars_fit_their_market() -> None:
    cn_path = shared_path("data", "cn_a_share_5min.csv")  # A-share 5-minute bars, ten weeks of 2024
    cn = load_config(None, overrides=["market=cn_a_share"])
    assert market_warnings(cn, load_panel(cn_path)) == []


def test_timestamps_in_another_zone_than_the_market_warn() -> None:
    days = pd.bdate_range("2017-11-01", periods=5)
    panel = pl.DataFrame({"instrument": "X", "timestamp": days + pd.Timedelta(hours=16)}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")))
    cn = load_config(None, overrides=["market=cn_a_share"])
    ny = panel.with_columns(pl.col("timestamp").dt.replace_time_zone("America/New_York"))
    assert any("is in Asia/Shanghai (UTC+8h), but the data's timestamps are in America/New_York (UTC-5h)" in w
               for w in market_warnings(cn, ny))
    for neutral in ("UTC", "Asia/Hong_Kong"):  # UTC says nothing about the market; +08:00 is Shanghai's offset
        aware = panel.with_columns(pl.col("timestamp").dt.replace_time_zone(neutral))
        assert not any("the data's timestamps are in" in w for w in market_warnings(cn, aware))
