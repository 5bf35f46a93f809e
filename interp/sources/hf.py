"""Checkpoint series of Hugging Face models, loaded as TransformerLens bridges
(``TransformerBridge.boot_transformers``; its logits equal the Hugging Face
model's, which is tested).

* :class:`LocalCheckpoints` — directories written by ``save_pretrained``,
  one per step: given as ``{step: dir}``, or found in a parent directory whose
  children are named like ``step_1000``, ``step1000``, ``checkpoint-1000`` or
  ``global_step1000``. Nothing touches the network.
* :class:`HubCheckpoints` — a hub repository at several revisions: Pythia's
  ``step{N}`` and stanford-crfm's ``checkpoint-{N}`` from a step number (TL's
  ``checkpoint_value``), any other revision by name. They come from the
  Hugging Face cache (``$HF_HOME``): a cached revision loads from its snapshot
  without touching the network; another is downloaded, unless
  ``HF_HUB_OFFLINE=1``, when it is an error naming the model, the revision and
  the cache.

Weights are loaded by ``transformers`` (safetensors, or its own guarded
loading of ``pytorch_model.bin``). Each checkpoint's cache key is a sha256 of
its weight files (computed once per file, remembered by size and
modification time) or, on the hub, the commit its revision points to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.config.core import InputError
from interp.sources.base import source_cache_dir
from interp.training.files import RunError, atomic_write_json, cache_dir

if TYPE_CHECKING:
    import torch
    from torch import nn

STEP_DIR = re.compile(r"^(?:step|checkpoint|global_step|ckpt)[-_]?(\d+)$")
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")
#: revision names of the checkpoint series TransformerLens knows by step
REVISION_FORMATS = {"EleutherAI/pythia": "step{}", "stanford-crfm/": "checkpoint-{}"}


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No progress bars or info lines from transformers while booting."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No network: huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import,
    into ``constants.HF_HUB_OFFLINE``, which transformers consults on every
    call, so that is what is switched."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def boot(
    name_or_path: str,
    device: str | torch.device = "cpu",
    tokenizer: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """A TransformerLens bridge of a Hugging Face model, in eval mode."""
    import warnings

    from transformer_lens.model_bridge import TransformerBridge

    with _quiet_loading(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_transformers(
            name_or_path, device=str(device), tokenizer=tokenizer, **kwargs
        )
    return bridge.eval()


def usable_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` if it maps text to ids, else None: transformers and
    TransformerLens build a tokenizer of special tokens alone for a model
    whose files carry none."""
    try:
        special = set(tokenizer.all_special_ids or [])
        return tokenizer if len(tokenizer) > len(special) else None
    except (AttributeError, TypeError):
        return None


def _load_tokenizer(where: str, **kwargs: Any) -> Any:
    """The tokenizer at ``where`` (a directory, or a repository at
    ``revision``), asked to prepend BOS: TransformerLens otherwise reloads it
    by name to do so, and that reload drops the revision (the hub's ``main``
    may be absent from an offline cache)."""
    from transformers import AutoTokenizer

    with _quiet_loading():
        for extra in ({"add_bos_token": True}, {}):
            try:
                return usable_tokenizer(AutoTokenizer.from_pretrained(where, **extra, **kwargs))
            except ValueError:
                continue  # tokenizers that cannot prepend BOS (no BOS token)
            except (OSError, KeyError, TypeError):
                return None
    return None


def _file_sha(path: Path) -> str:
    """sha256 of a file, remembered in the user cache by path, size and mtime."""
    memo_path = cache_dir() / "file-hashes.json"
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict):
        memo = {}
    if key not in memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        memo[key] = h.hexdigest()
        try:
            atomic_write_json(memo_path, memo)
        except OSError:
            pass  # an unwritable cache only costs rehashing
    return memo[key]


def checkpoint_dir_problem(path: Path) -> str | None:
    """Why ``path`` is not a ``save_pretrained`` directory, or None."""
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    if not (path / "config.json").exists():
        return "has no config.json (not a save_pretrained directory)"
    if not any(any(path.glob(p)) for p in WEIGHT_FILES):
        return "has no weights (*.safetensors or pytorch_model.bin)"
    return None


