"""Grokking tickets (Minegishi et al., "Grokking Tickets: Lottery Tickets
Accelerate Grokking", §3–4): prune a trained grokking run, rewind, retrain.

1. Take the dense run's checkpoint at ``source_step`` (default: its last) and
   build a magnitude mask removing ``rate`` of the prunable weights
   (rate = fraction REMOVED; default 0.6, the paper's setting).
2. Rewind the surviving weights to the dense run's checkpoint at
   ``rewind_step`` (default 0, the initialisation) and zero the rest.
3. Retrain on the same split with the same optimiser, the mask held fixed by
   the trainer (masked weights stay exactly 0).

Controls (``ticket.control``), as the Grokking-Tickets code builds them:
``random`` — random scores under one global threshold at the same rate;
``dense_l1`` / ``dense_l2`` — no mask, the rewound dense weights rescaled so
the prunable matrices' L1 / L2 norm equals the ticket's (Minegishi et al.
§4.3); ``snip`` / ``grasp`` / ``synflow`` — pruning at initialisation at the
same rate and scope, scored on the rewound weights (Minegishi et al. §4.2;
:func:`pai_mask`). Named variants: ``random_matched`` (the ticket's
per-matrix counts, a stricter control), ``grasp_t1`` and
``synflow_iterative`` (:func:`pai_mask`). Without weight decay:
``--set train.weight_decay=0``.

The ticket run's config copies the dense run's data / model / train sections,
so it is a self-contained grokking-style run directory: ``open_run``, ``sweep``
with the Fourier measures and ``interp report`` work on it unchanged. Its
mask is stored in ``masks/ticket.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interp.config.core import ConfigError, apply_overrides, to_dict
from interp.config.grokking import GrokkingConfig
from interp.config.tickets import CONTROLS, REDEFINED, TicketsConfig, TicketSpec
from interp.experiments.base import Setup
from interp.experiments.common import format_fields
from interp.experiments.grokking import Grokking, make_task
from interp.models import HookedMLP, make_model, named_weights
from interp.pruning.masks import (
    MASK_FILE,
    Mask,
    load_mask,
    magnitude_mask,
    mask_from_scores,
    prunable_weights,
    random_mask,
    random_mask_like,
    save_mask,
)
from interp.pruning.scores import grasp_scores, snip_scores, synflow_scores
from interp.training.rundir import Run, RunStore, open_run
from interp.training.tasks import ClassificationTask
from interp.training.trainer import TrainResult, train

if TYPE_CHECKING:
    from interp.viz.report import Page

PAI = ("snip", "grasp", "synflow", "grasp_t1", "synflow_iterative")
SYNFLOW_ITERATIONS = 100  # Tanaka et al. 2020 §5 (synflow_iterative)
GRASP_TEMPERATURE = 200.0  # the Grokking-Tickets code's GraSP (after Wang et al.'s)
#: recorded with masks of the controls REDEFINED as the Grokking-Tickets code's
VARIANT = "grokking-tickets"


def ticket_config(
    source: str | Path,
    step: int | None = None,
    rate: float = 0.6,
    rewind: int = 0,
    scope: Literal["global", "layer"] = "global",
    control: str = "ticket",
    overrides: list[str] | None = None,
    imp_levels: int = 1,
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
        imp_levels=imp_levels,
    )
    cfg = TicketsConfig(base.seed, base.data, base.model, base.train, spec)
    return apply_overrides(cfg, overrides) if overrides else cfg


def find_mask(run: Run, step: int, rate: float, scope: str = "global") -> dict[str, Any]:
    """Magnitude mask of ``run``'s checkpoint at ``step``."""
    return magnitude_mask(run.load(step), rate, scope)  # type: ignore[arg-type]


def nested_magnitude_mask(
    model: nn.Module, previous: Mask | None, rate: float, scope: Literal["global", "layer"]
) -> Mask:
    """Magnitude mask at ``rate`` that keeps nothing ``previous`` removed
    (removed weights rank below every surviving one)."""
    params = prunable_weights(model)
    scores = {n: p.detach().abs().cpu() for n, p in params.items()}
    if previous is not None:
        scores = {
            n: torch.where(previous[n], s, torch.full_like(s, -1.0)) for n, s in scores.items()
        }
    return mask_from_scores(scores, rate, scope)


