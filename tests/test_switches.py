"""``utils.switches.env_switch``: the one reading of the on/off/auto environment switches."""

from __future__ import annotations

import logging

import pytest

from kronos_quant.utils.switches import env_switch


@pytest.mark.parametrize(("value", "want"), [
    (None, "auto"), ("auto", "auto"), (" AUTO ", "auto"), ("0", "off"), ("false", "off"), ("No", "off"),
    ("off", "off"), ("1", "on"), ("TRUE", "on"), ("yes", "on"), ("on ", "on")])
def test_env_switch_spellings(monkeypatch, value, want):
    if value is None:
        monkeypatch.delenv("KRONOS_QUANT_TEST_SWITCH", raising=False)
    else:
        monkeypatch.setenv("KRONOS_QUANT_TEST_SWITCH", value)
    assert env_switch("KRONOS_QUANT_TEST_SWITCH") == want


def test_env_switch_names_an_unknown_value_and_reads_it_as_auto(monkeypatch, caplog):
    monkeypatch.setenv("KRONOS_QUANT_ONEDNN", "maybe")
    with caplog.at_level(logging.WARNING):
        assert env_switch("KRONOS_QUANT_ONEDNN") == "auto"
    assert "KRONOS_QUANT_ONEDNN='maybe' is not one of 0, 1, auto" in caplog.text
