"""Model cards of trained checkpoints: ``card.json`` (machine-readable) and ``MODEL_CARD.md``.

A card records what made the model: the data (path, fingerprint, size), the periods, the
config, the exact command, parameter counts and file sizes, training metrics and time, the
environment, and -- once an evaluation has run -- held-out metrics beside their baselines.
Owns the card's layout and rendering; knows nothing about training loops or data loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kronos_quant.utils.atomic import write_json_atomic, write_text_atomic

__all__ = ["CARD_JSON", "CARD_MD", "write_card", "read_card", "render_card", "checkpoint_stats"]

CARD_JSON = "card.json"
CARD_MD = "MODEL_CARD.md"


def checkpoint_stats(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Bytes of each file in a Hub-layout checkpoint directory and their total."""
    d = Path(directory)
    files = {p.name: p.stat().st_size for p in sorted(d.iterdir()) if p.is_file() and not p.name.startswith(".")}
    return {"files": files, "total_bytes": int(sum(files.values()))}


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(directory) / CARD_JSON).read_text(encoding="utf-8"))


def write_card(directory: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write ``card.json`` and ``MODEL_CARD.md`` (atomically) into ``directory``; returns the markdown path."""
    d = Path(directory)
    write_json_atomic(d / CARD_JSON, card)
    write_text_atomic(d / CARD_MD, render_card(card))
    return d / CARD_MD


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "-" if value is None else str(value)


def _period(p: dict[str, Any] | None) -> str:
    if not p:
        return "-"
    return f"{p.get('start') or 'start of data'} .. {p.get('end') or 'end of data'}"


def _phase_lines(name: str, phase: dict[str, Any] | None) -> list[str]:
    if not phase:
        return [f"- {name}: not trained in this run"]
    if phase.get("skipped"):
        return [f"- {name}: kept as initialised (steps: 0)"]
    line = (f"- {name}: {phase.get('steps_done')} steps in {_fmt(phase.get('seconds'), 3)} s; best validation "
            f"{phase.get('metric', 'loss')} {_fmt(phase.get('best_valid'))} at step {phase.get('best_step')}; "
            f"last training loss {_fmt(phase.get('last_train_loss'))}")
    if phase.get("stopped_early"):
        line += " (stopped early)"
    if phase.get("resumed_from_step") is not None:
        line += f" (resumed from step {phase['resumed_from_step']})"
    return [line]


def _evaluation_lines(ev: dict[str, Any]) -> list[str]:
    lines = ["## Held-out evaluation", "", ev.get("description", ""), ""]
    rows = ev.get("table", [])
    if rows:
        cols = list(rows[0].keys())
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
        lines.append("")
    for note in ev.get("notes", []):
        lines.append(f"- {note}")
    if ev.get("command"):
        lines += ["", f"Reproduce: `{ev['command']}`"]
    return lines + [""]


def render_card(card: dict[str, Any]) -> str:
    """The markdown form of a card dict (see ``kronos_quant.training.run`` for its keys)."""
    data, periods, models = card.get("data", {}), card.get("periods", {}), card.get("models", {})
    lines = [f"# {card.get('name', 'Kronos checkpoint')}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    lines += ["## Reproduce", "", "```bash"]
    for cmd in card.get("commands", []):
        lines.append(cmd)
    lines += ["```", "", "## Model", ""]
    lines.append(f"- init: {card.get('init')}; max_context: {card.get('max_context')}")
    total = 0
    for key in ("tokenizer", "predictor"):
        m = models.get(key)
        if not m:
            continue
        total += int(m.get("total_bytes") or 0)
        lines.append(f"- {key}: {m.get('n_parameters'):,} parameters, {m.get('total_bytes', 0) / 1e6:.2f} MB on disk "
                     f"({', '.join(f'{k} {v:,} B' for k, v in m.get('files', {}).items())})")
        lines.append(f"  - config: `{json.dumps(m.get('config'), sort_keys=True)}`")
    if total:
        lines.append(f"- total size: {total / 1e6:.2f} MB")
    lines += ["", "## Data", ""]
    lines.append(f"- file: `{data.get('path')}`")
    lines.append(f"- fingerprint (sha256 of the loaded panel): `{data.get('fingerprint')}`")
    lines.append(f"- {data.get('n_instruments')} instruments, {data.get('n_rows'):,} rows loaded "
                 f"({data.get('first')} .. {data.get('last')}); held-out periods are never loaded")
    lines.append(f"- windows: lookback {data.get('lookback')} + horizon {data.get('horizon')} bars; "
                 f"{data.get('n_train_windows'):,} training windows, {data.get('n_valid_windows'):,} validation windows "
                 "(normalised with the mean/std of the lookback only, clipped at "
                 f"{data.get('clip')})")
    lines += ["", "## Periods", ""]
    lines.append(f"- train: {_period(periods.get('train'))}")
    lines.append(f"- validation: {_period(periods.get('valid'))} (first {periods.get('embargo_bars')} bars after "
                 "the last training bar are not scored)")
    for i, p in enumerate(periods.get("test", [])):
        lines.append(f"- held out {i + 1}: {_period(p)}")
    lines += ["", "## Training", ""]
    training = card.get("training", {})
    for key in ("tokenizer", "predictor"):
        lines += _phase_lines(key, training.get(key))
    if training.get("total_seconds") is not None:
        lines.append(f"- total training time: {training['total_seconds'] / 60:.1f} min on {card.get('environment', {}).get('hardware', '?')}")
    lines += ["", "Validation metrics: tokenizer = mean of the s1-only and s1+s2 reconstruction MSE (z-score "
              "units); predictor = mean next-token cross-entropy of s1 and s2 (nats) -- both on the forecast "
              "part of validation windows only.", ""]
    if card.get("evaluation"):
        lines += _evaluation_lines(card["evaluation"])
    if card.get("limitations"):
        lines += ["## Limitations", ""] + [f"- {note}" for note in card["limitations"]] + [""]
    env = card.get("environment", {})
    lines += ["## Environment", "", f"- {', '.join(f'{k}: {v}' for k, v in env.items())}",
              f"- created: {card.get('created')}", "", "## Config", "", "```json",
              json.dumps(card.get("config"), indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
