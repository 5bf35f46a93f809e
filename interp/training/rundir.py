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
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.config.catalog import canonical, config_class
from interp.config.core import ConfigError, from_dict, with_legacy
from interp.training.files import (
    CorruptCheckpointError,
    RunError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    cache_dir,
    git_commit,
    load_verified,
    nonfinite_name,
    read_json,
    sha256_bytes,
    tensors_to_bytes,
    writable,
)
from interp.training.lock import LOCK_FILE, OWNER_FILE, RunLock

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
            diff = dict_diff(old["config"], config)
            if self.steps() or self.read_metric_rows():
                raise RunError(
                    f"{self.path} already holds a run of {old['experiment']!r} with a different "
                    f"config ({diff}); refusing to overwrite it. Use another --run-dir."
                )
            warnings.warn(  # a start that failed before its first checkpoint: nothing to keep
                f"{self.path} held the config of a run that never started (no checkpoint, no "
                f"metrics); it is replaced by this one ({diff})",
                stacklevel=3,
            )
        elif self.path.exists() and set(os.listdir(self.path)) - {LOCK_FILE, OWNER_FILE}:
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
        """Append metric rows; a non-finite value is written as ``null`` with
        ``"nonfinite": "nan" | "inf" | "-inf"`` (strict JSON)."""
        lines = "".join(json.dumps(_metric_row(r), sort_keys=True) + "\n" for r in rows)
        if not lines:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def read_metric_rows(self) -> list[dict[str, Any]]:
        """All complete metric rows; a torn final line (killed mid-write) is
        skipped. A line that is not a row (not JSON, not an object, a key
        missing or of the wrong type) is an error naming the file and line."""
        if not self.metrics_path.exists():
            return []
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RunError(f"{self.metrics_path} is not UTF-8 text ({exc})") from None
        lines = text.split("\n")
        complete = lines[:-1]  # an unterminated last line is an interrupted write
        rows = []
        for i, line in enumerate(complete):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RunError(
                    f"{self.metrics_path}: line {i + 1} is not valid JSON: {exc}"
                ) from exc
            problem = _row_problem(row)
            if problem:
                raise RunError(f"{self.metrics_path}: line {i + 1} {problem}: {line[:120]}")
            rows.append(row)
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
        if not isinstance(meta, dict) or meta.get("step") != step:
            raise CorruptCheckpointError(f"{path} is not a checkpoint sidecar of step {step}")
        files = meta.get("files")
        for entry in ("weights", "state"):
            if entry == "state" and isinstance(files, dict) and "state" not in files:
                continue
            item = files.get(entry) if isinstance(files, dict) else None
            if not isinstance(item, dict) or not isinstance(item.get("sha256"), str):
                raise CorruptCheckpointError(
                    f"{path} lacks files.{entry} with its sha256 (a damaged or foreign sidecar)"
                )
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

    def quarantine(self, step: int) -> list[Path]:
        """Set the files of a corrupt checkpoint aside (``*.corrupt``), so the
        run no longer lists it; nothing is deleted. Returns the new paths."""
        moved = []
        for path in (self.sidecar_path(step), self.weights_path(step), self.state_path(step)):
            if path.exists():
                target = path.with_name(path.name + ".corrupt")
                os.replace(path, target)
                moved.append(target)
        return moved

    def remove_checkpoints_after(self, step: int) -> None:
        """Delete checkpoints later than ``step`` (stale files of an interrupted run)."""
        for s in self.steps():
            if s > step:
                self.sidecar_path(s).unlink(missing_ok=True)
                self.weights_path(s).unlink(missing_ok=True)
                self.state_path(s).unlink(missing_ok=True)

    def clean_temp_files(self) -> None:
        """Remove leftovers of a killed write: ``.*.tmp`` files, and the tensor
        files of a checkpoint after the last committed one whose sidecar (the
        commit marker) was never written; each removal is reported. Tensor
        files of an earlier step without a sidecar (one deleted by hand) are
        kept and reported, not removed."""
        for folder in (self.path, self.ckpt_dir):
            if folder.exists():
                for f in folder.glob(".*.tmp"):
                    f.unlink(missing_ok=True)
        if not self.ckpt_dir.exists():
            return
        committed = self.steps()
        last = committed[-1] if committed else -1
        for f in sorted(self.ckpt_dir.glob("step_*.safetensors")):
            m = re.match(r"^step_(\d{8})\.", f.name)
            if not m or int(m.group(1)) in committed:
                continue
            if int(m.group(1)) > last:
                f.unlink(missing_ok=True)
                warnings.warn(
                    f"removed {f}: an unfinished checkpoint write of an interrupted run",
                    stacklevel=3,
                )
            else:
                warnings.warn(
                    f"{f} has no sidecar ({f.name.split('.')[0]}.json, deleted?): the file is "
                    "kept, but that checkpoint is not used",
                    stacklevel=3,
                )


