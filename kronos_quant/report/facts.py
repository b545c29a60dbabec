"""What was run, in a few labelled lines: data, universe, period, schedule, label, model, costs, seed, version.

Read from the resolved config (``StrategyConfig.resolved()``), the provenance and the metrics of a
run; any of them may lack a key (an older run, a hand-made config), which then reads "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from kronos_quant.report import fmt
from kronos_quant.report.leaderboard import call_label, dig

__all__ = ["LABELS", "label_description", "backtest_period", "run_facts"]

LABELS = {"close_to_close": "close t \u2192 close t+{h}", "next_open": "open t+1 \u2192 open t+1+{h}",
          "qlib": "close t+1 \u2192 close t+1+{h}"}


def label_description(metrics: Mapping[str, Any], horizon: Any) -> str:
    """The forward-return label of the IC, e.g. 'close_to_close: close t → close t+5'."""
    label = metrics.get("label") or "close_to_close"
    known = LABELS.get(str(label))  # with the horizon filled in (metrics.json says "t+1+h")
    text = known.format(h=horizon if horizon else "h") if known else metrics.get("label_description")
    return f"{label}: {text}" if text else str(label)


def backtest_period(result: Any) -> tuple[pd.Timestamp, pd.Timestamp, int] | None:
    """(first execution bar, last bar, number of bars) of a ``BacktestResult``; None without trades."""
    if result is None:
        return None
    executed = result.targets.notna().any(axis=1).to_numpy()
    if not executed.any():
        return None
    index = result.returns.index[executed.argmax():]
    return pd.Timestamp(index[0]), pd.Timestamp(index[-1]), len(index)


def _day(value: Any) -> str:
    if value is None:
        return "\u2026"
    stamp = pd.Timestamp(value)
    return str(stamp.date()) if stamp == stamp.normalize() or stamp.hour >= 15 else str(stamp)


def _data(config: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    d = dig(config, "data") or {}
    if d.get("source") == "synthetic":
        s = d.get("synthetic") or {}
        text = (f"synthetic market ({s.get('mode')}, {s.get('n_instruments')} instruments \u00d7 "
                f"{s.get('n_bars')} bars, seed {s.get('seed')})")
    else:
        text = str(d.get("path") or dig(provenance, "validation", "source") or fmt.NA)
    fingerprint = provenance.get("data_fingerprint")
    return text + (f" \u00b7 fingerprint {str(fingerprint)[:12]}" if fingerprint else "")


def _universe(metrics: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    n = dig(provenance, "data", "instruments") or dig(provenance, "validation", "n_instruments")
    parts = [f"{n} instruments" if n is not None else fmt.NA]
    excluded = dig(provenance, "validation", "exclusions") or []
    if excluded:
        parts.append(f"{len(excluded)} excluded by validation")
    unscored = metrics.get("unscored") or []
    if unscored:
        parts.append(f"{len(unscored)} unscored")
    return ", ".join(parts)


def _period(config: Mapping[str, Any], provenance: Mapping[str, Any], period: Any) -> str:
    if period is not None:
        start, end, n = period
        return f"{_day(start)} \u2192 {_day(end)} \u00b7 {n} bars"
    start = dig(config, "backtest", "start") or dig(provenance, "data", "first")
    end = dig(config, "backtest", "end") or dig(provenance, "data", "last")
    return f"{_day(start)} \u2192 {_day(end)}"


def _model(config: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    model = dig(config, "model", "id") or dig(provenance, "model", "model_id") or fmt.NA
    revision = dig(provenance, "model", "revision") or dig(config, "model", "revision")
    weights = dig(provenance, "model", "weights")
    text = str(model) + (f" @ {str(revision)[:12]}" if revision else f" (weights {str(weights)[:12]})" if weights else "")
    f = dig(config, "forecast") or {}
    if f:
        text += f" \u00b7 {f.get('samples')} samples, T {f.get('T')}, top-p {f.get('top_p')}, lookback {f.get('lookback')}"
    return text


def _strategy(config: Mapping[str, Any]) -> str:
    sig, port = dig(config, "signal") or {}, dig(config, "portfolio") or {}
    signal = call_label(sig.get("name", fmt.NA), sig.get("params"))
    if sig.get("transforms"):
        signal += " \u2192 " + ", ".join(map(str, sig["transforms"]))
    portfolio = call_label(port.get("name", fmt.NA), port.get("params"))
    if fmt.as_float(port.get("max_weight")) is not None:
        portfolio += f", max weight {fmt.pct(port['max_weight'], 0)}"
    if fmt.as_float(port.get("cash_buffer")):
        portfolio += f", cash {fmt.pct(port['cash_buffer'], 0)}"
    return f"{signal}; {portfolio}"


def _costs(config: Mapping[str, Any]) -> str:
    """The costs and the trading rules the backtest enforced, after the market preset filled them in:
    'us_equity: fees 1.0 bp (min 1 per order) + slippage 5.0 bp per trade' and, where active, stamp
    duty on sells, lots, T+1 and price limits."""
    c, t = dig(config, "costs") or {}, dig(config, "trading") or {}
    if not c:
        return fmt.NA
    fees = f"fees {fmt.bp(c.get('fees'))}"
    if fmt.as_float(c.get("min_fee")):
        fees += f" (min {fmt.number(c['min_fee'])} per order)"
    parts = [f"{fees} + slippage {fmt.bp(c.get('slippage'))} per trade"]
    if fmt.as_float(c.get("sell_tax")):
        parts.append(f"stamp duty {fmt.bp(c['sell_tax'])} on sells")
    if t.get("lot_size"):
        parts.append(f"lots of {t['lot_size']}")
    if t.get("settlement") and t["settlement"] != "T+0":
        parts.append(str(t["settlement"]))
    limit = t.get("price_limit")
    if limit == "a_share":
        parts.append("A-share price limits by board")
    elif fmt.as_float(limit) is not None:
        parts.append(f"price limit ±{fmt.pct(limit, 0)}")
    market = dig(config, "market")
    return (f"{market}: " if market and market != "custom" else "") + ", ".join(parts)


def run_facts(metrics: Mapping[str, Any], config: Mapping[str, Any] | None, provenance: Mapping[str, Any] | None,
              *, period: tuple[pd.Timestamp, pd.Timestamp, int] | None = None) -> list[tuple[str, str]]:
    """(label, text) pairs describing the run, in reading order (see the module docstring).

    period: ``backtest_period(result)`` when the backtest is at hand, else the configured bounds.
    """
    config, provenance = config or {}, provenance or {}
    horizon = metrics.get("horizon") or dig(config, "forecast", "horizon")
    rebalance = metrics.get("rebalance") or dig(config, "forecast", "rebalance")
    version = provenance.get("kronos_quant") or dig(provenance, "model", "kronos_quant")
    seed = dig(config, "forecast", "seed")
    seed = provenance.get("seed", fmt.NA) if seed is None else seed
    facts = [
        ("Data", _data(config, provenance)),
        ("Universe", _universe(metrics, provenance)),
        ("Period", _period(config, provenance, period)),
        ("Rebalance", f"every {rebalance} bars" if isinstance(rebalance, int) else str(rebalance or fmt.NA)),
        ("Horizon \u00b7 label", f"{horizon} bars \u00b7 {label_description(metrics, horizon)}"),
        ("Model", _model(config, provenance)),
        ("Signal \u00b7 portfolio", _strategy(config)),
        ("Costs", _costs(config)),
        ("Seed \u00b7 version", f"seed {seed} \u00b7 kronos-quant {version or fmt.NA}"),
    ]
    if metrics.get("n_trials") is not None:
        n = metrics["n_trials"]
        facts.append(("Trials", f"{n} configuration{'' if n == 1 else 's'} tried (deflated Sharpe)"))
    return facts
