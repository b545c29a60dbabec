"""Back-adjust OHLCV for splits and dividends: ``adjust`` = ``"none" | "splits" | "total_return"``.

Unadjusted prices show a 2-for-1 split as a -50% "return"; the model and the backtest would
read it as a crash. Back-adjustment scales every bar before a corporate action so that the
series is continuous and the latest prices are the traded ones.

- ``"none"`` (default): prices exactly as in the file.
- ``"total_return"``: factor_t = adj_close_t / close_t, from the vendor's adjusted close (Yahoo's
  ``Adj Close``, ``adj_close``, ``adjusted_close``), which folds in splits AND dividends. open,
  high, low and close are multiplied by factor_t, volume is divided by it, amount (currency) is
  unchanged -- qlib's convention, so amount = price x volume still holds. Needs both a raw close
  and an adjusted-close column. A bar whose factor cannot be computed (adjusted close or close
  missing or <= 0) gets missing prices, which validation then counts and drops or fills.
- ``"splits"``: the split component only, for prices that are NOT split-adjusted yet (exchange
  or broker raw prices with a corporate-actions table). An adjusted close alone cannot tell a
  split from a dividend (both are just a change of adj_close/close), and guessing splits from
  "large round ratio jumps" would mistake special dividends and rights issues for splits, so
  ``"splits"`` needs a split-ratio column: ``split_ratio``, ``split_coefficient`` (Alpha Vantage's
  ``TIME_SERIES_DAILY_ADJUSTED``, whose OHLC are as traded), ``Stock Splits`` -- the ratio on
  the ex-date (2.0 for a 2-for-1 split, 0.1 for a 1-for-10 reverse split; 0, 1 or empty = no
  split). Then factor_t = 1 / (product of the ratios of that instrument's splits strictly after
  t), and OHLC and volume are adjusted as above. Without such a column ``"splits"`` is a DataError.

  Prices that are already split-adjusted must not be adjusted again. yfinance's Open/High/Low/
  Close (and Volume) are split-adjusted whatever ``auto_adjust`` says, and its ``Stock Splits``
  column only reports the splits applied, so yfinance data wants ``"none"`` (or ``"total_return"``:
  its Adj Close / Close is then the dividend factor). How to tell: on a split's ex-date raw prices
  fall by the ratio (a 2-for-1 split halves the close); adjusted prices do not move. ``"splits"``
  checks every split in the file this way and refuses (DataError) when most of them show no
  drop; the ones that do not fit are listed in the notes.

Knows nothing about files, validation or models.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from kronos_quant.data._hints import columns_hint, option_hint
from kronos_quant.errors import DataError

__all__ = ["Adjust", "ADJUST_MODES", "adjustment_factor", "apply_factor"]

Adjust = Literal["none", "splits", "total_return"]
ADJUST_MODES: tuple[str, ...] = ("none", "splits", "total_return")


def _total_return(close: pl.Series, adj_close: pl.Series, notes: list[str]) -> pl.Series:
    ok = (close > 0) & (adj_close > 0)
    factor = (adj_close / close).zip_with(ok.fill_null(False), pl.Series("factor", [None] * len(close), dtype=pl.Float64))
    n_bad = int((factor.is_null() & close.is_not_null()).sum())
    if n_bad:
        notes.append(f"adjust=total_return: {n_bad} bar(s) without a usable adjusted close get missing prices")
    return factor


def _splits(instrument: pl.Series, timestamp: pl.Series, ratio: pl.Series, close: pl.Series, *, label: str,
            notes: list[str]) -> pl.Series:
    valid = (ratio > 0) & ratio.is_finite()
    n_bad = int((ratio.is_not_null() & ~valid.fill_null(False) & (ratio != 0).fill_null(False)).sum())
    if n_bad:
        notes.append(f"adjust=splits: {n_bad} negative or non-finite split ratio(s) ignored")
    frame = pl.DataFrame({"i": instrument, "t": timestamp, "c": close,
                          "r": ratio.zip_with(valid.fill_null(False), pl.Series("r", [1.0] * len(ratio), dtype=pl.Float64))})
    per_bar = (frame.group_by(["i", "t"]).agg(pl.col("r").max().log().alias("lr"), pl.col("c").first())
               .sort(["i", "t"]))
    later = (pl.col("lr").sum() - pl.col("lr").cum_sum()).over("i")  # log ratios of splits strictly after t
    per_bar = per_bar.with_columns((-later).exp().alias("factor"),
                                   (pl.col("c") / pl.col("c").shift(1)).log().over("i").alias("jump"))
    _check_unadjusted(per_bar.filter(pl.col("lr") != 0), label=label, notes=notes)
    joined = frame.join(per_bar.select("i", "t", "factor"), on=["i", "t"], how="left", maintain_order="left")
    n_splits = int((per_bar["lr"] != 0).sum())
    notes.append(f"adjust=splits: {n_splits} split(s) back-adjusted")
    return joined["factor"].fill_null(1.0)


def _check_unadjusted(events: pl.DataFrame, *, label: str, notes: list[str]) -> None:
    """DataError when most splits (rows i, t, lr = log ratio, jump = log close change into the ex-date) show
    no drop by their ratio, i.e. the prices already absorb them; a note listing the ones that do not fit."""
    known = events.filter(pl.col("jump").is_not_null() & pl.col("jump").is_finite())
    if known.height == 0:
        return
    absorbed = known.filter(pl.col("jump").abs() < (pl.col("jump") + pl.col("lr")).abs())
    if absorbed.height == 0:
        return
    shown = "; ".join(f"{r['i']} {str(r['t'])[:10]} ratio {np.exp(r['lr']):.4g}: close {np.expm1(r['jump']):+.1%} "
                      f"(unadjusted: {np.expm1(-r['lr']):+.1%})" for r in absorbed.head(3).iter_rows(named=True))
    if 2 * absorbed.height > known.height:
        raise DataError(f"{label}: adjust='splits', but the prices already look split-adjusted: on {absorbed.height} "
                        f"of {known.height} split ex-dates the close does not fall by the split ratio ({shown}). "
                        "yfinance's prices and most vendors' are split-adjusted already, and adjusting again "
                        f"would divide earlier prices twice; use {option_hint('adjust', 'none')} (or "
                        "'total_return' with an adjusted close, for dividends too)")
    notes.append(f"adjust=splits: {absorbed.height} of {known.height} split(s) show no drop by their ratio on the "
                 f"ex-date ({shown}); check that the prices are unadjusted")


def adjustment_factor(*, adjust: str, label: str, raw_columns: list[str], close: pl.Series,
                      adj_close: pl.Series | None, split_ratio: pl.Series | None, instrument: pl.Series,
                      timestamp: pl.Series, notes: list[str]) -> pl.Series | None:
    """Per-row factor (None for ``"none"``): adjusted price = price x factor, adjusted volume = volume / factor."""
    if adjust not in ADJUST_MODES:
        raise DataError(f"{label}: adjust={adjust!r} is not one of {list(ADJUST_MODES)}; "
                        f"e.g. {option_hint('adjust', 'total_return')}")
    if adjust == "none":
        return None
    if adjust == "total_return":
        if adj_close is None:
            raise DataError(f"{label}: adjust='total_return' needs a raw close and an adjusted-close column ('Adj "
                            f"Close', 'adj_close', 'adjusted_close'); found {raw_columns}; map yours with "
                            f"{columns_hint('YourAdjClose', 'adj_close')} or use {option_hint('adjust', 'none')}")
        factor = _total_return(close, adj_close, notes)
    else:
        if split_ratio is None:
            raise DataError(f"{label}: adjust='splits' needs a split-ratio column ('Stock Splits', 'split_ratio', "
                            f"'split_coefficient': the ratio on each ex-date) and unadjusted prices; found {raw_columns}. An adjusted "
                            "close alone mixes splits and dividends and cannot be split apart; use "
                            f"{option_hint('adjust', 'total_return')} to adjust for both, or map a split-ratio "
                            f"column with {columns_hint('YourSplits', 'split_ratio')}")
        factor = _splits(instrument, timestamp, split_ratio, close, label=label, notes=notes)
    present = factor.drop_nulls()
    if len(present):
        notes.append(f"adjust={adjust}: OHLC x factor, volume / factor (factor {present.min():.4g} .. "
                     f"{present.max():.4g})")
    return factor


def apply_factor(columns: dict[str, pl.Series], factor: pl.Series | None) -> None:
    """Scale ``columns`` (panel field name -> Float64 series) in place: prices x factor, volume / factor."""
    if factor is None:
        return
    for name in ("open", "high", "low", "close"):
        columns[name] = (columns[name] * factor).alias(name)
    columns["volume"] = (columns["volume"] / factor).alias("volume")