def _metric_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    flag = nonfinite_name(out.get("value"))
    if flag:
        out["value"], out["nonfinite"] = None, flag
    return out


def _row_problem(row: Any) -> str | None:
    """What is wrong with a metric row read back, or None."""
    if not isinstance(row, dict):
        return f"is a {type(row).__name__}, not a metric row (an object)"
    missing = [k for k in ("step", "split", "metric", "value") if k not in row]
    if missing:
        return f"lacks {', '.join(missing)}"
    if isinstance(row["step"], bool) or not isinstance(row["step"], int):
        return "has a step that is not an integer"
    if not isinstance(row["split"], str) or not isinstance(row["metric"], str):
        return "has a split or metric that is not text"
    value = row["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "has a value that is not a number"
    return None


def _same_experiment(a: str, b: str) -> bool:
    try:
        return canonical(a) == canonical(b)
    except ConfigError:  # an experiment this version does not know
        return a == b


#: metrics renamed since runs were written: old name -> (new name, factor)
RENAMED_METRICS = {"icl_score": ("copy_gain", -1.0)}


def _renamed_row(row: dict[str, Any]) -> dict[str, Any]:
    new = RENAMED_METRICS.get(row["metric"])
    if new is None:
        return row
    value = row["value"]
    return {**row, "metric": new[0], "value": value * new[1] if value is not None else None}


def renamed_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary with ``final_<split>_<old>`` keys of renamed metrics under
    their new names (values converted); other keys unchanged."""
    out = {}
    for key, value in summary.items():
        for old, (name, factor) in RENAMED_METRICS.items():
            if key.startswith("final_") and key.endswith(f"_{old}"):
                key = key[: -len(old)] + name
                value = value * factor if isinstance(value, (int, float)) else value
        out[key] = value
    return out


def dict_diff(old: Any, new: Any, prefix: str = "") -> str:
    """The keys where two nested dicts differ, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        parts = []
        for k in sorted(set(old) | set(new)):
            key = f"{prefix}.{k}" if prefix else k
            if k not in old or k not in new:
                parts.append(f"{key}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}")
            elif old[k] != new[k]:
                parts.append(dict_diff(old[k], new[k], key))
        return "; ".join(p for p in parts if p)
    return f"{prefix}: {old!r} -> {new!r}" if old != new else ""


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[RunStore]:
    """Hold ``path`` as its one writer (:class:`~interp.training.lock.RunLock`)
    for the block, creating the directory if needed. When the block fails
    before the run's first checkpoint is committed, whatever this start wrote
    is removed again (the directory too, if it created it), so a corrected
    relaunch starts clean; a run that has a checkpoint is left to resume."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"run directory {path} exists and is not a directory")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    store = RunStore(path)
    before = set(os.listdir(path))
    had_config = store.exists()
    lock = RunLock(path)
    lock.acquire()
    try:
        yield store
    except BaseException:
        failed = not had_config and not store.steps()
        if failed:  # nothing of a run was committed: take back what this start wrote
            _remove_new(path, before - {LOCK_FILE})
        lock.release()
        if failed and created:
            shutil.rmtree(path, ignore_errors=True)
        elif failed and LOCK_FILE not in before:
            (path / LOCK_FILE).unlink(missing_ok=True)
        raise
    lock.release()


def _remove_new(path: Path, before: set[str]) -> None:
    """Remove the entries of ``path`` that are not in ``before`` (what a failed
    start wrote), but not the lock file, which is still held."""
    for name in set(os.listdir(path)) - before - {LOCK_FILE, OWNER_FILE}:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


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
        cls = config_class(self.experiment)
        return from_dict(cls, with_legacy(cls, self.config_dict))

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
    def name(self) -> str:
        return self.path.name

    @property
    def cache_dir(self) -> Path:
        """Where the analysis cache of this run is written: ``RUN_DIR/analysis``,
        or, when this user cannot write the run directory (read-only, shared),
        a folder of the user's cache directory keyed by the run's path."""
        import hashlib

        own = self.path / "analysis"
        if writable(own):
            return own
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return cache_dir() / "analysis" / f"{self.path.name}-{digest}"

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
        """Every metric row, with metrics renamed since the run was written
        under their current names (:data:`RENAMED_METRICS`)."""
        import pandas as pd

        rows = [_renamed_row(r) for r in self.store.read_metric_rows()]
        return pd.DataFrame(rows, columns=["step", "split", "metric", "value"])

    def summary(self) -> dict[str, Any] | None:
        """summary.json, with renamed metrics' ``final_…`` keys renamed."""
        path = self.store.summary_path
        if not path.exists():
            return None
        data = read_json(path)
        if not isinstance(data, dict):
            raise RunError(f"{path} is not a summary (a JSON object): {str(data)[:80]}")
        return renamed_summary(data)

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
    "writing",
]
