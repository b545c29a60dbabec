"""The tear sheet: one self-contained HTML page (or notebook fragment) that answers what was run,
whether the model beat its baselines and the benchmark, and whether that is significant.

Order: header (what was run), verdict lines, headline table beside the equity curve (the first
screen), then the sections (forecast quality, signal, portfolio, calibration, data) and the
collapsible details (all metrics grouped, config as YAML, provenance). Images are inline PNG data
URIs and a Content-Security-Policy forbids every request, so the page works from file:// with no
network. All CSS is scoped under ``.kq`` so the fragment can sit inside a notebook.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from kronos_quant.report.details import data_section, details_section
from kronos_quant.report.facts import run_facts
from kronos_quant.report.figures import CAPTIONS, SECTIONS
from kronos_quant.report.headline import TAGS, Headline, caveats, headline, verdicts
from kronos_quant.report.inputs import ReportInputs
from kronos_quant.report.leaderboard import dig

__all__ = ["CSP", "render_tearsheet"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
TOP_FIGURE = "equity"  # shown beside the headline table, in the first screen
_GROUPS = {"signal": "Signal", "forecast": "Forecast", "portfolio": "Portfolio \u00b7 net of costs, gross in grey"}

STYLE = """
.kq{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2430;
 max-width:1360px;margin:0 auto;padding:10px 16px 40px;box-sizing:border-box}
