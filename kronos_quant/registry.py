"""The names a strategy may use and the parameters each one takes, checked before any work is done.

``signals`` and ``portfolio`` own the implementations (``signals.SIGNALS``, ``signals.TRANSFORMS``,
``portfolio.PORTFOLIOS``); this module owns their parameter schemas, one pydantic model per name.
It sits below ``config`` (it imports nothing but ``errors``), so a config is validated when it is
loaded -- a typo like ``portfolio.params.kk``, ``k: "two"`` or ``k: 0`` fails at once, not after
minutes of forecasting -- and ``compute_signal``/``build_weights`` check direct calls the same way.
Each schema's fields, defaults and required parameters equal the keyword-only options of the
function it describes (tests/test_signals.py and tests/test_portfolio.py check this).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kronos_quant.errors import ConfigError

__all__ = ["SIGNAL_PARAMS", "TRANSFORM_PARAMS", "PORTFOLIO_PARAMS", "FORECASTER_PARAMS", "KINDS", "ParamError",
           "check_name", "check_params", "baseline_kind", "suggest"]


class ParamError(ConfigError):
    """An unknown name or a bad parameter.

    ``key`` is the parameter at fault (None for the name); ``detail`` is the message without the
    "<kind> '<name>' parameter '<key>':" prefix, for callers that name the key themselves.
    """

    def __init__(self, message: str, *, key: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.detail = detail if detail is not None else message


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NoParams(_Params):
    pass


class _Step(_Params):
    step: int | None = Field(None, ge=1)  # 1-based forecast step; None = the last step


class _PathParams(_Params):
    path: Literal["mean", "median"] = "mean"


class ExpectedReturnParams(_Step, _PathParams):
    pass


class QuantileReturnParams(_Step):
    q: float = Field(0.5, gt=0, lt=1)


class UpsideDownsideParams(_Step):
    q_high: float = Field(0.9, gt=0, lt=1)
    q_low: float = Field(0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _order(self) -> UpsideDownsideParams:
        if not self.q_low < 0.5 < self.q_high:
            raise ValueError(f"need q_low < 0.5 < q_high, got q_low={self.q_low}, q_high={self.q_high}")
        return self


class MomentumParams(_Params):
    lookback: int = Field(20, ge=1)
    skip: int = Field(0, ge=0)


class WinsorizeParams(_Params):
    lower: float = Field(0.05, ge=0, le=1)
    upper: float = Field(0.95, ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> WinsorizeParams:
        if not self.lower < self.upper:
            raise ValueError(f"need lower < upper, got lower={self.lower}, upper={self.upper}")
        return self


class TopkParams(_Params):
    k: int = Field(ge=1)


class TopkDropoutParams(TopkParams):
    n_drop: int = Field(ge=0)
    min_hold: int = Field(1, ge=1)


class LongShortParams(_Params):
    quantile: float = Field(0.2, gt=0, le=0.5)


class ThresholdParams(_Params):
    long_above: float = 0.0
    short_below: float | None = None

    @model_validator(mode="after")
    def _order(self) -> ThresholdParams:
        if self.short_below is not None and self.short_below > self.long_above:
            raise ValueError(f"short_below ({self.short_below}) must not exceed long_above ({self.long_above})")
        return self


class _VolumeParams(_Params):
    volume_mode: Literal["mean", "last"] = "mean"


class LinearParams(_VolumeParams):
    n_lags: int = Field(5, ge=1)
    alpha: float = Field(1.0, ge=0)
    min_train_rows: int = Field(20, ge=2)


SIGNAL_PARAMS: dict[str, type[_Params]] = {
    "expected_return": ExpectedReturnParams,
    "prob_up": _Step,
    "risk_adjusted_return": _Step,
    "quantile_return": QuantileReturnParams,
    "upside_downside": UpsideDownsideParams,
    "path_last": _PathParams,
    "path_mean": _PathParams,
    "path_max": _PathParams,
    "path_min": _PathParams,
    "momentum": MomentumParams,
}
TRANSFORM_PARAMS: dict[str, type[_Params]] = {
    "rank": _NoParams, "zscore": _NoParams, "winsorize": WinsorizeParams, "demean": _NoParams,
}
PORTFOLIO_PARAMS: dict[str, type[_Params]] = {
    "topk": TopkParams, "topk_dropout": TopkDropoutParams, "long_short": LongShortParams, "threshold": ThresholdParams,
}
# the model-free forecasters of ``baselines`` (``forecasters.BASELINES``), run through the rolling engine
FORECASTER_PARAMS: dict[str, type[_Params]] = {
    "random_walk": _VolumeParams, "historical_drift": _VolumeParams, "linear": LinearParams,
}
KINDS: dict[str, dict[str, type[_Params]]] = {
    "signal": SIGNAL_PARAMS, "transform": TRANSFORM_PARAMS, "portfolio": PORTFOLIO_PARAMS,
    "forecaster": FORECASTER_PARAMS,
}
_SECTION_KEYS = {"portfolio": ("max_weight", "cash_buffer")}  # options every constructor takes, set outside params


def suggest(name: str, known: Any) -> str:
    """'; did you mean 'x'?' for the closest of ``known``, else '' ."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_name(kind: str, name: str) -> type[_Params]:
    """The parameter schema of ``name``; ParamError (with a did-you-mean) when ``kind`` has no such name."""
    known = KINDS[kind]
    if name not in known:
        raise ParamError(f"unknown {kind} '{name}'{suggest(name, known)} (known: {', '.join(known)})")
    return known[name]


