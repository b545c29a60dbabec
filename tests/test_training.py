"""Fine-tuning: config validation, windows and normalisation, losses, resume, DDP (1 process), demo model."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from kronos_quant.errors import ConfigError
from kronos_quant.predictor import KronosPredictor
from kronos_quant.predictor.inputs import normalize
from kronos_quant.schema import SamplingSpec
from kronos_quant.training import StepEvent, load_finetune_config, run_finetune
from kronos_quant.training.config import apply_overrides, period_bounds
from kronos_quant.training.trainer import lr_factor
from kronos_quant.training.windows import (
    normalize_window,
    series_from_panel,
    training_windows,
    validation_windows,
)

N_BARS = 160


@pytest.fixture(scope="module")
def panel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three instruments of 160 business days of a noisy random walk, long format, no amount column."""
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2020-01-01", periods=N_BARS)
    frames = []
    for name, price in [("AAA", 50.0), ("BBB", 120.0), ("CCC", 10.0)]:
        close = price * np.exp(np.cumsum(rng.normal(0, 0.02, N_BARS)))
        open_ = close * np.exp(rng.normal(0, 0.005, N_BARS))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, N_BARS))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, N_BARS))
        volume = rng.lognormal(13, 0.3, N_BARS)
        frames.append(pl.DataFrame({"instrument": name, "timestamp": pl.Series(days.to_numpy()).cast(pl.Date),
                                    "open": open_, "high": high,
                                    "low": low, "close": close, "volume": volume}))
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    pl.concat(frames).write_parquet(path)
    return path


def tiny_config(panel: Path, out: Path, **sections: dict) -> dict:
    cfg = {
        "name": "tiny", "seed": 3, "output_dir": str(out), "max_context": 32,
        "data": {"path": str(panel)},
        "split": {"train": {"end": "2020-05-29"}, "valid": {"start": "2020-06-01", "end": "2020-07-31"},
                  "test": [{"start": "2020-08-01", "end": "2020-12-31"}]},
        "windows": {"lookback": 16, "horizon": 4, "max_valid_windows": 24},
        "init": "scratch",
        "architecture": {
            "tokenizer": {"d_model": 16, "n_heads": 2, "ff_dim": 32, "n_enc_layers": 2, "n_dec_layers": 2,
                          "s1_bits": 4, "s2_bits": 4, "group_size": 4},
            "predictor": {"s1_bits": 4, "s2_bits": 4, "n_layers": 1, "d_model": 32, "n_heads": 2, "ff_dim": 64,
                          "ffn_dropout_p": 0.1, "resid_dropout_p": 0.1},
        },
        "tokenizer_training": {"steps": 6, "batch_size": 8, "lr": 0.01, "warmup_steps": 2, "eval_every": 3},
        "predictor_training": {"steps": 6, "batch_size": 8, "lr": 0.01, "warmup_steps": 2, "eval_every": 3},
        "runtime": {"device": "cpu", "num_threads": 1, "save_every": 2, "log_every": 100},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg[key], **value} if isinstance(cfg.get(key), dict) and isinstance(value, dict) else value
    return cfg


def weights(directory: Path) -> dict[str, torch.Tensor]:
    out = {}
    for key in ("tokenizer", "predictor"):
        out.update({f"{key}.{k}": v for k, v in load_file(str(directory / key / "model.safetensors")).items()})
    return out


