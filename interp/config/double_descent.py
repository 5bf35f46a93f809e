"""Double descent on small offline classification sets (Nakkiran et al.
2019; Belkin et al. 2019; Liu & Flanigan, "Understanding the role of
optimization in double descent"): one run's config and presets
(``interp train double-descent``), and the multi-run spec
(``interp experiment double-descent``) of model-wise, epoch-wise and
sample-wise curves and of Liu & Flanigan's optimization factors.

Presets (of both): ``tiny`` (seconds, for tests), ``cpu-quick`` (MNIST-1D,
20% label noise, the MLP, minutes on two cores), ``cpu-full`` (more widths,
both models, both datasets' noise levels), ``paper`` (Nakkiran's longer
training, for a GPU).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from interp.config.core import ConfigError, apply_overrides, config, setting
from interp.config.models import ClassifierConfig
from interp.config.train import TrainConfig

#: (training examples, test examples, features, classes) of each dataset
DATASET_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "mnist1d": (4000, 1000, 40, 10),
    "digits": (1297, 500, 64, 10),
}

Dataset = Literal["mnist1d", "digits"]


@config("data")
class ClassificationDataConfig:
    """Which dataset, how many training examples and how much label noise."""

    dataset: Dataset = setting(
        "mnist1d", "mnist1d (Greydanus & Kobak, generated offline) or digits (scikit-learn)"
    )
    n_train: int | None = setting(
        None, "training examples (a seeded subset); null = all of the dataset's", ge=1
    )
    label_noise: float = setting(
        0.0, "fraction of training labels replaced by a different class (seeded)", ge=0.0, lt=1.0
    )


@config()
class DoubleDescentConfig:
    """One run: data (with label noise), a classifier of some width, optimiser."""

    seed: int = setting(
        0, "seed of the init, the training subset, the noisy labels and the batch order",
        ge=0, le=2**31 - 1,
    )  # fmt: skip
    data: ClassificationDataConfig = setting(ClassificationDataConfig, "dataset and label noise")
    model: ClassifierConfig = setting(ClassifierConfig, "the classifier")
    train: TrainConfig = setting(TrainConfig, "optimiser and schedule")

    def __post_init__(self) -> None:
        n_full = DATASET_SHAPES[self.data.dataset][0]
        if self.data.n_train is not None and self.data.n_train > n_full:
            raise ConfigError(
                f"data.n_train={self.data.n_train} exceeds the {n_full} training examples of "
                f"{self.data.dataset}"
            )
        n = self.n_train
        if self.train.batch_size is not None and self.train.batch_size > n:
            raise ConfigError(
                f"train.batch_size={self.train.batch_size} exceeds the training set "
                f"(data.n_train={n})"
            )

    @property
    def n_train(self) -> int:
        return self.data.n_train or DATASET_SHAPES[self.data.dataset][0]

    def resolve(self) -> DoubleDescentConfig:
        """The model's input width and classes from the dataset."""
        _, _, d_in, classes = DATASET_SHAPES[self.data.dataset]
        return replace(self, model=replace(self.model, d_in=d_in, classes=classes))


def _train(steps: int, eval_every: int, checkpoint_every: int, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.0, "betas": (0.9, 0.999),
        "warmup_steps": 0, "batch_size": 256, "loss_dtype": "float32",
    }  # fmt: skip
    return TrainConfig(
        steps=steps, eval_every=eval_every, checkpoint_every=checkpoint_every, **{**base, **kw}
    )


PRESETS: dict[str, DoubleDescentConfig] = {
    "tiny": DoubleDescentConfig(
        data=ClassificationDataConfig(dataset="digits", n_train=300, label_noise=0.2),
        model=ClassifierConfig(width=32),
        train=_train(300, 25, 100, batch_size=64),
    ),
    # Adam (lr 1e-3, no weight decay), batch 256, 20% noise on MNIST-1D, 10k steps
    "cpu-quick": DoubleDescentConfig(
        data=ClassificationDataConfig(label_noise=0.2),
        model=ClassifierConfig(width=256),
        train=_train(10_000, 100, 500),
    ),
}
PRESETS["cpu-full"] = replace(PRESETS["cpu-quick"], train=_train(20_000, 100, 500))
PRESETS["paper"] = replace(PRESETS["cpu-quick"], train=_train(100_000, 500, 5000, batch_size=128))


# --------------------------------------------------------------------------
# The multi-run experiment (interp experiment double-descent)

Role = Literal["model", "sample", "factor"]


