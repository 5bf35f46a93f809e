"""The run directory: the contract between training and analysis.

::

    RUN_DIR/
      config.json                          experiment, resolved config, version, git commit
      metrics.jsonl                        {"step", "split", "metric", "value"} per line
      summary.json                         end-of-run summary (written by the experiment)
      DONE                                 written last, after every measurement of the run
      checkpoints/step_00001000.safetensors        model weights (clean TL state-dict keys)
      checkpoints/step_00001000.state.safetensors  optimizer / filter / RNG state
      checkpoints/step_00001000.json               sidecar: step, sha256 of both files, metrics

Every file is written atomically (:mod:`interp.training.files`); a checkpoint
counts only once its sidecar exists, and the sidecar is written last. A run is
finished only when ``DONE`` exists: a run killed between training and its
last measurement has a ``summary.json`` but no ``DONE``, and resumes.

Reading a run needs neither torch nor TransformerLens until a model is loaded.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.config.catalog import canonical, config_class
from interp.config.core import ConfigError, from_dict
from interp.training.files import (
    CorruptCheckpointError,
    RunError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    load_verified,
    read_json,
    sha256_bytes,
    tensors_to_bytes,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import Tensor, nn

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
DONE_FILE = "DONE"
CKPT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d{8})\.json$")


def _ckpt_stem(step: int) -> str:
    return f"step_{step:08d}"


@dataclass(frozen=True)
class Checkpoint:
    """One saved step: weights, resumable state and the sidecar's metadata."""

    step: int
    weights: dict[str, Tensor]
    state: dict[str, Tensor]
    meta: dict[str, Any]


