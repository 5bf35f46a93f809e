"""Grokking on modular arithmetic (Power et al. 2022; Nanda et al. 2023).

Presets:

* ``paper`` — Nanda et al. §3 / App. A: (a + b) mod 113, 30% of all ordered
  pairs for training, one-layer transformer (d_model 128, 4 heads × 32,
  d_mlp 512, ReLU, no LayerNorm), AdamW lr 1e-3, wd 1, betas (0.9, 0.98),
  10-step linear warm-up, full batch, float64 loss, 40k steps. A GPU run.
* ``tickets-mlp`` — Minegishi et al. §4.1: (a + b) mod 67 on pairs a ≤ b,
  40% train, MLP with a shared 500-wide embedding (summed), 48 ReLU units, no
  biases, AdamW lr 1e-3, wd 1, full batch, float64 loss.
* ``cpu-quick`` — the fast CPU setting measured for this repo (README):
  (a + b) mod 59, 40% train, one-layer transformer d_model 64, 4 × 16 heads,
  d_mlp 256, lr 6e-3, wd 1, 2000 steps; groks in well under a minute on
  2 cores (t_gen 400-1210 steps for seeds 0-2; README).
* ``cpu-quick-transformer`` — ``cpu-quick`` at lr 3e-3 (up to 8000 steps):
  a longer grokking delay (t_gen 970–3290 steps over seeds 0–9), the
  dense run of the tickets experiment's ``cpu-quick`` preset (at lr 6e-3 the
  dense run groks so soon after memorising that a ticket has little to skip).
  Trains with ``train.readout_only`` (the last layer computed only at ``=``,
  :mod:`interp.models.readout`): 2.2× faster steps, the same function.
* ``cpu-quick-mlp`` — (a + b) mod 59, 50% train, concatenated 128-wide
  operand embeddings, 128 ReLU units, lr 3e-3, wd 1; groks in ~15 s.
* ``tiny`` — a seconds-long smoke configuration for tests and notebooks
  (it memorises; it is not expected to grok).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from interp.config import ConfigError, check_int
from interp.data.modular import ModularConfig, ModularData, make_modular
from interp.experiments.common import format_fields, pick_preset, run_experiment
from interp.models import MLPConfig, TransformerConfig
from interp.training.trainer import (
    ClassificationTask,
    TrainConfig,
    TrainResult,
)

EXPERIMENT = "grokking"


@dataclass(frozen=True)
class GrokkingConfig:
    """One grokking run: seed, modular-arithmetic data, model, optimiser."""

    seed: int = 0
    data: ModularConfig = field(default_factory=ModularConfig)
    model: TransformerConfig | MLPConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, lo=0, hi=2**31 - 1)
        p = self.data.p
        m = self.model
        if isinstance(m, TransformerConfig):
            expect = {"d_vocab": p + 1, "d_vocab_out": p}
            if m.n_ctx is not None and m.n_ctx < 3:
                raise ConfigError(f"model.n_ctx must be >= 3 for 'a b =' inputs, got {m.n_ctx}")
        else:
            expect = {"n_tokens": p, "d_out": p}
        for name, want in expect.items():
            have = getattr(m, name)
            if have is not None and have != want:
                raise ConfigError(
                    f"model.{name}={have} does not match data.p={p} (expected {want}); "
                    f"leave it null to derive it from the data"
                )

    def resolve(self) -> GrokkingConfig:
        """Fill the model's vocabulary sizes from ``data.p``."""
        p = self.data.p
        if isinstance(self.model, TransformerConfig):
            model = replace(
                self.model,
                d_vocab=p + 1,
                d_vocab_out=p,
                n_ctx=self.model.n_ctx or 3,
            )
        else:
            model = replace(self.model, n_tokens=p, d_out=p)
        return replace(self, model=model)


def _transformer(**kw: Any) -> TransformerConfig:
    return TransformerConfig(**kw)


