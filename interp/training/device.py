"""Where a run computes: the device, and how many torch threads it uses.

Small models on a small machine suffer badly from oversubscription: one
2-thread run beside another busy process runs many times slower. So when
neither ``--threads`` nor ``$INTERP_THREADS`` says otherwise and the machine
is already busy (other processes keep a core or more busy, sampled from
``/proc/stat`` for 0.2 s), a run takes the cores that are idle (at least 1)
and says so.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING

from interp.config.core import ConfigError

if TYPE_CHECKING:
    import torch


#: devices a run can train on (``meta`` and the like hold no data)
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` → cuda when available, else cpu; anything else as given."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {device!r} is not a device; use auto, cpu or cuda") from None
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(
            f"--device {device!r}: runs train on auto, cpu, cuda (or cuda:N) or mps, "
            f"not on {dev.type!r}"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but CUDA is not available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device!r}: this machine has {torch.cuda.device_count()} GPUs")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was requested but MPS is not available here")
    return dev


def threads_from_env() -> int | None:
    """``$INTERP_THREADS`` as an int (None when unset)."""
    env = os.environ.get("INTERP_THREADS")
    if env is None or env.strip() == "":
        return None
    try:
        return int(env)
    except ValueError:
        raise ConfigError(f"INTERP_THREADS must be a whole number, got {env!r}") from None


def busy_cores(seconds: float = 0.2) -> float | None:
    """How many cores other processes keep busy, sampled from ``/proc/stat``
    over ``seconds`` (this process sleeps meanwhile); None where there is no
    ``/proc/stat``."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)


def idle_cores() -> tuple[int, float, int]:
    """(cores not busy with other work, cores busy, cores) of this machine."""
    cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (OSError, AttributeError):  # not on every platform
            busy = 0.0
    return max(1, cores - round(busy)), busy, cores


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count: ``threads``, else ``$INTERP_THREADS``,
    else torch's default unless the machine is busy (then the idle cores, at
    least 1, with a warning naming ``--threads``). Returns the count in use."""
    import torch

    if threads is None:
        threads = threads_from_env()
    if threads is None:
        idle, busy, cores = idle_cores()
        if idle < torch.get_num_threads():
            warnings.warn(
                f"this machine is busy (other work on {busy:.1f} of {cores} cores): training with "
                f"{idle} torch thread{'s' if idle > 1 else ''}; --threads N (or INTERP_THREADS) "
                "chooses",
                stacklevel=2,
            )
            threads = idle
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be a whole number >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


__all__ = ["configure_threads", "idle_cores", "resolve_device", "threads_from_env"]
