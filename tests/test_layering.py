"""The package's data flows one way: a module imports only from layers to its left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "kronos_quant"

# layer -> the kronos_quant layers it must never import
FORBIDDEN = {
    "data": ["model", "predictor", "engine", "baselines", "forecasters", "signals", "portfolio", "backtest", "metrics",
             "calibration", "report", "workflow", "cli", "training", "distributed"],
    "model": ["data", "predictor", "engine", "signals", "portfolio", "backtest", "report", "workflow", "cli"],
    "predictor": ["engine", "signals", "portfolio", "backtest", "report", "workflow", "cli", "training"],
    "engine": ["predictor", "model", "signals", "portfolio", "backtest", "report", "workflow", "cli"],
    "baselines": ["predictor", "model", "engine", "signals", "backtest", "report", "workflow", "cli"],
    "signals": ["model", "predictor", "engine", "backtest", "report", "workflow", "cli"],
    "portfolio": ["model", "predictor", "engine", "backtest", "report", "workflow", "cli"],
    "backtest": ["model", "predictor", "engine", "report", "workflow", "cli"],
    "metrics": ["model", "predictor", "engine", "signals", "portfolio", "backtest", "report", "workflow", "cli"],
    "calibration": ["model", "predictor", "engine", "signals", "portfolio", "backtest", "report", "workflow", "cli"],
    "report": ["model", "predictor", "engine", "workflow", "cli"],
    "workflow": ["cli"],
}
ONLY = {"vectorbt": {"backtest"}, "matplotlib": {"report"}}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_flow_one_way(path: Path):
    layer = _layer(path)
    imported = _imports(path)
    for name in imported:
        parts = name.split(".")
        if parts[0] == "kronos_quant" and len(parts) > 1:
            assert parts[1] not in FORBIDDEN.get(layer, []), f"{path.relative_to(PKG)} imports {name}"
        if parts[0] in ONLY:
            assert layer in ONLY[parts[0]], f"{path.relative_to(PKG)} imports {parts[0]}"
