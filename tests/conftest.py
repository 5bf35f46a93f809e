"""Test set-up: jaxtyping shape annotations are checked at runtime with beartype.

The import hook must run before anything imports ``interp``.
"""

from __future__ import annotations

import os

import torch
from jaxtyping import install_import_hook

os.environ.setdefault("INTERP_THREADS", "1")
torch.set_num_threads(1)

with install_import_hook("interp", "beartype.beartype"):
    pass

import pytest  # noqa: E402

from interp.experiments import grokking  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run of the `tiny` preset (seconds), shared by read-only tests."""
    path = tmp_path_factory.mktemp("runs") / "tiny"
    grokking.run(grokking.preset("tiny"), str(path), device="cpu", quiet=True)
    return path
