"""The one training loop every experiment uses.

AdamW with linear warm-up (optionally cosine decay), full-batch or minibatch,
optional float64 loss (Nanda et al. 2023 App. A: float32 cross-entropy causes
loss spikes), optional Grokfast filter, optional fixed pruning masks (weights
outside the mask are exactly 0 after every step), evaluation every k steps and
checkpoints on a log-then-linear schedule.

Reproducibility: init, data split and batch order each come from the config
seed through private generators; the batch for step ``s`` is a pure function
of (seed, s), so nothing about batch order has to be saved. A killed run resumes
from its last checkpoint (weights, AdamW moments, filter state, global RNG) and
ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from tqdm.auto import tqdm

from interp.config import ConfigError, check_choice, check_float, check_int
from interp.models import move_to, named_weights
from interp.models.fused_attention import fused_attention
from interp.models.readout import check_readout, readout_logits
from interp.training.grokfast import GrokfastConfig, GrokfastFilter
from interp.training.schedule import checkpoint_steps, eval_steps
from interp.training.store import SUMMARY_FILE, RunError, RunStore, atomic_write_json

ACC_THRESHOLD = 0.95


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and bookkeeping of one training run."""

    steps: int = 3000
    lr: float = 3e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 10
    lr_schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.1
    batch_size: int | None = None
    loss_dtype: Literal["float32", "float64"] = "float64"
    grad_clip: float | None = None
    grokfast: GrokfastConfig | None = None
    eval_every: int = 10
    checkpoint_every: int = 100
    checkpoint_log_early: bool = True
    stop_after_gen: int | None = None
    # the test accuracy stop_after_gen counts from (t_gen itself stays at 95%)
    stop_accuracy: float = ACC_THRESHOLD
    fused_attention: bool = False
    # transformer classification: compute the last layer only at the read-out
    # position (interp.models.readout); same function, other float rounding
    readout_only: bool = False

    def __post_init__(self) -> None:
        check_int("train.steps", self.steps, lo=1, hi=10**9)
        check_float("train.lr", self.lr, 0.0, 10.0, lo_open=True)
        check_float("train.weight_decay", self.weight_decay, lo=0.0)
        if len(self.betas) != 2:
            raise ConfigError(f"train.betas must have 2 entries, got {self.betas!r}")
        for i, b in enumerate(self.betas):
            check_float(f"train.betas[{i}]", b, 0.0, 1.0, hi_open=True)
        check_float("train.eps", self.eps, 0.0, 1.0, lo_open=True)
        check_int("train.warmup_steps", self.warmup_steps, lo=0)
        check_choice("train.lr_schedule", self.lr_schedule, ("constant", "cosine"))
        check_float("train.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if self.batch_size is not None:
            check_int("train.batch_size", self.batch_size, lo=1)
        check_choice("train.loss_dtype", self.loss_dtype, ("float32", "float64"))
        if self.grad_clip is not None:
            check_float("train.grad_clip", self.grad_clip, 0.0, lo_open=True)
        check_int("train.eval_every", self.eval_every, lo=1)
        check_int("train.checkpoint_every", self.checkpoint_every, lo=1)
        if self.stop_after_gen is not None:
            check_int("train.stop_after_gen", self.stop_after_gen, lo=0)
        check_float("train.stop_accuracy", self.stop_accuracy, 0.0, 1.0, lo_open=True)

    def lr_at(self, step: int) -> float:
        """Learning rate of the update that produces ``step`` (1-based)."""
        scale = 1.0 if self.warmup_steps == 0 else min(1.0, step / self.warmup_steps)
        if self.lr_schedule == "cosine" and step > self.warmup_steps:
            span = max(1, self.steps - self.warmup_steps)
            frac = min(1.0, (step - self.warmup_steps) / span)
            cos = 0.5 * (1 + math.cos(math.pi * frac))
            scale *= self.min_lr_ratio + (1 - self.min_lr_ratio) * cos
        return self.lr * scale


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

    train_inputs: Int[Tensor, "n_train ..."]
    train_labels: Int[Tensor, " n_train"]
    test_inputs: Int[Tensor, "n_test ..."]
    test_labels: Int[Tensor, " n_test"]
    position: int | None = -1
    readout_only: bool = False

    def __post_init__(self) -> None:
        if self.train_inputs.shape[0] == 0:
            raise ValueError("the training set is empty")
        if self.train_inputs.shape[0] != self.train_labels.shape[0]:
            raise ValueError(
                f"train inputs ({self.train_inputs.shape[0]}) and labels "
                f"({self.train_labels.shape[0]}) differ in length"
            )
        if self.test_inputs.shape[0] != self.test_labels.shape[0]:
            raise ValueError("test inputs and labels differ in length")

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


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` → cuda when available, else cpu; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return dev


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (``INTERP_THREADS`` env var when None)."""
    if threads is None:
        env = os.environ.get("INTERP_THREADS")
        threads = int(env) if env else None
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# --------------------------------------------------------------- state to save
def optimizer_state_tensors(opt: torch.optim.Optimizer, names: list[str]) -> dict[str, Tensor]:
    """AdamW moments and step counts under parameter names (safetensors-ready)."""
    sd = opt.state_dict()
    out: dict[str, Tensor] = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
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
            raise ValueError(f"mask for unknown parameter {name!r}; parameters: {sorted(params)}")
        if tuple(mask.shape) != tuple(params[name].shape):
            raise ValueError(
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


# --------------------------------------------------------------------- loop
@dataclass
class TrainResult:
    """What ``train`` returns: the final model, the run store and its summary."""

    model: nn.Module
    store: RunStore
    summary: dict[str, Any]
    resumed_from: int | None


def check_task(task: Task, cfg: TrainConfig) -> None:
    """Raise ``ConfigError`` when ``cfg`` cannot train on ``task`` (checked by
    :func:`train`, and by the experiments before they create a run directory)."""
    if cfg.readout_only and (not isinstance(task, ClassificationTask) or task.position is None):
        raise ConfigError(
            "train.readout_only needs a transformer classification task "
            "(logits read at one position)"
        )


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
    on_eval: Callable[[int, dict[tuple[str, str], float]], None] | None = None,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``task``, writing metrics and checkpoints into ``store``.

    If ``store`` already has checkpoints (the caller has checked the config
    matches), training resumes from the last one. ``stop_after_step`` ends the
    loop early without a summary (used to simulate a killed run in tests).
    ``cfg.stop_after_gen = k`` ends the run (with a checkpoint and a summary) at
    the first evaluation ≥ k steps after test accuracy first reached
    ``cfg.stop_accuracy`` (default 95%, the t_gen threshold).
    ``cfg.fused_attention`` runs the TL-native attention layers fused while
    training and evaluating (see :mod:`interp.models.fused_attention`);
    ``cfg.readout_only`` computes a classification task's last layer only at
    its read-out position (see :mod:`interp.models.readout`).
    """
    if not store.exists():
        raise RunError(f"{store.path} has no config.json; create the run with RunStore.init first")
    check_task(task, cfg)
    if cfg.readout_only:
        check_readout(model)
        task = replace(task, readout_only=True)
    with fused_attention(model, cfg.fused_attention):
        dev = resolve_device(device)
        move_to(model, dev)
        task = task.to(dev)
        params = named_weights(model)
        names = list(params)
        n_all = sum(1 for _ in model.parameters())
        if n_all != len(params):
            raise RuntimeError(f"named_weights found {len(params)} of {n_all} parameters")
        mask_map = check_masks(masks, params) if masks else {}
        apply_masks(params, mask_map)

        opt = torch.optim.AdamW(
            list(params.values()),
            lr=cfg.lr,
            betas=cfg.betas,
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            foreach=False,
        )
        gf = GrokfastFilter(cfg.grokfast, params) if cfg.grokfast else None
        loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32

        ckpt_set = set(checkpoint_steps(cfg.steps, cfg.checkpoint_every, cfg.checkpoint_log_early))
        eval_set = set(eval_steps(cfg.steps, cfg.eval_every, sorted(ckpt_set)))

        start = 0
        resumed_from = None
        store.clean_temp_files()
        existing = store.steps()
        if existing:
            start = existing[-1]
            ck = store.load_checkpoint(start)
            model.load_state_dict(ck.weights, strict=True)
            load_optimizer_state(opt, names, ck.state)
            if gf is not None:
                gf.load_state_tensors(ck.state)
            _restore_rng(ck.state)
            store.truncate_metrics(start)
            store.remove_checkpoints_after(start)
            resumed_from = start
        elif store.metrics_path.exists():
            store.truncate_metrics(-1)
        stop_from = None
        if cfg.stop_after_gen is not None and existing:
            stop_from = first_step_at_or_above(
                store.read_metric_rows(), "test", "accuracy", cfg.stop_accuracy
            )

        def save(step: int, metrics: dict[tuple[str, str], float]) -> None:
            state = optimizer_state_tensors(opt, names)
            if gf is not None:
                state.update(gf.state_tensors())
            state.update(_rng_tensors())
            meta = {"metrics": {f"{s}/{m}": v for (s, m), v in metrics.items()}}
            store.save_checkpoint(step, model.state_dict(), state, meta)

        def evaluate(step: int) -> dict[tuple[str, str], float]:
            model.eval()
            res = task.evaluate(model, loss_dtype)
            model.train()
            store.append_metrics(
                {"step": step, "split": s, "metric": m, "value": v} for (s, m), v in res.items()
            )
            if on_eval is not None:
                on_eval(step, res)
            return res

        bar = tqdm(total=cfg.steps, initial=start, disable=quiet, desc="train", dynamic_ncols=True)
        if start == 0:
            res = evaluate(0)
            save(0, res)
            _postfix(bar, res)
        model.train()
        last = cfg.steps
        first = start + 1
        if stop_from is not None and start >= stop_from + (cfg.stop_after_gen or 0):
            first, last = cfg.steps + 1, start  # it had already stopped after generalising
        for step in range(first, cfg.steps + 1):
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(step)
            x, y = task.batch(step, cfg.batch_size, seed)
            logits = task.logits(model, x)
            loss = F.cross_entropy(logits.to(loss_dtype), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if mask_map:
                for name, mask in mask_map.items():
                    grad = params[name].grad
                    if grad is not None:
                        grad.mul_(mask)
            if gf is not None:
                gf.apply()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
            opt.step()
            if mask_map:
                apply_masks(params, mask_map)
            bar.update(1)
            if step in eval_set:
                res = evaluate(step)
                _postfix(bar, res)
                if stop_from is None and res.get(("test", "accuracy"), 0.0) >= cfg.stop_accuracy:
                    stop_from = step
                stop = (
                    cfg.stop_after_gen is not None
                    and stop_from is not None
                    and step >= stop_from + cfg.stop_after_gen
                )
                if step in ckpt_set or stop:
                    save(step, res)
                if stop:
                    last = step
                    break
            if stop_after_step is not None and step >= stop_after_step:
                bar.close()
                return TrainResult(model.eval(), store, {}, resumed_from)
        bar.close()
        summary = summarize(store.read_metric_rows())
        summary["steps"] = last
        atomic_write_json(store.path / SUMMARY_FILE, summary)
        return TrainResult(model.eval(), store, summary, resumed_from)


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


def first_step_at_or_above(
    rows: list[Mapping[str, Any]], split: str, metric: str, threshold: float
) -> int | None:
    """First evaluated step where ``split/metric`` ≥ threshold (None if never)."""
    steps = sorted(
        r["step"]
        for r in rows
        if r["split"] == split and r["metric"] == metric and r["value"] >= threshold
    )
    return steps[0] if steps else None


def summarize(rows: list[Mapping[str, Any]], threshold: float = ACC_THRESHOLD) -> dict[str, Any]:
    """t_mem / t_gen: first step with train / test accuracy ≥ threshold; their
    ratio; final losses and accuracies (Power et al. 2022 §3; Nanda et al. §5)."""
    t_mem = first_step_at_or_above(rows, "train", "accuracy", threshold)
    t_gen = first_step_at_or_above(rows, "test", "accuracy", threshold)
    return {
        "threshold": threshold,
        "t_mem": t_mem,
        "t_gen": t_gen,
        "t_gen_over_t_mem": (t_gen / t_mem) if (t_mem and t_gen) else None,
        **final_metrics(rows),
    }


def final_metrics(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``final_step`` and every metric at it as ``final_<split>_<metric>``."""
    last = max((r["step"] for r in rows), default=None)
    final = {f"final_{r['split']}_{r['metric']}": r["value"] for r in rows if r["step"] == last}
    return {"final_step": last, **final}
