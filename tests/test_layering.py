"""The package's data flows one way: each layer names the kronos_quant layers it may import.

An allow-list: a new layer (a new top-level module or package) fails until it is added here with
what it may import, so nothing goes unchecked. The allowed graph itself must have no cycle, and no
module imports the package root (``kronos_quant/__init__`` imports lazily; ``_version`` holds the
version).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "kronos_quant"

_BASE = {"_version", "errors", "schema", "utils"}
# layer -> the other kronos_quant layers it may import (its own modules are always allowed)
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "errors": set(),
    "utils": {"errors"},
    "schema": {"errors"},
    "registry": {"errors"},
    "markets": {"errors"},
    "config_market": {"errors", "registry", "markets", "data"},
    "config": {"errors", "schema", "registry", "utils", "config_market"},
    "trading_rules": _BASE,
    "data": _BASE,
    "model": _BASE,
    "baselines": _BASE,
    "predictor": _BASE | {"data", "model"},
    "engine": _BASE | {"data"},
    "forecasters": _BASE | {"baselines", "model", "predictor"},
    "distributed": _BASE | {"data", "engine", "forecasters"},
    "training": _BASE | {"config", "data", "model", "predictor"},
    "signals": _BASE | {"registry", "data"},
    "portfolio": _BASE | {"registry"},
    "backtest": _BASE | {"data", "trading_rules"},
    "metrics": _BASE,
    "calibration": _BASE | {"metrics"},
    "report": _BASE | {"data", "metrics", "calibration", "backtest", "signals"},
    "run_checks": _BASE | {"config", "data"},
    "market_context": _BASE | {"config", "config_market", "markets", "data"},
    "evaluation": _BASE | {"registry", "config", "data", "signals", "portfolio", "backtest", "metrics", "calibration",
                           "report", "market_context"},
    "workflow": _BASE | {"registry", "config", "config_market", "markets", "market_context", "data", "model",
                         "baselines", "predictor", "engine", "forecasters", "distributed", "signals", "portfolio",
                         "backtest", "metrics", "calibration", "report", "evaluation", "run_checks"},
    "cli": _BASE | {"config", "data", "model", "workflow", "report", "training"},
    "__init__": {"_version", "model", "predictor", "schema"},
}
ONLY = {"vectorbt": {"backtest"}, "matplotlib": {"report"}}
MODULES = sorted(PKG.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_flow_one_way(path: Path):
    layer = _layer(path)
    assert layer in ALLOWED, f"new layer {layer!r}: add it to ALLOWED in {__file__} with the layers it may import"
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "kronos_quant":
            assert len(parts) > 1, f"{path.relative_to(PKG)} imports the package root; import the module itself"
            assert parts[1] == layer or parts[1] in ALLOWED[layer], \
                f"{path.relative_to(PKG)} imports {name}, but layer {layer!r} may import only {sorted(ALLOWED[layer])}"
        if parts[0] in ONLY:
            assert layer in ONLY[parts[0]], f"{path.relative_to(PKG)} imports {parts[0]}"


def test_allowed_layers_form_no_cycle():
    state: dict[str, str] = {}

    def visit(layer: str, trail: tuple[str, ...]) -> None:
        if state.get(layer) == "done":
            return
        assert state.get(layer) != "open", f"import cycle: {' -> '.join((*trail, layer))}"
        state[layer] = "open"
        for dep in ALLOWED[layer]:
            assert dep in ALLOWED, f"{layer} may import {dep!r}, which is not a layer"
            visit(dep, (*trail, layer))
        state[layer] = "done"

    for layer in ALLOWED:
        visit(layer, ())


def test_every_declared_layer_exists():
    layers = {_layer(p) for p in MODULES}
    assert set(ALLOWED) <= layers, f"stale entries: {sorted(set(ALLOWED) - layers)}"