def imp_mask(
    cfg: TicketsConfig,
    source: Run,
    store: RunStore,
    task: ClassificationTask,
    dev: Any,
    quiet: bool,
) -> Mask:
    """Iterative magnitude pruning (Frankle & Carbin 2019 §2, "iterative
    pruning"): ``imp_levels`` rounds of prune → rewind → retrain, removing
    ``1 − (1 − rate)^(k/levels)`` of the weights after round k. Rounds
    1 … levels−1 train into ``RUN_DIR/imp/level<k>/`` (resumable run
    directories with the same optimiser and budget as the final run); the
    returned mask, at the full ``rate``, comes from the last of them."""
    spec = cfg.ticket
    model = make_model(cfg.model, seed=cfg.seed, device="cpu")
    model.load_state_dict(source.store.load_weights(spec.source_step))
    mask: Mask | None = None
    for k in range(1, spec.imp_levels):
        rate_k = 1.0 - (1.0 - spec.rate) ** (k / spec.imp_levels)
        mask = nested_magnitude_mask(model, mask, rate_k, spec.scope)
        level = RunStore(store.path / "imp" / f"level{k}")
        level.init(  # the same device, threads and CPU as the run that trains it
            "tickets-imp-level",
            to_dict(cfg) | {"imp_level": k, "imp_rate": rate_k},
            store.read_config().get("runtime", {}),
        )
        model = make_model(cfg.model, seed=cfg.seed, device="cpu")
        model.load_state_dict(source.store.load_weights(spec.rewind_step))
        if not level.is_done():
            train(model, task, cfg.train, level, cfg.seed, masks=mask, device=dev, quiet=quiet)
            level.mark_done()
        model = make_model(cfg.model, seed=cfg.seed, device="cpu")
        model.load_state_dict(level.load_weights(level.steps()[-1]))
    return nested_magnitude_mask(model, mask, spec.rate, spec.scope)


def pai_mask(
    method: str,
    model: nn.Module,
    task: ClassificationTask,
    rate: float,
    scope: Literal["global", "layer"] = "global",
) -> Mask:
    """A pruning-at-initialisation mask for a grokking model, scored on the
    full training set (the reference code's one batch):

    * ``snip``: ``|θ ⊙ ∂L/∂θ|`` of the cross-entropy;
    * ``grasp``: the Grokking-Tickets code's GraSP — logits divided by
      T = 200, ``g`` and ``H`` over the prunable weights;
      ``grasp_t1``: T = 1 and ``g`` over every parameter;
    * ``synflow``: the Grokking-Tickets code's SynFlow — the linearised
      network run on the training inputs, one round;
      ``synflow_iterative``: the SynFlow paper's all-ones input (every token's
      embedding row summed) over :data:`SYNFLOW_ITERATIONS` rounds.
    """
    if method == "synflow_iterative":
        _, mask = synflow_scores(
            model, all_ones_forward, rate=rate, iterations=SYNFLOW_ITERATIONS, scope=scope
        )
        return mask
    if method == "synflow":
        _, mask = synflow_scores(
            model, lambda m: task.logits(m, task.train_inputs), rate=rate, scope=scope
        )
        return mask

    def loss(temperature: float):
        def fn(m: nn.Module) -> Tensor:
            logits = task.logits(m, task.train_inputs).double() / temperature
            return F.cross_entropy(logits, task.train_labels)

        return fn

    if method == "snip":
        scores = snip_scores(model, loss(1.0))
    elif method == "grasp":
        scores = grasp_scores(model, loss(GRASP_TEMPERATURE), wrt="prunable")
    elif method == "grasp_t1":
        scores = grasp_scores(model, loss(1.0), wrt="all")
    else:
        raise ConfigError(f"unknown pruning-at-init method {method!r}; choose from {PAI}")
    return mask_from_scores(scores, rate, scope)


def all_ones_forward(model: nn.Module) -> Tensor:
    """SynFlow's all-ones input for the grokking models: each token-embedding
    lookup is replaced by the sum of all rows of its table (the embedding of
    an all-ones "one-hot" vector)."""
    params = named_weights(model)
    if isinstance(model, HookedMLP):
        table_b = "embed_b.weight" if "embed_b.weight" in params else "embed_a.weight"
        tables = {"hook_embed_a": "embed_a.weight", "hook_embed_b": table_b}
        inputs = torch.zeros(1, 2, dtype=torch.long)
    else:
        tables = {"hook_embed": "embed.weight", "hook_pos_embed": "pos_embed.weight"}
        inputs = torch.zeros(1, model.cfg.n_ctx, dtype=torch.long)

    def hook(name: str):
        row = params[tables[name]].sum(0)
        return lambda act, hook: row.to(act.dtype).expand_as(act)

    device = next(model.parameters()).device
    return model.run_with_hooks(inputs.to(device), fwd_hooks=[(n, hook(n)) for n in tables])


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


