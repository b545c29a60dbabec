"""Reading a run's comparison metrics: the leaderboard, comparisons and verdicts of metrics.json.

The contract (docs: the metrics.json "leaderboard" / "comparisons" / "verdicts" keys) lists the
model, each baseline and the equal-weight benchmark as entries of one shape. Runs written before
the evaluation produced those keys hold an older layout (``metrics["model"]``,
``metrics["baseline"]``, top-level headline keys); ``leaderboard`` rebuilds contract-shaped
entries from it so every renderer reads one shape. Any key may be missing: ``dig`` answers None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dig", "leaderboard", "comparisons", "has_contract", "display_names", "call_label"]


def dig(obj: Any, *path: str | int) -> Any:
    """``obj[path[0]][path[1]]...``, or None as soon as a step is missing or not a container."""
    for key in path:
        if isinstance(obj, Mapping):
            obj = obj.get(key) if key in obj else obj.get(str(key))
        elif isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(key, int):
            obj = obj[key] if -len(obj) <= key < len(obj) else None
        else:
            return None
        if obj is None:
            return None
    return obj


def has_contract(metrics: Mapping[str, Any]) -> bool:
    """True when metrics.json carries the comparison contract (a non-empty ``leaderboard``)."""
    return bool(metrics.get("leaderboard"))


def call_label(name: Any, params: Any) -> str:
    """A registry entry with its parameters: ('momentum', {'lookback': 20, 'skip': 1}) ->
    'momentum(lookback 20, skip 1)'; the bare name without parameters."""
    if not isinstance(params, Mapping) or not params:
        return str(name)
    return f"{name}({', '.join(f'{k} {v}' for k, v in params.items())})"


def _model_id(config: Mapping[str, Any] | None, provenance: Mapping[str, Any] | None) -> str:
    model = dig(config, "model", "id") or dig(provenance, "model", "model_id") or dig(provenance, "model", "forecaster")
    return str(model or "model")


def _baseline_configs(config: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The configured baselines (one mapping or a list of them), enabled ones only."""
    base = dig(config, "baseline")
    items = base if isinstance(base, Sequence) and not isinstance(base, (str, Mapping)) else [base]
    return [b for b in items if isinstance(b, Mapping) and b.get("enabled", True)]


def _legacy_entry(block: Mapping[str, Any], *, name: str, kind: str, display: str) -> dict[str, Any]:
    """A contract-shaped entry from an older ``metrics["model"]``/``metrics["baseline"]`` block."""
    acc = dig(block, "forecast", "accuracy") or {}
    calib90 = dig(block, "calibration", "0.9") or {}
    mse, mse_rw = acc.get("return_mse"), acc.get("return_mse_rw")
    ratio = acc.get("return_mse_skill")
    if ratio is None and mse is not None and mse_rw:
        ratio = mse / mse_rw
    entry: dict[str, Any] = {
        "name": name, "kind": kind, "display_name": display,
        "ic": dig(block, "signal", "ic"), "rank_ic": dig(block, "signal", "rank_ic"),
        "return_mse": mse, "return_mse_rw": mse_rw, "mse_ratio_rw": ratio,
        "crps": dig(block, "forecast", "crps"),
        "coverage_90_last_step": {"coverage": dig(block, "forecast", "coverage_90")},
        "coverage_90_all_steps": {"coverage": calib90.get("coverage_before"),
                                  "recalibrated": calib90.get("coverage_after")},
        "backtest": {"net": dig(block, "backtest", "net"), "gross": dig(block, "backtest", "gross")},
        "cost_drag": dig(block, "backtest", "costs", "annual_cost_drag"),
        "quantile_spread_mean": dig(block, "signal", "quantile_spread_mean"),
        "rank_autocorrelation_mean": dig(block, "signal", "rank_autocorrelation_mean"),
    }
    return entry


def _legacy_benchmark(backtest: Mapping[str, Any] | None) -> dict[str, Any]:
    prefix = "benchmark_"
    net = dig(backtest, "benchmark")
    gross = {k[len(prefix):]: v for k, v in (dig(backtest, "gross") or {}).items() if k.startswith(prefix)}
    drag = None
    if isinstance(gross.get("annual_return"), (int, float)) and isinstance(dig(net, "annual_return"), (int, float)):
        drag = gross["annual_return"] - net["annual_return"]
    return {"name": "equal_weight", "kind": "benchmark", "display_name": "equal-weight benchmark",
            "backtest": {"net": net, "gross": gross or None}, "cost_drag": drag}


def _legacy_leaderboard(metrics: Mapping[str, Any], config: Mapping[str, Any] | None,
                        provenance: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    model_id = _model_id(config, provenance)
    strategy = dig(config, "name")
    out: list[dict[str, Any]] = []
    model = metrics.get("model")
    if isinstance(model, Mapping):
        display = f"{strategy} ({model_id})" if strategy and strategy != model_id else model_id
        out.append(_legacy_entry(model, name=model_id, kind="model", display=display))
    base = metrics.get("baseline")
    if isinstance(base, Mapping):
        name = str(base.get("name", "baseline"))
        params = next((b.get("params") for b in _baseline_configs(config) if b.get("name") == name), None)
        label = call_label(name, params)
        out.append(_legacy_entry(base, name=label, kind="baseline", display=label))
    if isinstance(model, Mapping) and dig(model, "backtest", "benchmark"):
        out.append(_legacy_benchmark(model.get("backtest")))
    return out


def display_names(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One distinct human label per entry: its display_name (or name), suffixed with its kind
    and then a counter where two would read the same."""
    names = [str(e.get("display_name") or e.get("name") or e.get("kind") or "?") for e in entries]
    for i, (name, entry) in enumerate(zip(names, entries)):
        if names.count(name) > 1:
            names[i] = f"{name} [{entry.get('kind', i)}]"
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name} #{seen[name]}"
    return names


def leaderboard(metrics: Mapping[str, Any], config: Mapping[str, Any] | None = None,
                provenance: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Contract-shaped entries (model first, then baselines, then the benchmark), each with a
    distinct ``label`` for column headers. Read from ``metrics["leaderboard"]`` when present,
    else rebuilt from the older layout; [] when neither exists."""
    if has_contract(metrics):
        entries = [dict(e) for e in metrics["leaderboard"] if isinstance(e, Mapping)]
    else:
        entries = _legacy_leaderboard(metrics, config, provenance)
    for entry, label in zip(entries, display_names(entries)):
        entry["label"] = label
    return entries


def comparisons(metrics: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The contract's model-vs-baseline/benchmark comparisons ([] before they exist)."""
    items = metrics.get("comparisons")
    return [c for c in items if isinstance(c, Mapping)] if isinstance(items, Sequence) else []
