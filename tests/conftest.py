"""Shared test fixtures: paths to ../shared, tiny on-the-fly checkpoints, and the one panel factory.

``make_panel`` (random business-day panels, instruments may start and end at different bars)
and ``panel_from_prices`` (given closes/opens) both return a standard panel as
``kronos_quant.data`` defines it (columns, dtypes, sorted), so every test exercises the real
contract. Tests import them (``from tests.conftest import make_panel``) or use the ``panel`` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

os.environ.setdefault("KRONOS_QUANT_QUIET", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURE = SHARED / "fixtures" / "kronos-reference"
DATA = SHARED / "data"

TINY_TOKENIZER = dict(d_in=6, d_model=32, n_heads=4, ff_dim=64, n_enc_layers=3, n_dec_layers=3, ffn_dropout_p=0.0,
                      attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=4, s2_bits=4, beta=0.05, gamma0=1.0,
                      gamma=1.1, zeta=0.05, group_size=4)
TINY_PREDICTOR = dict(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=4, ff_dim=64, ffn_dropout_p=0.0,
                      attn_dropout_p=0.0, resid_dropout_p=0.0, token_dropout_p=0.0, learn_te=True)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the ../shared fixtures/data are not beside this checkout")
    return path


@pytest.fixture(scope="session")
def tiny_models():
    """A random tiny (model, tokenizer) pair made on the fly (seeded)."""
    from kronos_quant import Kronos, KronosTokenizer

    torch.manual_seed(0)
    tok = KronosTokenizer(**TINY_TOKENIZER).eval()
    model = Kronos(**TINY_PREDICTOR).eval()
    return model, tok


@pytest.fixture(scope="session")
def reference_models():
    """The tiny-a reference checkpoints from ../shared (skips when absent)."""
    from kronos_quant import Kronos, KronosTokenizer

    fx = shared_path("fixtures", "kronos-reference", "tiny-a")
    return Kronos.from_pretrained(str(fx / "predictor")), KronosTokenizer.from_pretrained(str(fx / "tokenizer"))


@pytest.fixture(scope="session")
def a_share():
    """(bars (T, 6), time features (T, 5), timestamps) of the 5-minute A-share data."""
    import pandas as pd

    from kronos_quant.data.timefeatures import time_features

    df = pd.read_csv(shared_path("data", "cn_a_share_5min.csv"), parse_dates=["timestamps"])
    arr = df[["open", "high", "low", "close", "volume", "amount"]].to_numpy(np.float64)
    return arr, time_features(df["timestamps"]), df["timestamps"]


def _standard(frame: pl.DataFrame) -> pl.DataFrame:
    from kronos_quant.data import PANEL_SCHEMA, check_panel

    casts = {c: t for c, t in PANEL_SCHEMA.items() if c != "timestamp"}
    frame = frame.with_columns(pl.col("timestamp").dt.cast_time_unit("us"),
                               *(pl.col(c).cast(t) for c, t in casts.items()))
    return check_panel(frame.select(list(PANEL_SCHEMA)).sort(["instrument", "timestamp"]))


def make_panel(spans: int | Sequence[str] | Mapping[str, tuple[int, int]] = 3, *, n_days: int = 24, seed: int = 0,
               phi: float = 0.0, vol: float = 0.01, tz: str | None = None, start: str = "2024-01-01",
               hour: int = 16) -> pl.DataFrame:
    """A standard panel of business-day bars at ``hour``:00 (in ``tz`` when given).

    spans: a number of instruments (I0, I1, ...) or their names, each with all ``n_days`` bars, or
    name -> [first, last) index into the calendar. Close log returns follow
    r_t = phi * r_{t-1} + N(0, vol), independently per instrument; open/high/low scatter around it.
    """
    if isinstance(spans, int):
        spans = [f"I{i}" for i in range(spans)]
    if not isinstance(spans, Mapping):
        spans = {name: (0, n_days) for name in spans}
    days = pd.bdate_range(start, periods=n_days) + pd.Timedelta(hours=hour)
    if tz is not None:
        days = days.tz_localize(tz)
    rng = np.random.default_rng(seed)
    frames = []
    for name, (lo, hi) in spans.items():
        n = hi - lo
        eps = rng.normal(0.0, vol, n)
        r = np.empty(n)
        prev = 0.0
        for t in range(n):
            prev = phi * prev + eps[t]
            r[t] = prev
        close = 20.0 * np.exp(np.cumsum(r))
        open_ = close * np.exp(rng.normal(0, vol / 3, n))
        high = np.maximum(open_, close) * 1.004
        low = np.minimum(open_, close) * 0.996
        volume = rng.uniform(1e4, 2e4, n)
        frames.append(pl.DataFrame({"instrument": name, "timestamp": pl.Series(days[lo:hi]), "open": open_,
                                    "high": high, "low": low, "close": close, "volume": volume,
                                    "amount": volume * (open_ + high + low + close) / 4}))
    return _standard(pl.concat(frames))


def panel_from_prices(closes: Mapping[str, Sequence[float]], opens: Mapping[str, Sequence[float]] | None = None, *,
                      stamps: Sequence[pd.Timestamp] | None = None) -> pl.DataFrame:
    """A standard panel with exactly these closes (and opens, default the closes) per instrument.

    stamps: the bar timestamps (default: daily from 2024-01-01); high/low are the max/min of open
    and close, volume 1 and amount the close.
    """
    opens = opens or closes
    rows = []
    for inst, values in closes.items():
        days = stamps if stamps is not None else pd.date_range("2024-01-01", periods=len(values), freq="D")
        for t, o, c in zip(days, opens[inst], values):
            rows.append({"instrument": inst, "timestamp": pd.Timestamp(t), "open": float(o), "high": max(o, c),
                         "low": min(o, c), "close": float(c), "volume": 1.0, "amount": float(c)})
    return _standard(pl.DataFrame(rows))


@pytest.fixture()
def panel() -> pl.DataFrame:
    """Five instruments with 60 business days each (a standard panel)."""
    return make_panel(5, n_days=60, seed=1)
