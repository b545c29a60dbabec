"""A-share trading rules in the backtest, each against a small hand-computed case: lots of 100
shares, minimum commission, stamp duty on sells only, price limits by board and date, and T+1
(binding intraday, not over-blocking daily next-open trading)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kronos_quant.backtest import backtest_weights
from kronos_quant.trading_rules import A_SHARE_LIMITS, a_share_board, price_limits
from tests.conftest import panel_from_prices

DAYS = pd.bdate_range("2024-03-04", periods=4)  # Mon .. Thu


def test_lots_min_commission_and_stamp_duty_by_hand() -> None:
    # 600000 opens at 10.00 on days 0-1 and 10.50 on days 2-3; 000001 stays at 10.00.
    panel = panel_from_prices({"600000": [10.0, 10.0, 10.5, 10.5], "000001": [10.0] * 4}, stamps=DAYS)
    weights = pd.DataFrame({"600000": [0.5037, 0.0], "000001": [0.012, np.nan]}, index=DAYS[[0, 2]])
    res = backtest_weights(panel, weights, init_cash=100_000.0, fees=0.0005, min_fee=5.0, sell_tax=0.0005,
                           lot_size=100, with_gross=False)
    o = res.orders.set_index(["timestamp", "instrument"])
    # Day 1 open, value 100,000: 0.5037 -> 5,037 shares -> 5,000 (lots of 100); 0.012 -> 120 -> 100 shares.
    assert o.loc[(DAYS[1], "600000"), "size"] == 5000
    assert o.loc[(DAYS[1], "000001"), "size"] == 100
    # Commission 0.05% of 50,000 = 25 (above the minimum); of 1,000 it is 0.50 -> the 5 CNY minimum.
    assert o.loc[(DAYS[1], "600000"), "fees"] == pytest.approx(25.0)
    assert o.loc[(DAYS[1], "000001"), "fees"] == pytest.approx(5.0)
    # Day 3 open: sell 5,000 at 10.50 = 52,500: commission 26.25 + stamp duty 0.05% 26.25 = 52.50.
    assert o.loc[(DAYS[3], "600000"), "side"] == "sell"
    assert o.loc[(DAYS[3], "600000"), "size"] == 5000
    assert o.loc[(DAYS[3], "600000"), "fees"] == pytest.approx(52.5)
    cash = 100_000 - 50_000 - 25 - 1_000 - 5 + 52_500 - 52.5
    assert res.equity.iloc[-1] == pytest.approx(cash + 100 * 10.0)
    assert res.settings["sell_tax"] == 0.0005


def test_stamp_duty_is_charged_on_sells_only() -> None:
    panel = panel_from_prices({"600000": [10.0, 10.0, 10.0, 10.0]}, stamps=DAYS)
    weights = pd.DataFrame({"600000": [0.5, 0.0]}, index=DAYS[[0, 2]])
    taxed = backtest_weights(panel, weights, init_cash=10_000.0, fees=0.001, sell_tax=0.01, with_gross=False).orders
    plain = backtest_weights(panel, weights, init_cash=10_000.0, fees=0.001, with_gross=False).orders
    assert taxed["side"].tolist() == ["buy", "sell"]
    assert taxed["fees"].iloc[0] == pytest.approx(plain["fees"].iloc[0])  # buy: commission only
    value = taxed["value"].iloc[1]
    assert taxed["fees"].iloc[1] == pytest.approx(value * (0.001 + 0.01))  # sell: commission + 1% duty


def test_board_of_codes_and_limits_by_date() -> None:
    assert [a_share_board(c) for c in ("600519.SH", "sz.000001", "SZ300750", "688981", "830799", "AAPL")] == \
        ["main", "main", "chinext", "star", "bse", "unknown"]
    bars = pd.DatetimeIndex(["2020-08-21", "2020-08-24", "2026-07-03", "2026-07-06"])
    lim = price_limits(["600000", "300750", "688981", "600001", "300001"], bars, "a_share",
                       st_instruments=["600001", "300001"])
    assert lim[:, 0].tolist() == [0.1] * 4  # main board
    assert lim[:, 1].tolist() == [0.1, 0.2, 0.2, 0.2]  # ChiNext: 20% from 2020-08-24
    assert lim[:, 2].tolist() == [0.2] * 4  # STAR
    assert lim[:, 3].tolist() == [0.05, 0.05, 0.05, 0.1]  # main-board ST: 5%, then 10%
    assert lim[:, 4].tolist() == [0.1, 0.2, 0.2, 0.2]  # an ST on ChiNext keeps the board's limit
    assert A_SHARE_LIMITS["bse"][-1][1] == 0.3
    assert price_limits(["X"], bars, None) is None


def test_the_st_limit_change_date_cites_the_exchanges() -> None:
    import kronos_quant.markets as markets
    from kronos_quant.trading_rules import ST_LIMIT_CHANGE

    assert ST_LIMIT_CHANGE.isoformat() == "2026-07-06"
    doc = " ".join(markets.__doc__.split())
    assert "c_20260424_10816474" in doc and "深证上〔2026〕551号" in doc and "2026年7月6日" in doc


@pytest.mark.parametrize("start, chinext_blocked", [("2020-08-17", True), ("2021-03-01", False)])
def test_price_limits_per_board_block_buys(start: str, chinext_blocked: bool) -> None:
    days = pd.bdate_range(start, periods=4)
    # Every name opens 15% above the previous close on day 1; the ST name opens 6% above it.
    up15, up6 = [10.0, 11.5, 11.5, 11.5], [10.0, 10.6, 10.6, 10.6]
    closes = {"600000": [10.0, 11.5, 11.5, 11.5], "300750": [10.0, 11.5, 11.5, 11.5],
              "688981": [10.0, 11.5, 11.5, 11.5], "600001": [10.0, 10.6, 10.6, 10.6]}
    opens = {"600000": up15, "300750": up15, "688981": up15, "600001": up6}
    panel = panel_from_prices(closes, opens, stamps=days)
    weights = pd.DataFrame({k: [0.2] for k in closes}, index=days[:1])
    res = backtest_weights(panel, weights, init_cash=10_000.0, price_limit="a_share", st_instruments=["600001"],
                           with_gross=False)
    bought = set(res.orders.loc[res.orders["timestamp"] == days[1], "instrument"])
    assert "600000" not in bought and res.blocked.loc[days[1], "600000"]  # main board: +15% >= 10%
    assert "688981" in bought  # STAR: 15% < 20%
    assert ("300750" not in bought) == chinext_blocked  # ChiNext: 10% before 2020-08-24, then 20%
    assert "600001" not in bought  # ST on the main board: +6% >= 5%


def _intraday(days: list[str], times: list[str]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(f"{d} {t}") for d in days for t in times])


def test_t_plus_one_blocks_same_day_sells_intraday_by_hand() -> None:
    bars = _intraday(["2024-03-04", "2024-03-05"], ["10:00", "10:05", "10:10"])
    panel = panel_from_prices({"600000": [10.0] * 6}, stamps=bars)
    # Buy decided at bar 0 (fills 10:05 day 1); sell decided at 10:05 (would fill 10:10 the same day)
    # and again at 10:00 on day 2 (fills 10:05 on day 2).
    weights = pd.DataFrame({"600000": [0.5, 0.0, 0.0]}, index=bars[[0, 1, 3]])
    t1 = backtest_weights(panel, weights, init_cash=10_000.0, settlement="T+1", lot_size=100, with_gross=False)
    t0 = backtest_weights(panel, weights, init_cash=10_000.0, settlement="T+0", lot_size=100, with_gross=False)
    assert list(zip(t0.orders["timestamp"], t0.orders["side"])) == [(bars[1], "buy"), (bars[2], "sell")]
    assert list(zip(t1.orders["timestamp"], t1.orders["side"])) == [(bars[1], "buy"), (bars[4], "sell")]
    assert t1.blocked.loc[bars[2], "600000"] and not t0.blocked.to_numpy().any()
    assert t1.positions.loc[bars[2], "600000"] > 0.49  # still held overnight: 500 shares x 10 of 10,000


def test_t_plus_one_allows_next_day_sells_of_daily_bars() -> None:
    # Daily bars and next-open execution: bought at day 1's open, sold at day 2's open -> allowed.
    panel = panel_from_prices({"600000": [10.0] * 4}, stamps=DAYS)
    weights = pd.DataFrame({"600000": [0.5, 0.0]}, index=DAYS[[0, 1]])
    res = backtest_weights(panel, weights, init_cash=10_000.0, settlement="T+1", with_gross=False)
    assert list(zip(res.orders["timestamp"], res.orders["side"])) == [(DAYS[1], "buy"), (DAYS[2], "sell")]
    assert not res.blocked.to_numpy().any()
