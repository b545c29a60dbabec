"""The ``kronos-quant`` command line: parse, call a workflow, map errors to exit codes.

Exit codes (stable, for cron and CI):
    0  success
    1  any other failure (a bug or an unexpected environment problem)
    2  bad config or usage (unknown key, invalid value, missing config file, bad --set)
    3  data problem (missing data file, no bars on the as-of date, validation failure)
    4  model unavailable (not cached and the Hub unreachable, unknown model id, corrupt checkpoint)
  130  interrupted (Ctrl-C); finished work is kept in the forecast cache
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kronos_quant import __version__
from kronos_quant.errors import CheckpointError, ConfigError, DataError, ModelUnavailableError

EXIT_OK, EXIT_OTHER, EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

app = typer.Typer(help="Research, backtest and nightly signals on Kronos forecasts. Exit codes: 0 ok, 1 other "
                       "failure, 2 bad config, 3 data problem, 4 model unavailable.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Validate and inspect market data files.", no_args_is_help=True)
models_app = typer.Typer(help="Model presets and cached checkpoints.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("kronos_quant.cli")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and full tracebacks.")]
Sets = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a config key: key.path=value "
                                                "(repeatable), e.g. --set forecast.horizon=10.")]
Device = Annotated[str | None, typer.Option(help="Device for the model: auto, cpu, cuda, cuda:1, mps.")]
Seed = Annotated[int | None, typer.Option(help="Sampling seed (overrides forecast.seed).")]


def _setup(quiet: bool, verbose: bool) -> None:
    from kronos_quant.utils.progress import set_quiet

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("kronos_quant")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    set_quiet(quiet)


def _guard(func: F) -> F:
    """Run a command; turn known errors into a one-line message and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted: finished forecasts are kept in the cache; rerun to resume", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except ConfigError as exc:
            code, msg = EXIT_CONFIG, f"config error: {exc}"
        except DataError as exc:
            code, msg = EXIT_DATA, f"data error: {exc}"
        except (ModelUnavailableError, CheckpointError) as exc:
            code, msg = EXIT_MODEL, f"model unavailable: {exc}"
        except Exception as exc:  # anything else: one line unless --verbose
            if verbose:
                raise
            code, msg = EXIT_OTHER, f"error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)"
        typer.echo(msg, err=True)
        raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


def _config(path: Path | None, sets: list[str] | None, device: str | None = None, seed: int | None = None) -> Any:
    from kronos_quant.config import load_config
    from kronos_quant.workflow import check_names

    overrides = list(sets or [])
    if device:
        overrides.append(f"model.device={device}")
    if seed is not None:
        overrides.append(f"forecast.seed={seed}")
    cfg = load_config(path, overrides=overrides)
    check_names(cfg)
    return cfg


def _date(text: str | None, option: str = "--asof") -> Any:
    import pandas as pd

    if text is None:
        return None
    try:
        return pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. {option} 2017-06-30") from None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4g}"
    return str(v)


