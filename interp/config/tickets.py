"""Config of one ticket run (Minegishi et al., "Grokking Tickets", §3–4): the
dense grokking run's sections plus how the mask is cut. A ticket has no
presets: its config is cut from a finished grokking run
(``interp train tickets --from RUN``)."""

from __future__ import annotations

from typing import Literal

from interp.config.core import ConfigError, config, setting
from interp.config.data import ModularConfig
from interp.config.models import ModelConfig, TransformerConfig
from interp.config.train import TrainConfig

CONTROLS = (
    "ticket", "random", "dense_l1", "dense_l2", "snip", "grasp", "synflow",
    "random_matched", "grasp_t1", "synflow_iterative",
)  # fmt: skip
Control = Literal[
    "ticket", "random", "dense_l1", "dense_l2", "snip", "grasp", "synflow",
    "random_matched", "grasp_t1", "synflow_iterative",
]  # fmt: skip
#: controls whose definition changed to the Grokking-Tickets code's: a run
#: directory cut before then (its mask has no ``variant``) is the earlier kind
REDEFINED = {"random": "random_matched", "grasp": "grasp_t1", "synflow": "synflow_iterative"}


@config("ticket")
class TicketSpec:
    """Where the ticket comes from and how it is cut."""

    source: str = setting("", "the dense grokking run directory")
    source_step: int = setting(0, "its checkpoint the mask is cut from", ge=0)
    source_sha256: str = setting("", "sha256 of that checkpoint's weights (checked at start)")
    rate: float = setting(0.6, "fraction of the prunable weights REMOVED", ge=0.0, lt=1.0)
    scope: Literal["global", "layer"] = setting(
        "global", "global: one magnitude threshold over all matrices; layer: per matrix"
    )
    rewind_step: int = setting(0, "checkpoint whose weights survive (0 = the init)", ge=0)
    control: Control = setting(
        "ticket",
        "ticket, or a control as the Grokking-Tickets code builds it: random (one global "
        "threshold on random scores), dense_l1 / dense_l2 (no mask, init norm-matched), snip / "
        "grasp (T = 200, prunable weights) / synflow (a training batch, one round), pruning at "
        "init; or the stricter or original variants random_matched (the ticket's per-matrix "
        "counts), grasp_t1 (T = 1, whole-network gradient), synflow_iterative (all-ones "
        "input, 100 rounds)",
    )
    control_seed: int = setting(0, "seed of the random control's mask", ge=0)
    imp_levels: int = setting(
        1, "iterative magnitude pruning: prune-rewind-retrain rounds", ge=1, le=50
    )

    def __post_init__(self) -> None:
        if self.imp_levels > 1 and self.control != "ticket":
            raise ConfigError("imp_levels > 1 applies to control 'ticket' only")


@config()
class TicketsConfig:
    """A masked retraining run: the dense run's sections plus the ticket spec."""

    seed: int = setting(0, "the dense run's seed (split, batch order)", ge=0, le=2**31 - 1)
    data: ModularConfig = setting(ModularConfig, "the dense run's table")
    model: ModelConfig = setting(TransformerConfig, "the dense run's model")
    train: TrainConfig = setting(TrainConfig, "optimiser and schedule of the retraining")
    ticket: TicketSpec = setting(TicketSpec, "how the mask is cut")

    def resolve(self) -> TicketsConfig:
        return self


PRESETS: dict[str, TicketsConfig] = {}

__all__ = ["CONTROLS", "PRESETS", "REDEFINED", "Control", "TicketSpec", "TicketsConfig"]


# --------------------------------------------------------------------------
# Multi-run experiments (interp experiment tickets | ticket-regimes | ticket-curve)

PRUNE_AT = ("last", "generalized")
CONTROL_RUNS = ("random", "dense_l1", "dense_l2", "snip", "grasp", "synflow", "no_wd", "t_mem")
ControlRun = Literal[
    "random", "dense_l1", "dense_l2", "snip", "grasp", "synflow", "no_wd", "t_mem",
    "random_matched", "grasp_t1", "synflow_iterative",
]  # fmt: skip
#: overrides that make the tiny grokking preset generalise within ~200 steps
TINY_GROKS = (
    "data.train_fraction=0.9",
    "train.steps=300",
    "train.lr=1e-2",
    "train.weight_decay=0.1",
)


