"""Strategy config: schema errors name file/key, safe YAML, --set overrides."""

from __future__ import annotations

import pytest

from kronos_quant.config import StrategyConfig, apply_overrides, load_config, parse_override
from kronos_quant.errors import ConfigError
from tests.conftest import REPO


def _write(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_defaults_and_repo_strategies_load():
    assert isinstance(load_config(None), StrategyConfig)
    for path in sorted((REPO / "strategies").glob("*.yaml")):
        if path.name.startswith("finetune"):
            continue
        cfg = load_config(path)
        assert cfg.name


def test_unknown_key_suggests(tmp_path):
    p = _write(tmp_path, "forecast:\n  horizn: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: unknown key 'forecast\.horizn'; did you mean 'horizon'\?"):
        load_config(p)


def test_bad_value_names_key_path(tmp_path):
    p = _write(tmp_path, "forecast:\n  horizon: 0\ncosts:\n  fees: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert "forecast.horizon" in msg and "greater than or equal to 1" in msg and "costs.fees" in msg
    assert str(p) in msg


def test_yaml_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    p = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    assert not marker.exists()


def test_strategy_and_finetune_files_are_read_the_same_way(tmp_path):
    """One reader (utils.yaml_file): the line of a YAML error, non-UTF-8 bytes and a non-mapping top
    level are ConfigErrors naming the file, for strategy and finetune configs alike."""
    from kronos_quant.training.config import load_finetune_config

    bad = _write(tmp_path, "forecast:\n  horizon: [3\n")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    for load in (load_config, load_finetune_config):
        with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
            load(bad)
        with pytest.raises(ConfigError, match="latin.yaml: not UTF-8 text"):
            load(latin)
        with pytest.raises(ConfigError, match="list.yaml: expected a mapping of keys at the top level, got list"):
            load(listing)
        with pytest.raises(ConfigError, match="nope.yaml: .* not found"):
            load(tmp_path / "nope.yaml")


def test_set_overrides(tmp_path):
    p = _write(tmp_path, "forecast:\n  horizon: 3\n")
    cfg = load_config(p, overrides=["forecast.horizon=7", "model.id=baseline:linear", "forecast.rebalance=[2016-01-04]",
                                    "portfolio.params={k: 3}"])
    assert cfg.forecast.horizon == 7 and cfg.model.id == "baseline:linear"
    assert str(cfg.forecast.rebalance[0]) == "2016-01-04" and cfg.portfolio.params == {"k": 3}
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("forecast.horizon")
    with pytest.raises(ConfigError, match="unknown key 'forecast.horizonn'"):
        load_config(p, overrides=["forecast.horizonn=1"])
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


def test_missing_file_and_file_source(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    p = _write(tmp_path, "data:\n  source: file\n")
    with pytest.raises(ConfigError, match="data.path"):
        load_config(p)


def test_override_through_a_value_is_refused():
    with pytest.raises(ConfigError, match=r"forecast\.horizon\.x: forecast\.horizon is not a mapping"):
        apply_overrides({"forecast": {"horizon": 5}}, ["forecast.horizon.x=1"])
    assert apply_overrides({"a": 1}, {"b.c": 3}) == {"a": 1, "b": {"c": 3}}


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("portfolio:\n  params: {kk: 3}\n",
     r"s\.yaml: portfolio\.params\.kk: portfolio 'topk' has no parameter 'kk'; did you mean 'k'\? \(it takes k\)"),
    ("portfolio:\n  params: {k: two}\n", r"portfolio\.params\.k: Input should be a valid integer.*\(got 'two'\)"),
    ("portfolio:\n  params: {k: 0}\n", r"portfolio\.params\.k: Input should be greater than or equal to 1 \(got 0\)"),
    ("portfolio:\n  name: topk_dropout\n  params: {k: 3}\n", r"portfolio\.params\.n_drop: .*needs parameter 'n_drop'"),
    ("portfolio:\n  name: topk_dropot\n", r"portfolio\.name: unknown portfolio 'topk_dropot'; did you mean 'topk_dropout'\?"),
    ("portfolio:\n  params: {k: 3, cash_buffer: 0.1}\n", r"set portfolio\.cash_buffer beside params"),
    ("signal:\n  name: prob_upp\n", r"signal\.name: unknown signal 'prob_upp'; did you mean 'prob_up'\?"),
    ("signal:\n  params: {pth: median}\n", r"signal\.params\.pth: signal 'expected_return' has no parameter 'pth'; "
                                           r"did you mean 'path'\?"),
    ("signal:\n  params: {path: mode}\n", r"signal\.params\.path: Input should be 'mean' or 'median'"),
    ("signal:\n  params: {step: 9}\n", r"signal\.params\.step: step 9 is beyond forecast\.horizon=5"),
    ("signal:\n  transforms: [rank, zscor]\n", r"signal\.transforms: unknown transform 'zscor'; did you mean 'zscore'\?"),
    ("baseline:\n  params: {lookbak: 10}\n", r"baseline\.params\.lookbak: signal 'momentum' has no parameter 'lookbak'"),
    ("forecast:\n  rebalance: 0\n", r"forecast\.rebalance: must be a number of bars >= 1"),
    ("model:\n  device: cdua\n", r"model\.device: unknown device 'cdua'; did you mean 'cuda'\? Use auto, cpu"),
    ("name: ../../x\n", r"name: '\.\./\.\./x' cannot be used in file names"),
    ("name: runs/x\n", r"cannot be used in file names"),
])
def test_names_and_params_are_checked_at_load(tmp_path, yaml_text, message):
    """Issue 12: typos and bad values fail when the config is loaded (one line that says the fix)."""
    p = _write(tmp_path, yaml_text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(p)
    assert len(str(info.value).splitlines()) == 1


def test_params_are_coerced_and_defaults_follow_the_name(tmp_path):
    cfg = load_config(_write(tmp_path, "portfolio:\n  name: topk_dropout\n  params: {k: '4', n_drop: 1}\n"))
    assert cfg.portfolio.params == {"k": 4, "n_drop": 1}
    cfg = load_config(_write(tmp_path, "portfolio:\n  name: long_short\nbaseline:\n  name: prob_up\n"))
    assert cfg.portfolio.params == {} and cfg.baseline[0].params == {}  # no k / lookback for names that lack them
    cfg = load_config(None)
    assert cfg.portfolio.params == {"k": 5} and cfg.baseline[0].params == {"lookback": 20, "skip": 1}
    assert load_config(None, overrides=["model.device=cuda:1"]).model.device == "cuda:1"


def test_names_come_from_the_file_stem_made_safe(tmp_path):
    p = tmp_path / "my strategy (v2).yaml"
    p.write_text("forecast:\n  horizon: 3\n")
    assert load_config(p).name == "my_strategy_v2"
    from kronos_quant.config import StrategyConfig as Cfg
    with pytest.raises(ValueError, match="cannot be used in file names"):
        Cfg(name="a/b")


def test_a_notebook_run_fails_at_load_not_after_forecasting(tmp_path, monkeypatch):
    """run_backtest(load_config(...)) with a typo never reaches the data or the model."""
    from kronos_quant.workflow import backtest

    def boom(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(backtest, "load_strategy_data", boom)
    with pytest.raises(ConfigError, match="portfolio.params.kk"):
        backtest.run_backtest(load_config(None, overrides=["portfolio.params={kk: 3}"]))
