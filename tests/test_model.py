"""Kronos modules against the reference fixtures and the real checkpoints' manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kronos_quant import Kronos, KronosTokenizer
from tests.conftest import TINY_PREDICTOR, shared_path


@pytest.fixture(scope="module")
def modules_npz():
    return np.load(shared_path("fixtures", "kronos-reference", "tiny-a", "modules.npz"))


def test_tokenizer_matches_reference(reference_models, modules_npz):
    _, tok = reference_models
    ref = modules_npz
    x = torch.from_numpy(ref["x_norm"])[None]
    with torch.no_grad():
        s1, s2 = tok.encode(x, half=True)
        assert np.array_equal(s1.numpy(), ref["s1_ids"]) and np.array_equal(s2.numpy(), ref["s2_ids"])
        assert np.array_equal(tok.encode(x, half=False).numpy(), ref["full_ids"])
        np.testing.assert_allclose(tok.decode([s1, s2], half=True).numpy(), ref["decode_half"], rtol=1e-4, atol=1e-5)
        full = torch.from_numpy(ref["full_ids"])
        np.testing.assert_allclose(tok.decode(full, half=False).numpy(), ref["decode_full"], rtol=1e-4, atol=1e-5)


def test_predictor_matches_reference(reference_models, modules_npz):
    model, _ = reference_models
    ref = modules_npz
    s1, s2 = torch.from_numpy(ref["s1_ids"]), torch.from_numpy(ref["s2_ids"])
    stamp = torch.from_numpy(ref["stamp"])[None]
    close = dict(rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        logits, ctx = model.decode_s1(s1, s2, stamp)
        np.testing.assert_allclose(logits.numpy(), ref["s1_logits"], **close)
        np.testing.assert_allclose(ctx.numpy(), ref["context"], **close)
        np.testing.assert_allclose(model.decode_s2(ctx, logits.argmax(-1)).numpy(), ref["s2_logits_argmax_s1"], **close)
        last = model.decode_s2(ctx, logits[:, -1, :].argmax(-1, keepdim=True))
        np.testing.assert_allclose(last.numpy(), ref["s2_logits_last"], **close)
        t1, t2 = model(s1, s2, stamp, use_teacher_forcing=True, s1_targets=s1)
        np.testing.assert_allclose(t1.numpy(), ref["tf_s1_logits"], **close)
        np.testing.assert_allclose(t2.numpy(), ref["tf_s2_logits"], **close)


@pytest.mark.parametrize("name,cls", [("Kronos-Tokenizer-base", KronosTokenizer), ("Kronos-small", Kronos),
                                      ("Kronos-base", Kronos)])
def test_manifest_keys_shapes_and_counts(name, cls):
    manifest = json.loads(shared_path("fixtures", "kronos-reference", "checkpoint_manifest.json").read_text())[name]
    expected_counts = {"Kronos-Tokenizer-base": 3_958_042, "Kronos-small": 24_741_376, "Kronos-base": 102_310_592}
    with torch.device("meta"):
        model = cls(**manifest["config"])
    state = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert state == {k: list(v) for k, v in manifest["state_dict"].items()}
    assert sum(p.numel() for p in model.parameters()) == manifest["n_params"] == expected_counts[name]


def test_fixed_temporal_embedding_is_a_buffer_like_weight():
    cfg = dict(TINY_PREDICTOR, learn_te=False)
    model = Kronos(**cfg)
    w = model.time_emb.hour_embed.emb.weight
    assert not w.requires_grad
    assert "time_emb.hour_embed.emb.weight" in model.state_dict()
    assert torch.allclose(w[0, 1::2], torch.ones_like(w[0, 1::2]))  # cos(0) on odd columns


def test_padding_mask_matches_unpadded_forward(tiny_models):
    model, _ = tiny_models
    g = torch.Generator().manual_seed(1)
    s1 = torch.randint(0, 16, (2, 10), generator=g)
    s2 = torch.randint(0, 16, (2, 10), generator=g)
    stamp = torch.zeros(2, 10, 5, dtype=torch.long)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False  # right padding in the second row
    with torch.no_grad():
        full, _ = model.decode_s1(s1, s2, stamp)
        masked, _ = model.decode_s1(s1, s2, stamp, padding_mask=mask)
    torch.testing.assert_close(full[:, :7], masked[:, :7], rtol=1e-5, atol=1e-5)


def test_tokenizer_training_forward_shapes(tiny_models):
    _, tok = tiny_models
    tok.train()
    try:
        x = torch.randn(3, 12, 6)
        (rec_pre, rec), bsq_loss, quantized, idx = tok(x)
        assert rec_pre.shape == rec.shape == (3, 12, 6)
        assert quantized.shape == (3, 12, 8) and idx.shape == (3, 12)
        assert torch.isfinite(bsq_loss)
        (rec.pow(2).mean() + bsq_loss).backward()
        assert tok.embed.weight.grad is not None
    finally:
        tok.zero_grad()
        tok.eval()
