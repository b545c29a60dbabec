"""Progress off a terminal (issue 12): a nightly log gets an INFO line every interval with counts
and ETA; nothing when quiet; a bar (not log lines) on a terminal."""

from __future__ import annotations

import io
import logging

import pytest

from kronos_quant.utils import progress
from kronos_quant.utils.progress import LogProgress, make_progress


@pytest.fixture(autouse=True)
def _propagating(monkeypatch):
    """The CLI's logging setup (run by other tests) stops kronos_quant records at its own handler."""
    monkeypatch.setattr(logging.getLogger("kronos_quant"), "propagate", True)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_log_progress_writes_a_line_per_interval_with_counts_and_eta(caplog):
    clock = _Clock()
    caplog.set_level(logging.INFO, logger="kronos_quant.progress")
    with LogProgress(1000, "forecasts", unit="series", interval=60, clock=clock) as bar:
        for _ in range(10):  # 100 series every 20 s: a line every third update
            clock.now += 20
            bar.update(100)
    lines = [r.getMessage() for r in caplog.records if r.name == "kronos_quant.progress"]
    assert lines == ["forecasts: 300/1000 series (30%), 1m00s elapsed, ETA 2m20s",
                     "forecasts: 600/1000 series (60%), 2m00s elapsed, ETA 1m20s",
                     "forecasts: 900/1000 series (90%), 3m00s elapsed, ETA 20s",
                     "forecasts: 1000/1000 series done in 3m20s"]
    caplog.clear()
    with LogProgress(10, "quick", interval=60, clock=clock) as bar:  # done within a minute: no line at all
        bar.update(10)
    with pytest.raises(RuntimeError), LogProgress(10, "steps", interval=1, initial=4, clock=clock) as bar:
        clock.now += 2
        bar.update(2)  # 2 done in 2 s since resuming at 4: 4 left, 4 s
        raise RuntimeError
    assert [r.getMessage() for r in caplog.records if r.name == "kronos_quant.progress"] == ["steps: 6/10 it (60%), 2s elapsed, ETA 4s",
                                                        "steps: 6/10 it stopped in 2s"]


def test_make_progress_logs_off_a_terminal_and_is_silent_when_quiet(monkeypatch):
    monkeypatch.delenv("KRONOS_QUANT_QUIET", raising=False)
    monkeypatch.setattr(progress, "_QUIET", {"value": False})
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal (cron, a redirect)
    assert isinstance(make_progress(5, "x"), LogProgress)
    monkeypatch.setenv("KRONOS_QUANT_PROGRESS_SECONDS", "5")
    assert make_progress(5, "x").interval == 5.0
    quiet = make_progress(5, "x", quiet=True)
    assert not isinstance(quiet, LogProgress) and quiet.disable
    progress.set_quiet(True)  # --quiet
    assert not isinstance(make_progress(5, "x"), LogProgress)
    progress.set_quiet(False)

    class _Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", _Tty())
    bar = make_progress(5, "x")
    assert not isinstance(bar, LogProgress) and not bar.disable
    bar.close()


def test_a_rolling_run_off_a_terminal_logs_its_progress(monkeypatch, caplog, panel):
    from kronos_quant.baselines import RandomWalkForecaster
    from kronos_quant.engine import rolling_forecast

    monkeypatch.delenv("KRONOS_QUANT_QUIET", raising=False)
    monkeypatch.setattr(progress, "_QUIET", {"value": False})
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv("KRONOS_QUANT_PROGRESS_SECONDS", "0")  # a line at every batch
    caplog.set_level(logging.INFO, logger="kronos_quant.progress")
    rolling_forecast(panel, RandomWalkForecaster(), lookback=20, horizon=2, rebalance=10, batch_series=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "kronos_quant.progress"]
    assert lines[0].startswith("forecasts: 5/25 series (20%), ") and "ETA" in lines[0]
    assert len(lines) == 5 and lines[-1].startswith("forecasts: 25/25 series done in")
    caplog.clear()
    rolling_forecast(panel, RandomWalkForecaster(), lookback=20, horizon=2, rebalance=10, batch_series=5,
                     quiet=True)
    assert not [r for r in caplog.records if r.name == "kronos_quant.progress"]