@config()
class SuiteSpec:
    """What one ``interp experiment tickets`` launch trains and checks
    (Minegishi et al. §4): per seed a dense run, tickets at several rates and
    the controls. A relaunch may add seeds, rates and controls; every other
    field must match the launch that made the output directory."""

    dense_preset: str = setting("cpu-quick-transformer", "grokking preset of the dense run")
    dense_overrides: tuple[str, ...] = setting((), "key=value overrides of the dense run")
    rates: tuple[float, ...] = setting((0.4, 0.6, 0.8), "ticket rates (fraction removed)")
    rate: float = setting(0.6, "the rate of the controls and of the checks", gt=0.0, lt=1.0)
    controls: tuple[ControlRun, ...] = setting(CONTROL_RUNS, "controls to train")
    dense_stop_after_gen: int = setting(
        500, "the dense run stops this many steps after dense_stop_accuracy", ge=0
    )
    dense_stop_accuracy: float = setting(
        0.99,
        "test accuracy the dense run trains past (the paper prunes 'after perfect generalization')",
        gt=0.0,
        le=1.0,
    )
    prune_at: Literal["last", "generalized"] = setting(
        "last",
        "dense checkpoint the masks are cut from: last, or generalized = the last one "
        "at or above dense_stop_accuracy (its best if it never got there)",
    )
    stop_after_gen: int = setting(
        100, "tickets and controls stop this many steps after 95% test accuracy", ge=0
    )
    cap: float = setting(
        1.0, "controls train at most cap × dense t_gen (+ stop_after_gen) steps", ge=1.0
    )
    norm_cap: float = setting(
        2.0, "budget of the tickets and norm-matched controls, × dense t_gen", ge=2.0
    )
    min_speedup: float = setting(
        4.0, "the check: the rate-`rate` ticket is at least this much faster than dense", gt=0.0
    )
    seeds: tuple[int, ...] = setting((0,), "seeds (each: split, init, batch order)")
    curve_points: int = setting(
        6,
        "tickets at `rate` cut from this many checkpoints of each dense run (log-spaced, "
        "with the first at t_mem and at t_gen and the last): the report's curve of speedup "
        "vs the step the mask came from; 0: none",
        ge=0,
        le=30,
        legacy=0,
    )

    def __post_init__(self) -> None:
        if self.rate not in self.rates:
            raise ConfigError(
                f"rate {self.rate} (of the controls) must be one of rates {self.rates}"
            )
        for r in self.rates:
            if not 0.0 < r < 1.0:
                raise ConfigError(f"rates must be in (0, 1) (fraction removed), got {r}")
        if not self.seeds:
            raise ConfigError("seeds must not be empty")
        if any(s < 0 for s in self.seeds):
            raise ConfigError(f"seeds must be >= 0, got {list(self.seeds)}")


SUITES: dict[str, SuiteSpec] = {
    "cpu-quick": SuiteSpec(dense_preset="cpu-quick-transformer", min_speedup=4.0),
    "paper": SuiteSpec(
        dense_preset="tickets-mlp",
        rates=(0.6,),
        cap=1.2,
        norm_cap=2.0,
        min_speedup=10.0,
        dense_stop_after_gen=500,
    ),
    # seconds-long: p=17 with 90% of the pairs for training generalises by ~200 steps
    "tiny": SuiteSpec(
        dense_preset="tiny",
        dense_overrides=TINY_GROKS,
        rates=(0.4, 0.6),
        dense_stop_after_gen=20,
        stop_after_gen=20,
        min_speedup=1.0,
        curve_points=2,
    ),
}

RegimeModel = Literal["transformer", "mlp"]