def _print_summary(metrics: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from kronos_quant.workflow import summary_rows

    base_name = metrics.get("baseline", {}).get("name", "baseline")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column(f"baseline ({base_name})", justify="right")
    for label, model_v, base_v in summary_rows(metrics):
        table.add_row(label, _fmt(model_v), _fmt(base_v))
    Console(width=100).print(table)


@app.command()
@_guard
def backtest(strategy: Annotated[Path, typer.Argument(help="Strategy YAML, e.g. strategies/momentum.yaml.")],
             output: Annotated[Path | None, typer.Option("--output", "-o", help="Report directory "
                                                         "(default: output.dir of the config).")] = None,
             set_: Sets = None, device: Device = None, seed: Seed = None, quiet: Quiet = False,
             verbose: Verbose = False) -> None:
    """Run data -> rolling forecasts -> signals -> backtest -> metrics -> report, and print a summary."""
    _setup(quiet, verbose)
    from kronos_quant.workflow import run_backtest

    cfg = _config(strategy, set_, device, seed)
    run = run_backtest(cfg, output_dir=output, quiet=quiet)
    _print_summary(run.metrics, f"{cfg.name}: {cfg.model.id}")
    typer.echo(f"report: {run.output_dir}/report.html")


@app.command()
@_guard
def signals(strategy: Annotated[Path, typer.Argument(help="Strategy YAML.")],
            asof: Annotated[str, typer.Option(help="As-of date (a date in the data), e.g. 2017-06-30.")],
            output: Annotated[Path | None, typer.Option("--output", "-o", help="Output CSV or Parquet file "
                                                        "(default: output.signals_file of the config).")] = None,
            set_: Sets = None, device: Device = None, seed: Seed = None, quiet: Quiet = False,
            verbose: Verbose = False) -> None:
    """Nightly job: scores and target weights for the next session (cached, idempotent, atomic)."""
    _setup(quiet, verbose)
    from kronos_quant.workflow import run_signals

    cfg = _config(strategy, set_, device, seed)
    res = run_signals(cfg, _date(asof), output=output, quiet=quiet)
    state = "written" if res.written else "unchanged"
    typer.echo(f"{res.path} ({state}; {len(res.table)} instruments; {res.forecasts_computed} forecasts computed; "
               f"next session {res.next_session})")


@app.command()
@_guard
def forecast(strategy: Annotated[Path, typer.Argument(help="Strategy YAML.")],
             output: Annotated[Path, typer.Option("--output", "-o", help="Forecast table (.parquet or .csv).")] =
             Path("forecasts.parquet"),
             asof: Annotated[str | None, typer.Option(help="Only this as-of date (default: the backtest period).")]
             = None,
             set_: Sets = None, device: Device = None, seed: Seed = None, quiet: Quiet = False,
             verbose: Verbose = False) -> None:
    """Write the forecast table only (instrument, asof, step, target timestamp, mean/median/quantiles, prob_up)."""
    _setup(quiet, verbose)
    import polars as pl

    from kronos_quant.utils.atomic import atomic_path, write_json_atomic
    from kronos_quant.workflow import build_provenance, forecast_table, load_strategy_data, make_forecaster

    cfg = _config(strategy, set_, device, seed)
    day = _date(asof)
    panel, report = load_strategy_data(cfg, end=day)
    kw: dict[str, Any] = {}
    if asof:
        ts = panel.filter(pl.col("timestamp").dt.date() == day.date())["timestamp"]
        if ts.len() == 0:
            raise DataError(f"no bars on {asof} in the data; pass an --asof date that is in the data")
        kw = dict(rebalance=[ts.max()], start=ts.max(), end=ts.max())
    forecaster = make_forecaster(cfg)
    table, stats = forecast_table(cfg, panel, forecaster, quiet=quiet, **kw)
    with atomic_path(output) as tmp:
        if output.suffix == ".csv":
            table.drop([c for c in table.columns if table[c].dtype == pl.List(pl.Float64)]).write_csv(tmp)
        else:
            table.write_parquet(tmp)
    write_json_atomic(output.with_suffix(output.suffix + ".json"),
                      {"config": cfg.resolved(), "provenance": build_provenance(cfg, panel, forecaster, report)})
    typer.echo(f"{output}: {table.height} rows ({stats['forecasts']} forecasts, "
               f"{stats.get('cache_misses', stats['forecasts'])} computed)")


@app.command()
@_guard
def evaluate(run_dir: Annotated[Path, typer.Argument(help="A backtest report directory.")],
             output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the new report here "
                                                         "(default: in place).")] = None,
             set_: Sets = None, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Recompute signals, backtest, metrics and report from a run's saved forecasts (no model work)."""
    _setup(quiet, verbose)
    import polars as pl

    from kronos_quant.config import apply_overrides, config_from_dict
    from kronos_quant.workflow import check_names, evaluate_forecasts, load_strategy_data

    prov_file, fc_file = run_dir / "provenance.json", run_dir / "forecasts.parquet"
    for f in (prov_file, fc_file):
        if not f.is_file():
            raise DataError(f"{f} not found; pass a directory written by `kronos-quant backtest`")
    saved = json.loads(prov_file.read_text())
    cfg = config_from_dict(apply_overrides(saved["config"], set_), source=str(prov_file))
    check_names(cfg)
    panel, _ = load_strategy_data(cfg)
    run = evaluate_forecasts(cfg, panel, pl.read_parquet(fc_file), provenance=saved.get("provenance"),
                             output_dir=output or run_dir)
    _print_summary(run.metrics, f"{cfg.name}: {cfg.model.id} (re-evaluated)")
    typer.echo(f"report: {run.output_dir}/report.html")


