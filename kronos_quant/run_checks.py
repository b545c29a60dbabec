"""Checks a workflow runs before any work, and the list of instruments a run could not score.

``check_device``: ``model.device`` must exist on this machine (moved here from ``workflow``, which
re-exports it). ``check_lookback``: a look-back longer than the model's context is refused (the
model would silently read only the last ``max_context`` bars). ``check_evaluate_overrides``: ``evaluate``
re-uses saved forecasts, so it refuses ``--set`` keys the forecasts depend on.
``unscored_instruments``: which instruments got no score, and why, from the validation report
and the rolling plan (for the signals provenance and ``metrics["unscored"]``).

Knows nothing about files, and about models only what a forecaster says about itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from kronos_quant.config import StrategyConfig
from kronos_quant.data.report import fmt_time
from kronos_quant.errors import ConfigError

__all__ = ["FORECAST_KEYS", "check_device", "check_lookback", "check_evaluate_overrides", "unscored_instruments",
           "unscored_in_run", "unscored_line", "stale_at"]

# Config keys the saved forecasts of a run depend on (a key or the prefix of its keys).
FORECAST_KEYS = ("model", "forecast", "data", "universe", "backtest.start", "backtest.end")


def check_device(cfg: StrategyConfig) -> None:
    """ConfigError unless ``model.device`` exists on this machine (checked before any forecasting).

    ``auto`` always works; baselines (``model.id: baseline:...``) use no device; with the Ray backend
    the model runs on the workers, which are not this machine.
    """
    device = cfg.model.device
    if device in ("auto", "cpu") or cfg.model.id.startswith("baseline:") or cfg.forecast.backend == "ray":
        return
    import torch

    fix = "use --device auto (or cpu), or set model.device"
    if device == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError(f"{cfg.source_path}: model.device: 'mps' but this machine has no MPS device; {fix}")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "no CUDA device"
        raise ConfigError(f"{cfg.source_path}: model.device: '{device}' but this machine has {have}; {fix}")


def model_context(forecaster: Any) -> int | None:
    """The model's context in bars (tokens), or None for forecasters without one (the baselines)."""
    context = getattr(forecaster, "max_context", None)
    if context is None:
        context = getattr(getattr(forecaster, "spec", None), "max_context", None)
    return None if context is None else int(context)


def check_lookback(cfg: StrategyConfig, forecaster: Any) -> None:
    """ConfigError when ``forecast.lookback`` exceeds the model's context.

    Refused rather than truncated: a truncated look-back is a number in the config and the
    provenance that the model never used, and it needlessly raises the history an instrument needs
    (``universe.min_history`` defaults to the look-back).
    """
    context = model_context(forecaster)
    lookback, horizon = cfg.forecast.lookback, cfg.forecast.horizon
    if context is not None and lookback > context:
        whole = f"; {context - horizon} keeps the whole {horizon}-bar forecast in context" if context > horizon else ""
        raise ConfigError(f"{cfg.source_path}: forecast.lookback {lookback} is longer than the context of model "
                          f"{cfg.model.id} ({context} bars), which would use only the last {context}; set "
                          f"forecast.lookback <= {context}{whole}")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def check_evaluate_overrides(saved: StrategyConfig, changed: StrategyConfig, overrides: Sequence[str] | None) -> None:
    """ConfigError (one line) when ``overrides`` change a key the saved forecasts depend on (``FORECAST_KEYS``).

    saved, changed: the run's config before and after the overrides (``StrategyConfig``). Setting a
    key to the value it already has is accepted.
    """
    before, after = _flatten(saved.resolved()), _flatten(changed.resolved())
    moved = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
             and any(k == p or k.startswith(p + ".") for p in FORECAST_KEYS)]
    if not moved:
        return
    shown = ", ".join(f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in moved[:3])
    more = f" and {len(moved) - 3} more" if len(moved) > 3 else ""
    raise ConfigError(f"evaluate --set {' '.join(overrides or [])}: changes {shown}{more}, but evaluate re-uses the "
                      "saved forecasts (no model work); run `kronos-quant backtest` with this --set for new forecasts "
                      "(evaluate may change signal, baseline, portfolio, costs, backtest.init_cash/periods_per_year, "
                      "output, name)")


def unscored_instruments(*, present: Iterable[str], forecast: Iterable[str], scored: Iterable[str],
                         requested: Iterable[str] | None = None, validation: Mapping[str, Any] | None = None,
                         unplanned: Mapping[str, str] | None = None, no_forecast: str = "no forecast in the period",
                         no_score: str = "no finite score from the signal") -> list[dict[str, str]]:
    """``[{"instrument", "reason"}]`` for every instrument that could have been scored but was not, by name.

    present: instruments in the validated panel. forecast: those with a forecast. scored: those with
    a score. requested: the universe asked for (``universe.instruments``; None: every instrument
    in the data). validation: ``ValidationReport.to_dict()`` (its ``exclusions``). unplanned:
    instrument -> why it got no forecast (``RollingPlan.unplanned``; ``no_forecast`` otherwise).
    no_score: the reason for an instrument with a forecast but no score.
    """
    done, here, made = set(scored), set(present), set(forecast)
    reasons: dict[str, str] = {}
    for e in (validation or {}).get("exclusions") or []:
        reasons[str(e["instrument"])] = f"excluded by validation ({e['check']}: {e['detail']})"
    for name in requested or ():
        if name not in here and name not in reasons:
            reasons[name] = "not in the data, or every row was dropped by validation"
    for name in here - done:
        reasons[name] = no_score if name in made else (unplanned or {}).get(name) or no_forecast
    return [{"instrument": n, "reason": reasons[n]} for n in sorted(reasons) if n not in done]


def unscored_in_run(cfg: StrategyConfig, panel: pl.DataFrame, forecasts: pl.DataFrame, scored: Iterable[str],
                    provenance: Mapping[str, Any] | None, unplanned: Mapping[str, str] | None = None
                    ) -> list[dict[str, str]]:
    """``unscored_instruments`` of a strategy run: the panel's and the forecast table's instruments, the
    provenance's validation report and plan reasons (``forecast_stats.unplanned``, or ``unplanned``)."""
    prov = provenance or {}
    return unscored_instruments(present=panel["instrument"].unique(), forecast=forecasts["instrument"].unique(),
                                scored=scored, requested=cfg.universe.instruments, validation=prov.get("validation"),
                                unplanned=unplanned or (prov.get("forecast_stats") or {}).get("unplanned"),
                                no_score=f"no finite score from signal {cfg.signal.name!r}")


def unscored_line(unscored: Sequence[Mapping[str, str]]) -> str:
    """``"2 not scored: too little history"`` (``"3 not scored: too little history (2), excluded by validation
    (1)"`` for several reasons) from ``unscored_instruments``' list; "" when every instrument was scored."""
    if not unscored:
        return ""
    kinds: dict[str, int] = {}
    for u in unscored:  # the reason's kind: its text before the details
        kind = str(u["reason"]).split(":")[0].split(" (")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    why = next(iter(kinds)) if len(kinds) == 1 else ", ".join(f"{k} ({n})" for k, n in kinds.items())
    return f"{len(unscored)} not scored: {why}"


def stale_at(panel: pl.DataFrame, asof: Any) -> dict[str, str]:
    """instrument -> "no bar on the as-of date (...)" for the instruments whose last bar is before ``asof``."""
    lasts = panel.group_by("instrument").agg(pl.col("timestamp").max())
    return {n: f"no bar on the as-of date (its last bar is {fmt_time(t)})" for n, t in lasts.iter_rows() if t < asof}
