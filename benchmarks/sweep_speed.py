"""Head analyzers over 100+ checkpoints: ``sweep`` vs the naive way (prints JSON).

Trains a short ``cpu-quick`` induction run with a checkpoint every 5 steps,
then times, in one process:

* naive — for every checkpoint and every analyzer, reload the checkpoint and
  call the analyzer on its own (each one runs its own ``run_with_cache``);
* sweep, cold — ``interp.analysis.sweep``: each checkpoint loaded once, the
  analyzers that probe the same tokens share one forward pass, results cached;
* sweep, warm — the same call again, served from ``RUN_DIR/analysis/``.

    python benchmarks/sweep_speed.py [--steps 500] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time

import torch

from interp import open_run
from interp.analysis import HEAD_ANALYZERS, sweep
from interp.experiments import induction

ANALYZERS = list(HEAD_ANALYZERS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp()
    try:
        cfg = induction.preset(
            "cpu-quick",
            overrides=[f"train.steps={args.steps}", f"train.checkpoint_every={args.every}"],
        )
        induction.run(cfg, f"{tmp}/run", device="cpu", threads=args.threads, quiet=True)
        run = open_run(f"{tmp}/run")
        steps = run.steps

        t0 = time.perf_counter()
        for step in steps:
            for fn in ANALYZERS:
                fn(run.load(step))
        naive = time.perf_counter() - t0

        t0 = time.perf_counter()
        df = sweep(run, ANALYZERS)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        sweep(run, ANALYZERS)
        warm = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "checkpoints": len(steps),
                "analyzers": [fn.__name__ for fn in ANALYZERS],
                "rows": len(df),
                "naive_s": round(naive, 2),
                "sweep_cold_s": round(cold, 2),
                "sweep_warm_s": round(warm, 3),
                "speedup_cold": round(naive / cold, 2),
                "speedup_warm": round(naive / warm, 1),
                "threads": args.threads,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
