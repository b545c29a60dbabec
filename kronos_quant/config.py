"""Typed strategy configuration: the YAML schema, safe loading, ``--set`` overrides.

Every section is a pydantic model with commented defaults; unknown keys are errors with a
"did you mean" suggestion, and every error names the file, the key path and what was
expected. YAML is read with ``yaml.safe_load``: a config can never import or run code, and
names (signals, transforms, portfolios) map to code only through explicit registries whose
names and parameters are checked here, at load time (``kronos_quant.registry``). The strategy
name and the model device are checked too: a name becomes part of output paths.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

from kronos_quant.config_market import (
    CostsConfig,
    DataConfig,
    MarketName,
    Section,
    SyntheticConfig,
    TradingConfig,
    ValidationConfig,
    apply_market_defaults,
)
from kronos_quant.errors import ConfigError
from kronos_quant.registry import (
    FORECASTER_PARAMS,
    ParamError,
    baseline_kind,
    check_name,
    check_params,
    suggest,
)
from kronos_quant.schema import DEFAULT_QUANTILES
from kronos_quant.utils.overrides import apply_overrides, parse_override
from kronos_quant.utils.yaml_file import read_yaml_mapping

__all__ = ["StrategyConfig", "CostsConfig", "DataConfig", "SyntheticConfig", "TradingConfig", "ValidationConfig",
           "load_config", "config_from_dict", "apply_overrides", "parse_override"]


_Section = Section


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
_DEVICES = ("auto", "cpu", "cuda", "cuda:0", "mps")


def _registered(check: Any, *args: Any) -> Any:
    """``check(*args)`` from kronos_quant.registry, its ParamError turned into a pydantic error whose
    location ends at the parameter at fault."""
    try:
        return check(*args)
    except ParamError as exc:
        raise PydanticCustomError("registry", "{message}", {"message": exc.detail, "key": exc.key or ""}) from None


class _Registered(_Section):
    """A section naming a registered signal or portfolio (``_kind``) and its ``params``.

    The name and the parameters are checked against ``kronos_quant.registry``; a section that
    gives no ``params`` gets ``_default_params[name]`` (or none).
    """

    _kind: ClassVar[str]
    _default_params: ClassVar[dict[str, dict[str, Any]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _fill_params(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data:
            name = data.get("name", cls.model_fields["name"].default)
            data = {**data, "params": copy.deepcopy(cls._default_params.get(name, {}))}
        return data

    @field_validator("name", check_fields=False)
    @classmethod
    def _known_name(cls, v: str) -> str:
        _registered(check_name, cls._kind, v)
        return v

    @field_validator("params", check_fields=False)
    @classmethod
    def _known_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "name" not in info.data:  # the name itself was invalid and is reported on its own
            return v
        return _registered(check_params, cls._kind, info.data["name"], v)


class UniverseConfig(_Section):
    instruments: list[str] | None = None  # None = every instrument in the data
    min_history: int | None = Field(None, ge=1)  # bars needed before an instrument is forecast (default lookback)


class ModelConfig(_Section):
    id: str = "kronos-demo"  # a preset (kronos-demo, kronos-small, ...), a Hub id, a local dir, or baseline:NAME
    tokenizer: str | None = None  # needed for raw Hub ids/paths that are not presets
    revision: str | None = None
    tokenizer_revision: str | None = None
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_context: int | None = Field(None, ge=1)
    local_files_only: bool | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        device = v.strip().lower()  # CPU, CUDA:0 and Cuda are the devices they name
        if not _DEVICE.fullmatch(device):
            hint = suggest(device, _DEVICES)
            raise ValueError(f"unknown device '{v}'{hint + ' Use' if hint else '; use'} auto, cpu, cuda, cuda:N or mps")
        return device


class ForecastConfig(_Section):
    lookback: int = Field(128, ge=2)  # bars of history per forecast
    horizon: int = Field(5, ge=1)  # bars ahead
    rebalance: int | list[date] = 5  # every k bars, or explicit as-of dates
    samples: int = Field(8, ge=1)  # sample paths per forecast
    T: float = Field(1.0, gt=0)  # sampling temperature
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    seed: int = 0
    quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_QUANTILES))
    keep_samples: bool = True  # keep close sample paths (needed for CRPS and PIT)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # None = start a local Ray; "auto" or "ray://host:port" joins a cluster
    num_workers: int = Field(2, ge=1)
    cache_dir: str | None = ".kq_cache/forecasts"  # None disables the forecast cache
    batch_series: int = Field(256, ge=1)  # windows per predictor call

    @field_validator("rebalance")
    @classmethod
    def _rebalance(cls, v: int | list[date]) -> int | list[date]:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be a number of bars >= 1 (e.g. 5: every 5th bar) or a list of as-of dates, got {v}")
        if isinstance(v, list) and not v:
            raise ValueError("the list of as-of dates is empty; give dates, e.g. [2017-06-30], or a number of bars")
        return v

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in v):
            raise ValueError("quantile levels must lie strictly between 0 and 1")
        return sorted(set(v))


class SignalConfig(_Registered):
    _kind = "signal"
    name: str = "expected_return"  # a name of kronos_quant.signals.SIGNALS (parameters: kronos_quant.registry)
    params: dict[str, Any] = Field(default_factory=dict)
    transforms: list[str] = Field(default_factory=list)  # rank, zscore, winsorize, demean

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, v: list[str] | None) -> list[str] | None:
        for name in v or []:
            _registered(check_name, "transform", name)
        return v


class BaselineConfig(SignalConfig):
    """One baseline: a model-free forecaster (random_walk, historical_drift, linear), run through the same
    rolling engine and scored with the strategy's signal, or a model-free signal (momentum) that replaces it.
    Both get the strategy's transforms and are scored and traded on the model's (date, instrument) cells."""

    _default_params = {"momentum": {"lookback": 20, "skip": 1}}
    name: str = "momentum"
    transforms: list[str] | None = None  # None = the strategy's signal.transforms
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _known_name(cls, v: str) -> str:
        _registered(baseline_kind, v)
        return v

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        return v if name is None else _registered(check_params, baseline_kind(name), name, v)


class EvaluationConfig(_Section):
    """How forecasts and strategies are judged (``kronos_quant.evaluation``; README "Statistics")."""

    label: Literal["next_open", "close_to_close", "qlib"] = "next_open"  # IC label: open t+1 -> open t+1+h
    n_trials: int = Field(1, ge=1)  # configurations tried to arrive at this one (deflated Sharpe); CLI --trials
    bootstrap_samples: int = Field(1000, ge=100)  # stationary block bootstrap resamples (seed: forecast.seed)
    block_length: float | None = Field(None, ge=1)  # mean block length in periods; None = automatic
    confidence: float = Field(0.95, gt=0.5, lt=1)  # of every confidence interval
    prob_recalibration: Literal["isotonic", "platt"] = "isotonic"  # walk-forward recalibration of prob_up
    climatology_window: int = Field(250, ge=20)  # bars of past up-moves behind the climatology prob_up


class PortfolioConfig(_Registered):
    _kind = "portfolio"
    _default_params = {"topk": {"k": 5}, "topk_dropout": {"k": 5}}
    name: str = "topk"  # topk, topk_dropout, long_short, threshold
    params: dict[str, Any] = Field(default_factory=lambda: {"k": 5})
    max_weight: float = Field(0.25, gt=0, le=1)
    cash_buffer: float = Field(0.0, ge=0, lt=1)


class BacktestConfig(_Section):
    start: date | None = None  # first as-of date of the backtest
    end: date | None = None
    init_cash: float = Field(1_000_000.0, gt=0)
    periods_per_year: float | None = None  # default: inferred from the data's calendar (252 for daily)


class OutputConfig(_Section):
    dir: str = "runs/{name}"
    figures: bool = True
    fan_instrument: str | None = None  # instrument shown in the fan chart (default: first)
    signals_file: str = "signals/{name}_{asof}.csv"  # nightly output; {name}, {asof} are filled in


class StrategyConfig(_Section):
    name: str = "strategy"
    description: str = ""
    market: MarketName = "custom"  # us_equity | cn_a_share | crypto_24_7 | custom (kronos_quant.markets)
    data: DataConfig = Field(default_factory=DataConfig)
    universe: UniverseConfig = Field(default_factory=UniverseConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    signal: SignalConfig = Field(default_factory=SignalConfig)
    baseline: list[BaselineConfig] = Field(  # one mapping, a list of them (or names), [] or {enabled: false}: none
        default_factory=lambda: [BaselineConfig(), BaselineConfig(name="random_walk")])
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    trading: TradingConfig = Field(default_factory=TradingConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    source_path: str | None = Field(None, exclude=True)
    market_defaults: dict[str, Any] = Field(default_factory=dict, exclude=True)  # key path -> value the preset set

    @model_validator(mode="before")
    @classmethod
    def _market_preset(cls, data: Any) -> Any:
        return apply_market_defaults(data)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"'{v}' cannot be used in file names (runs/{{name}}, signals/{{name}}_{{asof}}); use "
                             "up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. "
                             "'momentum_v2'")
        return v

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline_list(cls, v: Any) -> Any:
        v = [] if v is None else [v] if isinstance(v, str | Mapping) else v
        return [{"name": b} if isinstance(b, str) else b for b in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _steps_within_horizon(self) -> StrategyConfig:
        entries = [("signal", self.signal)] + [(f"baseline.{i}", b) for i, b in enumerate(self.baseline)]
        for key, section in entries:
            step = section.params.get("step")
            if step is not None and step > self.forecast.horizon:
                raise PydanticCustomError("registry", "{message}", {
                    "message": f"step {step} is beyond forecast.horizon={self.forecast.horizon}; use a step in "
                               f"1..{self.forecast.horizon} or raise forecast.horizon", "key": f"{key}.params.step"})
        self._baseline_is_not_the_model()
        seen = [(b.name, sorted(b.params.items())) for b in self.baselines]
        for i, entry in enumerate(seen):
            if entry in seen[:i]:
                raise PydanticCustomError("registry", "{message}", {"key": f"baseline.{i}", "message": (
                    f"baseline '{entry[0]}' is listed twice with the same params; remove one")})
        return self

    def _baseline_is_not_the_model(self) -> None:
        """A forecaster baseline with the model's forecaster and params (``model.id: baseline:NAME``) would be
        compared with itself: every test reads "not significant" and means nothing. A baseline list given in
        the config is refused at load; the default list (not given) simply leaves the model out."""
        if not self.model.id.startswith("baseline:") or self.model.id.split(":", 1)[1] not in FORECASTER_PARAMS:
            return  # an unknown baseline id fails when the forecaster is built, with its own message
        kind = self.model.id.split(":", 1)[1]
        schema = FORECASTER_PARAMS[kind]
        model_params = schema.model_validate({}).model_dump()  # the model runs with the defaults

        def same(b: BaselineConfig) -> bool:
            return b.enabled and b.name == kind and schema.model_validate(b.params).model_dump() == model_params

        if "baseline" not in self.model_fields_set:
            self.baseline = [b for b in self.baseline if not same(b)]
            return
        for i, b in enumerate(self.baseline):
            if same(b):
                raise PydanticCustomError("registry", "{message}", {"key": f"baseline.{i}", "message": (
                    f"baseline '{b.name}' is the model itself (model.id={self.model.id}, same params): a comparison "
                    "with itself tests nothing; remove it from baseline or choose another model.id")})

    @property
    def baselines(self) -> list[BaselineConfig]:
        """The enabled baselines, in the order given."""
        return [b for b in self.baseline if b.enabled]

    def resolved(self) -> dict[str, Any]:
        """The fully resolved config as plain JSON-able data (for provenance)."""
        return self.model_dump(mode="json", exclude={"source_path", "market_defaults"})


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the section at ``loc`` (for suggestions; list items are their element's section)."""
    current: Any = model
    for part in (p for p in loc if not isinstance(p, int)):
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        ann = (get_args(field.annotation) or (field.annotation,))[0]
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if current is None:
            return []
    return list(getattr(current, "model_fields", {})) if current is not None else []


