"""Writing a run's report: JSON, Parquet, PNG and one self-contained HTML page, each file atomically.

``write_report`` owns every file a research run leaves behind (temporary file + rename, so a
reader never sees half a file). The whole directory is written beside the target and swapped in
(``utils.atomic.atomic_directory``), so a run directory is either complete or unchanged, never a
mix of two runs; ``manifest.json`` lists the run's files, and files in the directory that the
previous run did not write (e.g. ``forecasts_<asof>.parquet`` of ``kronos-quant forecast``) are kept.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import numpy as np
import pandas as pd
import polars as pl
from matplotlib.figure import Figure

from kronos_quant._version import __version__
from kronos_quant.backtest import BacktestResult
from kronos_quant.errors import ConfigError
from kronos_quant.report.figures import FIGURES, figure_makers
from kronos_quant.utils.atomic import atomic_directory, atomic_path, write_json_atomic, write_text_atomic

__all__ = ["write_report", "write_table_if_changed", "write_forecast_table"]

logger = logging.getLogger(__name__)


def _jsonable(obj: Any) -> Any:
    """Recursively convert numpy/pandas scalars to Python, non-finite floats to None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (pd.Timestamp, pd.Timedelta, Path)):
        return str(obj)
    return obj


def _write_parquet(path: Path, frame: Any) -> None:
    with atomic_path(path) as tmp:
        if isinstance(frame, pd.DataFrame):
            out = frame.copy()
            out.columns = [str(c) for c in out.columns]
            out.to_parquet(tmp)
        elif hasattr(frame, "write_parquet"):
            frame.write_parquet(tmp)
        else:
            raise ValueError(f"cannot write {type(frame).__name__} to {path.name}; pass a pandas or polars DataFrame")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _html(title: str, metrics: Mapping[str, Any], images: Mapping[str, bytes], config: Any, provenance: Any) -> str:
    rows = "\n".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in _flatten(metrics))
    figs = "\n".join(
        f'<h2>{html.escape(name)}</h2>\n<img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}">' for name, png in images.items()
    )
    dump = {"provenance": provenance, "config": config}
    blocks = "\n".join(
        f"<h2>{key}</h2>\n<pre>{html.escape(json.dumps(_jsonable(value), indent=2, sort_keys=True, default=str))}</pre>"
        for key, value in dump.items() if value is not None
    )
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
             "img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"<h2>metrics</h2>\n<table>\n{rows}\n</table>\n{figs}\n{blocks}\n</body></html>\n")


MANIFEST = "manifest.json"
# What a run directory written before manifests existed may hold from its run (not carried over).
_LEGACY_RUN_FILES = frozenset({"metrics.json", "provenance.json", "report.html", "figures", "returns.parquet",
                               "forecasts.parquet", "signals.parquet", "positions.parquet", "trades.parquet"})


def _previous_run_files(directory: Path) -> frozenset[str]:
    """Top-level names the run in ``directory`` wrote (its manifest; legacy directories: the usual names)."""
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return _LEGACY_RUN_FILES
    return frozenset(str(f).split("/")[0] for f in files) | {MANIFEST}


_P = ParamSpec("_P")


def _swapped_in(write: Callable[Concatenate[str | Path, _P], dict[str, Path]]
                ) -> Callable[Concatenate[str | Path, _P], dict[str, Path]]:
    """Run ``write(directory, ...)`` in a new directory beside ``output_dir`` and swap it in when complete."""
    @functools.wraps(write)
    def wrapper(output_dir: str | Path, *args: _P.args, **kwargs: _P.kwargs) -> dict[str, Path]:
        final = Path(output_dir)
        own = _previous_run_files(final)
        foreign = sorted(e.name for e in final.iterdir() if e.is_dir() and e.name not in own) if final.is_dir() else []
        problem = (f"holds directories that are not part of a run ({', '.join(foreign[:5])})" if foreign else
                   "is the current directory or holds it" if final.resolve() in (Path.cwd(), *Path.cwd().parents)
                   else "")
        if problem:
            raise ConfigError(f"{final} {problem}; a run directory is replaced whole, so write the report into a "
                              "directory of its own (--output or output.dir)")
        with atomic_directory(final, keep=lambda name: name not in own) as tmp:
            written = write(tmp, *args, **kwargs)
            files = sorted(str(p.relative_to(tmp)) for p in written.values())
            write_json_atomic(tmp / MANIFEST, {"kronos_quant": __version__, "files": files})
        written = {k: final / p.relative_to(tmp) for k, p in written.items()}
        logger.info("report written to %s (%d files)", final, len(written))
        return written

    return wrapper


