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