# ----------------------------------------------------------------------------- config
def write_yaml(tmp_path: Path, cfg: dict, name: str = "ft.yaml") -> Path:
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_errors_name_file_and_key(tmp_path: Path, panel_path: Path) -> None:
    base = tiny_config(panel_path, tmp_path / "run")
    bad = dict(base, split={**base["split"], "valid": {"start": "2020-05-15", "end": "2020-07-31"}})
    with pytest.raises(ConfigError, match=r"overlap.yaml: split\.valid\.start.*overlap"):
        load_finetune_config(write_yaml(tmp_path, bad, "overlap.yaml"))
    bad = dict(base, split={**base["split"], "test": [{"start": "2020-07-01", "end": "2020-09-30"}]})
    with pytest.raises(ConfigError, match=r"split\.test\[0\].*overlaps split\.valid"):
        load_finetune_config(write_yaml(tmp_path, bad))
    bad = dict(base, split={**base["split"], "embargo_bars": 2})
    with pytest.raises(ConfigError, match=r"split\.embargo_bars.*smaller than windows\.horizon"):
        load_finetune_config(write_yaml(tmp_path, bad))
    bad = dict(base, predictor_training={**base["predictor_training"], "learning_rate": 0.1})
    with pytest.raises(ConfigError, match=r"unknown.yaml: predictor_training\.learning_rate: unknown key"):
        load_finetune_config(write_yaml(tmp_path, bad, "unknown.yaml"))
    bad = dict(base, architecture={**base["architecture"], "predictor": {**base["architecture"]["predictor"],
                                                                         "s1_bits": 5}})
    with pytest.raises(ConfigError, match=r"architecture\.predictor\.s1_bits"):
        load_finetune_config(bad)
    with pytest.raises(ConfigError, match=r"windows\.lookback: 64 exceeds max_context"):
        load_finetune_config(base, overrides=["windows.lookback=64"])
    ok = load_finetune_config(write_yaml(tmp_path, base))
    assert ok.embargo_bars == 4 and ok.windows.horizon == 4


def test_overrides_and_period_bounds() -> None:
    tree = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1, 2]", "d.e=null"])
    assert tree == {"a": {"b": 2, "c": [1, 2]}, "d": {"e": None}}
    assert apply_overrides({"a": 1}, {"b.c": 3}) == {"a": 1, "b": {"c": 3}}
    from kronos_quant.training.config import Period

    lo, hi = period_bounds(Period.model_validate({"start": "2020-01-02", "end": "2020-01-03"}))
    assert lo == pd.Timestamp("2020-01-02") and hi == pd.Timestamp("2020-01-03 23:59:59.999999")
    _, hi = period_bounds(Period.model_validate({"end": "2020-01-03T12:00:00"}))
    assert hi == pd.Timestamp("2020-01-03 12:00")


def test_lr_schedule_warmup_then_cosine() -> None:
    f = [lr_factor(s, warmup=4, total=20, min_ratio=0.1) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(f[4:], f[5:]))
    assert f[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 15 / 16)))


# ----------------------------------------------------------------------------- windows
def test_normalisation_never_sees_the_forecast_part() -> None:
    rng = np.random.default_rng(1)
    window = rng.lognormal(3, 0.2, size=(24, 6))
    z = normalize_window(window, 20, 5.0)
    changed = window.copy()
    changed[20:] *= 10.0  # a wild forecast part
    z2 = normalize_window(changed, 20, 5.0)
    np.testing.assert_array_equal(z[:20], z2[:20])
    np.testing.assert_array_equal(z[:20], normalize(window[:20], 5.0)[0])  # exactly as at inference
    assert not np.array_equal(z[20:], z2[20:])
    assert np.abs(z2).max() <= 5.0


def test_windows_respect_periods_and_embargo(panel_path: Path) -> None:
    from kronos_quant.data.panel import load_panel

    series = series_from_panel(load_panel(panel_path))
    train_end = pd.Timestamp("2020-05-29 23:59:59")
    tr = training_windows(series, length=20, start=None, end=train_end)
    last_rows = [series.times[s][t + 19] for s, t in zip(tr.series, tr.start)]
    assert max(last_rows) == np.datetime64("2020-05-29") and len(tr) == 3 * (108 - 19)
    va = validation_windows(series, lookback=16, horizon=4, start=pd.Timestamp("2020-06-01"),
                            end=pd.Timestamp("2020-07-31 23:59:59"), train_end=train_end, embargo_bars=6,
                            stride=4, max_windows=1000)
    assert va.n_scored == 4 and len(va) > 0
    for s, t in zip(va.series, va.start):
        n_train = int((series.times[s] <= np.datetime64("2020-05-29")).sum())
        scored = np.arange(t + 16, t + 20)
        assert scored.min() >= n_train + 6  # at least the embargo after the last training bar
        assert series.times[s][scored.max()] <= np.datetime64("2020-07-31")
    thinned = validation_windows(series, lookback=16, horizon=4, start=pd.Timestamp("2020-06-01"),
                                 end=pd.Timestamp("2020-07-31 23:59:59"), train_end=train_end, embargo_bars=6,
                                 stride=4, max_windows=5)
    assert len(thinned) == 5