def step_dirs(parent: Path) -> dict[int, Path]:
    """The checkpoint directories of ``parent``, by the step in their name."""
    out: dict[int, Path] = {}
    for child in sorted(parent.iterdir()):
        m = STEP_DIR.match(child.name)
        if m and child.is_dir():
            step = int(m.group(1))
            if step in out:
                raise RunError(f"{parent}: step {step} is both {out[step].name} and {child.name}")
            out[step] = child
    return out


class LocalCheckpoints:
    """``save_pretrained`` directories, one per step (module docstring)."""

    def __init__(self, dirs: Mapping[int, str | os.PathLike], name: str | None = None):
        if not dirs:
            raise RunError("no checkpoint directories given")
        self._dirs = {int(s): Path(d) for s, d in dirs.items()}
        for step, d in self._dirs.items():
            problem = checkpoint_dir_problem(d)
            if problem:
                raise RunError(f"checkpoint directory {d} (step {step}) {problem}")
        first = self._dirs[min(self._dirs)]
        self.name = name or (first.parent.name if len(self._dirs) > 1 else first.name)
        self._tokenizer: Any = ...
        self._shas: dict[int, str] = {}
        self.metadata: dict[str, Any] = {"kind": "local", **_config_summary(first)}

    @classmethod
    def from_parent(cls, parent: str | os.PathLike, name: str | None = None) -> LocalCheckpoints:
        parent = Path(parent)
        found = step_dirs(parent)
        if not found:
            raise RunError(
                f"{parent} has no checkpoint directories (children named like step_1000, "
                "step1000, checkpoint-1000 or global_step1000)"
            )
        return cls(found, name or parent.name)

    @property
    def steps(self) -> list[int]:
        return sorted(self._dirs)

    def directory(self, step: int) -> Path:
        if step not in self._dirs:
            raise RunError(f"{self.name} has no checkpoint at step {step}; steps: {self.steps}")
        return self._dirs[step]

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        d = self.directory(self.steps[-1] if step is None else step)
        try:
            with _offline():
                return boot(str(d), device=device, tokenizer=self.tokenizer)
        except _load_errors() as exc:
            raise RunError(f"cannot load {d}: {_first_line(exc)}") from exc

    def hf_config(self, step: int) -> Any:
        """The Hugging Face config of ``step`` (no weights read)."""
        from transformers import AutoConfig

        d = self.directory(step)
        try:
            with _offline():
                return AutoConfig.from_pretrained(str(d))
        except (OSError, ValueError, KeyError) as exc:
            raise RunError(f"cannot read the config of {d}: {_first_line(exc)}") from exc

    def sha(self, step: int) -> str:
        if step not in self._shas:
            d = self.directory(step)
            files = sorted(p for pat in WEIGHT_FILES for p in d.glob(pat))
            h = hashlib.sha256((d / "config.json").read_bytes())
            for f in files:
                h.update(f"{f.name}|{_file_sha(f)}".encode())
            self._shas[step] = h.hexdigest()
        return self._shas[step]

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is ...:
            with _offline():
                self._tokenizer = _load_tokenizer(str(self._dirs[max(self._dirs)]))
        return self._tokenizer

    @property
    def cache_dir(self) -> Path:
        first = self._dirs[min(self._dirs)]
        where = first.parent if len(self._dirs) > 1 else first
        return source_cache_dir("local", str(where.resolve()), self.name)

    def __repr__(self) -> str:
        return f"LocalCheckpoints({self.name!r}, steps={self.steps})"


def revision_of(repo: str, step: int) -> str | None:
    """The revision name of ``step`` for the series TransformerLens knows."""
    for prefix, fmt in REVISION_FORMATS.items():
        if repo.startswith(prefix):
            return fmt.format(step)
    return None


