"""The local learning coefficient of our runs' checkpoints, as a sweep
analyzer (``interp sweep RUN --analyzer llc``).

:class:`RunLLC` reads the run's own training data and loss through its
experiment's task (the training pairs of a grokking run, a fixed sample of
training sequences of a language-model run) and calls
:func:`interp.analysis.learning_coefficient.llc`. Its settings are attributes, so they are part
of the sweep's cache key with the code; so is the data seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from interp.config.core import InputError
from interp.experiments.registry import experiment
from interp.training.tasks import (
    ClassificationTask,
    GeneratedLMTask,
    SequenceLMTask,
    next_token_logits,
)

#: SGLD settings per experiment (docs/llc.md says how they were chosen)
LLC_DEFAULTS: dict[str, dict[str, Any]] = {
    "default": {"lr": 1e-4, "localization": 100.0, "chains": 4, "draws": 100,
                "batch_size": 64, "n_beta_factor": 1.0, "examples": 1024},
}  # fmt: skip

#: seed of the fixed sample of training sequences of generated-data runs
_SAMPLE_SEED = 424_242


def llc_data(run: Any, examples: int = 1024) -> tuple[Tensor, Tensor, Any]:
    """(inputs, targets, loss_fn) of ``run``'s training data: every training
    pair of a classification run; ``examples`` training sequences of a
    language-model run (a fixed seeded sample for generated data, the first
    ones otherwise), whose per-example loss is its mean next-token loss."""
    return task_llc_data(experiment(run.experiment).make_task(run.config), examples)


def task_llc_data(task: Any, examples: int = 1024) -> tuple[Tensor, Tensor, Any]:
    """:func:`llc_data` of a task (what an experiment's ``make_task`` builds)."""
    if isinstance(task, ClassificationTask):

        def classification_nll(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
            return F.cross_entropy(task.logits(model, x), y, reduction="none")

        return task.train_inputs, task.train_labels, classification_nll
    if isinstance(task, GeneratedLMTask):
        tokens = task.generate(examples, _SAMPLE_SEED)
    elif isinstance(task, SequenceLMTask):
        tokens = task.train[:examples].long()
    else:
        raise InputError(f"llc: no training data known for a {type(task).__name__}")

    def sequence_nll(model: nn.Module, x: Tensor, _y: Tensor) -> Tensor:
        logits = next_token_logits(model, x)
        loss = F.cross_entropy(logits, x[:, 1:].reshape(-1), reduction="none")
        return loss.reshape(x.shape[0], -1).mean(-1)

    return tokens, tokens, sequence_nll


class RunLLC:
    """Sweep analyzer: the LLC of a checkpoint of a run of ours, with its
    settings (``lr``, ``localization``, ``chains``, ``draws``,
    ``batch_size``, ``n_beta_factor`` × n/log n, ``examples``, ``seed``) as
    attributes. Returns ``llc_mean``, ``llc_std``, ``llc_se``, ``init_loss``,
    ``flat`` (0/1), ``final_rise`` (the chains' mean loss over their last
    quarter minus L(w*)) and ``sampled_params``; a diverged chain raises. A
    run trained under a pruning mask (a ticket) is sampled in its mask's
    subspace (:func:`run_param_masks`)."""

    analyzer_name = "llc"

    def __init__(self, **settings: Any) -> None:
        merged = {**LLC_DEFAULTS["default"], "seed": 0, **settings}
        unknown = set(merged) - {*LLC_DEFAULTS["default"], "seed"}
        if unknown:
            raise InputError(f"llc: unknown settings {sorted(unknown)}")
        self.settings = merged

    def __call__(
        self, model: nn.Module, run: Any, *, memo: dict[Any, Any] | None = None
    ) -> dict[str, float]:
        from interp.analysis.learning_coefficient import default_n_beta, llc, sampled_parameters

        s = self.settings
        inputs, targets, loss_fn = llc_data(run, s["examples"])
        masks = run_param_masks(model, run)
        res = llc(
            model, (inputs, targets), loss_fn=loss_fn, lr=s["lr"], param_masks=masks,
            localization=s["localization"], chains=s["chains"], draws=s["draws"],
            batch_size=min(s["batch_size"], inputs.shape[0]), seed=s["seed"],
            n_beta=s["n_beta_factor"] * default_n_beta(inputs.shape[0]),
        )  # fmt: skip
        trace = res["loss_trace"]
        q = max(trace.shape[1] // 4, 1)
        return {
            "llc_mean": res["llc_mean"],
            "llc_std": res["llc_std"],
            "llc_se": res["llc_se"],
            "init_loss": res["init_loss"],
            "flat": float(res["flat"]),
            "final_rise": float(trace[:, -q:].mean()) - res["init_loss"],
            "sampled_params": float(sampled_parameters(model, masks)),
        }


def run_param_masks(model: nn.Module, run: Any) -> dict[str, Tensor | None] | None:
    """SGLD's parameter masks for a run trained under a fixed pruning mask (a
    ticket or a pruned control, ``masks/ticket.safetensors``): the kept
    weights of each masked matrix, every weight of the others, so the chains
    move in the subspace the run was trained in. None (every weight) for a
    run without a mask. Keys are ``model.named_parameters()`` names, which on
    the TransformerLens bridge differ from the mask's state-dict names."""
    from interp.models import named_weights
    from interp.pruning.masks import MASK_FILE, load_mask

    path = Path(run.path) / MASK_FILE
    if not path.exists():
        return None
    mask = load_mask(path)
    clean = named_weights(model)
    unknown = set(mask) - set(clean)
    if unknown:
        raise InputError(f"llc: the run's mask names parameters the model lacks: {sorted(unknown)}")
    raw = {id(p): name for name, p in model.named_parameters()}
    return {raw[id(p)]: mask.get(name) for name, p in clean.items()}


def cached_llc(run: Any) -> Any:
    """The LLC rows (default settings) that ``interp sweep RUN --analyzer llc``
    left in the run's cache; nothing is computed (what reports draw)."""
    from interp.analysis.sweep import sweep

    return sweep(run, [RunLLC()], cache="only", progress=False)


def run_llc(model: nn.Module, run: Any, **settings: Any) -> dict[str, float]:
    """The LLC of ``model`` (a checkpoint of ``run``) on the run's training
    data with its loss; ``settings`` override :data:`LLC_DEFAULTS`."""
    return RunLLC(**settings)(model, run)


__all__ = [
    "LLC_DEFAULTS", "RunLLC", "cached_llc", "llc_data", "run_llc", "run_param_masks",
    "task_llc_data",
]  # fmt: skip
