"""HTML blocks below the figures: the data section and the collapsible details of a tear sheet.

``data_section`` lists what validation found and did (issues, exclusions, history breaks, dropped
rows) and the instruments that could not be scored; ``details_section`` holds every metric
(flattened, grouped by where it sits in metrics.json), the config as YAML and the provenance.
All text is escaped; nothing here reads files or draws.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from kronos_quant.report import fmt
from kronos_quant.report.jsonable import jsonable

__all__ = ["data_section", "details_section", "metric_groups"]

MAX_ROWS = 40  # rows shown per data table before "... n more"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, cls: str = "kq-list") -> str:
    shown = rows[:MAX_ROWS]
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in shown)
    more = (f'<tr><td colspan="{len(header)}">\u2026 {len(rows) - MAX_ROWS} more (see provenance.json)</td></tr>'
            if len(rows) > MAX_ROWS else "")
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}{more}</tbody></table>'


def data_section(metrics: Mapping[str, Any], provenance: Mapping[str, Any] | None) -> str:
    """Validation findings and excluded/unscored instruments as HTML (headings h3 and tables)."""
    report = (provenance or {}).get("validation") or {}
    parts: list[str] = []
    if report:
        summary = (f"{_e(report.get('source') or 'panel')}: policy {_e(report.get('policy'))}, "
                   f"{fmt.count(report.get('n_rows_in'))} rows in, {fmt.count(report.get('n_rows_out'))} out, "
                   f"{_e(report.get('n_instruments'))} instruments"
                   + (f"; {_e(report['calendar'])}" if report.get("calendar") else "")
                   + (f"; prices adjusted: {_e(report['adjust'])}" if report.get("adjust") not in (None, "none") else ""))
        parts.append(f"<p>{summary}</p>")
        dropped = report.get("dropped") or {}
        if dropped:
            parts.append("<p>Rows dropped: " + ", ".join(f"{_e(k)} {fmt.count(v)}" for k, v in dropped.items()) + "</p>")
        issues = report.get("issues") or []
        parts.append("<h3>Validation findings</h3>")
        parts.append(_table(("severity", "check", "instrument", "count", "action", "detail"),
                            [(i.get("severity"), i.get("check"), i.get("instrument") or "(panel)", i.get("count"),
                              i.get("action"), i.get("detail") or ", ".join(i.get("timestamps") or []))
                             for i in issues]) if issues else "<p>No issues found.</p>")
        exclusions = report.get("exclusions") or []
        if exclusions:
            parts.append("<h3>Excluded instruments</h3>")
            parts.append(_table(("instrument", "check", "rows removed", "detail"),
                                [(x.get("instrument"), x.get("check"), x.get("n_rows"), x.get("detail"))
                                 for x in exclusions]))
        breaks = report.get("breaks") or []
        if breaks:
            parts.append(f"<h3>History breaks (gaps over {_e(report.get('max_gap_bars'))} bars)</h3>")
            parts.append(_table(("instrument", "last bar before", "first bar after", "bars missing"),
                                [(b.get("instrument"), b.get("previous"), b.get("start"), b.get("missing_bars"))
                                 for b in breaks]))
        for note in report.get("notes") or []:
            parts.append(f'<p class="kq-muted">note: {_e(note)}</p>')
    else:
        parts.append('<p class="kq-muted">No validation report in the provenance of this run.</p>')
    unscored = metrics.get("unscored")
    parts.append("<h3>Unscored instruments</h3>")
    if unscored:
        parts.append(_table(("instrument", "reason"),
                            [(u.get("instrument"), u.get("reason")) if isinstance(u, Mapping) else (u, "")
                             for u in unscored]))
    elif unscored is None:
        parts.append('<p class="kq-muted">Not recorded by this run\'s evaluation (metrics.json has no "unscored").</p>')
    else:
        parts.append("<p>Every instrument was scored.</p>")
    return "\n".join(parts)


def metric_groups(metrics: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """metrics.json as (group path, [(key, scalar)]) groups: each mapping of scalars is one group;
    a list of flat records is one group with a row per record (named by its first value); other
    list items are named by their ``name`` (or model vs ``against``), else by position."""
    groups: dict[str, list[tuple[str, Any]]] = {}

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, Mapping):
            for key, value in obj.items():
                if isinstance(value, Mapping) or (isinstance(value, list) and value and
                                                  all(isinstance(v, Mapping) for v in value)):
                    walk(value, f"{path}.{key}" if path else str(key))
                else:
                    groups.setdefault(path or "headline", []).append((str(key), value))
        elif all(not isinstance(v, (Mapping, list)) for item in obj for v in item.values()):
            rows = groups.setdefault(path, [])  # flat records: one row each, named by their first value
            for item in obj:
                (_, first), *rest = list(item.items()) or [("", "")]
                rows.append((str(first), "; ".join(f"{k} {fmt.number(v)}" for k, v in rest)))
        else:
            for n, item in enumerate(obj):
                tag = item.get("name") or (f"{item.get('model')} vs {item.get('against')}" if "against" in item else n)
                walk(item, f"{path}[{tag}]")

    walk(metrics, "")
    return list(groups.items())


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(fmt.number(v) for v in value[:12]) + (" \u2026" if len(value) > 12 else "")
    return fmt.number(value)


def _yaml(obj: Any) -> str:
    return yaml.safe_dump(jsonable(obj), sort_keys=False, allow_unicode=True, width=110)


def details_section(metrics: Mapping[str, Any], config: Any, provenance: Any) -> str:
    """Collapsible blocks: all metrics (grouped), the config as YAML, the provenance as YAML."""
    groups = metric_groups(jsonable(metrics))
    n_values = sum(len(rows) for _, rows in groups)
    blocks = "".join(
        f'<div class="kq-group"><h4>{_e(name)}</h4><table class="kq-kv">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(_value(v))}</td></tr>" for k, v in rows)
        + "</table></div>" for name, rows in groups)
    out = [f'<details><summary>All metrics ({n_values} values in {len(groups)} groups)</summary>'
           f'<div class="kq-groups">{blocks}</div></details>']
    if config is not None:
        out.append(f"<details><summary>Config (YAML)</summary><pre>{_e(_yaml(config))}</pre></details>")
    if provenance is not None:
        out.append(f"<details><summary>Provenance</summary><pre>{_e(_yaml(provenance))}</pre></details>")
    return "\n".join(out)
