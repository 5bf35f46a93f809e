"""Every notebook in notebooks/ runs top to bottom, offline, in a fresh kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_grokking.ipynb",
        "02_induction_heads.ipynb",
        "03_lottery_tickets.ipynb",
        "04_repeated_data.ipynb",
        "05_bring_your_own_model.ipynb",
        "06_llc.ipynb",
        "07_double_descent.ipynb",
    } <= names