def test_windows_never_hold_a_missing_value(panel_path: Path) -> None:
    """Training follows the data layer's rule: a missing value cuts windows (it is not dropped and
    its neighbours joined, which would make windows span a gap)."""
    from kronos_quant.data.panel import load_panel

    clean = load_panel(panel_path)
    bad_row = (pl.col("instrument") == "AAA") & (pl.int_range(pl.len()).over("instrument") == 50)
    holed = load_panel(panel_path, validate=False).with_columns(
        pl.when(bad_row).then(None).otherwise(pl.col("close")).alias("close"))
    train_end, kw = pd.Timestamp("2020-05-29 23:59:59"), dict(length=20, start=None)
    full = training_windows(series_from_panel(clean), end=train_end, **kw)
    series = series_from_panel(holed)
    cut = training_windows(series, end=train_end, **kw)
    assert len(full) - len(cut) == 20  # the 20 windows of AAA that would hold row 50
    va = validation_windows(series, lookback=96, horizon=4, start=pd.Timestamp("2020-06-01"),
                            end=pd.Timestamp("2020-07-31 23:59:59"), train_end=train_end, embargo_bars=0,
                            stride=1, max_windows=1000)
    for index in (cut, va):
        assert all(np.isfinite(series.values[s][t:t + index.length]).all() for s, t in zip(index.series, index.start))
    aaa = va.start[va.series == series.names.index("AAA")]
    assert len(aaa) and aaa.min() > 50  # AAA's validation windows start after the hole


# ----------------------------------------------------------------------------- training
def test_training_reduces_loss_and_checkpoint_forecasts(tmp_path: Path, panel_path: Path) -> None:
    cfg = tiny_config(panel_path, tmp_path / "run", export_dir=str(tmp_path / "export"),
                      tokenizer_training={"steps": 24, "eval_every": 4, "patience": 0},
                      predictor_training={"steps": 24, "eval_every": 4, "patience": 0})
    result = run_finetune(cfg, quiet=True)
    for phase in (result.tokenizer, result.predictor):
        losses = [h["valid_loss"] for h in phase.history]
        assert len(losses) == 6 and min(losses[1:]) < losses[0], losses
        assert phase.best_valid == min(losses)
    pred = KronosPredictor.from_pretrained(str(result.best_dir), max_context=32)
    rng = np.random.default_rng(5)
    series = [rng.lognormal(3, 0.1, size=(n, 6)) for n in (20, 40)]
    stamps = [np.zeros((len(s), 5), dtype=np.int64) for s in series]
    future = [np.zeros((4, 5), dtype=np.int64)] * 2
    out = pred.forecast_arrays(series, stamps, future, horizon=4, sampling=SamplingSpec(samples=3))
    assert out.paths.shape == (2, 3, 4, 6) and np.isfinite(out.paths).all()
    card = result.card
    assert card["data"]["fingerprint"] and card["periods"]["embargo_bars"] == 4
    assert card["models"]["predictor"]["n_parameters"] > 0 and card["training"]["predictor"]["steps_done"] == 24
    for d in (result.best_dir, result.last_dir, tmp_path / "export"):
        assert (d / "MODEL_CARD.md").is_file() and (d / "card.json").is_file()
    assert weights(tmp_path / "export").keys() == weights(result.best_dir).keys()

    # fine-tune that checkpoint: keep its tokenizer (steps: 0), train the predictor a little
    src = result.best_dir
    tuned = run_finetune(tiny_config(panel_path, tmp_path / "tuned", architecture=None,
                                     init={"tokenizer": str(src / "tokenizer"), "predictor": str(src / "predictor")},
                                     tokenizer_training={"steps": 0, "warmup_steps": 0},
                                     predictor_training={"steps": 2, "warmup_steps": 0, "eval_every": 2}), quiet=True)
    before, after = weights(src), weights(tuned.best_dir)
    assert tuned.tokenizer.skipped and tuned.card["init"]["predictor"] == str(src / "predictor")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("tokenizer."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("predictor."))


