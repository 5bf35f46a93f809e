"""What ``sweep``, ``interp sweep`` and ``interp report`` need from a series of
checkpoints, wherever it comes from (:class:`CheckpointSource`), and the
ones that hold models already in memory.

A source has a ``name`` (the ``run`` column when several are swept together),
its ``steps``, ``load(step)`` (a model in eval mode), ``sha(step)`` (what
the analysis cache is keyed by: a content hash or a hub commit), its
``tokenizer`` when it has one, ``metadata``, and ``cache_dir``: where its
analysis cache lives. Our run directories (:class:`interp.training.rundir.Run`)
are sources too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from interp.config.core import InputError
from interp.training.files import cache_dir

if TYPE_CHECKING:
    import torch
    from torch import nn


@runtime_checkable
class CheckpointSource(Protocol):
    """A series of checkpoints of one model (see the module docstring)."""

    name: str

    @property
    def steps(self) -> list[int]: ...

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module: ...

    def sha(self, step: int) -> str | None: ...

    @property
    def cache_dir(self) -> Path: ...


def tokenizer_of(source: Any) -> Any:
    """A source's tokenizer: its ``tokenizer`` attribute, or for a run
    directory of ours its ``tokenizer.json`` (runs on text), else None."""
    if hasattr(source, "tokenizer"):
        return source.tokenizer
    path = getattr(source, "path", None)
    if path is not None and (Path(path) / "tokenizer.json").exists():
        from interp.data.corpus import TextTokenizer

        return TextTokenizer.load(Path(path) / "tokenizer.json")
    return None


def source_cache_dir(kind: str, identity: str, name: str) -> Path:
    """The analysis cache of an external source: the user's cache directory,
    one folder per source (``identity``: its path or hub name)."""
    digest = hashlib.sha256(f"{kind}|{identity}".encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    return cache_dir() / "analysis" / f"{safe}-{digest}"


def state_sha(model: nn.Module) -> str:
    """sha256 over a model's state dict (names, dtypes, shapes, bytes)."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class ModelSource:
    """One model in memory as a one-checkpoint source (``open_checkpoints(model)``)."""

    def __init__(self, model: nn.Module, name: str = "model", step: int = 0, tokenizer: Any = None):
        self.name = name
        self._model = model
        self._step = step
        self._tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        self._sha: str | None = None
        self.metadata: dict[str, Any] = {"kind": "model", "class": type(model).__name__}

    @property
    def steps(self) -> list[int]:
        return [self._step]

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        if step not in (None, self._step):
            raise InputError(f"{self.name} has one checkpoint, step {self._step}; got {step}")
        return self._model.eval()

    def sha(self, step: int) -> str:
        if self._sha is None:
            self._sha = state_sha(self._model)
        return self._sha

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def cache_dir(self) -> Path:
        return source_cache_dir("model", self.sha(self._step), self.name)

    def __repr__(self) -> str:
        return f"ModelSource({self.name!r}, step={self._step})"


class PairsSource:
    """Checkpoints given as ``(step, model or zero-argument loader)`` pairs: a
    loader is called only when its step is analysed, and its model dropped
    after."""

    def __init__(self, pairs: Iterable[tuple[int, Any]], name: str = "model"):
        self.name = name
        self._items: dict[int, Any] = {}
        for item in pairs:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int)):
                raise InputError(f"expected (step, model or loader) pairs, got {item!r}")
            step, what = item
            if step in self._items:
                raise InputError(f"step {step} is given twice")
            self._items[step] = what
        if not self._items:
            raise InputError("no checkpoints given")
        self._shas: dict[int, str] = {}
        self.metadata: dict[str, Any] = {"kind": "pairs"}

    @property
    def steps(self) -> list[int]:
        return sorted(self._items)

    def load(self, step: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
        step = self.steps[-1] if step is None else step
        if step not in self._items:
            raise InputError(f"{self.name} has no checkpoint at step {step}; steps: {self.steps}")
        what = self._items[step]
        model = what() if _is_loader(what) else what
        return model.to(device).eval()

    def sha(self, step: int) -> str | None:
        """The content hash of a model given in memory; None for a loader
        (its model is not loaded just to hash it, so its results are not cached)."""
        what = self._items[step]
        if _is_loader(what) is not None:
            return None
        if step not in self._shas:
            self._shas[step] = state_sha(what)
        return self._shas[step]

    @property
    def tokenizer(self) -> Any:
        return None

    @property
    def cache_dir(self) -> Path:
        return source_cache_dir("pairs", self.name, self.name)

    def __repr__(self) -> str:
        return f"PairsSource({self.name!r}, steps={self.steps})"


def _is_loader(what: Any) -> Callable[[], Any] | None:
    from torch import nn

    return None if isinstance(what, nn.Module) else what


__all__ = [
    "CheckpointSource",
    "ModelSource",
    "PairsSource",
    "source_cache_dir",
    "state_sha",
    "tokenizer_of",
]
