"""Reading a run's comparison metrics: the leaderboard and comparisons of metrics.json.

The evaluation (``kronos_quant.evaluation.leaderboard``) lists the model, each baseline and the
equal-weight benchmark as ``leaderboard`` entries of one shape, and the model against each of the
others as ``comparisons`` (with a verdict line each). Every renderer reads that shape; metrics
without it (a hand-made dict) render no headline table and no verdicts. Any key may be missing
or NaN: ``dig`` answers None and the formatters "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dig", "leaderboard", "comparisons", "display_names", "call_label"]


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


def call_label(name: Any, params: Any) -> str:
    """A registry entry with its parameters: ('momentum', {'lookback': 20, 'skip': 1}) ->
    'momentum(lookback 20, skip 1)'; the bare name without parameters."""
    if not isinstance(params, Mapping) or not params:
        return str(name)
    return f"{name}({', '.join(f'{k} {v}' for k, v in params.items())})"


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


def leaderboard(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of ``metrics["leaderboard"]`` (model first, then baselines, then the benchmark),
    each with a distinct ``label`` for column headers; [] when the metrics have none."""
    items = metrics.get("leaderboard")
    entries = [dict(e) for e in items if isinstance(e, Mapping)] if isinstance(items, Sequence) else []
    for entry, label in zip(entries, display_names(entries)):
        entry["label"] = label
    return entries


def comparisons(metrics: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The model-vs-baseline/benchmark comparisons of the metrics ([] when there are none)."""
    items = metrics.get("comparisons")
    return [c for c in items if isinstance(c, Mapping)] if isinstance(items, Sequence) else []
