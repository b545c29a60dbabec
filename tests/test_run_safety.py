"""Issue 12, the workflow side: runs that used to succeed with wrong or surprising results.

evaluate --set keys the saved forecasts cannot honour, a look-back past the model's context,
instruments that vanish without a reason, published nightly files replaced silently, run
directories mixing two runs, and an as-of date before the data. Tiny data made in each test and
a model-free forecaster (the look-back check resolves kronos-demo's spec but loads no weights).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kronos_quant.config import load_config
from kronos_quant.errors import ConfigError, DataError
from kronos_quant.workflow import evaluate_run, run_backtest, run_forecast, run_signals
from tests.conftest import make_panel


@pytest.fixture()
def cfg(tmp_path):
    return load_config(None, overrides=[
        "name=tiny",
        "data.synthetic={n_instruments: 5, n_bars: 160, mode: planted, strength: 0.3, seed: 2}",
        "model.id=baseline:historical_drift", "forecast.horizon=3", "forecast.lookback=40", "forecast.samples=8",
        "forecast.rebalance=5", f"forecast.cache_dir={tmp_path / 'cache'}", "backtest.start=2015-05-01",
        "portfolio.params={k: 2}", f"output.dir={tmp_path / 'runs'}/{{name}}", "output.figures=false",
        f"output.signals_file={tmp_path / 'signals'}/{{name}}_{{asof}}.csv",
    ])


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- item 4: evaluate --set


@pytest.mark.parametrize("override", ["model.id=kronos-small", "forecast.horizon=5", "forecast={seed: 7}",
                                      "data.synthetic.seed=3", "universe.min_history=60", "backtest.start=2015-06-01",
                                      "model.device=cpu"])
def test_evaluate_refuses_keys_the_saved_forecasts_depend_on(cfg, override):
    run = run_backtest(cfg, quiet=True)
    before = _snapshot(run.output_dir)
    with pytest.raises(ConfigError, match=r"evaluate --set .*re-uses the saved forecasts.*kronos-quant backtest"):
        evaluate_run(run.output_dir, overrides=[override])
    assert _snapshot(run.output_dir) == before  # nothing was rewritten


def test_evaluate_accepts_what_it_can_apply(cfg, tmp_path):
    run = run_backtest(cfg, quiet=True)
    same = evaluate_run(run.output_dir, overrides=["forecast.horizon=3", "model.id=baseline:historical_drift"],
                        output_dir=tmp_path / "same")  # values the run already had
    assert same.metrics["ic"] == run.metrics["ic"]
    changed = evaluate_run(run.output_dir, overrides=["portfolio.params={k: 3}", "costs.fees=0.002",
                                                      "backtest.init_cash=5e5"], output_dir=tmp_path / "k3")
    assert changed.config.portfolio.params == {"k": 3} and changed.config.costs.fees == 0.002


# ----------------------------------------------------------------------------- item 5: look-back vs context


def test_a_lookback_past_the_models_context_is_refused_before_any_work(cfg, monkeypatch):
    from kronos_quant.forecasters import build_forecaster
    from kronos_quant.run_checks import check_lookback
    from kronos_quant.workflow import backtest, nightly

    def boom(*args, **kwargs):
        raise AssertionError("the data was loaded")

    for module in (backtest, nightly):  # where the workflows look it up
        monkeypatch.setattr(module, "load_strategy_data", boom)
    kronos = cfg.model_copy(update={"model": cfg.model.model_copy(update={"id": "kronos-demo"}),
                                    "forecast": cfg.forecast.model_copy(update={"lookback": 300})})
    message = (r"forecast.lookback 300 is longer than the context of model kronos-demo \(261 bars\), which would use "
               r"only the last 261; set forecast.lookback <= 261; 258 keeps the whole 3-bar forecast in context")
    for run in (lambda: run_backtest(kronos), lambda: run_signals(kronos, "2015-06-30"),
                lambda: run_forecast(kronos, None)):
        with pytest.raises(ConfigError, match=message):
            run()
    fits = kronos.model_copy(update={"forecast": cfg.forecast.model_copy(update={"lookback": 261})})
    check_lookback(fits, build_forecaster("kronos-demo"))
    check_lookback(kronos, build_forecaster("kronos-demo", max_context=512))  # a longer context is configurable
    check_lookback(cfg.model_copy(update={"forecast": kronos.forecast}), build_forecaster("baseline:random_walk"))


# ----------------------------------------------------------------------------- item 6: unscored instruments


def _universe_csv(path: Path) -> Path:
    panel = make_panel({"A": (0, 200), "B": (0, 200), "C": (0, 200), "SHORT": (180, 200), "STOPPED": (0, 150),
                        "JUNK": (0, 200)}, n_days=200, seed=3, hour=0)
    jump = (pl.col("instrument") == "JUNK") & (pl.int_range(pl.len()).over("instrument") >= 100)
    panel = panel.with_columns([pl.when(jump).then(pl.col(c) * 100).otherwise(pl.col(c)).alias(c)
                                for c in ("open", "high", "low", "close")])
    panel.write_csv(path)
    return path


def test_instruments_that_cannot_be_scored_are_listed_with_the_reason(cfg, tmp_path):
    csv = _universe_csv(tmp_path / "prices.csv")
    names = ["A", "B", "C", "SHORT", "STOPPED", "JUNK", "GHOST"]
    file_cfg = load_config(None, overrides=[
        *(f"{k}={v}" for k, v in {"name": "tiny", "model.id": "baseline:random_walk", "forecast.horizon": 3,
                                   "forecast.lookback": 40, "forecast.samples": 8, "forecast.rebalance": 5,
                                   "forecast.cache_dir": tmp_path / "cache", "backtest.start": "2024-04-01",
                                   "portfolio.params": "{k: 2}", "output.dir": tmp_path / "runs", "output.figures":
                                   "false", "output.signals_file": f"{tmp_path}/signals/{{name}}_{{asof}}.csv",
                                   "data.source": "file", "data.path": csv}.items()),
        "data.validation={policy: drop, exclude: [jumps]}", f"universe.instruments=[{', '.join(names)}]"])
    run = run_backtest(file_cfg, quiet=True)
    unscored = {u["instrument"]: u["reason"] for u in run.metrics["unscored"]}
    assert set(unscored) == {"GHOST", "JUNK", "SHORT"}
    assert unscored["GHOST"] == "not in the data, or every row was dropped by validation"
    assert unscored["JUNK"].startswith("excluded by validation (jumps")
    # SHORT has 20 bars; the last rebalance date (every 5 bars) sees 16 of them
    assert unscored["SHORT"] == "too little history: at most 16 clean bars up to an as-of date, min_history is 40"
    saved = json.loads((run.output_dir / "metrics.json").read_text())
    assert saved["unscored"] == run.metrics["unscored"]
    again = evaluate_run(run.output_dir, output_dir=tmp_path / "again")  # from the saved provenance
    assert again.metrics["unscored"] == run.metrics["unscored"]

    nightly = run_signals(file_cfg, "2024-09-27", quiet=True)
    prov = json.loads(nightly.path.with_suffix(".csv.json").read_text())["provenance"]
    listed = {u["instrument"]: u["reason"] for u in prov["unscored"]}
    assert set(listed) == {"GHOST", "JUNK", "SHORT", "STOPPED"} and sorted(nightly.table["instrument"]) == ["A", "B", "C"]
    last = pd.bdate_range("2024-01-01", periods=150)[-1].date()
    assert listed["STOPPED"] == f"no bar on the as-of date (its last bar is {last})"


# ----------------------------------------------------------------------------- item 8: published nightly files


def test_a_published_signals_file_changes_only_with_force_and_keeps_the_old_hash(cfg):
    # a signal that reads the sample paths, so another seed changes it (the baselines' expected return is exact)
    cfg = cfg.model_copy(update={"signal": cfg.signal.model_copy(update={"name": "risk_adjusted_return"})})
    first = run_signals(cfg, "2015-07-31", quiet=True)
    content, stat = first.path.read_bytes(), first.path.stat()
    prov_file = first.path.with_suffix(".csv.json")
    assert json.loads(prov_file.read_text())["provenance"]["sha256"] == hashlib.sha256(content).hexdigest()
    reseeded = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(update={"seed": 1})})
    with pytest.raises(ConfigError, match=r"tiny_2015-07-31.csv already holds other signals for 2015-07-31 "
                                          r"\(sha256 [0-9a-f]{12}\).*rerun with --force"):
        run_signals(reseeded, "2015-07-31", quiet=True)
    after = first.path.stat()
    assert first.path.read_bytes() == content and (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    forced = run_signals(reseeded, "2015-07-31", quiet=True, force=True)
    assert forced.written and forced.path.read_bytes() != content
    prov = json.loads(prov_file.read_text())["provenance"]
    assert prov["seed"] == 1 and prov["replaced"] == [{"sha256": hashlib.sha256(content).hexdigest()}]
    second = forced.path.read_bytes()
    again = run_signals(cfg.model_copy(update={"forecast": cfg.forecast.model_copy(update={"seed": 2})}),
                        "2015-07-31", quiet=True, force=True)
    chain = json.loads(prov_file.read_text())["provenance"]["replaced"]
    assert again.written and [c["sha256"] for c in chain] == [hashlib.sha256(b).hexdigest() for b in (second, content)]


# ----------------------------------------------------------------------------- run directory atomicity


def test_an_interrupted_report_leaves_the_run_directory_unchanged(cfg, monkeypatch):
    from kronos_quant.report import writer

    run = run_backtest(cfg, quiet=True)
    out = run.output_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert "metrics.json" in manifest["files"] and "forecasts.parquet" in manifest["files"]
    before = _snapshot(out)
    real = writer._write_parquet
    calls = []

    def interrupted(path, frame):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third table is written
        real(path, frame)

    monkeypatch.setattr(writer, "_write_parquet", interrupted)
    k3 = cfg.model_copy(update={"portfolio": cfg.portfolio.model_copy(update={"params": {"k": 3}})})
    with pytest.raises(KeyboardInterrupt):
        run_backtest(k3, quiet=True)
    assert len(calls) == 3 and _snapshot(out) == before  # complete and unchanged: no file of the new run
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no half-written directory left beside it
    monkeypatch.setattr(writer, "_write_parquet", real)
    changed = run_backtest(k3, quiet=True)
    assert (out / "metrics.json").read_bytes() != before["metrics.json"]
    assert json.loads((out / "metrics.json").read_text())["sharpe"] == pytest.approx(changed.metrics["sharpe"])


def test_a_new_run_keeps_foreign_files_but_not_the_old_runs_files(cfg, monkeypatch):
    from kronos_quant.utils import atomic

    run = run_backtest(cfg, quiet=True)
    out = run.output_dir
    forecast = run_forecast(cfg, "2015-07-31", quiet=True)  # written into the run directory
    assert forecast.path.parent == out
    (out / "notes.txt").write_text("mine")
    (out / "old_only.txt").write_text("the old run's")  # pretend the old run wrote it
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "files": manifest["files"] + ["old_only.txt"]}))
    for exchange in (True, False):  # the one-step swap, and the two-rename fallback
        if not exchange:
            monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        run_backtest(cfg, quiet=True)
        assert (out / "notes.txt").read_text() == "mine" and forecast.path.is_file()
        assert forecast.path.with_suffix(".parquet.json").is_file() and not (out / "old_only.txt").exists()
        assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]
    (out / "data").mkdir()
    with pytest.raises(ConfigError, match=r"holds directories that are not part of a run \(data\)"):
        run_backtest(cfg, quiet=True)
    (out / "data").rmdir()
    monkeypatch.chdir(out)
    with pytest.raises(ConfigError, match=r"^\. is the current directory or holds it; a run directory is replaced whole"):
        run_backtest(cfg.model_copy(update={"output": cfg.output.model_copy(update={"dir": "."})}), quiet=True)


def test_evaluate_in_place_swaps_the_directory(cfg):
    run = run_backtest(cfg, quiet=True)
    inode = os.stat(run.output_dir).st_ino
    changed = evaluate_run(run.output_dir, overrides=["portfolio.params={k: 3}"])
    assert changed.output_dir == run.output_dir and os.stat(run.output_dir).st_ino != inode
    saved = json.loads((run.output_dir / "provenance.json").read_text())
    assert saved["config"]["portfolio"]["params"] == {"k": 3}
    assert pl.read_parquet(run.output_dir / "forecasts.parquet").height == run.forecasts.height
    assert np.isfinite(changed.metrics["ic"])


# ----------------------------------------------------------------------------- as-of before the data


def test_an_asof_before_the_data_names_the_first_date(cfg, tmp_path):
    with pytest.raises(DataError, match=r"no data left after the filters .* the data runs from 2015-01-02 to 2015-08-"):
        run_signals(cfg, "2014-06-30", quiet=True)
    csv = _universe_csv(tmp_path / "prices.csv")
    file_cfg = load_config(None, overrides=["data.source=file", f"data.path={csv}", "model.id=baseline:random_walk",
                                            "data.validation=drop"])
    with pytest.raises(DataError, match=r"no rows left after filters .*the data runs from 2024-01-01 to 2024-10-04"):
        run_signals(file_cfg, "2023-06-30", quiet=True)


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path, monkeypatch, exchange):
    from kronos_quant.utils import atomic

    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "run"
    target.mkdir()
    (target / "a.txt").write_text("old a")
    (target / "keep.txt").write_text("kept")
    with pytest.raises(OSError), atomic.atomic_directory(target, keep=lambda n: n == "keep.txt") as new:
        (new / "a.txt").write_text("new a")
        raise OSError("disk full")
    assert _snapshot(target) == {"a.txt": b"old a", "keep.txt": b"kept"} and os.listdir(tmp_path) == ["run"]
    with atomic.atomic_directory(target, keep=lambda n: n == "keep.txt") as new:
        (new / "b.txt").write_text("b")
    assert _snapshot(target) == {"b.txt": b"b", "keep.txt": b"kept"} and os.listdir(tmp_path) == ["run"]
    (tmp_path / "latest").symlink_to(target)  # a link is followed: the directory it points to is replaced
    with atomic.atomic_directory(tmp_path / "latest") as new:
        (new / "c.txt").write_text("c")
    assert (tmp_path / "latest").is_symlink() and _snapshot(target) == {"c.txt": b"c"}
    assert sorted(os.listdir(tmp_path)) == ["latest", "run"]
