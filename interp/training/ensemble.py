"""Train N runs of one architecture together, as one batched model.

Each member is an ordinary run: its own config (seed, data split, masks,
init scale, learning rate, weight decay, schedule, stop rule), its own run
directory with the metrics, checkpoints and resumable state :func:`train`
writes. What is shared is the step: the members' parameters are stacked
along a leading member dimension, the forward is ``torch.func.vmap`` of the
model's functional form (:mod:`interp.models.functional`), so every layer is
one batched matmul, and one stacked AdamW / SGD update moves every member
with its own learning rate and weight decay. Nothing in the step loops over
members in Python except drawing their batches (each task's own
``batch``) when the batch is not the whole, fixed training set.

Per member, the update is the arithmetic of PyTorch's single-tensor AdamW
(``foreach=False``, as :func:`~interp.training.trainer.make_optimizer`
uses) and SGD; masks zero gradients and weights as :class:`MaskHook` does;
the gradient-norm clip is computed per member. The batched forward rounds
differently from a single model's, so a member matches its single run to
float tolerance, not bit for bit (``tests/test_ensemble.py`` measures it).
The same ensemble run twice on one machine is bit-identical.

Members stop independently (their stop rule, a non-finite loss, the end of
their steps) and are then dropped from the stack, so they cost no more
steps. Evaluation and checkpoints copy a member's weights into its own model
and call its task's ``evaluate`` (one member at a time, the single-run code
path). A killed ensemble resumes from the newest step every member has a
checkpoint of.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from tqdm.auto import tqdm

from interp.config.core import ConfigError, to_dict
from interp.config.train import TrainConfig
from interp.models import move_to, named_weights
from interp.models.functional import FunctionalModel, functional_model
from interp.models.fused_attention import fused_attention
from interp.models.readout import check_readout
from interp.training.device import resolve_device
from interp.training.metrics import final_metrics
from interp.training.rundir import RunStore
from interp.training.schedule import checkpoint_steps, eval_steps
from interp.training.tasks import ClassificationTask, GeneratedLMTask, SequenceLMTask, Task
from interp.training.trainer import (
    Evaluator,
    Metrics,
    StopRule,
    TrainResult,
    _logged,
    _nonfinite_loss,
    check_masks,
    check_task,
    make_optimizer,
    resume,
)

#: TrainConfig fields members of one ensemble may differ in
PER_MEMBER = frozenset(
    {"lr", "weight_decay", "warmup_steps", "lr_schedule", "min_lr_ratio", "stop_after_gen",
     "stop_accuracy"}
)  # fmt: skip


@dataclass
class Member:
    """One run of an ensemble: its model at its starting weights (also used
    to evaluate and checkpoint it), task, train config, run store, seed and
    optional fixed masks (what :func:`train` takes for a single run)."""

    model: nn.Module
    task: Task
    cfg: TrainConfig
    store: RunStore
    seed: int
    masks: Mapping[str, Tensor] | None = None


def stack_problem(cfg: TrainConfig) -> str | None:
    """Why a run with train config ``cfg`` cannot be an ensemble member (None if it can)."""
    if cfg.grokfast is not None:
        return "the Grokfast filter is not stacked (train.grokfast)"
    return None


def stack_key(cfg: TrainConfig) -> str:
    """Train configs with equal keys can share an ensemble: everything but
    :data:`PER_MEMBER` agrees (steps, schedules of evaluation and checkpoints,
    batch size, optimizer, loss dtype …)."""
    import json

    return json.dumps(
        {k: v for k, v in to_dict(cfg).items() if k not in PER_MEMBER}, sort_keys=True
    )


# ----------------------------------------------------------------- optimizer
class StackedOptimizer:
    """AdamW or SGD over stacked parameters ``[members, ...]`` with a learning
    rate and weight decay per member; the element-wise arithmetic of
    ``torch.optim.AdamW`` / ``SGD`` with ``foreach=False``."""

    def __init__(self, params: dict[str, Tensor], cfgs: Sequence[TrainConfig]):
        c = cfgs[0]
        self.kind, self.betas, self.eps, self.momentum = c.optimizer, c.betas, c.eps, c.momentum
        self.params = params
        self.wd = torch.tensor([m.weight_decay for m in cfgs], dtype=torch.float64)
        self.lr_table = torch.tensor(
            [[m.lr_at(s) for s in range(c.steps + 1)] for m in cfgs], dtype=torch.float64
        )
        self.step_count = 0
        zeros = {n: torch.zeros_like(p) for n, p in params.items()}
        if self.kind == "adamw":
            self.state = {
                "exp_avg": zeros,
                "exp_avg_sq": {n: torch.zeros_like(p) for n, p in params.items()},
            }
        else:
            self.state = {"momentum_buffer": zeros} if self.momentum else {}

    def _per(self, values: Tensor, like: Tensor) -> Tensor:
        """A per-member float64 vector as ``like``'s dtype, shaped to broadcast."""
        return values.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.ndim - 1)))

    @torch.no_grad()
    def step(self, step: int) -> None:
        lr = self.lr_table[:, step]
        self.step_count += 1
        if self.kind == "adamw":
            b1, b2 = self.betas
            bc1 = 1 - b1**self.step_count
            bc2_sqrt = math.sqrt(1 - b2**self.step_count)
            decay, neg_step = 1 - lr * self.wd, -(lr / bc1)
            for n, p in self.params.items():
                g, m, v = p.grad, self.state["exp_avg"][n], self.state["exp_avg_sq"][n]
                p.mul_(self._per(decay, p))
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
                p.add_(self._per(neg_step, p) * m / denom)
            return
        for n, p in self.params.items():
            g = p.grad
            if bool((self.wd != 0).any()):
                g = g + self._per(self.wd, p) * p
            if self.momentum:
                buf = self.state["momentum_buffer"][n]
                buf.mul_(self.momentum).add_(g)
                g = buf
            p.sub_(self._per(lr, p) * g)

    def member_state(self, i: int, step: int) -> dict[str, Tensor]:
        """Member ``i``'s optimizer state in the single-run checkpoint format
        (:func:`~interp.training.trainer.optimizer_state_tensors`)."""
        out: dict[str, Tensor] = {}
        for n in self.params:
            if self.kind == "adamw":
                out[f"optim.{n}.step"] = torch.tensor(float(step))
            for key, values in self.state.items():
                out[f"optim.{n}.{key}"] = values[n][i].detach().clone().cpu()
        return out

    def select(self, keep: Tensor) -> None:
        """Keep only the members ``keep`` (indices)."""
        for values in self.state.values():
            for n in values:
                values[n] = values[n].index_select(0, keep.to(values[n].device))
        self.wd, self.lr_table = self.wd[keep.cpu()], self.lr_table[keep.cpu()]


