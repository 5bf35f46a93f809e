"""Double descent: one classifier of some width on MNIST-1D or digits with
label noise (``interp train double-descent``). The multi-run curves (width,
epochs, samples, optimizer) are ``interp experiment double-descent``
(:mod:`interp.experiments.double_descent_grid`).

A run records which training labels are noisy (``RUN_DIR/data.json``:
their indices and original classes) and logs, every evaluation, the train and
test loss and accuracy plus the share of noisy labels the model fits
(``noisy/accuracy``) and of clean ones (``clean/accuracy``). Its summary has
the final errors, ``noisy_fit_fraction``, the parameter count and
``t_interpolate`` (the first evaluation with train error 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from interp.experiments.base import Experiment, Setup
from interp.training.metrics import final_metrics, first_step_at_or_above
from interp.training.tasks import NoisyLabelTask

if TYPE_CHECKING:
    from interp.training.rundir import Run
    from interp.training.trainer import TrainResult
    from interp.viz.report import Page


def make_task(cfg: Any) -> NoisyLabelTask:
    """The run's training subset with its noisy labels, and the test set."""
    from interp.data.classification import classification_data

    d = classification_data(cfg.data.dataset, cfg.data.n_train, cfg.data.label_noise, cfg.seed)
    return NoisyLabelTask(
        d.train_x, d.train_y, d.test_x, d.test_y, position=None, noisy=d.noisy,
        clean_labels=d.clean_labels,
    )  # fmt: skip


def summarize_rows(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Final metrics as errors, the noisy-label fit and ``t_interpolate``."""
    final = final_metrics(rows)
    out: dict[str, Any] = {
        "train_loss": final.get("final_train_loss"),
        "test_loss": final.get("final_test_loss"),
        "train_error": _err(final.get("final_train_accuracy")),
        "test_error": _err(final.get("final_test_accuracy")),
        "noisy_fit_fraction": final.get("final_noisy_accuracy"),
        "clean_train_error": _err(final.get("final_clean_accuracy")),
    }
    out["t_interpolate"] = first_step_at_or_above(rows, "train", "accuracy", 1.0)
    return out


def _err(acc: float | None) -> float | None:
    return None if acc is None else 1.0 - acc


class DoubleDescent(Experiment):
    """A classifier of feature vectors with label noise (Nakkiran et al. 2019)."""

    name = "double-descent"
    summary_keys = ("params", "train_error", "test_error", "noisy_fit_fraction",
                    "t_interpolate", "train_loss", "test_loss")  # fmt: skip

    def make_task(self, cfg: Any) -> NoisyLabelTask:
        return make_task(cfg)

    def build(self, cfg: Any, store: Any, device: torch.device, quiet: bool) -> Setup:
        from interp.models import make_model
        from interp.training.files import atomic_write_json

        task = make_task(cfg)
        idx = task.noisy.nonzero().flatten()
        atomic_write_json(store.path / "data.json", {
            "dataset": cfg.data.dataset, "n_train": int(task.train_inputs.shape[0]),
            "n_test": int(task.test_inputs.shape[0]), "label_noise": cfg.data.label_noise,
            "noisy_indices": idx.tolist(), "noisy_original_labels": task.clean_labels[idx].tolist(),
            "noisy_labels": task.train_labels[idx].tolist(),
        })  # fmt: skip
        model = make_model(cfg.model, seed=cfg.seed, device=device)
        params = sum(p.numel() for p in model.parameters())
        return Setup(model, task, extra={"params": params, "n_train": cfg.n_train})

    def summarize(self, cfg: Any, setup: Setup, result: TrainResult) -> dict[str, Any]:
        rows = result.store.read_metric_rows()
        return {"steps": result.summary["steps"], **summarize_rows(rows)}

    def analyzers(self, run: Run) -> list[Any]:
        from interp.experiments.example_fits import RunExampleFits

        return [RunExampleFits()]

    def report(self, run: Run) -> Page:
        from interp.viz.double_descent import run_page

        return run_page(run)


EXPERIMENT = DoubleDescent()


def run(cfg: Any, run_dir: str, **kw: Any) -> TrainResult:
    """Train one run (``interp train double-descent``)."""
    return EXPERIMENT.train(cfg, run_dir, **kw)


def preset(name: str | None = None, seed: int | None = None, overrides: Any = ()) -> Any:
    return EXPERIMENT.preset(name, seed, overrides)


__all__ = ["EXPERIMENT", "DoubleDescent", "make_task", "preset", "run", "summarize_rows"]