@config()
class RegimeSpec:
    """``interp experiment ticket-regimes``: a dense run and its rate-``rate``
    ticket per model × setting × seed, where a setting is a learning rate, a
    training fraction, or both (every combination). The dense run is pruned as
    in the tickets experiment; tickets stop ``stop_after_gen`` steps after 95%."""

    presets: dict[str, str] = setting(
        lambda: {"transformer": "cpu-quick-transformer", "mlp": "cpu-quick-mlp"},
        "grokking preset of each model",
    )
    models: tuple[RegimeModel, ...] = setting(("transformer", "mlp"), "models to sweep")
    lrs: dict[str, tuple[float, ...]] | None = setting(
        lambda: {"transformer": (3e-3, 6e-3, 1e-2), "mlp": (1e-3, 3e-3, 1e-2)},
        "learning rates per model; null = the preset's (with fractions)",
    )
    fractions: dict[str, tuple[float, ...]] | None = setting(
        None, "training fractions per model; null = the preset's"
    )
    seeds: tuple[int, ...] = setting((0, 1, 2), "seeds")
    rate: float = setting(0.6, "ticket rate (fraction removed)", gt=0.0, lt=1.0)
    steps: int = setting(20_000, "the dense runs' step cap", ge=1)
    dense_overrides: tuple[str, ...] = setting((), "key=value overrides of every dense run")
    dense_stop_after_gen: int = setting(500, "as in the tickets experiment", ge=0)
    dense_stop_accuracy: float = setting(0.99, "as in the tickets experiment", gt=0.0, le=1.0)
    prune_at: Literal["last", "generalized"] = setting("last", "as in the tickets experiment")
    stop_after_gen: int = setting(100, "as in the tickets experiment", ge=0)

    def __post_init__(self) -> None:
        if not self.models or not self.seeds:
            raise ConfigError("models and seeds must not be empty")
        for m in self.models:
            if m not in self.presets:
                raise ConfigError(
                    f"models: unknown model {m!r}; choose from {sorted(self.presets)}"
                )
        for axis, given in (("lrs", self.lrs), ("fractions", self.fractions)):
            for m in self.models:
                if given is not None and m not in given:
                    raise ConfigError(
                        f"{axis} has no entry for model {m!r} (it has {sorted(given)})"
                    )
        if self.lrs is None and self.fractions is None:
            raise ConfigError("lrs and fractions must not both be null")
        for m, values in (self.fractions or {}).items():
            for f in values:
                if not 0.0 < f < 1.0:
                    raise ConfigError(f"fractions[{m}] must be in (0, 1), got {f}")
        for m, values in (self.lrs or {}).items():
            for lr in values:
                if not 0.0 < lr <= 10.0:
                    raise ConfigError(f"lrs[{m}] must be in (0, 10], got {lr}")

    def settings(self, model: str) -> list[tuple[float | None, float | None]]:
        """(lr, train fraction) of each setting of ``model``; None = the preset's."""
        if self.fractions is None:
            return [(lr, None) for lr in (self.lrs or {})[model]]
        if self.lrs is None:
            return [(None, f) for f in self.fractions[model]]
        return [(lr, f) for lr in self.lrs[model] for f in self.fractions[model]]


REGIMES: dict[str, RegimeSpec] = {
    "cpu-quick": RegimeSpec(),
    "tiny": RegimeSpec(
        presets={"transformer": "tiny"},
        models=("transformer",),
        lrs={"transformer": (1e-2,)},
        seeds=(0,),
        steps=300,
        dense_overrides=("data.train_fraction=0.9", "train.weight_decay=0.1"),
        dense_stop_after_gen=20,
        stop_after_gen=20,
    ),
}


@config()
class CurveSpec:
    """``interp experiment ticket-curve``: tickets whose masks are cut from
    different checkpoints of one dense run (rewound to its init), each trained
    for at most ``budget`` × the dense run's t_gen steps."""

    source: str = setting("", "the dense grokking run directory (required)")
    rate: float = setting(0.6, "ticket rate (fraction removed)", gt=0.0, lt=1.0)
    steps: tuple[int, ...] = setting(
        (),
        "mask steps; empty = log-spaced, with the first "
        "checkpoints at t_mem and t_gen and the last",
    )
    n_steps: int = setting(10, "how many log-spaced mask steps when steps is empty", ge=2)
    budget: float = setting(1.5, "each ticket trains at most budget × dense t_gen steps", gt=0.0)
    stop_after_gen: int = setting(100, "a ticket stops this many steps after 95%", ge=0)


CURVES: dict[str, CurveSpec] = {
    "cpu-quick": CurveSpec(),
    "tiny": CurveSpec(n_steps=2, stop_after_gen=20),
}

__all__ += [
    "CONTROL_RUNS",
    "CURVES",
    "PRUNE_AT",
    "REGIMES",
    "SUITES",
    "TINY_GROKS",
    "CurveSpec",
    "RegimeSpec",
    "SuiteSpec",
]
