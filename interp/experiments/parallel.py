"""Run independent training jobs one after another or in worker processes.

With ``jobs > 1`` each job runs in a spawned process with **one** torch thread
(on a small machine, several multi-threaded torch processes oversubscribe the
cores and everything slows down many times over). ``execute(job, threads)``
must be picklable then: a module-level function or a ``functools.partial`` of one.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, TypeVar

J = TypeVar("J")


def _exit_with_parent(parent: int, poll: float = 0.5) -> None:
    """Worker initializer: end the worker as soon as the process that started it
    is gone. Without it a killed ``interp experiment … --jobs N`` leaves its
    workers running the jobs already queued to them, each holding a core. A run
    cut short this way is like a killed one: its directory resumes on relaunch."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="interp-parent-watch", daemon=True).start()


def run_jobs(
    first: Sequence[J],
    execute: Callable[[J, int | None], Any],
    *,
    jobs: int = 1,
    threads: int | None = None,
    then: Callable[[J, Any], Sequence[J]] | None = None,
    on_done: Callable[[J, Any], None] | None = None,
) -> list[tuple[J, Any]]:
    """Run ``first``; when a job finishes, ``on_done(job, result)`` is called and
    the jobs ``then(job, result)`` names are run too. Returns (job, result) in
    completion order. ``threads`` applies when ``jobs == 1``."""
    done: list[tuple[J, Any]] = []

    def finish(job: J, result: Any) -> Sequence[J]:
        done.append((job, result))
        if on_done is not None:
            on_done(job, result)
        return then(job, result) if then is not None else ()

    if jobs <= 1:
        queue = list(first)
        while queue:
            job = queue.pop(0)
            queue += finish(job, execute(job, threads))
        return done
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=mp.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        pending = {pool.submit(execute, job, 1): job for job in first}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                for nxt in finish(job, fut.result()):
                    pending[pool.submit(execute, nxt, 1)] = nxt
    return done


__all__ = ["run_jobs"]