@data_app.command("validate")
@_guard
def data_validate(path: Annotated[Path, typer.Argument(help="CSV/Parquet file or directory of per-instrument files.")],
                  policy: Annotated[str, typer.Option(help="raise | drop | fill (what the report says it would do)")]
                  = "drop",
                  max_lines: Annotated[int, typer.Option(help="lines of the summary to print; 0 prints them all")]
                  = 60,
                  quiet: Quiet = False, verbose: Verbose = False) -> None:
    """List data problems (missing values, duplicates, bad OHLC, gaps...). Exit 3 if errors remain under raise."""
    _setup(quiet, verbose)
    from kronos_quant.data import load_panel_with_report
    from kronos_quant.data.validate import PanelValidationError

    if policy not in ("raise", "drop", "fill"):
        raise ConfigError(f"--policy must be raise, drop or fill, got {policy!r}")
    if not path.exists():
        raise DataError(f"{path} does not exist")
    try:
        _, report = load_panel_with_report(path, policy=policy)  # type: ignore[arg-type]
    except PanelValidationError as exc:
        typer.echo(exc.report.summary(max_lines=max_lines))
        raise typer.Exit(EXIT_DATA) from None
    typer.echo(report.summary(max_lines=max_lines))


@data_app.command("inspect")
@_guard
def data_inspect(path: Annotated[Path, typer.Argument(help="CSV/Parquet file or directory.")],
                 quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Summarise a data file: instruments, rows, date range, bar frequency, missing values."""
    _setup(quiet, verbose)
    from kronos_quant.data import inspect_panel, load_panel

    if not path.exists():
        raise DataError(f"{path} does not exist")
    typer.echo(inspect_panel(load_panel(path, validate=False)).summary())


@models_app.command("list")
@_guard
def models_list(quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Presets (kronos-mini/small/base/demo) and Kronos checkpoints in the local Hugging Face cache."""
    _setup(quiet, verbose)
    from rich.console import Console
    from rich.table import Table

    from kronos_quant.forecasters import list_models

    table = Table(title="models")
    for col in ("name", "model", "tokenizer", "revision", "context", "offline", "description"):
        table.add_column(col)
    for row in list_models():
        table.add_row(row["name"], row["model"], row["tokenizer"], str(row["revision"])[:12], _fmt(row["context"]),
                      "yes" if row["available_offline"] else "no", row["description"])
    Console(width=160).print(table)


@app.command()
@_guard
def finetune(config: Annotated[Path, typer.Argument(help="Fine-tuning YAML, e.g. strategies/finetune_demo.yaml.")],
             set_: Sets = None, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Fine-tune a published checkpoint (or train from scratch): tokenizer first, then predictor."""
    _setup(quiet, verbose)
    from kronos_quant.training import run_finetune

    result = run_finetune(config, overrides=set_, quiet=quiet)
    typer.echo(f"checkpoints: {getattr(result, 'output_dir', result)}")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kronos-quant {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """kronos-quant: Kronos forecasts -> signals -> vectorbt backtests -> evaluation."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
