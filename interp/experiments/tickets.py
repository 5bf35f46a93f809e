"""Grokking tickets (Minegishi et al., "Grokking Tickets: Lottery Tickets
Accelerate Grokking", §3–4): prune a trained grokking run, rewind, retrain.

1. Take the dense run's checkpoint at ``source_step`` (default: its last) and
   build a magnitude mask removing ``rate`` of the prunable weights
   (rate = fraction REMOVED; default 0.6, the paper's setting).
2. Rewind the surviving weights to the dense run's checkpoint at
   ``rewind_step`` (default 0, the initialisation) and zero the rest.
3. Retrain on the same split with the same optimiser, the mask held fixed by
   the trainer (masked weights stay exactly 0).

Controls (``ticket.control``): ``random`` — a random mask with the ticket's
per-matrix sparsity; ``dense_l1`` / ``dense_l2`` — no mask, the rewound dense
weights rescaled so the prunable matrices' L1 / L2 norm equals the ticket's
(Minegishi et al. §4.3). Without weight decay: ``--set train.weight_decay=0``.

The ticket run's config copies the dense run's data / model / train sections,
so it is a self-contained grokking-style run directory: ``open_run``, ``sweep``
with the Fourier measures and ``interp report`` work on it unchanged. Its
mask is stored in ``masks/ticket.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from interp.config import ConfigError, apply_overrides, check_choice, check_float, check_int
from interp.data.modular import ModularConfig
from interp.experiments.common import format_fields, prepare_run
from interp.experiments.grokking import GrokkingConfig, make_task
from interp.models import MLPConfig, TransformerConfig, make_model, named_weights
from interp.pruning.masks import load_mask, magnitude_mask, random_mask_like, save_mask
from interp.training.store import Run, open_run
from interp.training.trainer import TrainConfig, TrainResult, train

EXPERIMENT = "tickets"
MASK_FILE = "masks/ticket.safetensors"
CONTROLS = ("ticket", "random", "dense_l1", "dense_l2")


@dataclass(frozen=True)
class TicketSpec:
    """Where the ticket comes from and how it is cut."""

    source: str = ""
    source_step: int = 0
    source_sha256: str = ""
    rate: float = 0.6
    scope: Literal["global", "layer"] = "global"
    rewind_step: int = 0
    control: Literal["ticket", "random", "dense_l1", "dense_l2"] = "ticket"
    control_seed: int = 0

    def __post_init__(self) -> None:
        check_float("ticket.rate", self.rate, 0.0, 1.0, hi_open=True)
        check_choice("ticket.scope", self.scope, ("global", "layer"))
        check_choice("ticket.control", self.control, CONTROLS)
        check_int("ticket.source_step", self.source_step, lo=0)
        check_int("ticket.rewind_step", self.rewind_step, lo=0)


@dataclass(frozen=True)
class TicketsConfig:
    """A masked retraining run: the dense run's sections plus the ticket spec."""

    seed: int = 0
    data: ModularConfig = field(default_factory=ModularConfig)
    model: TransformerConfig | MLPConfig = field(default_factory=TransformerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ticket: TicketSpec = field(default_factory=TicketSpec)

    def resolve(self) -> TicketsConfig:
        return self


def ticket_config(
    source: str | Path,
    step: int | None = None,
    rate: float = 0.6,
    rewind: int = 0,
    scope: Literal["global", "layer"] = "global",
    control: str = "ticket",
    overrides: list[str] | None = None,
) -> TicketsConfig:
    """The config of a ticket (or a control) cut from ``source``, a grokking run."""
    run = open_run(source)
    if run.experiment != "grokking":
        raise ConfigError(f"tickets are cut from grokking runs; {source} is {run.experiment!r}")
    step = run.last_step if step is None else step
    for name, s in (("--step", step), ("--rewind", rewind)):
        if s not in run.steps:
            raise ConfigError(f"{name} {s}: {source} has no checkpoint there; steps: {run.steps}")
    base: GrokkingConfig = run.config
    spec = TicketSpec(
        source=str(Path(source).resolve()),
        source_step=step,
        source_sha256=run.sha(step),
        rate=rate,
        scope=scope,
        rewind_step=rewind,
        control=control,  # type: ignore[arg-type]
    )
    cfg = TicketsConfig(base.seed, base.data, base.model, base.train, spec)
    return apply_overrides(cfg, overrides) if overrides else cfg


def find_mask(run: Run, step: int, rate: float, scope: str = "global") -> dict[str, Any]:
    """Magnitude mask of ``run``'s checkpoint at ``step``."""
    return magnitude_mask(run.load(step), rate, scope)  # type: ignore[arg-type]


def run(
    cfg: TicketsConfig,
    run_dir: str,
    *,
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
    stop_after_step: int | None = None,
) -> TrainResult:
    """Cut the mask, rewind, and retrain into ``run_dir`` (resumable)."""
    spec = cfg.ticket
    source = open_run(spec.source)
    if source.sha(spec.source_step) != spec.source_sha256:
        raise ConfigError(
            f"{spec.source} step {spec.source_step} changed since this ticket was defined"
        )
    store, dev = prepare_run(EXPERIMENT, cfg, run_dir, device, threads)
    mask_path = store.path / MASK_FILE
    if mask_path.exists():
        mask = load_mask(mask_path)
    else:
        mask = find_mask(source, spec.source_step, spec.rate, spec.scope)
        if spec.control == "random":  # same per-matrix sparsity, random positions
            mask = random_mask_like(mask, spec.control_seed)
        save_mask(
            mask_path,
            mask,
            {
                "source": spec.source,
                "step": spec.source_step,
                "rate": spec.rate,
                "scope": spec.scope,
                "control": spec.control,
            },
        )
    model = make_model(cfg.model, seed=cfg.seed, device="cpu")
    model.load_state_dict(source.store.load_weights(spec.rewind_step))  # rewind
    if spec.control.startswith("dense_"):
        norm_match(model, mask, p=1 if spec.control == "dense_l1" else 2)
        mask = None
    grok = GrokkingConfig(cfg.seed, cfg.data, cfg.model, cfg.train)
    return train(
        model,
        make_task(grok),
        cfg.train,
        store,
        cfg.seed,
        masks=mask,
        device=dev,
        quiet=quiet,
        stop_after_step=stop_after_step,
    )


@torch.no_grad()
def norm_match(model: nn.Module, mask: Mapping[str, Tensor], p: int) -> float:
    """Rescale the masked matrices of a dense model so their joint Lp norm equals
    that of the ticket (the same weights times the mask): Minegishi et al.
    §4.3's norm-matched dense control. Returns the scale factor."""
    params = named_weights(model)
    ticket = sum(float((params[n] * m).abs().pow(p).sum()) for n, m in mask.items()) ** (1 / p)
    dense = sum(float(params[n].abs().pow(p).sum()) for n in mask) ** (1 / p)
    if dense == 0:
        raise ValueError("cannot norm-match an all-zero model")
    scale = ticket / dense
    for n in mask:
        params[n].mul_(scale)
    return scale


def format_summary(summary: dict[str, Any]) -> str:
    return format_fields(summary, ["t_mem", "t_gen", "t_gen_over_t_mem", "final_test_accuracy"])


__all__ = ["EXPERIMENT", "TicketSpec", "TicketsConfig", "find_mask", "run", "ticket_config"]