def baseline_kind(name: str) -> str:
    """"forecaster" or "signal": what a ``baseline`` entry named ``name`` is; ParamError when neither.

    A forecaster baseline (random_walk, historical_drift, linear) is run through the rolling engine
    and scored with the strategy's own signal; a signal baseline (e.g. momentum) replaces the signal.
    """
    for kind in ("forecaster", "signal"):
        if name in KINDS[kind]:
            return kind
    known = [*FORECASTER_PARAMS, *SIGNAL_PARAMS]
    raise ParamError(f"unknown baseline '{name}'{suggest(name, known)} (forecasters: {', '.join(FORECASTER_PARAMS)}; "
                     f"signals: {', '.join(SIGNAL_PARAMS)})")


def check_params(kind: str, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters given for ``name``, validated and coerced (``"3"`` -> 3); defaults are not added.

    Raises ParamError naming the parameter, what it expected and, for an unknown one, the
    closest accepted name and the full list.
    """
    schema = check_name(kind, name)
    if not isinstance(params, Mapping):
        raise ParamError(f"parameters of {kind} '{name}' must be a mapping, got {type(params).__name__}")
    accepted = list(schema.model_fields)
    for key in params:
        if key not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no parameters"
            elsewhere = f"; set {kind}.{key} beside params" if key in _SECTION_KEYS.get(kind, ()) else ""
            raise ParamError(f"{kind} '{name}' has no parameter '{key}'{suggest(key, accepted)} ({takes}){elsewhere}",
                             key=str(key))
    try:
        model = schema.model_validate(dict(params))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        msg = str(err.get("ctx", {}).get("error", "")) if err["type"] == "value_error" else err["msg"]
        got = f" (got {err['input']!r})" if key is not None and err["type"] != "missing" else ""
        if err["type"] == "missing":
            msg = f"{kind} '{name}' needs parameter '{key}' ({', '.join(accepted)})"
            raise ParamError(msg, key=key) from None
        where = f"{kind} '{name}' parameter '{key}'" if key else f"{kind} '{name}'"
        raise ParamError(f"{where}: {msg}{got}", key=key, detail=f"{msg}{got}") from None
    return model.model_dump(include=set(params))
