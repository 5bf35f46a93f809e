"""One writer per run directory.

Training, resuming and the runner's jobs hold ``RUN_DIR/.lock`` while they
write (:class:`RunLock`, on :mod:`filelock`, whose lock is an ``flock`` the
operating system releases when the process ends, however it ends; Linux
carries it to NFS as a POSIX lock). A second writer is refused at once with
an error naming the holder's PID, host and command, read from
``RUN_DIR/lock.json``. A lock left by a killed process is no lock: it is
taken over, and the takeover is reported. Readers (``open_run``, ``sweep``,
``interp report``) take no lock: every file is replaced atomically, so they
see the old version or the new one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from interp.training.files import RunError, atomic_write_json

LOCK_FILE = ".lock"
OWNER_FILE = "lock.json"


class RunLocked(RunError):
    """Another process is writing this run directory."""


class RunLock:
    """The exclusive writer lock of a run directory (a context manager)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.dir = Path(run_dir)
        self._lock = FileLock(str(self.dir / LOCK_FILE), timeout=0)

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLocked` naming its holder. The
        directory must exist."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunLocked(
                f"{self.dir} is being written by {self._describe(self._owner())}; "
                "wait for it to finish, or stop it (its run resumes)"
            ) from None
        stale = self._owner()
        if stale and (stale.get("pid"), stale.get("host")) != (os.getpid(), socket.gethostname()):
            warnings.warn(
                f"{self.dir}: took over the lock of {self._describe(stale)}, which no longer "
                "holds it (killed?); its run resumes from its last checkpoint",
                stacklevel=3,
            )
        atomic_write_json(
            self.dir / OWNER_FILE,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(sys.argv)[:500],
            },
        )

    def release(self) -> None:
        (self.dir / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _owner(self) -> dict[str, Any]:
        try:
            data = json.loads((self.dir / OWNER_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _describe(owner: dict[str, Any]) -> str:
        if not owner:
            return "another process"
        cmd = f" ({owner['command']})" if owner.get("command") else ""
        return f"PID {owner.get('pid')} on {owner.get('host')} since {owner.get('since')}{cmd}"


__all__ = ["LOCK_FILE", "OWNER_FILE", "RunLock", "RunLocked"]
