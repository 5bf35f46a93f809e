"""Induction heads forming during training (Olsson et al. 2022).

Training data (``data.kind``): ``periodic`` (default) — each sequence tiles a
random segment of random period P (4 … seq_len/2) — or ``copied_span`` —
uniform random tokens in which one random-length span is copied to a later
position (:mod:`interp.data.sequences`). Only in-context lookup predicts the
repeats, so a model lowers its loss there by forming an induction circuit
(a previous-token head composing with an induction head in a later layer),
which needs two layers of attention (Elhage et al. 2021).

Presets:

* ``cpu-quick`` — 2-layer attention-only transformer (d_model 64, 4 × 16
  heads), vocab 64, context 48; dense checkpoints around the phase change;
  induction heads form within a couple of minutes on 2 CPU cores (README).
* ``1-layer`` — the same with one layer: the control that cannot form them.
* ``paper`` — a GPU-size run (2 layers, d_model 256, 8 heads, vocab 512,
  context 256).
* ``tiny`` — seconds-long smoke configuration for tests.

Metrics logged at every evaluation: train/test next-token loss and accuracy,
and on a probe of random tokens repeated twice: loss on the first and second
copy, their difference (``icl_score``) and top-1 accuracy on the second copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from interp.config import ConfigError, check_choice, check_int
from interp.data.sequences import (
    induction_training_batch,
    periodic_batch,
    repeated_random_tokens,
)
from interp.experiments.common import format_fields, pick_preset, run_experiment
from interp.models import TransformerConfig
from interp.training.tasks import GeneratedLMTask, next_token_logits
from interp.training.trainer import (
    TrainConfig,
    TrainResult,
    final_metrics,
    first_step_at_or_above,
)

EXPERIMENT = "induction"
_EVAL_SEED = 2_000_000_007  # the training stream uses seed·1_000_003 + step


@dataclass(frozen=True)
class InductionDataConfig:
    """Sequences for the induction task and the repeated-token probe."""

    kind: Literal["periodic", "copied_span"] = "periodic"
    vocab: int = 64
    seq_len: int = 48
    min_span: int = 4
    eval_size: int = 256
    probe_size: int = 64
    probe_length: int = 20

    def __post_init__(self) -> None:
        check_choice("data.kind", self.kind, ("periodic", "copied_span"))
        check_int("data.vocab", self.vocab, lo=2)
        check_int("data.seq_len", self.seq_len, lo=4)
        check_int("data.min_span", self.min_span, lo=1)
        if self.seq_len < 2 * self.min_span:
            raise ConfigError(
                f"data.seq_len={self.seq_len} must be at least 2 × data.min_span "
                f"({2 * self.min_span})"
            )
        check_int("data.eval_size", self.eval_size, lo=1)
        check_int("data.probe_size", self.probe_size, lo=1)
        check_int("data.probe_length", self.probe_length, lo=2)
        if 2 * self.probe_length > self.seq_len:
            raise ConfigError(
                f"data.probe_length={self.probe_length}: two copies must fit in "
                f"data.seq_len={self.seq_len}"
            )
        if self.probe_length > self.vocab:
            raise ConfigError(
                f"data.probe_length={self.probe_length} exceeds data.vocab={self.vocab} "
                "(probe tokens are distinct)"
            )


@dataclass(frozen=True)
class InductionConfig:
    """One induction run: seed, data, model, optimiser."""

    seed: int = 0
    data: InductionDataConfig = field(default_factory=InductionDataConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_int("seed", self.seed, lo=0, hi=2**31 - 1)
        m, d = self.model, self.data
        for name, want in (("d_vocab", d.vocab), ("d_vocab_out", d.vocab)):
            have = getattr(m, name)
            if have is not None and have != want:
                raise ConfigError(f"model.{name}={have} does not match data.vocab={want}")
        if m.n_ctx is not None and m.n_ctx < d.seq_len:
            raise ConfigError(f"model.n_ctx={m.n_ctx} is shorter than data.seq_len={d.seq_len}")
        if self.train.batch_size is None:
            raise ConfigError("train.batch_size must be set for the induction task")

    def resolve(self) -> InductionConfig:
        d = self.data
        model = replace(
            self.model, d_vocab=d.vocab, d_vocab_out=d.vocab, n_ctx=self.model.n_ctx or d.seq_len
        )
        return replace(self, model=model)


def _attn_only(n_layers: int, d_model: int, n_heads: int, d_head: int) -> TransformerConfig:
    return TransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_head,
        d_mlp=None,
        normalization=None,
    )


_QUICK_TRAIN = TrainConfig(
    steps=1200,
    lr=3e-3,
    weight_decay=0.01,
    betas=(0.9, 0.98),
    warmup_steps=50,
    batch_size=32,
    loss_dtype="float32",
    eval_every=25,
    checkpoint_every=50,
)
PRESETS: dict[str, InductionConfig] = {
    "cpu-quick": InductionConfig(model=_attn_only(2, 64, 4, 16), train=_QUICK_TRAIN),
    "1-layer": InductionConfig(model=_attn_only(1, 64, 4, 16), train=_QUICK_TRAIN),
    "paper": InductionConfig(
        data=InductionDataConfig(vocab=512, seq_len=256, probe_length=100, eval_size=512),
        model=_attn_only(2, 256, 8, 32),
        train=TrainConfig(
            steps=20_000,
            lr=1e-3,
            weight_decay=0.01,
            warmup_steps=500,
            batch_size=64,
            lr_schedule="cosine",
            loss_dtype="float32",
            eval_every=100,
            checkpoint_every=250,
        ),
    ),
    "tiny": InductionConfig(
        data=InductionDataConfig(vocab=16, seq_len=16, eval_size=32, probe_size=16, probe_length=6),
        model=_attn_only(2, 32, 2, 16),
        train=TrainConfig(
            steps=40,
            lr=1e-3,
            weight_decay=0.01,
            warmup_steps=5,
            batch_size=8,
            loss_dtype="float32",
            eval_every=10,
            checkpoint_every=20,
        ),
    ),
}


def preset(
    name: str, seed: int | None = None, overrides: list[str] | None = None
) -> InductionConfig:
    """A resolved preset with ``seed`` and ``key=value`` overrides applied."""
    return pick_preset(EXPERIMENT, PRESETS, name, seed, overrides)


def probe_tokens(cfg: InductionConfig) -> torch.Tensor:
    """The fixed repeated-random-token probe of a run (two copies)."""
    d = cfg.data
    return repeated_random_tokens(d.probe_size, d.probe_length, (0, d.vocab), _EVAL_SEED + 2)


def make_task(cfg: InductionConfig) -> GeneratedLMTask:
    d = cfg.data

    def generate(n: int, seed: int) -> torch.Tensor:
        if d.kind == "periodic":
            return periodic_batch(n, d.seq_len, (0, d.vocab), seed, d.min_span)
        return induction_training_batch(n, d.seq_len, (0, d.vocab), seed, d.min_span)

    probe = probe_tokens(cfg)
    L = d.probe_length

    @torch.no_grad()
    def probe_metrics(model: nn.Module) -> dict[tuple[str, str], float]:
        toks = probe.to(next(model.parameters()).device)
        logits = next_token_logits(model, toks).reshape(toks.shape[0], -1, d.vocab)
        target = toks[:, 1:]
        loss = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [b, pos]
        first = loss[:, : L - 1].mean().item()  # predicting tokens 1 … L−1
        second = loss[:, L:].mean().item()  # predicting tokens L+1 … 2L−1 (copies)
        acc = (logits[:, L:].argmax(-1) == target[:, L:]).double().mean().item()
        return {
            ("probe", "loss_first_copy"): first,
            ("probe", "loss_second_copy"): second,
            ("probe", "icl_score"): second - first,
            ("probe", "copy_accuracy"): acc,
        }

    return GeneratedLMTask(
        generate=generate,
        train_eval=generate(d.eval_size, _EVAL_SEED),
        test_eval=generate(d.eval_size, _EVAL_SEED + 1),
        probe_metrics=probe_metrics,
    )


def summarize_induction(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Phase change: first evaluated step with probe copy accuracy ≥ 0.5; final
    losses and probe metrics."""
    return {
        "t_induction": first_step_at_or_above(rows, "probe", "copy_accuracy", 0.5),
        **final_metrics(rows),
    }


def run(
    cfg: InductionConfig,
    run_dir: str,
    *,
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Train one induction run into ``run_dir`` (resuming if it holds this config)."""
    return run_experiment(
        EXPERIMENT,
        cfg,
        make_task,
        run_dir,
        device=device,
        threads=threads,
        quiet=quiet,
        stop_after_step=stop_after_step,
        summarize=summarize_induction,
    )


def format_summary(summary: dict[str, Any]) -> str:
    """The summary fields a user looks at first, one per line."""
    return format_fields(
        summary,
        [
            "t_induction",
            "final_test_loss",
            "final_probe_loss_first_copy",
            "final_probe_loss_second_copy",
            "final_probe_copy_accuracy",
        ],
    )
