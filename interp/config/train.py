"""The optimiser, schedule and bookkeeping of one training run (``train.*``)."""

from __future__ import annotations

import math
from typing import Literal

from interp.config.core import ConfigError, config, setting

#: The accuracy that defines t_mem and t_gen (Power et al. 2022 §3).
ACC_THRESHOLD = 0.95


@config("train.grokfast")
class GrokfastConfig:
    """Grokfast gradient filter (Lee et al. 2024, Algorithms 1 and 2); the
    defaults are the paper's (EMA α = 0.98, λ = 2)."""

    kind: Literal["ema", "ma"] = setting(
        "ema", "ema: h ← αh + (1−α)g (Alg. 2); ma: mean of the last `window` gradients (Alg. 1)"
    )
    alpha: float = setting(0.98, "EMA decay α", ge=0.0, lt=1.0)
    lamb: float = setting(2.0, "amplification λ: the gradient gets + λh", ge=0.0)
    window: int = setting(100, "MA window (gradients)", ge=1, le=100_000)


@config("train")
class TrainConfig:
    """AdamW (or SGD) with linear warm-up (optionally cosine decay),
    evaluation and checkpoint schedule, and the rule that ends a run early."""

    steps: int = setting(
        3000, "optimizer steps (the step cap when a stop rule is set)", ge=1, le=10**9
    )
    lr: float = setting(3e-3, "peak learning rate", gt=0.0, le=10.0)
    optimizer: Literal["adamw", "sgd"] = setting(
        "adamw", "adamw (Adam with decoupled weight decay; Adam when weight_decay = 0) or sgd"
    )
    momentum: float = setting(0.0, "sgd: heavy-ball momentum (0 = plain SGD)", ge=0.0, lt=1.0)
    weight_decay: float = setting(
        1.0, "weight decay (AdamW: decoupled; SGD: L2 added to the gradient)", ge=0.0
    )
    betas: tuple[float, float] = setting((0.9, 0.98), "AdamW (β1, β2), each in [0, 1)")
    eps: float = setting(1e-8, "AdamW ε", gt=0.0, le=1.0)
    warmup_steps: int = setting(10, "linear warm-up from 0 to lr over this many steps", ge=0)
    lr_schedule: Literal["constant", "cosine"] = setting(
        "constant", "after warm-up: constant, or cosine decay to min_lr_ratio·lr at `steps`"
    )
    min_lr_ratio: float = setting(0.1, "cosine schedule: final lr / peak lr", ge=0.0, le=1.0)
    batch_size: int | None = setting(None, "examples per step; null = the full training set", ge=1)
    loss_dtype: Literal["float32", "float64"] = setting(
        "float64", "dtype of the cross-entropy (Nanda et al. App. A: float32 causes loss spikes)"
    )
    grad_clip: float | None = setting(
        None, "clip the global gradient norm to this; null = off", gt=0.0
    )
    grokfast: GrokfastConfig | None = setting(None, "Grokfast gradient filter; null = off")
    eval_every: int = setting(10, "evaluate (and log metrics) every this many steps", ge=1)
    checkpoint_every: int = setting(100, "checkpoint every this many steps", ge=1)
    checkpoint_log_early: bool = setting(
        True, "also checkpoint at steps 1, 2, 4, … below checkpoint_every (Pythia's schedule)"
    )
    stop_after_gen: int | None = setting(
        None,
        "end the run this many steps after test accuracy first reaches stop_accuracy; "
        "null = train all `steps`",
        ge=0,
    )
    stop_accuracy: float = setting(
        ACC_THRESHOLD, "test accuracy that stop_after_gen counts from", gt=0.0, le=1.0
    )
    fused_attention: bool = setting(
        False,
        "train with fused SDPA attention on layers no hook listens to (speed; "
        "interp.models.fused_attention)",
    )
    on_nonfinite: Literal["stop", "continue"] = setting(
        "stop", "when the training loss is NaN or infinite: stop the run before that update "
        "(its last finite state is kept), or continue",
    )  # fmt: skip
    readout_only: bool = setting(
        False,
        "classification: compute the last layer only at the read-out position "
        "(same function, other rounding; interp.models.readout)",
    )

    def __post_init__(self) -> None:
        if self.optimizer == "adamw" and self.momentum:
            raise ConfigError("train.momentum applies to optimizer sgd; AdamW uses train.betas")
        for i, b in enumerate(self.betas):
            if not (0.0 <= b < 1.0 and math.isfinite(b)):
                raise ConfigError(f"betas[{i}] must be in [0, 1), got {b!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate of the update that produces ``step`` (1-based)."""
        scale = 1.0 if self.warmup_steps == 0 else min(1.0, step / self.warmup_steps)
        if self.lr_schedule == "cosine" and step > self.warmup_steps:
            span = max(1, self.steps - self.warmup_steps)
            frac = min(1.0, (step - self.warmup_steps) / span)
            cos = 0.5 * (1 + math.cos(math.pi * frac))
            scale *= self.min_lr_ratio + (1 - self.min_lr_ratio) * cos
        return self.lr * scale


__all__ = ["ACC_THRESHOLD", "GrokfastConfig", "TrainConfig"]