PRESETS: dict[str, GrokkingConfig] = {
    "paper": GrokkingConfig(
        data=ModularConfig(p=113, op="+", pairs="ordered", train_fraction=0.3),
        model=_transformer(n_layers=1, n_heads=4, d_model=128, d_head=32, d_mlp=512),
        train=TrainConfig(
            steps=40_000,
            lr=1e-3,
            weight_decay=1.0,
            betas=(0.9, 0.98),
            warmup_steps=10,
            loss_dtype="float64",
            eval_every=100,
            checkpoint_every=500,
        ),
    ),
    "tickets-mlp": GrokkingConfig(
        data=ModularConfig(p=67, op="+", pairs="unordered", train_fraction=0.4),
        model=MLPConfig(
            d_embed=500,
            d_hidden=48,
            d_readout=500,
            combine="sum",
            shared_embedding=True,
            bias=False,
            init="scaled_normal",
        ),
        train=TrainConfig(
            steps=30_000,
            lr=1e-3,
            weight_decay=1.0,
            betas=(0.9, 0.98),
            warmup_steps=0,
            loss_dtype="float64",
            eval_every=50,
            checkpoint_every=500,
        ),
    ),
    "cpu-quick": GrokkingConfig(
        data=ModularConfig(p=59, op="+", pairs="ordered", train_fraction=0.4),
        model=_transformer(n_layers=1, n_heads=4, d_model=64, d_head=16, d_mlp=256),
        train=TrainConfig(
            steps=2000,
            lr=6e-3,
            weight_decay=1.0,
            betas=(0.9, 0.98),
            warmup_steps=10,
            loss_dtype="float64",
            eval_every=10,
            checkpoint_every=100,
        ),
    ),
    "cpu-quick-mlp": GrokkingConfig(
        data=ModularConfig(p=59, op="+", pairs="ordered", train_fraction=0.5),
        model=MLPConfig(d_embed=128, d_hidden=128, combine="concat", bias=False),
        train=TrainConfig(
            steps=3000,
            lr=3e-3,
            weight_decay=1.0,
            betas=(0.9, 0.98),
            warmup_steps=0,
            loss_dtype="float64",
            eval_every=10,
            checkpoint_every=100,
        ),
    ),
    "tiny": GrokkingConfig(
        data=ModularConfig(p=17, op="+", pairs="ordered", train_fraction=0.5),
        model=_transformer(n_layers=1, n_heads=2, d_model=32, d_head=16, d_mlp=64),
        train=TrainConfig(
            steps=60,
            lr=3e-3,
            weight_decay=1.0,
            warmup_steps=5,
            eval_every=10,
            checkpoint_every=20,
        ),
    ),
}
PRESETS["cpu-quick-transformer"] = replace(
    PRESETS["cpu-quick"],
    train=replace(PRESETS["cpu-quick"].train, lr=3e-3, steps=8000, readout_only=True),
)


def preset(
    name: str, seed: int | None = None, overrides: list[str] | None = None
) -> GrokkingConfig:
    """A resolved preset with ``seed`` and ``key=value`` overrides applied."""
    return pick_preset(EXPERIMENT, PRESETS, name, seed, overrides)


def make_data(cfg: GrokkingConfig) -> ModularData:
    return make_modular(cfg.data, seed=cfg.seed)


def make_task(cfg: GrokkingConfig, data: ModularData | None = None) -> ClassificationTask:
    """Train/test tensors in the input form the configured model takes."""
    data = data or make_data(cfg)
    if isinstance(cfg.model, TransformerConfig):
        return ClassificationTask(
            data.tokens("train"), data.labels_train, data.tokens("test"), data.labels_test, -1
        )
    return ClassificationTask(
        data.pairs_train, data.labels_train, data.pairs_test, data.labels_test, None
    )


def run(
    cfg: GrokkingConfig,
    run_dir: str,
    *,
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train one grokking run into ``run_dir`` (resuming if it holds this config)."""
    return run_experiment(
        EXPERIMENT,
        cfg,
        make_task,
        run_dir,
        device=device,
        threads=threads,
        quiet=quiet,
        stop_after_step=stop_after_step,
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The summary fields a user looks at first, one per line."""
    return format_fields(
        summary,
        [
            "t_mem",
            "t_gen",
            "t_gen_over_t_mem",
            "final_train_loss",
            "final_test_loss",
            "final_train_accuracy",
            "final_test_accuracy",
        ],
    )


__all__ = [
    "EXPERIMENT",
    "PRESETS",
    "GrokkingConfig",
    "format_summary",
    "make_data",
    "make_task",
    "preset",
    "run",
]
