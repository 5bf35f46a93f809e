"""Test set-up: jaxtyping shape annotations are checked at runtime with beartype.

The import hook must run before anything imports ``interp``.
"""

from __future__ import annotations

import importlib
import os

import torch
from jaxtyping import install_import_hook

os.environ.setdefault("INTERP_THREADS", "1")
torch.set_num_threads(1)

# Every module with annotated public functions is imported under the hook (a
# loop, so that no linter "fix" can drop an import that looks unused).
HOOKED = (
    "interp",
    "interp.analysis.behavior",
    "interp.analysis.circuits",
    "interp.analysis.fourier",
    "interp.analysis.heads",
    "interp.analysis.memorization",
    "interp.analysis.named",
    "interp.analysis.sweep",
    "interp.cli",
    "interp.data.corpus",
    "interp.data.modular",
    "interp.data.repeated",
    "interp.data.sequences",
    "interp.experiments.grokking",
    "interp.experiments.induction",
    "interp.experiments.repeated_data",
    "interp.experiments.repeated_grid",
    "interp.experiments.runner",
    "interp.experiments.ticket_curve",
    "interp.experiments.ticket_regimes",
    "interp.experiments.ticket_suite",
    "interp.experiments.tickets",
    "interp.models",
    "interp.pruning.masks",
    "interp.pruning.overlap",
    "interp.pruning.scores",
    "interp.training.trainer",
    "interp.viz",
    "interp.viz.circuits",
    "interp.viz.repeated",
    "interp.viz.tickets",
)
with install_import_hook("interp", "beartype.beartype"):
    for _name in HOOKED:
        importlib.import_module(_name)

import pytest  # noqa: E402

from interp.experiments import grokking  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run of the `tiny` preset (seconds), shared by read-only tests."""
    path = tmp_path_factory.mktemp("runs") / "tiny"
    grokking.run(grokking.preset("tiny"), str(path), device="cpu", quiet=True)
    return path