@config()
class DoubleDescentSpec:
    """What one ``interp experiment double-descent`` launch trains.

    * **model-wise**: every model × width × label noise × seed at the full
      training set;
    * **epoch-wise**: read from the model-wise runs' metrics (every
      ``train.eval_every`` steps) and checkpoints; nothing extra is trained;
    * **sample-wise**: ``sample_model`` at ``sample_width`` and
      ``sample_noise`` over ``sample_sizes`` training examples × seeds;
    * **factors** (Liu & Flanigan): each named setting (overrides of the
      base run) at ``factor_widths`` around the interpolation threshold ×
      seeds, at ``factor_noise``; its final train loss and its peak height.

    A run that two parts ask for (same config) is trained once."""

    base: str = setting("cpu-quick", "the run preset every run starts from")
    dataset: Dataset = setting("mnist1d", "the dataset of every run")
    models: tuple[Literal["mlp", "cnn"], ...] = setting(("mlp",), "architectures (model-wise)")
    widths: dict[str, tuple[int, ...]] = setting(
        lambda: {"mlp": (16, 32, 64, 128, 256, 512, 1024, 2048), "cnn": (4, 8, 16, 32, 64, 128)},
        "widths of each architecture (model-wise)",
    )
    noises: tuple[float, ...] = setting((0.0, 0.2), "label-noise fractions (model-wise)")
    seeds: tuple[int, ...] = setting((0, 1, 2), "seeds of every part")
    sample_sizes: tuple[int, ...] = setting(
        (500, 1000, 2000, 4000), "training-set sizes (sample-wise); empty = none"
    )
    sample_model: Literal["mlp", "cnn"] = setting("mlp", "architecture of the sample-wise runs")
    sample_width: int = setting(256, "width of the sample-wise runs", ge=1)
    sample_noise: float = setting(0.2, "label noise of the sample-wise runs", ge=0.0, lt=1.0)
    factors: dict[str, tuple[str, ...]] = setting(
        lambda: {
            "adam": (),
            "sgd": ("train.optimizer=sgd", "train.lr=0.05"),
            "sgd-momentum": ("train.optimizer=sgd", "train.lr=0.05", "train.momentum=0.9"),
            "adam-lr1e-4": ("train.lr=1e-4",),
            "adam-batchnorm": ("model.normalization=batch",),
            "adam-init0.1": ("model.init_scale=0.1",),
        },
        "Liu & Flanigan's settings: name → overrides of the base run; empty = none",
    )
    factor_model: Literal["mlp", "cnn"] = setting("mlp", "architecture of the factor runs")
    factor_widths: tuple[int, ...] = setting(
        (32, 128, 256, 512, 1024, 2048),
        "widths of each factor setting (below, around and above the threshold)",
    )
    factor_noise: float = setting(0.2, "label noise of the factor runs", ge=0.0, lt=1.0)
    overrides: tuple[str, ...] = setting((), "key=value overrides of every run")

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds must not be empty")
        for name, ws in self.widths.items():
            if name not in ("mlp", "cnn"):
                raise ConfigError(f"widths: unknown model {name!r}; models are mlp and cnn")
            if any(w < 1 for w in ws):
                raise ConfigError(f"widths[{name}] must be positive, got {list(ws)}")
        for m in self.models:
            if not self.widths.get(m):
                raise ConfigError(f"widths[{m}] is empty: give the widths of every model")
        for w in (*self.factor_widths, self.sample_width):
            if w < 1:
                raise ConfigError(f"factor_widths / sample_width must be positive, got {w}")
        for f in self.noises:
            if not 0.0 <= f < 1.0:
                raise ConfigError(f"noises must be in [0, 1), got {f}")
        n_full = DATASET_SHAPES[self.dataset][0]
        for n in self.sample_sizes:
            if not 1 <= n <= n_full:
                raise ConfigError(f"sample_sizes must be in [1, {n_full}], got {n}")
        if self.base not in PRESETS:
            raise ConfigError(
                f"base: unknown run preset {self.base!r}; choose from {list(PRESETS)}"
            )
        for name, over in self.factors.items():
            try:
                self.run_config(self.factor_model, self.factor_widths[0], self.factor_noise,
                                self.seeds[0], extra=over)  # fmt: skip
            except ConfigError as exc:
                raise ConfigError(f"factors[{name}]: {exc}") from exc
        for n in self.sample_sizes:  # a batch larger than the training set, named now
            self.run_config(self.sample_model, self.sample_width, self.sample_noise,
                            self.seeds[0], n_train=n)  # fmt: skip
        for m in self.models:
            self.run_config(m, self.widths[m][0], self.noises[0] if self.noises else 0.0,
                            self.seeds[0])  # fmt: skip

    def run_config(
        self,
        arch: str,
        width: int,
        noise: float,
        seed: int,
        n_train: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> DoubleDescentConfig:
        """The config of one run of the grid."""
        base = PRESETS[self.base]
        cfg = replace(
            base,
            seed=seed,
            data=replace(base.data, dataset=self.dataset, label_noise=noise,
                         n_train=None if n_train in (None, DATASET_SHAPES[self.dataset][0])
                         else n_train),
            model=replace(base.model, arch=arch, width=width),
        )  # fmt: skip
        return apply_overrides(cfg, [*self.overrides, *extra]).resolve()


GRIDS: dict[str, DoubleDescentSpec] = {
    "tiny": DoubleDescentSpec(
        base="tiny",
        dataset="digits",
        widths={"mlp": (4, 32, 256)},
        noises=(0.0, 0.2),
        seeds=(0,),
        sample_sizes=(150, 300),
        sample_width=32,
        factors={"adam": (), "sgd": ("train.optimizer=sgd", "train.lr=0.05")},
        factor_widths=(4, 256),
    ),
    "cpu-quick": DoubleDescentSpec(),
    "cpu-full": DoubleDescentSpec(
        base="cpu-full",
        factor_widths=(32, 64, 128, 256, 512, 1024, 2048),
        models=("mlp", "cnn"),
        widths={
            "mlp": (8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024, 2048, 4096),
            "cnn": (2, 4, 8, 12, 16, 24, 32, 48, 64, 128),
        },
        noises=(0.0, 0.1, 0.2),
        seeds=(0, 1, 2, 3, 4),
        sample_sizes=(300, 500, 1000, 1500, 2000, 3000, 4000),
    ),
    "paper": DoubleDescentSpec(
        base="paper", models=("mlp", "cnn"), noises=(0.0, 0.1, 0.2), seeds=(0, 1, 2, 3, 4)
    ),
}

__all__ = [
    "DATASET_SHAPES", "GRIDS", "PRESETS", "ClassificationDataConfig", "DoubleDescentConfig",
    "DoubleDescentSpec",
]  # fmt: skip
