"""Writing a run's report: JSON, Parquet, PNG and the tear sheet (one self-contained HTML page), each atomically.

``write_report`` owns every file a research run leaves behind (temporary file + rename, so a
reader never sees half a file). The whole directory is written beside the target and swapped in
(``utils.atomic.atomic_directory``), so a run directory is either complete or unchanged, never a
mix of two runs; ``manifest.json`` lists the run's files, and files in the directory that the
previous run did not write (e.g. ``forecasts_<asof>.parquet`` of ``kronos-quant forecast``) are kept.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

import pandas as pd
import polars as pl
from matplotlib.figure import Figure

from kronos_quant._version import __version__
from kronos_quant.backtest import BacktestResult
from kronos_quant.errors import ConfigError
from kronos_quant.report.figures import FIGURES, make_figures
from kronos_quant.report.inputs import ReportInputs
from kronos_quant.report.jsonable import jsonable
from kronos_quant.report.tearsheet import render_tearsheet
from kronos_quant.utils.atomic import atomic_directory, atomic_path, write_json_atomic, write_text_atomic

__all__ = ["write_report", "check_report_dir", "figure_png", "write_table_if_changed", "write_forecast_table"]

logger = logging.getLogger(__name__)


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


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (Agg canvas; nothing is shown)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


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


def check_report_dir(output_dir: str | Path) -> frozenset[str]:
    """ConfigError unless ``output_dir`` can take a run's report (workflows call it before any forecasting):
    the directory is replaced whole, so it must not hold other directories (e.g. other runs) nor be the
    current directory. Returns the top-level names its previous run wrote."""
    final = Path(output_dir)
    own = _previous_run_files(final)
    foreign = sorted(e.name for e in final.iterdir() if e.is_dir() and e.name not in own) if final.is_dir() else []
    problem = (f"holds directories that are not part of a run ({', '.join(foreign[:5])})" if foreign else
               "is the current directory or holds it" if final.resolve() in (Path.cwd(), *Path.cwd().parents)
               else "")
    if problem:
        raise ConfigError(f"{final} {problem}; a run directory is replaced whole, so write the report into a "
                          "directory of its own (--output or output.dir)")
    return own


_P = ParamSpec("_P")


def _swapped_in(write: Callable[Concatenate[str | Path, _P], dict[str, Path]]
                ) -> Callable[Concatenate[str | Path, _P], dict[str, Path]]:
    """Run ``write(directory, ...)`` in a new directory beside ``output_dir`` and swap it in when complete."""
    @functools.wraps(write)
    def wrapper(output_dir: str | Path, *args: _P.args, **kwargs: _P.kwargs) -> dict[str, Path]:
        final = Path(output_dir)
        own = check_report_dir(final)
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
    baselines: Mapping[str, BacktestResult] | None = None,
    baseline_signals: Mapping[str, pd.DataFrame] | None = None,
    ic: pd.DataFrame | None = None,
    figures: Sequence[str] | None = None,
    fan_instrument: str | None = None,
    n_quantiles: int = 5,
    title: str = "kronos-quant report",
) -> dict[str, Path]:
    """Write a run's results under ``output_dir`` (swapped in whole when complete; see the module
    docstring); returns {artifact name: path}.

    Files: metrics.json; provenance.json (config + provenance); forecasts/signals/positions/trades
    .parquet for the inputs given (positions and trades default to the backtest's positions and
    orders; returns.parquet holds its return series); ic.parquet when ``ic`` (the per-date IC
    table) is given; figures/<name>.png; report.html, the tear sheet (``report.tearsheet``) with
    every figure embedded. ``baselines``/``baseline_signals``: name -> each baseline strategy's
    ``BacktestResult``/scores, drawn beside the strategy. ``figures``: names from FIGURES; None
    draws every figure whose inputs are present (see ``report.figures.figure_makers``). Naming a
    figure whose inputs are missing raises ValueError.
    """
    inputs = ReportInputs(metrics=metrics, config=config, provenance=provenance, backtest=backtest,
                          baselines=dict(baselines or {}), signals=signals, baseline_signals=dict(baseline_signals or {}),
                          forward_returns=forward_returns, forecasts=forecasts, panel=panel, ic=ic,
                          fan_instrument=fan_instrument, n_quantiles=n_quantiles, title=title)
    if figures is not None:
        unknown = [f for f in figures if f not in FIGURES]
        if unknown:
            raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    write_json_atomic(out / "metrics.json", jsonable(dict(metrics)))
    written["metrics"] = out / "metrics.json"
    write_json_atomic(out / "provenance.json", jsonable({"config": config, "provenance": provenance}))
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

    images: dict[str, bytes] = {}
    for name, fig in make_figures(inputs, figures).items():
        images[name] = figure_png(fig)
        with atomic_path(out / "figures" / f"{name}.png") as tmp:
            tmp.write_bytes(images[name])
        written[f"figure_{name}"] = out / "figures" / f"{name}.png"
    write_text_atomic(out / "report.html", render_tearsheet(inputs, images))
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