@_swapped_in
def write_report(
    output_dir: str | Path,
    *,
    metrics: Mapping[str, Any],
    forecasts: Any = None,
    signals: pd.DataFrame | None = None,
    positions: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    backtest: BacktestResult | None = None,
    config: Any = None,
    provenance: Mapping[str, Any] | None = None,
    panel: Any = None,
    forward_returns: pd.DataFrame | None = None,
    ic: pd.DataFrame | None = None,
    figures: Sequence[str] | None = None,
    fan_instrument: str | None = None,
    n_quantiles: int = 5,
    title: str = "kronos-quant report",
) -> dict[str, Path]:
    """Write a run's results under ``output_dir`` (swapped in whole when complete; see the module
    docstring); returns {artifact name: path}.

    Files: metrics.json; provenance.json (config + provenance); forecasts/signals/positions/trades
    .parquet for the inputs given; ic.parquet (``ic``: per-date IC of every forecaster, columns
    date, forecaster, ic, rank_ic, n) (positions and trades default to the backtest's positions and
    orders; returns.parquet holds its return series); figures/<name>.png; report.html with every
    figure embedded as base64. ``figures``: names from FIGURES; None draws every figure whose inputs
    are present (equity: backtest; ic, quantile_returns: signals + forward_returns (wide, aligned
    with signals); fan: forecasts (+ panel for history); calibration: forecasts + panel). Naming a
    figure whose inputs are missing raises ValueError.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if figures is not None:
        unknown = [f for f in figures if f not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    written: dict[str, Path] = {}
    write_json_atomic(out / "metrics.json", _jsonable(dict(metrics)))
    written["metrics"] = out / "metrics.json"
    write_json_atomic(out / "provenance.json", _jsonable({"config": config, "provenance": provenance}))
    written["provenance"] = out / "provenance.json"

    if backtest is not None:
        positions = backtest.positions if positions is None else positions
        trades = backtest.orders if trades is None else trades
        series = {"returns": backtest.returns, "benchmark_returns": backtest.benchmark_returns,
                  "gross_returns": backtest.gross_returns, "gross_benchmark_returns": backtest.gross_benchmark_returns,
                  "equity": backtest.equity, "benchmark_equity": backtest.benchmark_equity,
                  "turnover": backtest.turnover, "costs": backtest.costs["total"]}
        tables: dict[str, Any] = {"returns": pd.DataFrame({k: v for k, v in series.items() if v is not None})}
    else:
        tables = {}
    tables.update({"forecasts": forecasts, "signals": signals, "positions": positions, "trades": trades,
                   "ic": None if ic is None else ic.reset_index(drop=True)})
    for name, frame in tables.items():
        if frame is not None:
            _write_parquet(out / f"{name}.parquet", frame)
            written[name] = out / f"{name}.parquet"

    makers = figure_makers(backtest=backtest, signals=signals, forward_returns=forward_returns, forecasts=forecasts,
                            panel=panel, fan_instrument=fan_instrument, n_quantiles=n_quantiles)
    images: dict[str, bytes] = {}
    for name in figures if figures is not None else FIGURES:
        missing, make = makers[name]
        if missing is not None:
            if figures is not None:
                raise ValueError(f"figure {name!r} needs {missing}; pass it to write_report or leave the figure out")
            logger.debug("figure %s skipped: needs %s", name, missing)
            continue
        png = _png(make())
        with atomic_path(out / "figures" / f"{name}.png") as tmp:
            tmp.write_bytes(png)
        images[name] = png
        written[f"figure_{name}"] = out / "figures" / f"{name}.png"
    write_text_atomic(out / "report.html", _html(title, metrics, images, config, provenance))
    written["html"] = out / "report.html"
    return written


def _table_bytes(table: Any, suffix: str) -> bytes:
    """The file content of a pandas/polars table as Parquet or, for any other suffix, CSV."""
    buffer = io.BytesIO()
    if isinstance(table, pd.DataFrame):
        if suffix == ".parquet":
            table.to_parquet(buffer, index=False)
        else:
            table.to_csv(buffer, index=False, float_format="%.10g")
    elif suffix == ".parquet":
        table.write_parquet(buffer)
    else:  # CSV holds no list columns (the sample paths)
        table.select([c for c, t in table.schema.items() if not isinstance(t, pl.List)]).write_csv(buffer)
    return buffer.getvalue()


def write_table_if_changed(table: Any, path: str | Path, *, replace: bool = True) -> bool:
    """Write a table (pandas or polars) to ``path`` (.parquet, else CSV) atomically -- unless the file
    already holds exactly these bytes, in which case it is left untouched. True if written.
    replace=False: FileExistsError instead of replacing a file with other content."""
    path = Path(path)
    content = _table_bytes(table, path.suffix)
    if path.is_file():
        old = path.read_bytes()
        if old == content:
            return False
        if not replace:
            raise FileExistsError(f"{path} exists with other content")
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return True


def write_forecast_table(table: Any, path: str | Path) -> None:
    """Write a forecast table to ``path`` atomically: .parquet keeps everything, .csv drops the sample lists."""
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"{path}: write the forecast table as .parquet or .csv")
    with atomic_path(path) as tmp:
        tmp.write_bytes(_table_bytes(table, path.suffix))