def _format_errors(exc: ValidationError, source: str, *, single: tuple[str, ...] = ()) -> str:
    """One line per error; ``single``: list fields given as one mapping (their item index is left out)."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "registry":  # names and parameters (kronos_quant.registry): the key ends the path
            loc = (*loc, *(int(p) if p.isdigit() else p for p in err["ctx"]["key"].split(".") if p))
        if len(loc) > 1 and loc[0] in single and loc[1] == 0:
            loc = (loc[0], *loc[2:])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "registry":
            lines.append(f"{source}: {path}: {err['ctx']['message']}")
        elif err["type"] == "extra_forbidden":
            known = _fields_at(StrategyConfig, loc[:-1])
            known = [k for k in known if k not in ("source_path", "market_defaults")]
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            lines.append(f"{source}: unknown key '{path}'{hint}")
        else:
            got = err.get("input")
            got_s = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
            if err["type"] == "value_error":  # our own validators: the message says what was given
                msg, got_s = str(err["ctx"]["error"]), ""
            else:
                msg = err["msg"]
            lines.append(f"{source}: {path}: {msg}{got_s}")
    return "\n".join(lines)


def config_from_dict(raw: dict[str, Any], *, source: str = "<config>") -> StrategyConfig:
    """Validate a raw dict; raise ConfigError naming the source, key path and expectation."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    if "market_defaults" in raw:  # filled in from the market preset, never given
        raise ConfigError(f"{source}: unknown key 'market_defaults'; set the values themselves (costs, trading)")
    try:
        cfg = StrategyConfig.model_validate(raw)
    except ValidationError as exc:
        single = ("baseline",) if isinstance(raw.get("baseline"), Mapping) else ()
        raise ConfigError(_format_errors(exc, source, single=single)) from None
    cfg.source_path = source
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, *, overrides: list[str] | None = None) -> StrategyConfig:
    """Load a strategy YAML safely (None = the embedded defaults), apply overrides, validate."""
    if path is None:
        raw: Any = {}
        source = "<defaults>"
    else:
        source = str(path)
        raw = read_yaml_mapping(Path(path), what="config file", example="strategies/momentum.yaml")
    raw = apply_overrides(raw, overrides)
    if "name" not in raw and path is not None:  # the file's stem, made safe for file names
        raw["name"] = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._-") or "strategy"
    return config_from_dict(raw, source=source)
