"""The run directory: the contract between training and analysis.

::

    RUN_DIR/
      config.json                          experiment, resolved config, version, git commit
      metrics.jsonl                        {"step", "split", "metric", "value"} per line
      summary.json                         end-of-run summary (t_mem, t_gen, final losses)
      checkpoints/step_00001000.safetensors        model weights (clean TL state-dict keys)
      checkpoints/step_00001000.state.safetensors  optimizer / filter / RNG state
      checkpoints/step_00001000.json               sidecar: step, sha256 of both files, metrics

Every file is written to a temporary name and moved into place with
``os.replace``; a checkpoint counts only once its sidecar exists, and the
sidecar is written last. Loading verifies sha256 and names the file that is
corrupt or truncated. Only JSON and safetensors are read back (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn

from interp.config import from_dict

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CKPT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d{8})\.json$")


class RunError(RuntimeError):
    """A run directory is missing, inconsistent, or holds another config."""


class CorruptCheckpointError(RunError):
    """A checkpoint file is truncated, corrupt or does not match its sha256."""


# ------------------------------------------------------------------ file I/O
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same dir and ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would (0666 minus
    the umask), not ``mkstemp``'s owner-only 0600, so shared run directories
    stay readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # created with mode 0666 like open() does, so the kernel applies the umask
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json(path: Path) -> Any:
    """Parse a JSON file, naming it in the error when it is missing or corrupt."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(
            f"{path} is not valid JSON (corrupt or truncated): {exc}"
        ) from exc


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _ckpt_stem(step: int) -> str:
    return f"step_{step:08d}"


def _tensors_to_bytes(
    tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return st_save(plain, metadata=metadata)


def _load_verified(path: Path, expected_sha: str) -> dict[str, Tensor]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorruptCheckpointError(f"checkpoint file {path} is missing") from None
    actual = sha256_bytes(data)
    if actual != expected_sha:
        raise CorruptCheckpointError(
            f"checkpoint file {path} is corrupt or truncated: sha256 {actual[:12]}… "
            f"does not match the recorded {expected_sha[:12]}…"
        )
    try:
        return st_load(data)
    except (SafetensorError, ValueError) as exc:  # pragma: no cover - sha already matched
        raise CorruptCheckpointError(f"checkpoint file {path} cannot be parsed: {exc}") from exc


# ------------------------------------------------------------------ the store
@dataclass(frozen=True)
class Checkpoint:
    """One saved step: weights, resumable state and the sidecar's metadata."""

    step: int
    weights: dict[str, Tensor]
    state: dict[str, Tensor]
    meta: dict[str, Any]


class RunStore:
    """Writer/reader of one run directory (see module docstring for the layout)."""

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
            if old["experiment"] != experiment or old["config"] != config:
                diff = _dict_diff(old["config"], config)
                raise RunError(
                    f"{self.path} already holds a run of {old['experiment']!r} with a different "
                    f"config ({diff}); refusing to overwrite it. Use another --run-dir."
                )
            return True
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
        complete, tail = lines[:-1], lines[-1]
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
        del tail  # an unterminated last line is an interrupted write
        return rows

    def truncate_metrics(self, max_step: int) -> None:
        """Keep only rows with ``step <= max_step`` (used when resuming)."""
        rows = [r for r in self.read_metric_rows() if r["step"] <= max_step]
        atomic_write_text(
            self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        )

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
        wbytes = _tensors_to_bytes(weights)
        atomic_write_bytes(self.weights_path(step), wbytes)
        files = {"weights": {"file": self.weights_path(step).name, "sha256": sha256_bytes(wbytes)}}
        if state is not None:
            sbytes = _tensors_to_bytes(state)
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
        return _load_verified(self.weights_path(step), meta["files"]["weights"]["sha256"])

    def load_checkpoint(self, step: int, with_state: bool = True) -> Checkpoint:
        meta = self.read_sidecar(step)
        weights = _load_verified(self.weights_path(step), meta["files"]["weights"]["sha256"])
        state: dict[str, Tensor] = {}
        if with_state and "state" in meta["files"]:
            state = _load_verified(self.state_path(step), meta["files"]["state"]["sha256"])
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


def _dict_diff(old: Any, new: Any, prefix: str = "") -> str:
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
    DataFrame with columns step, split, metric, value.
    """

    def __init__(self, path: str | os.PathLike):
        self.store = RunStore(path)
        self._raw = self.store.read_config()

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def experiment(self) -> str:
        return self._raw["experiment"]

    @property
    def config_dict(self) -> dict[str, Any]:
        return self._raw["config"]

    @cached_property
    def config(self) -> Any:
        from interp.experiments.registry import config_class

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
        rows = self.store.read_metric_rows()
        return pd.DataFrame(rows, columns=["step", "split", "metric", "value"])

    def summary(self) -> dict[str, Any] | None:
        path = self.path / SUMMARY_FILE
        return read_json(path) if path.exists() else None

    def sha(self, step: int) -> str:
        return self.store.checkpoint_sha(step)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, experiment={self.experiment!r}, steps={len(self.steps)})"


def open_run(path: str | os.PathLike) -> Run:
    """Open a run directory for analysis; errors name the missing/corrupt file."""
    return Run(path)
