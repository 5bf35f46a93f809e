"""What every experiment does before training: device, threads, run directory;
and the small helpers every experiment shares (presets, printed summaries)."""

from __future__ import annotations

import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

from interp.config.catalog import canonical
from interp.config.core import ConfigError, apply_overrides, from_dict, to_dict, with_legacy
from interp.training.files import atomic_write_json
from interp.training.rundir import RunStore


def prepare_run(
    experiment: str,
    cfg: Any,
    store: RunStore,
    dev: torch.device,
    n_threads: int,
    trainer: str = "single",
) -> None:
    """Create the run directory's ``config.json`` for ``cfg``, or accept it when
    it already holds this config (a resume); the caller holds the directory's
    lock (:func:`interp.training.rundir.writing`).

    Raises when the directory holds another config. Warns when a resume uses
    another thread count, device or CPU (model or SIMD level) than the run
    started with: bit-identity with an uninterrupted run holds only for the
    same ones. ``trainer`` records whether the run trains alone (``single``)
    or as a member of a batched ``ensemble`` (which rounds differently).
    """
    runtime = {
        "device": str(dev), "threads": n_threads, "trainer": trainer, **numerics_environment()
    }  # fmt: skip
    if store.exists():
        _upgrade_config(store, experiment, cfg)
    if store.exists() and not store.is_done():
        before = store.read_config().get("runtime", {})
        changed = [
            f"{key} {before[key]!r} -> {runtime[key]!r}"
            for key in ("threads", "device", "trainer", "cpu", "cpu_capability")
            if key in before and before[key] != runtime[key]
        ]
        if changed and store.steps():
            warnings.warn(
                f"{store.path} was started in another setting than this resume "
                f"({'; '.join(changed)}). "
                "The result is bit-identical to an uninterrupted run only with the same thread "
                "count, device, trainer and CPU.",
                stacklevel=3,
            )
    store.init(experiment, to_dict(cfg), runtime)


def numerics_environment() -> dict[str, str]:
    """What a run's floating-point path depends on besides config and seed:
    package versions, the CPU model and the SIMD level torch dispatches to
    (MKL and oneDNN pick kernels by CPU, so the same wheel can round
    differently on another machine). Recorded in ``config.json`` so that a
    run that does not reproduce elsewhere can be traced."""
    out = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    for name in ("transformer-lens", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _upgrade_config(store: RunStore, experiment: str, cfg: Any) -> None:
    """A run written before a config field existed lacks it; if filling the
    missing fields with their defaults gives exactly ``cfg``, record that in
    its config.json (the defaults keep earlier behaviour), so the run resumes
    instead of being refused as "another config"."""
    data = store.read_config()
    try:
        if canonical(data["experiment"]) != canonical(experiment):
            return
        filled = to_dict(from_dict(type(cfg), with_legacy(type(cfg), data["config"])))
    except ConfigError:
        return
    if filled != data["config"] and filled == to_dict(cfg):
        atomic_write_json(store.config_path, {**data, "config": filled})


def pick_preset(
    experiment: str,
    presets: Mapping[str, Any],
    name: str,
    seed: int | None = None,
    overrides: Sequence[str] | None = None,
) -> Any:
    """Preset ``name`` with ``seed`` and ``key=value`` overrides applied, then resolved."""
    if name not in presets:
        raise ConfigError(f"unknown {experiment} preset {name!r}; choose from {sorted(presets)}")
    cfg = presets[name]
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    return cfg.resolve()


def format_fields(summary: Mapping[str, Any], keys: Sequence[str]) -> str:
    """One aligned ``key: value`` line per summary field (floats to 4 significant digits)."""
    width = max(len(k) for k in keys)
    lines = []
    for k in keys:
        v = summary.get(k)
        lines.append(f"{k:>{width}}: {v:.4g}" if isinstance(v, float) else f"{k:>{width}}: {v}")
    return "\n".join(lines)
