"""The ``kronos-quant`` command line: parse, call a workflow, map errors to exit codes.

Exit codes (stable, for cron and CI):
    0  success
    1  any other failure (a bug or an unexpected environment problem)
    2  bad config or usage (unknown key, invalid value, missing config file, bad --set, an evaluate --set
       the saved forecasts cannot honour, a published signals file with other content and no --force)
    3  data problem (missing data file, no bars on the as-of date, validation failure)
    4  model unavailable (not cached and the Hub unreachable, unknown model id, corrupt checkpoint)
  130  interrupted (Ctrl-C); finished work is kept in the forecast cache

Each command is a few lines over a ``workflow`` function. The options several commands share
(--set, --device, --seed, --quiet, --verbose) are declared once (``SHARED_OPTIONS``) and added by
the ``command`` decorator. Heavy modules (torch, pandas, the workflows) are imported inside the
commands, so ``--help`` and ``models list`` answer at once.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from kronos_quant._version import __version__
from kronos_quant.errors import CheckpointError, ConfigError, DataError, ModelUnavailableError

EXIT_OK, EXIT_OTHER, EXIT_CONFIG, EXIT_DATA, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

app = typer.Typer(help="Research, backtest and nightly signals on Kronos forecasts. Exit codes: 0 ok, 1 other "
                       "failure, 2 bad config, 3 data problem, 4 model unavailable.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Validate and inspect market data files.", no_args_is_help=True)
models_app = typer.Typer(help="Model presets and cached checkpoints.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

logger = logging.getLogger("kronos_quant.cli")


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _sets_option(example: str) -> inspect.Parameter:
    """--set, with an example key the command accepts."""
    return _option("sets", Annotated[list[str] | None, typer.Option(
        "--set", "-s", help=f"Override a config key: key.path=value (repeatable), e.g. --set {example}.")], None)


SHARED_OPTIONS: dict[str, inspect.Parameter] = {
    "sets": _sets_option("forecast.horizon=10"),
    "device": _option("device", Annotated[str | None, typer.Option(
        help="Device for the model: auto, cpu, cuda, cuda:1, mps.")], None),
    "seed": _option("seed", Annotated[int | None, typer.Option(help="Sampling seed (overrides forecast.seed).")],
                    None),
    "quiet": _option("quiet", Annotated[bool, typer.Option(
        "--quiet", "-q", help="Only warnings and errors; no progress bars.")], False),
    "verbose": _option("verbose", Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logging and full tracebacks.")], False),
}
LOGGING = ("quiet", "verbose")
CONFIG = ("sets", "device", "seed", *LOGGING)


@dataclass(frozen=True)
class Options:
    """The shared options of one invocation (those a command does not take keep their defaults)."""

    quiet: bool = False
    verbose: bool = False
    sets: list[str] | None = None
    device: str | None = None
    seed: int | None = None

    def config(self, path: Path) -> Any:
        """The strategy at ``path`` with --set, --device and --seed applied (validated: ConfigError)."""
        from kronos_quant.config import load_config

        overrides = list(self.sets or [])
        if self.device:
            overrides.append(f"model.device={self.device}")
        if self.seed is not None:
            overrides.append(f"forecast.seed={self.seed}")
        return load_config(path, overrides=overrides)


def _setup(quiet: bool, verbose: bool) -> None:
    from kronos_quant.utils.progress import ProgressLogHandler, set_quiet

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = ProgressLogHandler(sys.stderr)  # log lines above progress bars, never inside them
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("kronos_quant")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    set_quiet(quiet)


def _run_guarded(func: Callable[..., Any], opts: Options, kwargs: dict[str, Any]) -> Any:
    """Run a command; turn known errors into a one-line message and the documented exit code."""
    try:
        return func(opts, **kwargs)
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
        if opts.verbose:
            raise
        code, msg = EXIT_OTHER, f"error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)"
    typer.echo(msg, err=True)
    raise typer.Exit(code)


def command(group: typer.Typer, name: str | None = None, *, shared: Sequence[str] = LOGGING,
            set_example: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(opts: Options, **own_options)`` as a command of ``group`` taking the ``shared`` options too.

    The shared options are appended to the command's own parameters; logging is set up and
    errors are mapped to exit codes before and around the call. set_example: the --set example of
    this command's help (default ``forecast.horizon=10``), for commands that refuse or lack that key.
    """
    options = {**SHARED_OPTIONS, **({"sets": _sets_option(set_example)} if set_example else {})}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(func, eval_str=True)
        params = [p for p in own.parameters.values() if p.name != "opts"] + [options[s] for s in shared]

        def run(**kwargs: Any) -> Any:
            opts = Options(**{s: kwargs.pop(s) for s in shared})
            _setup(opts.quiet, opts.verbose)
            return _run_guarded(func, opts, kwargs)

        run.__name__, run.__doc__, run.__module__ = func.__name__, func.__doc__, func.__module__
        run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        group.command(name)(run)
        return func

    return decorate


