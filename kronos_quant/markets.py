"""Market presets: ``market: us_equity | cn_a_share | crypto_24_7 | custom`` in a strategy file.

A preset names the exchange calendar (holidays, sessions, lunch breaks: ``data.exchange``), the
market's time zone, the trading days per year used for annualisation, and the defaults of the
``costs`` and ``trading`` sections. Values written in the strategy file (or set with ``--set``)
override the preset's; ``config.StrategyConfig.market_defaults`` lists what the preset filled in,
and the run's provenance records both. ``custom`` fills in nothing: the calendar is inferred
from the data and costs keep the schema defaults.

Each value's source, checked on 2026-12-01 (search of public pages; re-check before trading):

us_equity (NYSE/Nasdaq; calendar XNYS, America/New_York, 09:30-16:00):
- ``fees`` 0.0001: Interactive Brokers "IBKR Pro Fixed" US stock commission, USD 0.005 per share
  (interactivebrokers.co.uk/en/pricing/commissions-stocks.php), i.e. 1 bp at a USD 50 share
  price; most retail brokers charge no commission. ``min_fee`` 1.0: its minimum per order, USD 1.00.
- ``sell_tax`` 0.0: the SEC Section 31 fee on sales was USD 27.80 per million (2024-05-22 ..
  2025-05-13) and USD 0.00 per million from 2025-05-14 (FINRA Information Notice 2025-04-24).
  The SEC's fiscal-2026 order (Release 34-104909, 2026-02-27; Federal Register 2026-04233) set a
  new rate that could not be read here: set ``costs.sell_tax`` (e.g. 2.78e-5 for USD 27.80 per
  million). FINRA's trading activity fee (USD 0.000166 per share sold) is per share and not modelled.
- ``slippage`` 0.0005: a modelling assumption (5 bp per side), not a published number.
- 252 trading days a year (the convention; XNYS had 250-253 sessions a year in 2010-2025).

cn_a_share (Shanghai/Shenzhen A-shares; calendar XSHG, Asia/Shanghai, 09:30-11:30 and 13:00-15:00):
- ``fees`` 0.0005 and ``min_fee`` 5.0 CNY: qlib's benchmark exchange settings (``open_cost:
  0.0005``, ``min_cost: 5`` in examples/benchmarks/*/workflow_config_*.yaml of microsoft/qlib);
  their ``close_cost: 0.0015`` is this commission plus the 0.1% stamp duty of that time. It also
  covers the transfer fee, 0.001% per side since 2022-04-29 (ChinaClear; Yicai, 2022-04-29).
- ``sell_tax`` 0.0005: stamp duty on sells only, halved from 0.1% to 0.05% from 2023-08-28
  (Ministry of Finance and State Taxation Administration, 2023-08-27). For backtests before that
  date set ``costs.sell_tax: 0.001`` (0.1% since 2008-09-19).
- ``slippage`` 0.0005: a modelling assumption, as for us_equity.
- ``trading.lot_size`` 100: buy orders in lots of 100 shares (exchange trading rules).
- ``trading.settlement`` T+1: shares bought on a day can be sold from the next trading day.
- ``trading.price_limit`` a_share: daily limits on the previous close by board and date
  (``trading_rules.A_SHARE_LIMITS``): main board +-10%; ChiNext (300/301) +-20% since 2020-08-24
  (10% before; SZSE ChiNext reform, Yicai 2020-04-28); STAR (688/689) +-20% since its launch;
  Beijing Stock Exchange +-30% (CSRC, 2021-09); risk-warning (ST, *ST) stocks on the main board
  +-5% (since 1998-04-22), +-10% from 2026-07-06: proposed by both exchanges on 2025-06-27
  (Xinhua, China News Service), adopted in the 2026 revisions of their trading rules published on
  2026-04-24 -- SSE, "上交所修订发布《上海证券交易所交易规则》" (sse.com.cn/aboutus/mediacenter/
  hotandd/c/c_20260424_10816474.shtml: "三是将主板风险警示股票价格涨跌幅限制比例由5%调整为10%
  ……《交易规则》于2026年7月6日起正式实施") and SZSE notice 深证上〔2026〕551号 (szse.cn/lawrules/
  rule/allrules/bussiness/t20260424_620190.html: "本规则自2026年7月6日起施行"). These two pages
  were read as quoted, with page hashes, in the CC0 rules dataset marina-rules 2026.10.26.5
  (record cn.limit.st_main.2026-07-06), not fetched here. ST stocks are not recognisable from
  their codes, so list them in ``trading.st_instruments``.
- 243 trading days a year (XSHG had 238-245 sessions a year in 2010-2025, mean 242.9).

crypto_24_7 (spot crypto; every day, UTC):
- ``fees`` 0.001: Binance spot, regular tier, 0.1% maker and taker (without the BNB discount).
- ``slippage`` 0.0005: a modelling assumption. No minimum fee, lots, settlement delay or limits.
- 365 trading days a year.

Knows nothing about data, models or backtests; ``config`` reads it, ``data.exchange`` and
``trading_rules`` do the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kronos_quant.errors import ConfigError

__all__ = ["MarketPreset", "MARKETS", "MARKET_NAMES", "get_market"]


@dataclass(frozen=True)
class MarketPreset:
    """A market's calendar and default trading conventions.

    exchange: an ``exchange_calendars`` code (XNYS, XSHG) or None (24/7 or inferred from the data).
    tz: IANA time zone of the sessions (None: the data's own). sessions: regular trading sessions
    as local (open, close) times, e.g. (("09:30", "11:30"), ("13:00", "15:00")). weekdays: trading
    weekdays (Monday = 0). days_per_year: trading days a year; periods per year for annualisation
    = days_per_year x bars per day. defaults: values of the ``costs`` and ``trading`` sections
    (section -> key -> value) used where the strategy file sets none.
    """

    name: str
    description: str
    exchange: str | None = None
    tz: str | None = None
    sessions: tuple[tuple[str, str], ...] = ()
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    days_per_year: float | None = None
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def periods_per_year(self, bars_per_day: int) -> float | None:
        """Bars per year for annualisation (None for ``custom``: infer it from the data)."""
        return None if self.days_per_year is None else float(self.days_per_year * max(int(bars_per_day), 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for provenance)."""
        return {"name": self.name, "description": self.description, "exchange": self.exchange, "tz": self.tz,
                "sessions": [list(s) for s in self.sessions], "weekdays": list(self.weekdays),
                "days_per_year": self.days_per_year, "defaults": {k: dict(v) for k, v in self.defaults.items()}}


MARKETS: dict[str, MarketPreset] = {
    m.name: m
    for m in [
        MarketPreset(
            "us_equity", "US equities (NYSE/Nasdaq): XNYS holidays, 09:30-16:00 New York time",
            exchange="XNYS", tz="America/New_York", sessions=(("09:30", "16:00"),), days_per_year=252,
            defaults={"costs": {"fees": 0.0001, "min_fee": 1.0, "sell_tax": 0.0, "slippage": 0.0005},
                      "trading": {"lot_size": None, "settlement": "T+0", "price_limit": None}}),
        MarketPreset(
            "cn_a_share", "China A-shares (Shanghai/Shenzhen): XSHG holidays, 09:30-11:30 and 13:00-15:00 "
                          "Shanghai time, lots of 100, T+1, price limits by board",
            exchange="XSHG", tz="Asia/Shanghai", sessions=(("09:30", "11:30"), ("13:00", "15:00")),
            days_per_year=243,
            defaults={"costs": {"fees": 0.0005, "min_fee": 5.0, "sell_tax": 0.0005, "slippage": 0.0005},
                      "trading": {"lot_size": 100, "settlement": "T+1", "price_limit": "a_share"}}),
        MarketPreset(
            "crypto_24_7", "spot crypto: trades every day around the clock (UTC), 365 days a year",
            exchange=None, tz="UTC", sessions=(("00:00", "24:00"),), weekdays=(0, 1, 2, 3, 4, 5, 6),
            days_per_year=365,
            defaults={"costs": {"fees": 0.001, "min_fee": 0.0, "sell_tax": 0.0, "slippage": 0.0005},
                      "trading": {"lot_size": None, "settlement": "T+0", "price_limit": None}}),
        MarketPreset("custom", "no preset: calendar inferred from the data, costs as written in the strategy"),
    ]
}
MARKET_NAMES: tuple[str, ...] = tuple(MARKETS)


def get_market(name: str) -> MarketPreset:
    """The preset called ``name``; ConfigError naming the known ones."""
    if name not in MARKETS:
        raise ConfigError(f"unknown market {name!r}; choose one of {', '.join(MARKET_NAMES)}")
    return MARKETS[name]