.kq *{box-sizing:border-box}
.kq h1{font-size:21px;margin:0;font-weight:650}
.kq h2{font-size:16px;margin:22px 0 8px;padding-bottom:3px;border-bottom:1px solid #d0d7e2}
.kq h3{font-size:13px;margin:12px 0 4px}
.kq h4{font-size:12px;margin:0 0 2px;color:#445}
.kq .kq-top{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;
 border-bottom:2px solid #1f5fa8;padding-bottom:5px}
.kq .kq-desc{color:#4a5565;margin:1px 0 0}
.kq .kq-meta{color:#6b7685;font-size:12px;text-align:right;white-space:nowrap}
.kq dl.kq-facts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1px 24px;margin:7px 0 8px;font-size:12px}
.kq dl.kq-facts div{display:flex;gap:8px;min-width:0}
.kq dl.kq-facts dt{color:#6b7685;flex:0 0 118px;font-weight:600}
.kq dl.kq-facts dd{margin:0;overflow-wrap:anywhere}
.kq .kq-verdict{border:1px solid #d0d7e2;border-left:4px solid #1f5fa8;background:#f7f9fc;padding:5px 10px 6px;
 margin:0 0 10px}
.kq .kq-verdict h2{border:0;margin:0 0 2px;padding:0;font-size:14px}
.kq .kq-verdict ul{margin:0;padding:0}
.kq .kq-verdict li{list-style:none;margin:2px 0;display:flex;align-items:baseline}
.kq .kq-tag{flex:0 0 auto;display:inline-block;min-width:96px;text-align:center;font-size:11px;padding:0 6px;border-radius:9px;
 margin-right:8px;color:#fff;background:#7f7f7f}
.kq .kq-tag.better{background:#2a9d5c}.kq .kq-tag.worse{background:#c0392b}.kq .kq-tag.mixed{background:#e07b00}
.kq .kq-first{display:flex;flex-wrap:wrap;gap:14px 18px;align-items:flex-start}
.kq .kq-first>div{flex:0 1 auto;min-width:0}
.kq .kq-first>figure{flex:1 1 460px;max-width:760px}
.kq table.kq-headline{border-collapse:collapse;font-variant-numeric:tabular-nums}
.kq table.kq-headline th,.kq table.kq-headline td{padding:2px 10px;border-bottom:1px solid #e8ecf1;white-space:nowrap}
.kq table.kq-headline thead th{text-align:right;vertical-align:bottom;border-bottom:2px solid #c5ceda;font-weight:650;
 white-space:normal;max-width:170px}
.kq table.kq-headline thead th:first-child{text-align:left}
.kq table.kq-headline th small{display:block;font-weight:400;color:#6b7685;font-size:11px}
.kq table.kq-headline th.model{color:#1f5fa8}
.kq table.kq-headline td{text-align:right}
.kq table.kq-headline td.lbl{text-align:left;color:#2c3644}
.kq table.kq-headline td.model{background:#f2f6fc;font-weight:600}
.kq table.kq-headline tr.grp td{background:#eef2f7;color:#445;font-size:11px;font-weight:600;text-align:left;
 text-transform:uppercase;letter-spacing:.03em;padding-top:3px}
.kq .g{color:#8a94a3;font-size:11px;font-weight:400;margin-left:6px}
.kq .kq-note{color:#6b7685;font-size:11px;margin:3px 0 0}
.kq nav{margin:14px 0 0;font-size:12px}.kq nav a{margin-right:14px;color:#1f5fa8}
.kq img{max-width:100%;height:auto;display:block}
.kq .kq-figs{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px 18px}
.kq figure{margin:0}.kq figcaption{font-size:12px;color:#4a5565;margin-top:2px}
.kq .kq-muted{color:#6b7685}
.kq details{margin:6px 0}.kq summary{cursor:pointer;font-weight:600}
.kq pre{background:#f6f8fa;padding:8px 10px;overflow:auto;font-size:12px;max-height:520px}
.kq .kq-groups{columns:3 380px;column-gap:22px;margin-top:6px}.kq .kq-group{break-inside:avoid;margin-bottom:10px}
.kq table.kq-kv,.kq table.kq-list{border-collapse:collapse;font-size:12px;font-variant-numeric:tabular-nums}
.kq table.kq-kv td,.kq table.kq-list td,.kq table.kq-list th{border-bottom:1px solid #eef0f3;padding:1px 8px}
.kq table.kq-list th{text-align:left;background:#eef2f7}
.kq table.kq-kv td:last-child{text-align:right}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _img(name: str, png: bytes | str) -> str:
    data = png if isinstance(png, str) else base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">'


def _header(inputs: ReportInputs) -> str:
    config, prov = inputs.config or {}, inputs.provenance or {}
    name = dig(config, "name") or inputs.title
    desc = dig(config, "description")
    version = prov.get("kronos_quant") or dig(prov, "model", "kronos_quant")
    meta = " \u00b7 ".join(x for x in (f"kronos-quant {version}" if version else "", str(prov.get("started") or ""))
                           if x)
    facts = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>"
                    for k, v in run_facts(inputs.metrics, config, prov, period=inputs.period))
    return (f'<header class="kq-top"><div><h1>{_e(name)}</h1>'
            + (f'<p class="kq-desc">{_e(desc)}</p>' if desc else "")
            + f'</div><div class="kq-meta">{_e(meta)}</div></header>\n<dl class="kq-facts">{facts}</dl>')


def _verdicts(inputs: ReportInputs) -> str:
    items = "".join(f'<li><span class="kq-tag {v.tone}">{_e(TAGS[v.tone])}</span>{_e(v.text)}</li>'
                    for v in verdicts(inputs.metrics))
    items = items or '<li class="kq-muted">No comparisons in these metrics: nothing to compare.</li>'
    notes = "".join(f'<p class="kq-note kq-caveat">\u26a0 {_e(w)}</p>' for w in caveats(inputs.metrics))
    return f'<section class="kq-verdict" id="verdict"><h2>Verdict</h2><ul>{items}</ul>{notes}</section>'


def _headline_table(table: Headline) -> str:
    head = "".join(f'<th class="{_e(kind)}">{_e(col).replace("-", chr(0x2011))}<small>{_e(kind)}</small></th>'
                   for col, kind in zip(table.columns, table.kinds))  # non-breaking hyphens: wrap at spaces only
    body, group = [], None
    for row in table.rows:
        if row.section != group:
            group = row.section
            body.append(f'<tr class="grp"><td colspan="{len(table.columns) + 1}">{_e(_GROUPS[group])}</td></tr>')
        cells = "".join(
            f'<td class="{_e(kind)}"' + (f' title="{_e(cell.note)}"' if cell.note else "") + f">{_e(cell.text)}"
            + (f'<span class="g">{_e(cell.gross)}</span>' if cell.gross is not None else "") + "</td>"
            for cell, kind in zip(row.cells, table.kinds))
        body.append(f'<tr><td class="lbl" title="{_e(row.help)}">{_e(row.label)}</td>{cells}</tr>')
    return (f'<div><table class="kq-headline" id="headline"><thead><tr><th>metric</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>'
            '<p class="kq-note">Rank IC t: Newey-West; * p &lt; 0.05, ** p &lt; 0.01 under both Newey-West and the size-robust EWC test. Hover a cell for details.</p></div>')


def _sections(inputs: ReportInputs, images: Mapping[str, bytes | str]) -> tuple[str, list[str]]:
    out, names = [], []
    for title, figures in SECTIONS.items():
        anchor = title.lower().replace(" ", "-")
        shown = [f for f in figures if f in images and f != TOP_FIGURE]
        if not shown:
            continue
        names.append(title)
        cells = "".join(f'<figure id="fig-{_e(f)}">{_img(f, images[f])}<figcaption>{_e(CAPTIONS.get(f, ""))}'
                        f"</figcaption></figure>" for f in shown)
        out.append(f'<section id="{anchor}"><h2>{_e(title)}</h2><div class="kq-figs">{cells}</div></section>')
    out.append(f'<section id="data"><h2>Data</h2>{data_section(inputs.metrics, inputs.provenance)}</section>')
    names.append("Data")
    return "\n".join(out), names


def render_tearsheet(inputs: ReportInputs, images: Mapping[str, bytes | str] | None = None, *,
                     standalone: bool = True) -> str:
    """The tear sheet as HTML. images: figure name -> PNG bytes (or base64 text), e.g. from
    ``make_figures``; standalone: a whole page with its Content-Security-Policy (else a ``<div>``
    fragment with scoped styles, for notebooks)."""
    images = dict(images or {})
    table = headline(inputs.metrics)
    top = (f'<figure class="kq-top-fig" id="fig-{TOP_FIGURE}">{_img(TOP_FIGURE, images[TOP_FIGURE])}</figure>'
           if TOP_FIGURE in images else "<div></div>")
    left = _headline_table(table) if table.columns else ('<p class="kq-muted">No model, baseline or benchmark '
                                                          'metrics in this run: no headline table.</p>')
    first = f'<div class="kq-first">{left}{top}</div>'
    sections, names = _sections(inputs, images)
    nav = "<nav>" + "".join(f'<a href="#{n.lower().replace(" ", "-")}">{_e(n)}</a>' for n in [*names, "Details"]) + "</nav>"
    details = f'<section id="details"><h2>Details</h2>{details_section(inputs.metrics, inputs.config, inputs.provenance)}</section>'
    body = "\n".join([_header(inputs), _verdicts(inputs), first, nav, sections, details])
    if not standalone:
        return f'<div class="kq"><style>{STYLE}</style>\n{body}\n</div>'
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(inputs.title)}</title><style>{STYLE}</style></head>\n"
            f'<body style="margin:0;background:#fff"><div class="kq">\n{body}\n</div></body></html>\n')
