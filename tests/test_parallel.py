"""Worker processes of the runner's processes backend end with the process that
started them."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(ln for ln in status.read_text().splitlines() if ln.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "Z" not in state.split()[1]  # a zombie has exited


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    (tmp_path / "slowjob.py").write_text(
        textwrap.dedent(
            """
            import os, time
            from pathlib import Path

            def job(i, threads):
                Path(os.environ["PIDS"], str(os.getpid())).write_text(str(i))
                time.sleep(120)
            """
        )
    )
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PIDS": str(pids)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    code = (
        "from interp.experiments.runner import make_backend\n"
        "from slowjob import job\n"
        "pool = make_backend('processes', 2, None).pool\n"
        "futures = [pool.submit(job, i, 1) for i in range(6)]\n"
        "futures[0].result()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2 and all(_alive(w) for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers)
        assert len(list(pids.iterdir())) == 2  # the four queued jobs never started
    finally:
        parent.kill()
        for w in [int(p.name) for p in pids.iterdir()]:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
