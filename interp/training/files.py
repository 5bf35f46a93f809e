"""File I/O of run directories: atomic writes, checksums, verified reads.

Every file is written to a temporary name in the same directory and moved into
place with ``os.replace``, so a reader sees the old file or the new one, never
a torn one. Tensors are stored as safetensors and JSON is the only other
format read back: opening someone's run cannot execute code (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.config.core import UserError

if TYPE_CHECKING:
    from torch import Tensor


class RunError(UserError, RuntimeError):
    """A run directory is missing, inconsistent, or holds another config."""


class CorruptCheckpointError(RunError):
    """A checkpoint file is truncated, corrupt or does not match its sha256."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
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


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as strict JSON: a non-finite float (NaN, ±inf), which
    strict parsers (a browser's ``JSON.parse``, jq) reject, is written as
    ``null`` (see :func:`json_safe`)."""
    atomic_write_text(
        path, json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    )


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def nonfinite_name(value: float) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite float, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return None


def cache_dir() -> Path:
    """``$INTERP_CACHE_DIR``, else ``$XDG_CACHE_HOME/interp``, else
    ``~/.cache/interp``: tokenized corpora, and the analysis cache and reports
    of run directories that cannot be written to."""
    env = os.environ.get("INTERP_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "interp"


def writable(folder: str | os.PathLike) -> bool:
    """True when files can be created in ``folder`` (or, if it does not exist
    yet, in its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:  # try it: permissions, read-only mounts and immutable folders all show
        fd, name = tempfile.mkstemp(dir=folder, prefix=".probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json(path: str | os.PathLike) -> Any:
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


def tensors_to_bytes(
    tensors: Mapping[str, Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """safetensors bytes of ``tensors`` (moved to CPU, made contiguous)."""
    from safetensors.torch import save as st_save

    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    return st_save(plain, metadata=metadata)


def load_verified(path: str | os.PathLike, expected_sha: str) -> dict[str, Tensor]:
    """The tensors of a safetensors file whose sha256 must be ``expected_sha``;
    a missing, truncated or altered file raises :class:`CorruptCheckpointError`
    naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
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


__all__ = [
    "CorruptCheckpointError",
    "RunError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_dir",
    "git_commit",
    "json_safe",
    "load_verified",
    "nonfinite_name",
    "read_json",
    "sha256_bytes",
    "tensors_to_bytes",
    "writable",
]
