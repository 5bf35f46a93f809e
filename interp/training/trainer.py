"""The one training loop every experiment uses.

AdamW with linear warm-up (optionally cosine decay), full-batch or minibatch,
optional float64 loss (Nanda et al. 2023 App. A: float32 cross-entropy causes
loss spikes), optional Grokfast filter, optional fixed pruning masks (weights
outside the mask are exactly 0 after every step), evaluation every k steps and
checkpoints on a log-then-linear schedule.

:func:`train` is optimizer setup, resume, and a loop with small hooks:
:class:`MaskHook` (masks), :class:`StopRule` (early stop after generalising),
:class:`Evaluator` (metrics) and :class:`Checkpointer` (weights and resumable
state). It returns the run's final metrics; the experiment writes the
summary and marks the run done.

Reproducibility: init, data split and batch order each come from the config
seed through private generators; the batch for step ``s`` is a pure function
of (seed, s), so nothing about batch order has to be saved. A killed run resumes
from its last checkpoint (weights, AdamW moments, filter state, global RNG) and
ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from interp.config.core import ConfigError, InputError
from interp.config.train import TrainConfig
from interp.models import move_to, named_weights
from interp.models.fused_attention import fused_attention
from interp.models.readout import check_readout
from interp.training.device import resolve_device
from interp.training.grokfast import GrokfastFilter
from interp.training.metrics import final_metrics, first_step_at_or_above
from interp.training.rundir import CorruptCheckpointError, RunError, RunStore
from interp.training.schedule import checkpoint_steps, eval_steps
from interp.training.tasks import ClassificationTask, Task

Metrics = dict[tuple[str, str], float]


@dataclass
class TrainResult:
    """What :func:`train` returns: the final model, the run store, the final
    metrics (``steps``: the last step trained, ``final_*``: the last
    evaluation, ``diverged_at``: the step whose training loss was not finite,
    if the run stopped there), and the step it resumed from (None for a fresh
    run). ``complete`` is False when ``stop_after_step`` cut the run short."""

    model: nn.Module
    store: RunStore
    summary: dict[str, Any]
    resumed_from: int | None
    complete: bool = True


def check_task(task: Task, cfg: TrainConfig) -> None:
    """Raise ``ConfigError`` when ``cfg`` cannot train on ``task`` (checked by
    :func:`train`, and by the experiments before they create a run directory)."""
    if cfg.readout_only and (not isinstance(task, ClassificationTask) or task.position is None):
        raise ConfigError(
            "train.readout_only needs a transformer classification task "
            "(logits read at one position)"
        )


# --------------------------------------------------------------- state to save
def optimizer_state_tensors(opt: torch.optim.Optimizer, names: list[str]) -> dict[str, Tensor]:
    """The optimizer's per-parameter state (AdamW moments and step counts, SGD
    momentum buffers) under parameter names (safetensors-ready)."""
    sd = opt.state_dict()
    out: dict[str, Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if value is None:  # SGD without momentum keeps no buffer
                continue
            t = value if torch.is_tensor(value) else torch.tensor(value)
            out[f"optim.{names[idx]}.{key}"] = t
    return out


def load_optimizer_state(
    opt: torch.optim.Optimizer, names: list[str], tensors: Mapping[str, Tensor]
) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, Tensor]] = {}
    for idx, name in enumerate(names):
        prefix = f"optim.{name}."
        entry = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if entry:
            state[idx] = entry
    sd["state"] = state
    opt.load_state_dict(sd)


def _rng_tensors() -> dict[str, Tensor]:
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda{i}"] = s
    return out


def _restore_rng(tensors: Mapping[str, Tensor]) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


# -------------------------------------------------------------------- masks
def check_masks(
    masks: Mapping[str, Tensor], params: Mapping[str, nn.Parameter]
) -> dict[str, Tensor]:
    """Validate mask names/shapes against the model; return bool masks on its device."""
    out = {}
    for name, mask in masks.items():
        if name not in params:
            raise InputError(f"mask for unknown parameter {name!r}; parameters: {sorted(params)}")
        if tuple(mask.shape) != tuple(params[name].shape):
            raise InputError(
                f"mask {name!r} has shape {tuple(mask.shape)}, parameter has "
                f"{tuple(params[name].shape)}"
            )
        out[name] = mask.to(device=params[name].device, dtype=torch.bool)
    return out


@torch.no_grad()
def apply_masks(params: Mapping[str, nn.Parameter], masks: Mapping[str, Tensor]) -> None:
    """Zero every weight outside its mask (in place)."""
    for name, mask in masks.items():
        params[name].mul_(mask)


class MaskHook:
    """Fixed pruning masks: masked gradients are zeroed before the step and
    masked weights re-zeroed after it, so they stay exactly 0."""

    def __init__(self, masks: Mapping[str, Tensor] | None, params: Mapping[str, nn.Parameter]):
        self.params = params
        self.masks = check_masks(masks, params) if masks else {}
        apply_masks(params, self.masks)

    def before_step(self) -> None:
        for name, mask in self.masks.items():
            grad = self.params[name].grad
            if grad is not None:
                grad.mul_(mask)

    def after_step(self) -> None:
        if self.masks:
            apply_masks(self.params, self.masks)


# ------------------------------------------------------------------- hooks
class StopRule:
    """``train.stop_after_gen = k``: end the run at the first evaluation at
    least k steps after test accuracy first reached ``train.stop_accuracy``."""

    def __init__(self, cfg: TrainConfig, rows: list[Mapping[str, Any]] | None):
        self.after = cfg.stop_after_gen
        self.accuracy = cfg.stop_accuracy
        self.reached: int | None = None
        if self.after is not None and rows:
            self.reached = first_step_at_or_above(rows, "test", "accuracy", self.accuracy)

    def observe(self, step: int, metrics: Metrics) -> bool:
        """Record an evaluation; True when the run should end at ``step``."""
        if self.reached is None and metrics.get(("test", "accuracy"), 0.0) >= self.accuracy:
            self.reached = step
        return self.stopped_by(step)

    def stopped_by(self, step: int) -> bool:
        return (
            self.after is not None
            and self.reached is not None
            and step >= self.reached + self.after
        )


class Evaluator:
    """Evaluates the model on the task, logs one metric row per value and
    shows the latest values on the progress bar."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        loss_dtype: torch.dtype,
        store: RunStore,
        bar: tqdm,
        on_eval: Callable[[int, Metrics], None] | None,
    ):
        self.model, self.task, self.loss_dtype = model, task, loss_dtype
        self.store, self.bar, self.on_eval = store, bar, on_eval

    def __call__(self, step: int) -> Metrics:
        self.model.eval()
        res = self.task.evaluate(self.model, self.loss_dtype)
        self.model.train()
        self.store.append_metrics(
            {"step": step, "split": s, "metric": m, "value": v} for (s, m), v in res.items()
        )
        if self.on_eval is not None:
            self.on_eval(step, res)
        _postfix(self.bar, res)
        return res


