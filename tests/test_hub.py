"""Checkpoint loading/saving: local round-trip, presets, offline and corrupt-file errors."""

from __future__ import annotations

import json
import socket

import pytest
import torch

from kronos_quant import Kronos, KronosTokenizer
from kronos_quant.errors import CheckpointError, ConfigError, ModelUnavailableError
from kronos_quant.model import PRESETS, get_preset
from tests.conftest import TINY_PREDICTOR


@pytest.fixture()
def no_network(monkeypatch):
    def guard(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", guard)
    monkeypatch.setattr(socket.socket, "connect", guard)


def test_save_load_round_trip(tmp_path, tiny_models, no_network):
    model, tok = tiny_models
    model.save_pretrained(tmp_path / "p")
    tok.save_pretrained(tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["config.json", "model.safetensors"]
    m2 = Kronos.from_pretrained(tmp_path / "p")
    t2 = KronosTokenizer.from_pretrained(str(tmp_path / "t"))
    for a, b in [(model, m2), (tok, t2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.loads((tmp_path / "p" / "config.json").read_text()) == TINY_PREDICTOR


def test_unknown_and_missing_config_keys(tmp_path, tiny_models):
    model, _ = tiny_models
    model.save_pretrained(tmp_path)
    cfg = dict(TINY_PREDICTOR, n_layerz=3)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unknown key.*n_layerz"):
        Kronos.from_pretrained(tmp_path)
    cfg = {k: v for k, v in TINY_PREDICTOR.items() if k != "d_model"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="missing key.*d_model"):
        Kronos.from_pretrained(tmp_path)


def test_wrong_tensor_shape_and_name(tmp_path, tiny_models):
    from safetensors.torch import load_file, save_file

    model, _ = tiny_models
    model.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["norm.weight"] = torch.ones(7)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"norm\.weight.*\(7,\)"):
        Kronos.from_pretrained(tmp_path)
    state["norm.weight"] = torch.ones(32)
    state["norm.wieght"] = state.pop("head.proj_s1.bias")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing tensors \['head\.proj_s1\.bias'\].*norm\.wieght"):
        Kronos.from_pretrained(tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or corrupt"),
    (lambda p: p.write_bytes(b"garbage"), "truncated or corrupt"),
    (lambda p: p.unlink(), "no model.safetensors"),
], ids=["truncated", "garbage", "missing"])
def test_damaged_weights_file_gives_clear_error(tmp_path, tiny_models, damage, message):
    model, _ = tiny_models
    model.save_pretrained(tmp_path)
    damage(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=message):
        Kronos.from_pretrained(tmp_path)


def test_legacy_bin_uses_weights_only(tmp_path, tiny_models):
    model, _ = tiny_models
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = Kronos.from_pretrained(tmp_path)
    assert torch.equal(loaded.norm.weight, model.norm.weight)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="could not be read safely"):
        Kronos.from_pretrained(tmp_path)


def test_offline_hub_error_names_model_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        Kronos.from_pretrained("NeoQuasar/Kronos-small", cache_dir=tmp_path)
    msg = str(info.value)
    assert "NeoQuasar/Kronos-small" in msg and "HF_HUB_OFFLINE" in msg and "local directory" in msg
    assert "901c26c1332695a2a8f243eb2f37243a37bea320" not in msg  # no revision was pinned for a raw id


def test_preset_resolves_pinned_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="NeoQuasar/Kronos-small.*901c26c"):
        Kronos.from_pretrained("kronos-small", cache_dir=tmp_path)
    with pytest.raises(ModelUnavailableError, match="NeoQuasar/Kronos-Tokenizer-base.*0e01173"):
        KronosTokenizer.from_pretrained("kronos-small", cache_dir=tmp_path)


def test_presets_table():
    assert {"kronos-mini", "kronos-small", "kronos-base"} <= set(PRESETS)
    assert get_preset("kronos-small").max_context == 512
    assert get_preset("Kronos-Mini").tokenizer_id == "NeoQuasar/Kronos-Tokenizer-2k"
    assert get_preset("kronos-mini").max_context == 2048


def test_not_a_directory_or_hub_id(tmp_path):
    with pytest.raises(ModelUnavailableError, match="neither an existing directory nor a Hub id"):
        Kronos.from_pretrained(str(tmp_path / "missing" / "dir"))


# ----------------------------------------------------------------------------- one resolution


def test_model_spec_resolves_presets_directories_and_hub_ids(tmp_path, tiny_models):
    from kronos_quant.model.spec import ModelSpec

    small = ModelSpec.resolve("kronos-small")
    assert (small.model_id, small.tokenizer_id, small.max_context) == (
        "NeoQuasar/Kronos-small", "NeoQuasar/Kronos-Tokenizer-base", 512)
    assert small.revision.startswith("901c26c") and small.tokenizer_revision.startswith("0e01173")
    other_tok = ModelSpec.resolve("kronos-small", tokenizer="me/tok", max_context=256, dtype="bf16")
    assert (other_tok.tokenizer_id, other_tok.tokenizer_revision, other_tok.max_context, other_tok.dtype) == (
        "me/tok", None, 256, "bfloat16")
    model, tok = tiny_models
    model.save_pretrained(tmp_path / "predictor")
    tok.save_pretrained(tmp_path / "tokenizer")
    pair = ModelSpec.resolve(tmp_path)
    assert pair.model_id == str(tmp_path / "predictor") and pair.tokenizer_id == str(tmp_path / "tokenizer")
    assert ModelSpec.resolve("me/model", tokenizer="me/tok").model_id == "me/model"
    loaded, _ = pair.load_modules()
    assert torch.equal(loaded.norm.weight, model.norm.weight)
    with pytest.raises(ConfigError, match="dtype"):
        ModelSpec.resolve("kronos-small", dtype="int8")


def test_a_name_without_tokenizer_is_one_error_on_both_routes():
    from kronos_quant.forecasters import build_forecaster
    from kronos_quant.predictor import KronosPredictor

    for route in (KronosPredictor.from_pretrained, build_forecaster):
        with pytest.raises(ConfigError, match="not a preset.*NeoQuasar/Kronos-Tokenizer-base"):
            route("someone/Kronos-finetuned")


def test_identity_needs_the_files_but_no_weights_loaded(tmp_path, monkeypatch):
    from kronos_quant.forecasters import build_forecaster
    from kronos_quant.model import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lazy = build_forecaster("nobody/Kronos-missing", tokenizer="nobody/Kronos-Tokenizer-missing", device="cpu")
    with pytest.raises(ModelUnavailableError, match="nobody/Kronos-missing"):
        lazy.identity  # noqa: B018 -- the files are not cached here: the same error as loading
    monkeypatch.setattr(hub, "_read_weights", lambda *a, **k: pytest.fail("weights were read"))
    demo = build_forecaster("kronos-demo")
    assert demo.identity["model_id"] == "builtin:kronos-demo/predictor" and not demo.loaded