class Tickets(Grokking):
    """A ticket (or a control) cut from a grokking run and retrained with its
    mask fixed: a grokking-style run directory (``sweep``, the Fourier
    measures and the report work on it unchanged), its mask in
    ``masks/ticket.safetensors``."""

    name = "tickets"
    summary_keys = ("t_mem", "t_gen", "t_gen_over_t_mem", "final_test_accuracy")

    def check(self, cfg: TicketsConfig) -> None:
        spec = cfg.ticket
        source = open_run(spec.source)
        if source.sha(spec.source_step) != spec.source_sha256:
            raise ConfigError(
                f"{spec.source} step {spec.source_step} changed since this ticket was defined"
            )
        super().check(cfg)

    def reuse_problem(self, run_dir: str | Path) -> str | None:
        return earlier_variant(run_dir)

    def build(
        self, cfg: TicketsConfig, store: RunStore, device: torch.device, quiet: bool
    ) -> Setup:
        """Cut (or reload) the mask, rewind the survivors, norm-match the dense controls."""
        spec = cfg.ticket
        source = open_run(spec.source)
        task = make_task(cfg)
        mask_path = store.path / MASK_FILE
        if mask_path.exists():
            problem = earlier_variant(store.path)
            if problem:
                raise ConfigError(problem)
            mask: Mask | None = load_mask(mask_path)
        else:
            mask = cut_mask(cfg, source, store, task, device, quiet)
            meta = {"source": spec.source, "step": spec.source_step, "rate": spec.rate,
                    "scope": spec.scope, "control": spec.control}  # fmt: skip
            if spec.control in REDEFINED:
                meta["variant"] = VARIANT
            save_mask(mask_path, mask, meta)
        model = make_model(cfg.model, seed=cfg.seed, device="cpu")
        model.load_state_dict(source.store.load_weights(spec.rewind_step))  # rewind
        extra = {}
        if spec.control.startswith("dense_"):  # the init's rescaling, for the record
            extra["norm_scale"] = norm_match(model, mask, p=1 if spec.control == "dense_l1" else 2)
            mask = None
        return Setup(model, task, mask, extra=extra)

    def summarize(self, cfg: TicketsConfig, setup: Setup, result: TrainResult) -> dict[str, Any]:
        return {**super().summarize(cfg, setup, result), "mask_step": cfg.ticket.source_step}

    def report(self, run: Run, steps_for_spectrum: Sequence[int] | None = None) -> Page:
        from interp.experiments.grokking import grokking_page

        page = grokking_page(run, steps_for_spectrum)
        page.title = f"ticket report: {run.path.name}"
        return page

    def format_summary(self, summary: Mapping[str, Any]) -> str:
        keys = list(self.summary_keys) + (["norm_scale"] if "norm_scale" in summary else [])
        return format_fields(summary, keys)


def cut_mask(
    cfg: TicketsConfig,
    source: Run,
    store: RunStore,
    task: ClassificationTask,
    device: torch.device,
    quiet: bool,
) -> Mask:
    """The mask ``cfg.ticket`` describes: pruning at init (SNIP, GraSP,
    SynFlow) of the rewound weights, iterative magnitude pruning, or the
    magnitude mask of the source checkpoint; for the random control, a random
    mask with that mask's per-matrix sparsity."""
    spec = cfg.ticket
    if spec.control in PAI or spec.control == "random":
        rewound = make_model(cfg.model, seed=cfg.seed, device="cpu")
        rewound.load_state_dict(source.store.load_weights(spec.rewind_step))
        if spec.control == "random":  # one global threshold on random scores
            return random_mask(rewound, spec.rate, spec.control_seed)
        return pai_mask(spec.control, rewound, task, spec.rate, spec.scope)
    if spec.imp_levels > 1:
        mask = imp_mask(cfg, source, store, task, device, quiet)
    else:
        mask = find_mask(source, spec.source_step, spec.rate, spec.scope)
    if spec.control == "random_matched":  # the ticket's per-matrix counts, random positions
        mask = random_mask_like(mask, spec.control_seed)
    return mask


def earlier_variant(run_dir: str | Path) -> str | None:
    """Why a ticket run directory cannot be reused: it is a ``random``,
    ``grasp`` or ``synflow`` control cut before those names meant the
    Grokking-Tickets code's variants (its mask records no ``variant``);
    None when it can."""
    from interp.training.files import read_json

    path = Path(run_dir)
    try:
        control = read_json(path / "config.json")["config"]["ticket"]["control"]
        meta = read_json((path / MASK_FILE).with_suffix(".json"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if control in REDEFINED and meta.get("variant") != VARIANT:
        return (
            f"{path} is a '{control}' control cut by an earlier version, whose '{control}' is "
            f"now called '{REDEFINED[control]}'; '{control}' is now the Grokking-Tickets code's. "
            "Move the directory away to retrain it"
        )
    return None


EXPERIMENT = Tickets()


def run(cfg: TicketsConfig, run_dir: str, **kw: Any) -> TrainResult:
    """Cut the mask, rewind, and retrain into ``run_dir`` (resumable)."""
    return EXPERIMENT.train(cfg, run_dir, **kw)


def format_summary(summary: Mapping[str, Any]) -> str:
    return EXPERIMENT.format_summary(summary)


__all__ = [
    "CONTROLS",
    "EXPERIMENT",
    "PAI",
    "TicketSpec",
    "Tickets",
    "TicketsConfig",
    "cut_mask",
    "find_mask",
    "format_summary",
    "norm_match",
    "run",
    "ticket_config",
]
