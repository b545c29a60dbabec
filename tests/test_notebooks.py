"""Execute the notebooks on tiny settings (they call the same public API as the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    monkeypatch.setenv("KQ_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("KRONOS_QUANT_QUIET", "1")
    work = tmp_path / "notebooks"
    work.mkdir()
    (tmp_path / "strategies").symlink_to(REPO / "strategies")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    os.environ["KQ_NOTEBOOK_TINY"] = "1"
    client.execute()