def _date(text: str | None, option: str = "--asof") -> Any:
    import pandas as pd

    if text is None:
        return None
    try:
        return pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. {option} 2017-06-30") from None


def _print_summary(run: Any, title: str | None = None) -> None:
    import shutil

    width = min(max(shutil.get_terminal_size((120, 40)).columns, 100), 160)
    typer.echo(run.summary(title, width=width), nl=False)
    typer.echo(f"report: {run.output_dir}/report.html")


Trials = Annotated[int | None, typer.Option("--trials", min=1, help="Configurations tried before this one, for the "
                                            "deflated Sharpe ratio (sets evaluation.n_trials).")]


def _with_trials(sets: list[str] | None, trials: int | None) -> list[str]:
    return [*(sets or []), *([f"evaluation.n_trials={trials}"] if trials is not None else [])]


Strategy = Annotated[Path, typer.Argument(help="Strategy YAML, e.g. strategies/momentum.yaml.")]


@command(app, shared=CONFIG)
def backtest(opts: Options, strategy: Strategy,
             output: Annotated[Path | None, typer.Option("--output", "-o", help="Report directory "
                                                         "(default: output.dir of the config).")] = None,
             trials: Trials = None) -> None:
    """Run data -> rolling forecasts -> signals -> backtest -> metrics -> report, and print a summary."""
    from dataclasses import replace

    from kronos_quant.workflow import run_backtest

    cfg = replace(opts, sets=_with_trials(opts.sets, trials)).config(strategy)
    _print_summary(run_backtest(cfg, output_dir=output, quiet=opts.quiet))


@command(app, shared=CONFIG)
def signals(opts: Options, strategy: Strategy,
            asof: Annotated[str, typer.Option(help="As-of date (a date in the data), e.g. 2017-06-30.")],
            output: Annotated[Path | None, typer.Option("--output", "-o", help="Output CSV or Parquet file "
                                                        "(default: output.signals_file of the config).")] = None,
            force: Annotated[bool, typer.Option("--force", help="Replace a published file that holds other signals "
                                                "(its provenance keeps the old file's hash); without it: exit 2.")]
            = False) -> None:
    """Nightly job: scores and target weights for the next session (cached, idempotent, atomic)."""
    from kronos_quant.workflow import run_signals

    res = run_signals(opts.config(strategy), _date(asof), output=output, quiet=opts.quiet, force=force)
    unscored = res.unscored_summary
    typer.echo(f"{res.path} ({'written' if res.written else 'unchanged'}; {len(res.table)} instruments"
               f"{', ' + unscored if unscored else ''}; "
               f"{res.forecasts_computed} forecasts computed; next session {res.next_session}, "
               f"{res.next_session_basis})")
    if res.next_session_warning:
        typer.echo(f"warning: {res.next_session_warning}", err=True)


@command(app, shared=CONFIG)
def forecast(opts: Options, strategy: Strategy,
             output: Annotated[Path | None, typer.Option("--output", "-o", help="Forecast table (.parquet or .csv; "
                                                         "default: forecasts_<asof>.parquet in output.dir).")] = None,
             asof: Annotated[str | None, typer.Option(help="Only this as-of date (default: the backtest period).")]
             = None) -> None:
    """Write the forecast table only (instrument, asof, step, target timestamp, mean/median/quantiles, prob_up)."""
    from kronos_quant.workflow import run_forecast

    res = run_forecast(opts.config(strategy), _date(asof), output=output, quiet=opts.quiet)
    typer.echo(f"{res.path}: {res.table.height} rows ({res.stats['forecasts']} forecasts, "
               f"{res.stats.get('cache_misses', res.stats['forecasts'])} computed)")


@command(app, shared=("sets", *LOGGING), set_example="portfolio.params={k: 5}")
def evaluate(opts: Options, run_dir: Annotated[Path, typer.Argument(help="A backtest report directory.")],
             output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the new report here "
                                                         "(default: in place).")] = None,
             trials: Trials = None) -> None:
    """Recompute signals, backtest, metrics and report from a run's saved forecasts (no model work)."""
    from kronos_quant.workflow import evaluate_run

    run = evaluate_run(run_dir, overrides=_with_trials(opts.sets, trials), output_dir=output)
    _print_summary(run, f"{run.config.name}: {run.config.model.id} (re-evaluated)")