class Interrupt(Exception):
    pass


def test_resume_after_interruption_reaches_the_same_weights(tmp_path: Path, panel_path: Path) -> None:
    full = run_finetune(tiny_config(panel_path, tmp_path / "full"), quiet=True)

    def crash_at(phase: str, step: int):
        def callback(event: StepEvent) -> None:
            if event.phase == phase and event.step == step:
                raise Interrupt(f"simulated crash at {phase} step {step}")
        return callback

    cfg = tiny_config(panel_path, tmp_path / "resumed")
    with pytest.raises(Interrupt):
        run_finetune(cfg, quiet=True, callback=crash_at("tokenizer", 3))
    with pytest.raises(Interrupt):
        run_finetune(cfg, quiet=True, callback=crash_at("predictor", 5))
    resumed = run_finetune(cfg, quiet=True)
    assert resumed.tokenizer.steps_done == 6 and resumed.predictor.resumed_from_step == 4
    for tag in ("best", "last"):
        a, b = weights(full.output_dir / tag), weights(resumed.output_dir / tag)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{tag}/{k}")
    assert [h["valid_loss"] for h in full.predictor.history] == [h["valid_loss"] for h in resumed.predictor.history]
    with pytest.raises(ConfigError, match="different config"):
        run_finetune(cfg, quiet=True, overrides={"predictor_training.lr": 0.02})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_single_process_gloo_matches_plain_run(tmp_path: Path, panel_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    few = {"tokenizer_training": {"steps": 2, "eval_every": 2}, "predictor_training": {"steps": 2, "eval_every": 2}}
    plain = run_finetune(tiny_config(panel_path, tmp_path / "plain", **few), quiet=True)
    for key, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(key, value)
    ddp = run_finetune(tiny_config(panel_path, tmp_path / "ddp", **few), quiet=True)
    assert not dist.is_initialized()  # the run tore its process group down
    a, b = weights(plain.best_dir), weights(ddp.best_dir)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-6)
    assert ddp.card["environment"]["world_size"] == 1


# ----------------------------------------------------------------------------- demo model
def test_bundled_demo_model_forecasts_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pred = KronosPredictor.from_pretrained("kronos-demo")
    assert pred.max_context == 261  # the 256 + 5 bar windows it was trained on
    rng = np.random.default_rng(2)
    days = pd.bdate_range("2017-01-02", periods=60)
    from kronos_quant.data.timefeatures import time_features

    series, past, fut = [], [], []
    for n in (30, 60):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        bars = np.stack([close, close * 1.01, close * 0.99, close, np.full(n, 1e6), close * 1e6], axis=1)
        series.append(bars)
        past.append(time_features(days[:n]))
        fut.append(time_features(pd.bdate_range(days[n - 1] + pd.Timedelta(days=1), periods=5)))
    out = pred.forecast_arrays(series, past, fut, horizon=5, sampling=SamplingSpec(samples=4, seed=1))
    assert out.paths.shape == (2, 4, 5, 6) and np.isfinite(out.paths).all()
    assert np.all(np.abs(out.paths[..., 3] / out.last_close[:, None, None] - 1) < 0.5)  # sane price scale
    card = Path(__file__).resolve().parents[1] / "kronos_quant" / "builtin" / "kronos-demo" / "card.json"
    assert card.is_file()
