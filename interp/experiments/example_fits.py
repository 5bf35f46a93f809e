"""Per-example fit of a run's training set, as a sweep analyzer
(``interp sweep RUN --analyzer example_fits``): for every training example,
whether the checkpoint predicts its training label (``correct``) and its
margin (``margin`` = the label's logit minus the largest other). Works on
any classification run of ours: the (possibly noisy) examples of a
double-descent run, the training pairs of a grokking run. Read the events
with :func:`interp.analysis.forgetting.example_events`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from interp.config.core import InputError
from interp.experiments.registry import experiment
from interp.training.tasks import ClassificationTask


class RunExampleFits:
    """Sweep analyzer: per training example, ``correct`` (0/1) and ``margin``."""

    analyzer_name = "example_fits"

    @torch.no_grad()
    def __call__(self, model: nn.Module, run: Any) -> dict[str, Tensor]:
        task = experiment(run.experiment).make_task(run.config)
        if not isinstance(task, ClassificationTask):
            raise InputError(
                f"example_fits needs a classification run; {run.experiment} runs are not"
            )
        device = next(model.parameters()).device
        x, y = task.train_inputs.to(device), task.train_labels.to(device)
        logits = torch.cat([task.logits(model, x[i : i + 4096]) for i in range(0, len(x), 4096)])
        label = logits.gather(1, y[:, None])[:, 0]
        other = logits.scatter(1, y[:, None], float("-inf")).max(1).values
        return {"correct": (logits.argmax(1) == y).double(), "margin": (label - other).double()}


__all__ = ["RunExampleFits"]
