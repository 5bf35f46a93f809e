"""Where checkpoints come from: our run directories, ``save_pretrained``
directories, hub revisions, models in memory. :func:`open_checkpoints` gives
any of them the interface ``sweep``, ``interp sweep`` and ``interp report``
take (:class:`~interp.sources.base.CheckpointSource`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from interp.config.core import InputError
from interp.sources.base import CheckpointSource, ModelSource, PairsSource
from interp.training.files import RunError


def open_checkpoints(
    what: Any,
    steps: Iterable[int] | None = None,
    *,
    revisions: Mapping[int, str] | None = None,
    name: str | None = None,
) -> Any:
    """A checkpoint series from whatever names it:

    * a run directory of ours → :class:`~interp.training.rundir.Run`;
    * ``{step: dir}`` of ``save_pretrained`` directories, a parent directory
      whose children are named like ``step_1000`` / ``checkpoint-1000``, or
      one such directory → :class:`~interp.sources.hf.LocalCheckpoints`;
    * a hub name, ``"EleutherAI/pythia-70m"`` or ``"hf:EleutherAI/pythia-70m"``,
      with ``steps`` (Pythia's and stanford-crfm's revision conventions) or
      ``revisions`` → :class:`~interp.sources.hf.HubCheckpoints`;
    * a model → :class:`~interp.sources.base.ModelSource` (one checkpoint);
    * ``[(step, model or loader), …]`` → :class:`~interp.sources.base.PairsSource`.

    ``steps`` also narrows a local series to those steps.
    """
    from torch import nn

    from interp.sources.hf import HubCheckpoints, LocalCheckpoints, step_dirs

    if isinstance(what, CheckpointSource) and not isinstance(what, (str, os.PathLike)):
        return what
    if isinstance(what, nn.Module):
        return ModelSource(what, name or type(what).__name__)
    if isinstance(what, Mapping):
        return _narrow(LocalCheckpoints(what, name), steps)
    if isinstance(what, str) and what.startswith("hf:"):
        return HubCheckpoints(what[3:], list(steps or []) or None, revisions, name)
    if isinstance(what, (str, os.PathLike)):
        path = Path(what)
        if path.is_dir():
            if (path / "config.json").exists():
                from interp.training.rundir import Run

                try:
                    return Run(path)
                except RunError:  # not one of ours: a save_pretrained directory
                    return _narrow(LocalCheckpoints({0: path}, name), steps)
            if step_dirs(path):
                return _narrow(LocalCheckpoints.from_parent(path, name), steps)
            raise RunError(
                f"{path} is not a run directory, a save_pretrained directory, nor a folder of "
                "checkpoint directories (named like step_1000 or checkpoint-1000)"
            )
        if isinstance(what, str) and what.count("/") == 1 and not path.exists():
            return HubCheckpoints(what, list(steps or []) or None, revisions, name)
        raise RunError(f"{what} does not exist")
    if isinstance(what, Iterable):
        return PairsSource(list(what), name or "model")
    raise InputError(f"cannot open checkpoints from a {type(what).__name__}")


def _narrow(source: Any, steps: Iterable[int] | None) -> Any:
    if not steps:
        return source
    from interp.sources.hf import LocalCheckpoints

    wanted = sorted(set(steps))
    missing = [s for s in wanted if s not in source.steps]
    if missing:
        raise RunError(f"{source.name} has no checkpoints at {missing}; steps: {source.steps}")
    return LocalCheckpoints({s: source.directory(s) for s in wanted}, source.name)


__all__ = ["CheckpointSource", "ModelSource", "PairsSource", "open_checkpoints"]