class RunStore:
    """Writer/reader of one run directory (see the module docstring for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # config ---------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    def exists(self) -> bool:
        return self.config_path.exists()

    def read_config(self) -> dict[str, Any]:
        if not self.path.exists():
            raise RunError(f"run directory {self.path} does not exist")
        if not self.config_path.exists():
            raise RunError(f"{self.path} is not a run directory (no {CONFIG_FILE})")
        data = read_json(self.config_path)
        if not isinstance(data, dict) or "experiment" not in data or "config" not in data:
            raise RunError(f"{self.config_path} lacks the 'experiment' and 'config' fields")
        return data

    def init(self, experiment: str, config: dict[str, Any], runtime: dict[str, Any]) -> bool:
        """Create the run dir for ``config``, or accept an existing one with the same config.

        Returns True when the directory already held this config (a resume).
        Raises RunError when it holds a different experiment or config; the
        existing directory is left untouched.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"run directory {self.path} exists and is not a directory")
        if self.exists():
            old = self.read_config()
            if _same_experiment(old["experiment"], experiment) and old["config"] == config:
                return True
            diff = _dict_diff(old["config"], config)
            raise RunError(
                f"{self.path} already holds a run of {old['experiment']!r} with a different "
                f"config ({diff}); refusing to overwrite it. Use another --run-dir."
            )
        if self.path.exists() and any(self.path.iterdir()):
            raise RunError(
                f"{self.path} is a non-empty directory without {CONFIG_FILE}; refusing to use it"
            )
        from interp import __version__

        atomic_write_json(
            self.config_path,
            {
                "experiment": experiment,
                "config": config,
                "interp_version": __version__,
                "git_commit": git_commit(),
                "runtime": runtime,
            },
        )
        return False

    # metrics --------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        lines = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in rows)
        if not lines:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def read_metric_rows(self) -> list[dict[str, Any]]:
        """All complete metric rows; a torn final line (killed mid-write) is skipped."""
        if not self.metrics_path.exists():
            return []
        text = self.metrics_path.read_text(encoding="utf-8")
        lines = text.split("\n")
        complete = lines[:-1]  # an unterminated last line is an interrupted write
        rows = []
        for i, line in enumerate(complete):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RunError(
                    f"{self.metrics_path}: line {i + 1} is not valid JSON: {exc}"
                ) from exc
        return rows

    def truncate_metrics(self, max_step: int) -> None:
        """Keep only rows with ``step <= max_step`` (used when resuming)."""
        rows = [r for r in self.read_metric_rows() if r["step"] <= max_step]
        atomic_write_text(
            self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        )

    # end of run -------------------------------------------------------------
    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def done_path(self) -> Path:
        return self.path / DONE_FILE

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_json(self.summary_path, dict(summary))

    def is_done(self) -> bool:
        """True once every measurement of the run is written (``DONE`` exists)."""
        return self.done_path.exists()

    def mark_done(self) -> None:
        """Write ``DONE`` (last, atomically): the run and all its measurements
        are complete; the summary's sha256 ties the marker to what it vouches for."""
        summary = self.summary_path.read_bytes() if self.summary_path.exists() else b""
        atomic_write_json(
            self.done_path,
            {
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "summary_sha256": sha256_bytes(summary),
            },
        )

    def is_legacy_finished(self) -> bool:
        """A run written by version 0.1.0, before ``DONE`` existed, that has its
        ``summary.json`` (then the end-of-run marker): finished, though an
        experiment may still add the measurements that version did not take
        (``Experiment.train`` does, training nothing)."""
        if self.is_done() or not self.summary_path.exists() or not self.exists():
            return False
        return self.read_config().get("interp_version") == "0.1.0"

    def clear_done(self) -> None:
        """Remove ``DONE`` before a finished run is changed again."""
        self.done_path.unlink(missing_ok=True)

    # checkpoints ----------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.path / CKPT_DIR

    def steps(self) -> list[int]:
        """Steps with a committed checkpoint (its sidecar exists), ascending."""
        if not self.ckpt_dir.exists():
            return []
        return sorted(
            int(m.group(1)) for f in self.ckpt_dir.iterdir() if (m := _STEP_RE.match(f.name))
        )

    def weights_path(self, step: int) -> Path:
        return self.ckpt_dir / f"{_ckpt_stem(step)}.safetensors"

    def state_path(self, step: int) -> Path:
        return self.ckpt_dir / f"{_ckpt_stem(step)}.state.safetensors"

    def sidecar_path(self, step: int) -> Path:
        return self.ckpt_dir / f"{_ckpt_stem(step)}.json"

    def save_checkpoint(
        self,
        step: int,
        weights: Mapping[str, Tensor],
        state: Mapping[str, Tensor] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Write weights, state and (last) the sidecar that commits them."""
        wbytes = tensors_to_bytes(weights)
        atomic_write_bytes(self.weights_path(step), wbytes)
        files = {"weights": {"file": self.weights_path(step).name, "sha256": sha256_bytes(wbytes)}}
        if state is not None:
            sbytes = tensors_to_bytes(state)
            atomic_write_bytes(self.state_path(step), sbytes)
            files["state"] = {"file": self.state_path(step).name, "sha256": sha256_bytes(sbytes)}
        sidecar = {"step": step, "files": files, **dict(meta or {})}
        atomic_write_json(self.sidecar_path(step), sidecar)

    def read_sidecar(self, step: int) -> dict[str, Any]:
        path = self.sidecar_path(step)
        if not path.exists():
            raise RunError(f"no checkpoint at step {step} in {self.path}; steps: {self.steps()}")
        meta = read_json(path)
        if not isinstance(meta, dict) or meta.get("step") != step or "files" not in meta:
            raise CorruptCheckpointError(f"{path} is not a valid checkpoint sidecar")
        return meta

    def checkpoint_sha(self, step: int) -> str:
        """sha256 of the weights file at ``step`` (as recorded; a cache key)."""
        return self.read_sidecar(step)["files"]["weights"]["sha256"]

    def load_weights(self, step: int) -> dict[str, Tensor]:
        meta = self.read_sidecar(step)
        return load_verified(self.weights_path(step), meta["files"]["weights"]["sha256"])

    def load_checkpoint(self, step: int, with_state: bool = True) -> Checkpoint:
        meta = self.read_sidecar(step)
        weights = load_verified(self.weights_path(step), meta["files"]["weights"]["sha256"])
        state: dict[str, Tensor] = {}
        if with_state and "state" in meta["files"]:
            state = load_verified(self.state_path(step), meta["files"]["state"]["sha256"])
        return Checkpoint(step=step, weights=weights, state=state, meta=meta)

    def remove_checkpoints_after(self, step: int) -> None:
        """Delete checkpoints later than ``step`` (stale files of an interrupted run)."""
        for s in self.steps():
            if s > step:
                self.sidecar_path(s).unlink(missing_ok=True)
                self.weights_path(s).unlink(missing_ok=True)
                self.state_path(s).unlink(missing_ok=True)

    def clean_temp_files(self) -> None:
        """Remove leftovers of a killed write: ``.*.tmp`` files, and checkpoint
        tensor files whose sidecar (the commit marker) was never written."""
        for folder in (self.path, self.ckpt_dir):
            if folder.exists():
                for f in folder.glob(".*.tmp"):
                    f.unlink(missing_ok=True)
        if self.ckpt_dir.exists():
            committed = set(self.steps())
            for f in self.ckpt_dir.glob("step_*.safetensors"):
                m = re.match(r"^step_(\d{8})\.", f.name)
                if m and int(m.group(1)) not in committed:
                    f.unlink(missing_ok=True)


def _same_experiment(a: str, b: str) -> bool:
    try:
        return canonical(a) == canonical(b)
    except ConfigError:  # an experiment this version does not know
        return a == b


def _dict_diff(old: Any, new: Any, prefix: str = "") -> str:
    """The keys where two nested dicts differ, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        parts = []
        for k in sorted(set(old) | set(new)):
            key = f"{prefix}.{k}" if prefix else k
            if k not in old or k not in new:
                parts.append(f"{key}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}")
            elif old[k] != new[k]:
                parts.append(_dict_diff(old[k], new[k], key))
        return "; ".join(p for p in parts if p)
    return f"{prefix}: {old!r} -> {new!r}" if old != new else ""


# ---------------------------------------------------------------- read side
class Run:
    """A finished or running run, opened for analysis (``interp.open_run``).

    ``.config`` is the typed experiment config, ``.steps`` the checkpointed
    steps, ``.load(step)`` a ready model (eval mode), ``.metrics()`` a tidy
    DataFrame with columns step, split, metric, value, ``.summary()`` the
    end-of-run summary and ``.finished`` whether every measurement is written.
    """

    def __init__(self, path: str | os.PathLike):
        self.store = RunStore(path)
        self._raw = self.store.read_config()

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def experiment(self) -> str:
        """The run experiment's catalog name (one spelling, also for old runs)."""
        return canonical(self._raw["experiment"])

    @property
    def config_dict(self) -> dict[str, Any]:
        return self._raw["config"]

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(self._raw.get("runtime") or {})

    @cached_property
    def config(self) -> Any:
        return from_dict(config_class(self.experiment), self.config_dict)

    @property
    def steps(self) -> list[int]:
        return self.store.steps()

    @property
    def last_step(self) -> int:
        steps = self.steps
        if not steps:
            raise RunError(f"{self.path} has no checkpoints yet")
        return steps[-1]

    @property
    def finished(self) -> bool:
        """Every measurement of the run is written (``DONE``; for a run of
        version 0.1.0, its ``summary.json``)."""
        return self.store.is_done() or self.store.is_legacy_finished()

    def model_config(self) -> Any:
        return self.config.model

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        """The model at ``step`` (default: last), weights verified against their sha256."""
        from interp.models import make_model, move_to

        step = self.last_step if step is None else step
        model = make_model(self.model_config(), seed=0, device="cpu")
        weights = self.store.load_weights(step)
        try:
            model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise CorruptCheckpointError(
                f"{self.store.weights_path(step)} does not fit the run's model: {exc}"
            ) from exc
        return move_to(model, device).eval()

    def metrics(self) -> pd.DataFrame:
        import pandas as pd

        rows = self.store.read_metric_rows()
        return pd.DataFrame(rows, columns=["step", "split", "metric", "value"])

    def summary(self) -> dict[str, Any] | None:
        path = self.store.summary_path
        return read_json(path) if path.exists() else None

    def sha(self, step: int) -> str:
        return self.store.checkpoint_sha(step)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, experiment={self.experiment!r}, steps={len(self.steps)})"


def open_run(path: str | os.PathLike) -> Run:
    """Open a run directory for analysis; errors name the missing/corrupt file."""
    return Run(path)


__all__ = [
    "CKPT_DIR",
    "CONFIG_FILE",
    "DONE_FILE",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "Checkpoint",
    "Run",
    "RunStore",
    "open_run",
]
