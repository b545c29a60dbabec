"""The strategy file's market-facing sections: ``data``, ``costs``, ``trading``, and the market presets.

Split from ``config`` (which assembles the whole ``StrategyConfig``): the data source (synthetic,
a file or directory, or a dataset bundled in the package), its validation policy, the costs
and trading rules, and ``apply_market_defaults``, which fills in a ``market:`` preset's values
(``kronos_quant.markets``) wherever the strategy file sets none.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kronos_quant.markets import MARKETS
from kronos_quant.registry import suggest

MarketName = Literal["us_equity", "cn_a_share", "crypto_24_7", "custom"]  # the keys of markets.MARKETS

__all__ = ["MarketName", "Section", "SyntheticConfig", "ValidationConfig", "DataConfig", "CostsConfig", "TradingConfig",
           "apply_market_defaults"]


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(Section):
    n_instruments: int = Field(30, ge=2, description="number of synthetic instruments")
    n_bars: int = Field(500, ge=50, description="bars per instrument")
    mode: Literal["realistic", "martingale", "planted"] = "planted"
    strength: float = Field(0.1, ge=0.0, description="size of the planted predictable component")
    start: str = "2015-01-02"
    seed: int = 0


class ValidationConfig(Section):
    """``data.validation``: a policy string (``fill``) or this mapping (see kronos_quant.data.validate)."""

    policy: Literal["raise", "drop", "fill"] = "fill"  # what to do with bad rows
    exclude: list[Literal["jumps", "gaps"]] = Field(default_factory=list)  # drop instruments failing these checks
    max_gap_bars: int = Field(10, ge=1)  # a longer gap (in expected bars) breaks an instrument's history
    jump_threshold: float = Field(0.4, gt=0)  # |log close return| flagged as a suspicious jump

    def options(self) -> dict[str, Any]:
        """Keyword arguments for load_panel / validate_panel."""
        return {"policy": self.policy, "exclude": tuple(self.exclude), "max_gap_bars": self.max_gap_bars,
                "jump_threshold": self.jump_threshold}


class DataConfig(Section):
    source: Literal["synthetic", "file", "builtin"] = "synthetic"  # synthetic market, a file/directory, a bundled set
    path: str | None = None  # CSV/Parquet in long format, or a directory of per-instrument files
    name: str | None = None  # the bundled dataset of source: builtin, e.g. sp500-2013-2017
    columns: dict[str, str] = Field(default_factory=dict)  # your column -> standard column (e.g. {PERMNO: instrument})
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)  # or just the policy: raise | drop | fill
    tz: str | None = None  # the market's time zone (IANA); aware timestamps are converted to it
    start: date | None = None  # first bar loaded (history before the backtest counts)
    end: date | None = None
    encoding: str | None = None  # text encoding of CSV files (default UTF-8), e.g. gb18030, cp1252
    timestamp_format: str | None = None  # strftime format of text timestamps, e.g. "%d/%m/%Y" (default: inferred)
    adjust: Literal["none", "splits", "total_return"] = "none"  # back-adjust OHLC (see kronos_quant.data.adjust)

    @field_validator("validation", mode="before")
    @classmethod
    def _policy_string(cls, v: Any) -> Any:
        return {"policy": v} if isinstance(v, str) else v

    def label(self) -> str:
        """How messages name the data: its path, ``builtin:NAME`` or ``synthetic market``."""
        if self.source == "builtin":
            return f"builtin:{self.name}"
        return str(self.path) if self.source == "file" else "synthetic market"

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments for load_panel(_with_report) from this section (besides path and filters)."""
        return {"columns": self.columns or None, "tz": self.tz, "encoding": self.encoding,
                "timestamp_format": self.timestamp_format, "adjust": self.adjust, **self.validation.options()}

    @model_validator(mode="after")
    def _path_for_files(self) -> DataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.source is 'file' but data.path is empty; set data.path to a CSV/Parquet file "
                             "or a directory")
        if self.source == "builtin":
            from kronos_quant.data.builtin import BUILTIN_DATASETS

            if self.name not in BUILTIN_DATASETS:
                raise ValueError(f"data.source is 'builtin' but data.name is {self.name!r}"
                                 f"{suggest(str(self.name), BUILTIN_DATASETS)}; the bundled datasets are: "
                                 f"{', '.join(BUILTIN_DATASETS)}")
        return self


class CostsConfig(Section):
    """Defaults here are for ``market: custom``; a market preset fills in its own (``kronos_quant.markets``)."""

    fees: float = Field(0.0005, ge=0, lt=1)  # commission, fraction of traded value (buys and sells)
    slippage: float = Field(0.0005, ge=0, lt=1)  # fraction of price, adverse
    min_fee: float = Field(0.0, ge=0)  # minimum commission per order, in cash
    sell_tax: float = Field(0.0, ge=0, lt=1)  # fraction of the value of sells only (stamp duty, SEC fee)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "price_limit" in data:
            raise ValueError("costs.price_limit moved to trading.price_limit (a fraction such as 0.1, or a_share "
                             "for the A-share limits by board)")
        return data


class TradingConfig(Section):
    """Trading rules enforced by the backtest (defaults for ``market: custom``; presets fill in their own)."""

    lot_size: int | None = Field(None, ge=1)  # shares per lot: orders are rounded down to whole lots (None: any size)
    settlement: Literal["T+0", "T+1"] = "T+0"  # T+1: shares bought on a day cannot be sold before the next day
    price_limit: float | Literal["a_share"] | None = None  # 0.1: no buys at +10% / sells at -10%; a_share: by board
    st_instruments: list[str] = Field(default_factory=list)  # risk-warning (ST, *ST) A-shares (narrower limits)
    # closures besides the exchange calendar's: list a whole year's (e.g. XSHG's after 2026-12-31, where
    # exchange_calendars stops); used for next sessions and forecast target dates (docs/markets.md)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("price_limit")
    @classmethod
    def _limit(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError(f"must be a fraction of the previous close in (0, 1), e.g. 0.1, or a_share; got {v}")
        return v



def apply_market_defaults(data: Any) -> Any:
    """A copy of a raw strategy mapping with the market preset's ``costs``/``trading`` defaults filled in
    wherever the strategy sets no value (explicit values win), and ``market_defaults``: key path ->
    the value the preset supplied. Anything that is not a mapping with a known market is returned as is
    (the schema reports it)."""
    if not isinstance(data, dict) or data.get("market", "custom") not in MARKETS:
        return data
    out, applied = dict(data), dict(data.get("market_defaults") or {})  # kept when a model is re-validated
    for section, values in MARKETS[data.get("market", "custom")].defaults.items():
        given = out.get(section) or {}
        if isinstance(given, dict):
            missing = {k: v for k, v in values.items() if k not in given}
            out[section] = {**given, **missing}
            applied.update({f"{section}.{k}": v for k, v in missing.items()})
    out["market_defaults"] = applied
    return out
