"""Config and presets of a grokking run (Power et al. 2022; Nanda et al. 2023).

Presets:

* ``paper`` — Nanda et al. §3 / App. A: (a + b) mod 113, 30% of all ordered
  pairs for training, one-layer transformer (d_model 128, 4 heads × 32,
  d_mlp 512, ReLU, no LayerNorm), AdamW lr 1e-3, wd 1, betas (0.9, 0.98),
  10-step linear warm-up, full batch, float64 loss, 40k steps. A GPU run.
* ``tickets-mlp`` — Minegishi et al. §4.1: (a + b) mod 67 on pairs a ≤ b,
  40% train, MLP with a shared 500-wide embedding (summed), 48 ReLU units, no
  biases, AdamW lr 1e-3, wd 1, full batch, float64 loss.
* ``cpu-quick`` — (a + b) mod 59, 40% train, one-layer transformer d_model 64,
  4 × 16 heads, d_mlp 256, lr 6e-3, wd 1, 2000 steps: groks within a couple of
  minutes on 2 CPU cores (docs/experiments/grokking.md).
* ``cpu-quick-transformer`` — ``cpu-quick`` at lr 3e-3, up to 8000 steps: a
  longer grokking delay; the dense run of the tickets experiment's
  ``cpu-quick`` preset. Trains with ``train.readout_only`` (the last layer
  computed only at ``=``, :mod:`interp.models.readout`): the same function,
  faster steps.
* ``cpu-quick-mlp`` — (a + b) mod 59, 50% train, concatenated 128-wide
  operand embeddings, 128 ReLU units, lr 3e-3, wd 1.
* ``tiny`` — a seconds-long smoke configuration for tests and notebooks
  (it memorises; it is not expected to grok).
"""

from __future__ import annotations

from dataclasses import replace

from interp.config.core import ConfigError, config, setting
from interp.config.data import ModularConfig
from interp.config.models import MLPConfig, ModelConfig, TransformerConfig
from interp.config.train import TrainConfig


@config()
class GrokkingConfig:
    """One grokking run: seed, modular-arithmetic data, model, optimiser."""

    seed: int = setting(
        0, "seed of the init, the data split and the batch order", ge=0, le=2**31 - 1
    )
    data: ModularConfig = setting(ModularConfig, "the modular-arithmetic table")
    model: ModelConfig = setting(TransformerConfig, "the model (kind transformer or mlp)")
    train: TrainConfig = setting(TrainConfig, "optimiser and schedule")

    def __post_init__(self) -> None:
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
            model = replace(self.model, d_vocab=p + 1, d_vocab_out=p, n_ctx=self.model.n_ctx or 3)
        else:
            model = replace(self.model, n_tokens=p, d_out=p)
        return replace(self, model=model)


def _transformer(**kw: int) -> TransformerConfig:
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

__all__ = ["PRESETS", "GrokkingConfig"]