Market = Annotated[str | None, typer.Option(
    help="Compare with a market's exchange calendar and trading days (us_equity, cn_a_share, crypto_24_7, "
         "custom); default: the calendar inferred from the data.")]


Columns = Annotated[list[str] | None, typer.Option(
    "--columns", help="Map a column of the file to a panel column, SOURCE=PANEL (repeatable or comma-separated), "
                      "e.g. --columns PERMNO=instrument (strategy file: data.columns).")]
Tz = Annotated[str | None, typer.Option(
    "--tz", help="The market's time zone (IANA), e.g. America/New_York; aware timestamps are converted to it "
                 "(strategy file: data.tz).")]
Encoding = Annotated[str | None, typer.Option(
    "--encoding", help="Text encoding of CSV files (default UTF-8), e.g. gb18030, cp1252 (strategy file: "
                       "data.encoding).")]


def _read_options(columns: list[str] | None, tz: str | None, encoding: str | None) -> dict[str, Any]:
    """The loader options of --columns, --tz and --encoding (as ``data.columns``, ``data.tz``, ``data.encoding``)."""
    mapping: dict[str, str] = {}
    for item in columns or []:
        for pair in item.split(","):
            source, sep, target = (part.strip() for part in pair.partition("="))
            if not (sep and source and target):
                raise ConfigError(f"--columns {item!r}: expected SOURCE=PANEL, e.g. --columns PERMNO=instrument")
            mapping[source] = target
    return {"columns": mapping or None, "tz": tz, "encoding": encoding}


@command(data_app, "validate")
def data_validate(opts: Options,
                  path: Annotated[Path, typer.Argument(help="CSV/Parquet file, directory of per-instrument files, or "
                                                      "builtin:NAME (e.g. builtin:sp500-2013-2017).")],
                  policy: Annotated[str, typer.Option(help="raise | drop | fill (what the report says it would do)")]
                  = "drop",
                  max_lines: Annotated[int, typer.Option(help="lines of the summary to print; 0 prints them all")]
                  = 60,
                  market: Market = None, columns: Columns = None, tz: Tz = None, encoding: Encoding = None) -> None:
    """List data problems (missing values, duplicates, bad OHLC, gaps...). Exit 3 if errors remain under raise."""
    from kronos_quant.data.validate import PanelValidationError
    from kronos_quant.workflow import validate_data

    if policy not in ("raise", "drop", "fill"):
        raise ConfigError(f"--policy must be raise, drop or fill, got {policy!r}")
    try:
        report = validate_data(path, policy=policy, market=market, **_read_options(columns, tz, encoding))
    except PanelValidationError as exc:
        typer.echo(exc.report.summary(max_lines=max_lines, show_all="--max-lines 0"))
        raise typer.Exit(EXIT_DATA) from None
    typer.echo(report.summary(max_lines=max_lines, show_all="--max-lines 0"))


@command(data_app, "inspect")
def data_inspect(opts: Options, path: Annotated[Path, typer.Argument(
        help="CSV/Parquet file, directory, or builtin:NAME (e.g. builtin:sp500-2013-2017).")],
                 market: Market = None, columns: Columns = None, tz: Tz = None, encoding: Encoding = None) -> None:
    """Summarise a data file: instruments, rows, date range, bar frequency, bars a year, missing values."""
    from kronos_quant.workflow import inspect_data

    typer.echo(inspect_data(path, market=market, **_read_options(columns, tz, encoding)).summary())


@command(models_app, "list")
def models_list(opts: Options) -> None:
    """Presets (kronos-mini/small/base/demo) and Kronos checkpoints in the local Hugging Face cache."""
    from rich.console import Console
    from rich.table import Table

    from kronos_quant.model.catalog import list_models

    table = Table(title="models")
    for col in ("name", "model", "tokenizer", "revision", "context", "offline", "description"):
        table.add_column(col)
    for row in list_models():
        table.add_row(row["name"], row["model"], row["tokenizer"], str(row["revision"])[:12],
                      "-" if row["context"] is None else str(row["context"]),
                      "yes" if row["available_offline"] else "no", row["description"])
    Console(width=160).print(table)


@command(app, shared=("sets", *LOGGING), set_example="windows.horizon=10")
def finetune(opts: Options,
             config: Annotated[Path, typer.Argument(help="Fine-tuning YAML, e.g. strategies/finetune_demo.yaml.")]
             ) -> None:
    """Fine-tune a published checkpoint (or train from scratch): tokenizer first, then predictor."""
    from kronos_quant.training import run_finetune

    result = run_finetune(config, overrides=opts.sets, quiet=opts.quiet)
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