class Checkpointer:
    """Saves weights plus everything a resume needs (AdamW moments, filter
    state, RNG) at the scheduled steps."""

    def __init__(
        self,
        store: RunStore,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        names: list[str],
        gf: GrokfastFilter | None,
        schedule: set[int],
    ):
        self.store, self.model, self.opt, self.names, self.gf = store, model, opt, names, gf
        self.schedule = schedule

    def __call__(self, step: int, metrics: Metrics) -> None:
        state = optimizer_state_tensors(self.opt, self.names)
        if self.gf is not None:
            state.update(self.gf.state_tensors())
        state.update(_rng_tensors())
        meta = {"metrics": {f"{s}/{m}": v for (s, m), v in metrics.items()}}
        self.store.save_checkpoint(step, self.model.state_dict(), state, meta)


def make_optimizer(params: Mapping[str, nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``params``: AdamW, or SGD with ``cfg.momentum``
    (``foreach=False``: the same rounding at any thread count)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            list(params.values()),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            foreach=False,
        )
    return torch.optim.AdamW(
        list(params.values()),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        foreach=False,
    )


def resume(
    store: RunStore,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    names: list[str],
    gf: GrokfastFilter | None,
) -> int | None:
    """Restore the newest checkpoint of ``store`` (weights, optimizer, filter,
    RNG) and drop the metric rows and checkpoints after it; returns its step,
    or None for a fresh run (whose stale metrics are cleared)."""
    store.clean_temp_files()
    existing = store.steps()
    if not existing:
        if store.metrics_path.exists():
            store.truncate_metrics(-1)
        return None
    for start in reversed(existing):
        try:
            ck = store.load_checkpoint(start)
            try:
                model.load_state_dict(ck.weights, strict=True)
            except RuntimeError as exc:
                raise CorruptCheckpointError(
                    f"{store.weights_path(start)} does not fit the run's model: {exc}"
                ) from exc
        except CorruptCheckpointError as exc:
            kept = store.quarantine(start)
            warnings.warn(
                f"{exc}; resuming from the checkpoint before it instead (its files are kept as "
                f"{', '.join(p.name for p in kept)})",
                stacklevel=3,
            )
            continue
        load_optimizer_state(opt, names, ck.state)
        if gf is not None:
            gf.load_state_tensors(ck.state)
        _restore_rng(ck.state)
        if not store.metrics_path.exists():
            warnings.warn(
                f"{store.metrics_path} is missing: the metrics of steps up to {start} are lost "
                "(the run resumes; only later evaluations are logged)",
                stacklevel=3,
            )
        store.truncate_metrics(start)
        store.remove_checkpoints_after(start)
        return start
    raise CorruptCheckpointError(
        f"no checkpoint of {store.path} can be read (all {len(existing)} are corrupt and were set "
        "aside as *.corrupt); train into a new --run-dir"
    )


# --------------------------------------------------------------------- loop
def train(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    store: RunStore,
    seed: int,
    *,
    masks: Mapping[str, Tensor] | None = None,
    device: str | torch.device = "cpu",
    quiet: bool = False,
    on_eval: Callable[[int, Metrics], None] | None = None,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``task``, writing metrics and checkpoints into ``store``.

    If ``store`` already has checkpoints (the caller has checked the config
    matches), training resumes from the last one. ``stop_after_step`` ends the
    loop early (used to simulate a killed run in tests). ``cfg.stop_after_gen``
    ends the run early after it generalises (:class:`StopRule`).
    ``cfg.fused_attention`` runs the TL-native attention layers fused while
    training and evaluating (:mod:`interp.models.fused_attention`);
    ``cfg.readout_only`` computes a classification task's last layer only at
    its read-out position (:mod:`interp.models.readout`).
    """
    if not store.exists():
        raise RunError(f"{store.path} has no config.json; create the run with RunStore.init first")
    check_task(task, cfg)
    if cfg.readout_only:
        check_readout(model)
        task = replace(task, readout_only=True)  # type: ignore[type-var]
    with fused_attention(model, cfg.fused_attention):
        dev = resolve_device(device)
        move_to(model, dev)
        task = task.to(dev)
        params = named_weights(model)
        names = list(params)
        n_all = sum(1 for _ in model.parameters())
        if n_all != len(params):
            raise RuntimeError(f"named_weights found {len(params)} of {n_all} parameters")
        masker = MaskHook(masks, params)
        opt = make_optimizer(params, cfg)
        gf = GrokfastFilter(cfg.grokfast, params) if cfg.grokfast else None
        loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32
        ckpt_set = set(checkpoint_steps(cfg.steps, cfg.checkpoint_every, cfg.checkpoint_log_early))
        eval_set = set(eval_steps(cfg.steps, cfg.eval_every, sorted(ckpt_set)))

        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            return _loop(
                model, task, cfg, store, seed, params, names, masker, opt, gf, loss_dtype,
                ckpt_set, eval_set, quiet, on_eval, stop_after_step,
            )  # fmt: skip


def _loop(
    model: nn.Module,
    task: Task,
    cfg: TrainConfig,
    store: RunStore,
    seed: int,
    params: Mapping[str, nn.Parameter],
    names: list[str],
    masker: MaskHook,
    opt: torch.optim.Optimizer,
    gf: GrokfastFilter | None,
    loss_dtype: torch.dtype,
    ckpt_set: set[int],
    eval_set: set[int],
    quiet: bool,
    on_eval: Callable[[int, Metrics], None] | None,
    stop_after_step: int | None,
) -> TrainResult:
    """The loop of :func:`train`, inside a forked global RNG: seeded with the
    run's seed for a fresh run, restored from the checkpoint on resume, so the
    saved RNG state is reproducible and the caller's generator is untouched."""
    torch.manual_seed(seed)
    resumed_from = resume(store, model, opt, names, gf)
    start = resumed_from or 0
    stop = StopRule(cfg, store.read_metric_rows() if resumed_from is not None else None)
    bar = tqdm(total=cfg.steps, initial=start, disable=quiet, desc="train", dynamic_ncols=True)
    evaluate = Evaluator(model, task, loss_dtype, store, bar, on_eval)
    checkpoint = Checkpointer(store, model, opt, names, gf, ckpt_set)
    if resumed_from is None:
        checkpoint(0, evaluate(0))
    model.train()
    already = stop.stopped_by(start)  # a resumed run that had ended early
    last, complete, warned = (start if already else cfg.steps), True, False
    diverged: tuple[int, float] | None = None  # (step, loss) where the loss stopped being finite
    for step in range(cfg.steps + 1 if already else start + 1, cfg.steps + 1):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        x, y = task.batch(step, cfg.batch_size, seed)
        loss = F.cross_entropy(task.logits(model, x).to(loss_dtype), y)
        if not bool(torch.isfinite(loss)) and not warned:
            warned = True
            value = float(loss)
            if cfg.on_nonfinite == "stop":
                diverged, last = (step, value), step - 1
                _end_at(last, store, evaluate, checkpoint, eval_set, ckpt_set)
                warnings.warn(
                    f"{store.path}: the training loss became {value} at step {step} "
                    f"(train.lr={cfg.lr:g}); the run stops at step {last}, before that "
                    "update (--set train.on_nonfinite=continue trains on)",
                    stacklevel=3,
                )
                break
            warnings.warn(
                f"{store.path}: the training loss became {value} at step {step}; training "
                "goes on (train.on_nonfinite=continue)",
                stacklevel=3,
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        masker.before_step()
        if gf is not None:
            gf.apply()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        opt.step()
        masker.after_step()
        bar.update(1)
        if step in eval_set:
            res = evaluate(step)
            bad = _nonfinite_loss(res)
            if bad is not None and not warned and cfg.on_nonfinite == "stop":
                diverged, last = (step, bad), step  # this update overflowed the loss
                checkpoint(step, res)
                warnings.warn(
                    f"{store.path}: the evaluated loss became {bad} at step {step} "
                    f"(train.lr={cfg.lr:g}); the run stops there "
                    "(--set train.on_nonfinite=continue trains on)",
                    stacklevel=3,
                )
                break
            ends = stop.observe(step, res)
            if step in ckpt_set or ends:
                checkpoint(step, res)
            if ends:
                last = step
                break
        if stop_after_step is not None and step >= stop_after_step:
            last, complete = step, False
            break
    bar.close()
    summary = {"steps": last, **final_metrics(store.read_metric_rows())}
    if diverged is not None:
        summary["diverged_at"], summary["diverged_loss"] = diverged[0], str(diverged[1])
    return TrainResult(model.eval(), store, summary, resumed_from, complete)


def _nonfinite_loss(res: Metrics) -> float | None:
    """A non-finite loss among an evaluation's results, or None."""
    return next((v for (_, m), v in res.items() if m == "loss" and not math.isfinite(v)), None)


def _end_at(
    step: int,
    store: RunStore,
    evaluate: Evaluator,
    checkpoint: Checkpointer,
    eval_set: set[int],
    ckpt_set: set[int],
) -> None:
    """Make ``step`` (the last update before a divergence) the run's end: it
    gets an evaluation and a checkpoint unless the schedule gave it both."""
    if step in store.steps():
        return
    res = evaluate(step) if step not in eval_set else _logged(store, step)
    checkpoint(step, res)


def _logged(store: RunStore, step: int) -> Metrics:
    rows = store.read_metric_rows()
    return {(r["split"], r["metric"]): r["value"] for r in rows if r["step"] == step}


def _postfix(bar: tqdm, res: Mapping[tuple[str, str], float]) -> None:
    if bar.disable:
        return
    bar.set_postfix(
        {
            f"{s}_{'acc' if m == 'accuracy' else m}": f"{v:.3f}" if m == "accuracy" else f"{v:.2e}"
            for (s, m), v in sorted(res.items())
        },
        refresh=False,
    )


__all__ = [
    "Checkpointer",
    "Evaluator",
    "MaskHook",
    "StopRule",
    "TrainConfig",
    "TrainResult",
    "apply_masks",
    "check_masks",
    "check_task",
    "make_optimizer",
    "resume",
    "train",
]
