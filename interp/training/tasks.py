"""What the trainer trains on: a :class:`Task` gives batches, logits and an
evaluation.

:class:`ClassificationTask` holds fixed train/test sets (modular arithmetic).
:class:`GeneratedLMTask` trains a next-token model on sequences generated
afresh for every step by a seeded generator (infinite data, nothing to store),
and evaluates on fixed held-out batches. Batch ``s`` is a pure function of
(seed, s), so a resumed run sees exactly the batches an uninterrupted one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int, Shaped
from torch import Tensor, nn

from interp.config.core import InputError
from interp.models.readout import readout_logits


@runtime_checkable
class Task(Protocol):
    """What the trainer needs from a dataset: batches, logits and an evaluation."""

    def batch(self, step: int, batch_size: int | None, seed: int) -> tuple[Tensor, Tensor]: ...

    def logits(self, model: nn.Module, inputs: Tensor) -> Tensor: ...

    def evaluate(
        self, model: nn.Module, loss_dtype: torch.dtype
    ) -> dict[tuple[str, str], float]: ...

    def to(self, device: torch.device) -> Task: ...


@dataclass
class ClassificationTask:
    """Fixed train/test sets of (input, label); the model's logits at ``position``.

    ``position=None`` means the model returns ``[batch, classes]`` already (MLP);
    an int picks that sequence position of ``[batch, pos, vocab]`` (transformer).
    ``readout_only`` computes those logits with
    :func:`interp.models.readout.readout_logits` (the trainer sets it from
    ``train.readout_only``).
    """

    train_inputs: Shaped[Tensor, "n_train ..."]  # token ids, or features
    train_labels: Int[Tensor, " n_train"]
    test_inputs: Shaped[Tensor, "n_test ..."]
    test_labels: Int[Tensor, " n_test"]
    position: int | None = -1
    readout_only: bool = False

    def __post_init__(self) -> None:
        if self.train_inputs.shape[0] == 0:
            raise InputError("the training set is empty")
        if self.train_inputs.shape[0] != self.train_labels.shape[0]:
            raise InputError(
                f"train inputs ({self.train_inputs.shape[0]}) and labels "
                f"({self.train_labels.shape[0]}) differ in length"
            )
        if self.test_inputs.shape[0] != self.test_labels.shape[0]:
            raise InputError("test inputs and labels differ in length")

    def to(self, device: torch.device) -> ClassificationTask:
        return ClassificationTask(
            self.train_inputs.to(device),
            self.train_labels.to(device),
            self.test_inputs.to(device),
            self.test_labels.to(device),
            self.position,
            self.readout_only,
        )

    def batch(self, step: int, batch_size: int | None, seed: int) -> tuple[Tensor, Tensor]:
        n = self.train_inputs.shape[0]
        if batch_size is None or batch_size >= n:
            return self.train_inputs, self.train_labels
        idx = minibatch_indices(n, batch_size, step, seed).to(self.train_inputs.device)
        return self.train_inputs[idx], self.train_labels[idx]

    def logits(self, model: nn.Module, inputs: Tensor) -> Float[Tensor, "batch classes"]:
        if self.position is None:
            return model(inputs)
        if self.readout_only:
            return readout_logits(model, inputs, self.position)
        return model(inputs)[:, self.position]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loss_dtype: torch.dtype) -> dict[tuple[str, str], float]:
        res = {}
        for split, x, y in (
            ("train", self.train_inputs, self.train_labels),
            ("test", self.test_inputs, self.test_labels),
        ):
            if x.shape[0] == 0:
                continue
            logits = self.logits(model, x)
            res[(split, "loss")] = F.cross_entropy(logits.to(loss_dtype), y).item()
            res[(split, "accuracy")] = (logits.argmax(-1) == y).double().mean().item()
        return res


@dataclass
class NoisyLabelTask(ClassificationTask):
    """A :class:`ClassificationTask` whose training labels are partly noisy
    (``noisy[i]``: label ``i`` was replaced). Evaluation adds the ``noisy``
    split: ``accuracy`` = the fraction of noisy examples the model predicts
    with their noisy label (fitted, i.e. memorised), ``clean_accuracy`` =
    the fraction it predicts with their original label; and ``clean``'s
    accuracy, on the examples whose label was kept."""

    noisy: Tensor | None = None
    clean_labels: Tensor | None = None

    def to(self, device: torch.device) -> NoisyLabelTask:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return NoisyLabelTask(
            self.train_inputs.to(device), self.train_labels.to(device),
            self.test_inputs.to(device), self.test_labels.to(device), self.position,
            self.readout_only, move(self.noisy), move(self.clean_labels),
        )  # fmt: skip

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loss_dtype: torch.dtype) -> dict[tuple[str, str], float]:
        res = super().evaluate(model, loss_dtype)
        if self.noisy is None:
            return res
        pred = self.logits(model, self.train_inputs).argmax(-1)
        fitted = pred == self.train_labels
        if bool(self.noisy.any()):
            res[("noisy", "accuracy")] = fitted[self.noisy].double().mean().item()
            if self.clean_labels is not None:
                right = pred[self.noisy] == self.clean_labels[self.noisy]
                res[("noisy", "clean_accuracy")] = right.double().mean().item()
        if bool((~self.noisy).any()):
            res[("clean", "accuracy")] = fitted[~self.noisy].double().mean().item()
        return res


def minibatch_indices(n: int, batch_size: int, step: int, seed: int) -> Tensor:
    """Indices of the batch for update ``step`` (1-based): epochs of seeded permutations.

    Stateless: the permutation of epoch e comes from a generator seeded with
    (seed, e), so resuming at any step needs no saved sampler state.
    """
    per_epoch = n // batch_size
    epoch, slot = divmod(step - 1, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    return perm[slot * batch_size : (slot + 1) * batch_size]


Generator = Callable[[int, int], Tensor]  # (batch size, seed) -> tokens [batch, seq]


def next_token_logits(
    model: nn.Module, tokens: Int[Tensor, "batch seq"]
) -> Float[Tensor, "batch_x_pos vocab"]:
    """Logits predicting tokens 1 … seq−1, flattened to rows for cross-entropy."""
    logits = model(tokens[:, :-1])
    return logits.reshape(-1, logits.shape[-1])


@dataclass
class GeneratedLMTask:
    """Next-token prediction on generated sequences.

    ``generate(n, seed)`` returns ``n`` sequences; training step ``s`` uses
    seed ``seed·1_000_003 + s``; ``train_eval`` and ``test_eval`` are fixed
    batches drawn from seeds the training stream never uses. ``probes`` are
    extra named token batches whose per-position loss is summarised by
    ``probe_metrics`` (e.g. the loss on the second copy of repeated tokens).
    """

    generate: Generator
    train_eval: Int[Tensor, "n seq"]
    test_eval: Int[Tensor, "m seq"]
    probe_metrics: Callable[[nn.Module], dict[tuple[str, str], float]] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        for name in ("train_eval", "test_eval"):
            t = getattr(self, name)
            if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] < 2:
                raise InputError(
                    f"{name} must be a non-empty [batch, seq>=2] tensor, got {tuple(t.shape)}"
                )

    def to(self, device: torch.device) -> GeneratedLMTask:
        return GeneratedLMTask(
            self.generate,
            self.train_eval.to(device),
            self.test_eval.to(device),
            self.probe_metrics,
            torch.device(device),
        )

    def batch(self, step: int, batch_size: int | None, seed: int) -> tuple[Tensor, Tensor]:
        if batch_size is None:
            raise InputError("a generated LM task needs train.batch_size")
        toks = self.generate(batch_size, seed * 1_000_003 + step).to(self.device)
        return toks, toks[:, 1:].reshape(-1)

    def logits(self, model: nn.Module, inputs: Tensor) -> Tensor:
        return next_token_logits(model, inputs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loss_dtype: torch.dtype) -> dict[tuple[str, str], float]:
        res: dict[tuple[str, str], float] = {}
        for split, toks in (("train", self.train_eval), ("test", self.test_eval)):
            logits = next_token_logits(model, toks)
            target = toks[:, 1:].reshape(-1)
            res[(split, "loss")] = F.cross_entropy(logits.to(loss_dtype), target).item()
            res[(split, "accuracy")] = (logits.argmax(-1) == target).double().mean().item()
        if self.probe_metrics is not None:
            res.update(self.probe_metrics(model))
        return res


@dataclass
class SequenceLMTask:
    """Next-token prediction on a fixed, already shuffled set of training
    sequences, read in order: step ``s`` (1-based) trains on sequences
    ``[(s−1)·B, s·B)`` (wrapping around after one pass), so a run of
    ``n / B`` steps sees every sequence exactly once and the batch is a pure
    function of the step. ``evals`` are named sets of sequences whose mean
    next-token loss and accuracy are logged at every evaluation (e.g. held-out
    text, the repeated subset, unique training text); ``probe_metrics`` adds
    more (e.g. the copying evaluation).
    """

    train: Int[Tensor, "n seq"]
    evals: dict[str, Tensor]
    probe_metrics: Callable[[nn.Module], dict[tuple[str, str], float]] | None = None
    eval_batch: int = 64
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if self.train.ndim != 2 or self.train.shape[0] == 0 or self.train.shape[1] < 2:
            raise InputError(
                f"train must be a non-empty [n, seq>=2] tensor, got {tuple(self.train.shape)}"
            )
        for name, t in self.evals.items():
            if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] < 2:
                raise InputError(f"eval set {name!r} must be a non-empty [k, seq>=2] tensor")

    def to(self, device: torch.device) -> SequenceLMTask:
        return SequenceLMTask(
            self.train.to(device),
            {k: v.to(device) for k, v in self.evals.items()},
            self.probe_metrics,
            self.eval_batch,
            torch.device(device),
        )

    def batch(self, step: int, batch_size: int | None, seed: int) -> tuple[Tensor, Tensor]:
        n = self.train.shape[0]
        b = n if batch_size is None else batch_size
        idx = (torch.arange(b, device=self.train.device) + (step - 1) * b) % n
        toks = self.train[idx].long()
        return toks, toks[:, 1:].reshape(-1)

    def logits(self, model: nn.Module, inputs: Tensor) -> Tensor:
        return next_token_logits(model, inputs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loss_dtype: torch.dtype) -> dict[tuple[str, str], float]:
        res: dict[tuple[str, str], float] = {}
        for name, seqs in self.evals.items():
            total, correct, count = 0.0, 0, 0
            for i in range(0, seqs.shape[0], self.eval_batch):
                toks = seqs[i : i + self.eval_batch].long()
                logits = next_token_logits(model, toks)
                target = toks[:, 1:].reshape(-1)
                total += F.cross_entropy(logits.to(loss_dtype), target, reduction="sum").item()
                correct += int((logits.argmax(-1) == target).sum())
                count += target.numel()
            res[(name, "loss")] = total / count
            res[(name, "accuracy")] = correct / count
        if self.probe_metrics is not None:
            res.update(self.probe_metrics(model))
        return res
