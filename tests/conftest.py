"""Shared test fixtures: paths to ../shared, tiny on-the-fly checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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