class _SlowForecaster:
    """The random walk, taking ``seconds`` per call: one long batch, as a big model's."""

    def __init__(self, seconds: float) -> None:
        from kronos_quant.baselines import RandomWalkForecaster

        self.inner, self.seconds = RandomWalkForecaster(), seconds

    @property
    def identity(self) -> dict:
        return self.inner.identity

    def forecast_arrays(self, *args, **kwargs):
        import time

        time.sleep(self.seconds)
        return self.inner.forecast_arrays(*args, **kwargs)


def test_one_long_batch_off_a_terminal_gets_heartbeat_lines(monkeypatch, caplog, panel):
    """A run that is one batch (the common nightly case) still logs a line every interval while it runs."""
    from kronos_quant.engine import rolling_forecast

    monkeypatch.delenv("KRONOS_QUANT_QUIET", raising=False)
    monkeypatch.setattr(progress, "_QUIET", {"value": False})
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv("KRONOS_QUANT_PROGRESS_SECONDS", "0.05")
    caplog.set_level(logging.INFO, logger="kronos_quant.progress")
    rolling_forecast(panel, _SlowForecaster(0.6), lookback=20, horizon=2, rebalance=10, batch_series=256)
    lines = [r.getMessage() for r in caplog.records if r.name == "kronos_quant.progress"]
    assert len(lines) >= 3, lines  # ~12 intervals in the one batch
    assert all(line.startswith("forecasts: 0/25 series (0%), ") and line.endswith(" elapsed, no ETA yet")
               for line in lines[:-1])
    assert lines[-1].startswith("forecasts: 25/25 series done in")
    caplog.clear()
    rolling_forecast(panel, _SlowForecaster(0.3), lookback=20, horizon=2, rebalance=10, batch_series=256, quiet=True)
    assert not [r for r in caplog.records if r.name == "kronos_quant.progress"]


def test_heartbeat_reports_the_last_known_counts_and_stops_on_close(caplog):
    import time

    caplog.set_level(logging.INFO, logger="kronos_quant.progress")
    with LogProgress(10, "steps", interval=0.05) as bar:
        bar.update(4)
        time.sleep(0.3)
        assert bar._heartbeat is not None and bar._heartbeat.is_alive()
    assert bar._heartbeat is None
    lines = [r.getMessage() for r in caplog.records if r.name == "kronos_quant.progress"]
    assert lines[0].startswith("steps: 4/10 it (40%), ") and "ETA" in lines[0] and "no ETA" not in lines[0]
    assert lines[-1].startswith("steps: 4/10 it done in")
    n = len(lines)
    time.sleep(0.15)
    assert len([r for r in caplog.records if r.name == "kronos_quant.progress"]) == n  # nothing after close


def test_a_nightly_cli_run_off_a_terminal_logs_heartbeats_and_quiet_logs_none(monkeypatch, tmp_path):
    """`kronos-quant signals` into a log (no terminal): one slow batch still writes progress lines; --quiet none."""
    import time

    from typer.testing import CliRunner

    from kronos_quant.cli import app
    from kronos_quant.engine import executor

    slow = executor.forecast_batch

    def forecast_batch(*args, **kwargs):
        time.sleep(0.6)
        return slow(*args, **kwargs)

    monkeypatch.setattr(executor, "forecast_batch", forecast_batch)
    monkeypatch.delenv("KRONOS_QUANT_QUIET", raising=False)
    monkeypatch.setattr(progress, "_QUIET", {"value": False})
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(f"name: tiny\nforecast:\n  cache_dir: {tmp_path / 'cache'}\noutput:\n  dir: {tmp_path / 'run'}\n"
                        f"  signals_file: {tmp_path}/{{name}}_{{asof}}.csv\n")
    args = ["signals", str(strategy), "--asof", "2015-09-30", "--set", "model.id=baseline:linear", "--set",
            "data.synthetic={n_instruments: 8, n_bars: 200, seed: 1}", "--set", "forecast.lookback=60"]
    env = {"KRONOS_QUANT_PROGRESS_SECONDS": "0.1"}
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0, res.output
    beats = [line for line in res.output.splitlines() if "kronos_quant.progress: forecasts: 0/8 series (0%)" in line]
    assert len(beats) >= 2 and all(line.endswith("elapsed, no ETA yet") for line in beats), res.output
    assert "kronos_quant.progress: forecasts: 8/8 series done in" in res.output
    res = CliRunner().invoke(app, [*args, "--seed", "1", "--force", "--quiet"], env=env)
    assert res.exit_code == 0 and "kronos_quant.progress" not in res.output, res.output