class HubCheckpoints:
    """A hub repository at several revisions (module docstring). ``steps``
    uses the series' revision convention; ``revisions`` maps steps to any
    revision names."""

    def __init__(
        self,
        repo: str,
        steps: list[int] | None = None,
        revisions: Mapping[int, str] | None = None,
        name: str | None = None,
    ):
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise InputError(f"{repo!r} is not a hub repository name (owner/name)")
        self.repo = repo
        self._revisions: dict[int, str] = dict(revisions or {})
        for s in steps or []:
            rev = revision_of(repo, s)
            if rev is None:
                raise InputError(
                    f"{repo}: its revisions have no known step convention (Pythia's step{{N}}, "
                    "stanford-crfm's checkpoint-{N}); give revisions={step: name}"
                )
            self._revisions[s] = rev
        if not self._revisions:
            self._revisions[0] = "main"
        self.name = name or repo.split("/")[-1]
        self._tokenizer: Any = ...
        self.metadata: dict[str, Any] = {"kind": "hub", "repo": repo}

    @property
    def steps(self) -> list[int]:
        return sorted(self._revisions)

    def revision(self, step: int) -> str:
        if step not in self._revisions:
            raise RunError(
                f"{self.repo} has no checkpoint at step {step} here; steps: {self.steps}"
            )
        return self._revisions[step]

    def snapshot(self, step: int) -> Path | None:
        """The cached snapshot directory of ``step``'s revision, or None."""
        from huggingface_hub import snapshot_download

        try:
            with _offline():
                return Path(
                    snapshot_download(
                        self.repo, revision=self.revision(step), local_files_only=True
                    )
                )
        except (OSError, ValueError):  # LocalEntryNotFoundError is an OSError
            return None

    @contextlib.contextmanager
    def _opening(self, step: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """Where to load ``step`` from and with which arguments: a cached
        snapshot, offline; else the repository at the revision. Failures
        become a RunError naming the model, the revision and the cache."""
        rev = self.revision(step)
        where = self.snapshot(step)
        try:
            if where is not None:
                with _offline():
                    yield str(where), {}
            else:
                yield self.repo, {"revision": rev}
        except _load_errors() as exc:
            state = (
                "is cached but did not load"
                if where
                else ("is not in the Hugging Face cache and could not be downloaded")
            )
            raise RunError(
                f"cannot load {self.repo} at revision {rev}: it {state} "
                f"(cache {_hub_cache()}; {_first_line(exc)})"
            ) from exc

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        """A cached revision loads from its snapshot without the network; any
        other is downloaded unless ``HF_HUB_OFFLINE=1``."""
        step = self.steps[-1] if step is None else step
        tokenizer = self.tokenizer
        with self._opening(step) as (where, kwargs):
            return boot(where, device=device, tokenizer=tokenizer, **kwargs)

    def hf_config(self, step: int) -> Any:
        """The Hugging Face config of ``step`` (no weights read)."""
        from transformers import AutoConfig

        with self._opening(step) as (where, kwargs):
            return AutoConfig.from_pretrained(where, **kwargs)

    def sha(self, step: int) -> str:
        """The commit the revision points to in the local cache (else the
        revision name: the cache is then keyed by name until it is cached)."""
        where = self.snapshot(step)
        return f"{self.repo}@{where.name if where else self.revision(step)}"

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the latest revision (from its snapshot if cached)."""
        if self._tokenizer is ...:
            last = self.steps[-1]
            where = self.snapshot(last)
            if where is not None:
                with _offline():
                    self._tokenizer = _load_tokenizer(str(where))
            else:
                self._tokenizer = _load_tokenizer(self.repo, revision=self.revision(last))
        return self._tokenizer

    @property
    def cache_dir(self) -> Path:
        return source_cache_dir("hub", self.repo, self.name)

    def __repr__(self) -> str:
        return f"HubCheckpoints({self.repo!r}, steps={self.steps})"


def _load_errors() -> tuple[type[BaseException], ...]:
    """What loading a broken or foreign checkpoint raises (safetensors'
    header errors are their own class)."""
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, NotImplementedError, SafetensorError)


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _config_summary(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    keys = ("architectures", "model_type", "num_hidden_layers", "n_layer", "hidden_size", "n_embd")
    return {k: cfg[k] for k in keys if k in cfg}


__all__ = [
    "HubCheckpoints",
    "LocalCheckpoints",
    "boot",
    "checkpoint_dir_problem",
    "revision_of",
    "step_dirs",
    "usable_tokenizer",
]
