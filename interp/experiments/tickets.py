"""Grokking tickets (Minegishi et al., "Grokking Tickets: Lottery Tickets
Accelerate Grokking", §3–4): prune a trained grokking run, rewind, retrain.

1. Take the dense run's checkpoint at ``source_step`` (default: its last) and
   build a magnitude mask removing ``rate`` of the prunable weights
   (rate = fraction REMOVED; default 0.6, the paper's setting).
2. Rewind the surviving weights to the dense run's checkpoint at
   ``rewind_step`` (default 0, the initialisation) and zero the rest.
3. Retrain on the same split with the same optimiser, the mask held fixed by
   the trainer (masked weights stay exactly 0).

The ticket run's config copies the dense run's data / model / train sections,
so it is a self-contained grokking-style run directory: ``open_run``, ``sweep``
with the Fourier measures and ``interp report`` work on it unchanged. Its
mask is stored in ``masks/ticket.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp.config import ConfigError, check_choice, check_float, check_int
from interp.data.modular import ModularConfig
from interp.experiments.common import format_fields, prepare_run
from interp.experiments.grokking import GrokkingConfig, make_task
from interp.models import MLPConfig, TransformerConfig, make_model
from interp.pruning.masks import load_mask, magnitude_mask, save_mask
from interp.training.store import Run, open_run
from interp.training.trainer import TrainConfig, TrainResult, train

EXPERIMENT = "tickets"
MASK_FILE = "masks/ticket.safetensors"


@dataclass(frozen=True)
class TicketSpec:
    """Where the ticket comes from and how it is cut."""

    source: str = ""
    source_step: int = 0
    source_sha256: str = ""
    rate: float = 0.6
    scope: Literal["global", "layer"] = "global"
    rewind_step: int = 0

    def __post_init__(self) -> None:
        check_float("ticket.rate", self.rate, 0.0, 1.0, hi_open=True)
        check_choice("ticket.scope", self.scope, ("global", "layer"))
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
) -> TicketsConfig:
    """The config of a ticket cut from ``source`` (a finished grokking run)."""
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
    )
    return TicketsConfig(base.seed, base.data, base.model, base.train, spec)


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
        save_mask(
            mask_path,
            mask,
            {
                "source": spec.source,
                "step": spec.source_step,
                "rate": spec.rate,
                "scope": spec.scope,
            },
        )
    model = make_model(cfg.model, seed=cfg.seed, device="cpu")
    model.load_state_dict(source.store.load_weights(spec.rewind_step))  # rewind
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


def format_summary(summary: dict[str, Any]) -> str:
    return format_fields(summary, ["t_mem", "t_gen", "t_gen_over_t_mem", "final_test_accuracy"])


__all__ = ["EXPERIMENT", "TicketSpec", "TicketsConfig", "find_mask", "run", "ticket_config"]