# ------------------------------------------------------------------- trainer
def _check_members(members: Sequence[Member]) -> None:
    if not members:
        raise ConfigError("an ensemble needs at least one member")
    first = members[0]
    key = stack_key(first.cfg)
    shapes = {n: p.shape for n, p in named_weights(first.model).items()}
    for i, m in enumerate(members):
        if (problem := stack_problem(m.cfg)) is not None:
            raise ConfigError(f"ensemble member {i}: {problem}")
        if stack_key(m.cfg) != key:
            raise ConfigError(
                f"ensemble member {i} has another train config than member 0 beyond "
                f"{sorted(PER_MEMBER)}"
            )
        mine = {n: p.shape for n, p in named_weights(m.model).items()}
        if mine != shapes:
            raise ConfigError(f"ensemble member {i} has other parameters than member 0")
        if type(m.task) is not type(first.task):
            raise ConfigError(f"ensemble member {i} has another kind of task than member 0")
        check_task(m.task, m.cfg)
        if m.cfg.readout_only:
            check_readout(m.model)


def train_ensemble(
    members: Sequence[Member],
    *,
    device: str | torch.device = "cpu",
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> list[TrainResult]:
    """Train ``members`` together (see the module docstring); one
    :class:`TrainResult` per member, in order. Members whose stores hold
    checkpoints resume; ``stop_after_step`` ends the loop early (tests)."""
    _check_members(members)
    dev = resolve_device(device)
    cfg = members[0].cfg
    fm = functional_model(members[0].model, fused=cfg.fused_attention)
    tasks: list[Task] = []
    for m in members:
        move_to(m.model, dev)
        task = m.task.to(dev)
        tasks.append(replace(task, readout_only=True) if m.cfg.readout_only else task)  # type: ignore[type-var]
    loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32
    ckpt_set = set(checkpoint_steps(cfg.steps, cfg.checkpoint_every, cfg.checkpoint_log_early))
    eval_set = set(eval_steps(cfg.steps, cfg.eval_every, sorted(ckpt_set)))
    with ExitStack() as stack, torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        for m in members:  # evaluation as a single run does it
            stack.enter_context(fused_attention(m.model, cfg.fused_attention))
        torch.manual_seed(members[0].seed)
        return _Ensemble(members, tasks, fm, dev, loss_dtype, ckpt_set, eval_set, quiet).run(
            stop_after_step
        )


class _Ensemble:
    """The state of one ensemble while it trains (members still in the stack
    are ``self.live``, indices into ``self.members``)."""

    def __init__(
        self,
        members: Sequence[Member],
        tasks: list[Task],
        fm: FunctionalModel,
        dev: torch.device,
        loss_dtype: torch.dtype,
        ckpt_set: set[int],
        eval_set: set[int],
        quiet: bool,
    ):
        self.members, self.tasks, self.fm, self.dev = list(members), tasks, fm, dev
        self.loss_dtype, self.ckpt_set, self.eval_set = loss_dtype, ckpt_set, eval_set
        self.cfg = members[0].cfg
        self.weights = [named_weights(m.model) for m in members]
        self.masks = [
            check_masks(m.masks, w) if m.masks else {}
            for m, w in zip(members, self.weights, strict=True)
        ]
        self.bar = tqdm(total=self.cfg.steps, disable=quiet, dynamic_ncols=True,
                        desc=f"train {len(members)} members")  # fmt: skip
        off = tqdm(disable=True)
        self.evaluators = [
            Evaluator(m.model, t, loss_dtype, m.store, off, None)
            for m, t in zip(members, tasks, strict=True)
        ]
        self.ends: dict[int, tuple[int, bool, tuple[int, float] | None]] = {}

    # ------------------------------------------------------------- resume
    def _resume(self) -> tuple[int, list[int | None], list[torch.optim.Optimizer]]:
        """Resume every member from the newest step all of them have; returns
        it, each member's ``resumed_from`` and the optimizers holding their
        restored state."""
        opts = [make_optimizer(w, m.cfg) for m, w in zip(self.members, self.weights, strict=True)]
        names = self.fm.names
        while True:
            starts = [
                resume(m.store, m.model, o, names, None)
                for m, o in zip(self.members, opts, strict=True)
            ]
            common = min(s or 0 for s in starts)
            if all((s or 0) == common for s in starts):
                break
            for m, s in zip(self.members, starts, strict=True):
                if (s or 0) > common:
                    m.store.remove_checkpoints_after(common)
        return common, starts, opts

    def _stack(self, opts: list[torch.optim.Optimizer], start: int) -> None:
        names = self.fm.names
        self.params = {
            n: torch.stack([w[n].detach() for w in self.weights]).clone().requires_grad_()
            for n in names
        }
        self.mask = {}
        for n in sorted({n for mk in self.masks for n in mk}):
            ones = torch.ones_like(self.params[n][0], dtype=torch.bool)
            self.mask[n] = torch.stack([mk.get(n, ones) for mk in self.masks])
        with torch.no_grad():
            for n, mk in self.mask.items():
                self.params[n].mul_(mk)
        self.opt = StackedOptimizer(self.params, [m.cfg for m in self.members])
        self.opt.step_count = start
        for i, (o, w) in enumerate(zip(opts, self.weights, strict=True)):
            for n in names:
                st = o.state.get(w[n], {})
                for key, values in self.opt.state.items():
                    if key in st and st[key] is not None:
                        values[n][i].copy_(st[key])

    # -------------------------------------------------------------- members
    def _sync(self, i: int, row: int) -> None:
        """Copy member ``i`` (row ``row`` of the stack) into its own model."""
        with torch.no_grad():
            for n, p in self.weights[i].items():
                p.copy_(self.params[n][row])

    def _checkpoint(self, i: int, row: int, step: int, metrics: Metrics) -> None:
        m = self.members[i]
        state = self.opt.member_state(row, self.opt.step_count)
        state["rng.cpu"] = torch.Generator().manual_seed(m.seed).get_state()
        meta = {"metrics": {f"{s}/{k}": v for (s, k), v in metrics.items()}}
        m.store.save_checkpoint(step, m.model.state_dict(), state, meta)

    def _evaluate(self, i: int, row: int, step: int) -> Metrics:
        self._sync(i, row)
        with torch.no_grad():
            return self.evaluators[i](step)

    def _drop(self, rows: list[int]) -> None:
        keep = torch.tensor([r for r in range(len(self.live)) if r not in rows], dtype=torch.long)
        self.live = [self.live[r] for r in keep.tolist()]
        if not self.live:
            return
        for n in list(self.params):
            self.params[n] = (
                self.params[n].detach().index_select(0, keep.to(self.dev)).requires_grad_()
            )
        self.opt.params = self.params
        for n in list(self.mask):
            self.mask[n] = self.mask[n].index_select(0, keep.to(self.dev))
        self.opt.select(keep)
        self.fixed = None

    # ---------------------------------------------------------------- step
    def _batch(self, step: int) -> tuple[Tensor, Tensor]:
        if self.fixed is not None:
            return self.fixed
        bs = self.cfg.batch_size
        pairs = [self.tasks[i].batch(step, bs, self.members[i].seed) for i in self.live]
        xs, ys = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        full = all(isinstance(self.tasks[i], ClassificationTask) for i in self.live) and (
            bs is None or all(bs >= self.tasks[i].train_inputs.shape[0] for i in self.live)  # type: ignore[attr-defined]
        )
        if full:  # the whole fixed training set: the same every step
            self.fixed = (xs, ys)
        return xs, ys

    def _losses(self, xs: Tensor, ys: Tensor) -> Tensor:
        out = stacked_logits(self.tasks[self.live[0]], self.fm, self.params, xs)
        e, b = out.shape[0], out.shape[1]
        per = F.cross_entropy(
            out.reshape(e * b, -1).to(self.loss_dtype), ys.reshape(-1), reduction="none"
        )
        return per.view(e, b).mean(1)

    def _update(self, losses: Tensor) -> None:
        for p in self.params.values():
            p.grad = None
        losses.sum().backward()
        with torch.no_grad():
            for n, mk in self.mask.items():
                self.params[n].grad.mul_(mk)
            clip = self.cfg.grad_clip
            if clip is not None:
                grads = [p.grad for p in self.params.values()]
                norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)
                coef = (clip / (norms + 1e-6)).clamp(max=1.0)
                for g in grads:
                    g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))
        self.opt.step(self._step)
        with torch.no_grad():
            for n, mk in self.mask.items():
                self.params[n].mul_(mk)

    # ----------------------------------------------------------------- loop
    def run(self, stop_after_step: int | None) -> list[TrainResult]:
        start, resumed, opts = self._resume()
        self._stack(opts, start)
        self.fixed = None
        cfg = self.cfg
        self.live = list(range(len(self.members)))
        stops = [
            StopRule(m.cfg, m.store.read_metric_rows() if r is not None else None)
            for m, r in zip(self.members, resumed, strict=True)
        ]
        if start == 0:
            for i in self.live:
                self._checkpoint(i, i, 0, self._evaluate(i, i, 0))
        done = [row for row, i in enumerate(self.live) if stops[i].stopped_by(start)]
        for row in done:
            self.ends[self.live[row]] = (start, True, None)
        self._drop(done)
        self.bar.update(start)
        warned: set[int] = set()
        for step in range(start + 1, cfg.steps + 1):
            if not self.live:
                break
            self._step = step
            xs, ys = self._batch(step)
            losses = self._losses(xs, ys)
            finite = torch.isfinite(losses)
            if not bool(finite.all()):
                gone = self._nonfinite(step, losses, finite, warned)
                if gone:
                    self._drop(gone)
                    if not self.live:
                        break
                    xs, ys = self._batch(step)
                    losses = self._losses(xs, ys)
            self._update(losses)
            self.bar.update(1)
            if step in self.eval_set:
                gone = []
                for row, i in enumerate(self.live):
                    res = self._evaluate(i, row, step)
                    bad = _nonfinite_loss(res)
                    if (
                        bad is not None
                        and i not in warned
                        and self.members[i].cfg.on_nonfinite == "stop"
                    ):
                        self._checkpoint(i, row, step, res)
                        self._warn(
                            i, f"the evaluated loss became {bad} at step {step}; it stops there"
                        )
                        self.ends[i] = (step, True, (step, bad))
                        gone.append(row)
                        continue
                    ends = stops[i].observe(step, res)
                    if step in self.ckpt_set or ends:
                        self._checkpoint(i, row, step, res)
                    if ends:
                        self.ends[i] = (step, True, None)
                        gone.append(row)
                if gone:
                    self._drop(gone)
            if stop_after_step is not None and step >= stop_after_step:
                for row, i in enumerate(self.live):
                    self._sync(i, row)
                    self.ends[i] = (step, False, None)
                self.live = []
                break
        for row, i in enumerate(self.live):
            self._sync(i, row)
            self.ends[i] = (cfg.steps, True, None)
        self.bar.close()
        return [self._result(i, resumed[i]) for i in range(len(self.members))]

    def _nonfinite(self, step: int, losses: Tensor, finite: Tensor, warned: set[int]) -> list[int]:
        """Members whose training loss is not finite at ``step``: rows to drop
        (``on_nonfinite="stop"``: they end at ``step - 1``)."""
        gone = []
        for row in (~finite).nonzero().flatten().tolist():
            i = self.live[row]
            if i in warned:
                continue
            warned.add(i)
            value = float(losses[row])
            if self.members[i].cfg.on_nonfinite == "stop":
                last = step - 1
                if last not in self.members[i].store.steps():
                    res = _logged(self.members[i].store, last) or self._evaluate(i, row, last)
                    self._sync(i, row)
                    self._checkpoint(i, row, last, res)
                self._warn(
                    i, f"the training loss became {value} at step {step}; it stops at {last}"
                )
                self.ends[i] = (last, True, (step, value))
                gone.append(row)
            else:
                self._warn(i, f"the training loss became {value} at step {step}; training goes on")
        return gone

    def _warn(self, i: int, text: str) -> None:
        warnings.warn(f"{self.members[i].store.path}: {text}", stacklevel=4)

    def _result(self, i: int, resumed_from: int | None) -> TrainResult:
        m = self.members[i]
        last, complete, diverged = self.ends[i]
        summary: dict[str, Any] = {"steps": last, **final_metrics(m.store.read_metric_rows())}
        if diverged is not None:
            summary["diverged_at"], summary["diverged_loss"] = diverged[0], str(diverged[1])
        return TrainResult(m.model.eval(), m.store, summary, resumed_from, complete)


def stacked_logits(
    task: Task, fm: FunctionalModel, params: Mapping[str, Tensor], xs: Tensor
) -> Float[Tensor, "member rows classes"]:
    """What ``task.logits`` computes for one model, for every member at
    once: a classification task's logits (at its read-out position), or a
    language-model task's next-token logits flattened per member."""
    if isinstance(task, ClassificationTask):
        if task.position is None:
            return fm.forward(params, xs)
        if task.readout_only:
            return fm.forward(params, xs, task.position)
        return fm.forward(params, xs)[:, :, task.position]
    if isinstance(task, (GeneratedLMTask, SequenceLMTask)):
        out = fm.forward(params, xs[:, :, :-1])
        return out.reshape(out.shape[0], -1, out.shape[-1])
    raise ConfigError(f"an ensemble cannot train on a {type(task).__name__}")


__all__ = [
    "PER_MEMBER", "Member", "StackedOptimizer", "stack_key", "stack_problem", "stacked_logits",
    "train_ensemble",
]  # fmt: skip
