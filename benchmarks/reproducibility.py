"""Are reruns bit-identical, and at what thread counts? (prints JSON)

Trains the ``cpu-quick`` grokking preset for ``--steps`` steps several times in
one process: twice with 1 thread, twice with 2 threads, once with 2 threads and
``torch.use_deterministic_algorithms(True)``; compares the sha256 of the final
weights and reports steps/s for each.

    python benchmarks/reproducibility.py [--steps 600]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from interp import open_run
from interp.experiments import grokking


def one(steps: int, threads: int, deterministic: bool, tmp: str, tag: str) -> dict:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    cfg = grokking.preset("cpu-quick", overrides=[f"train.steps={steps}"])
    t0 = time.perf_counter()
    grokking.run(cfg, f"{tmp}/{tag}", device="cpu", threads=threads, quiet=True)
    dt = time.perf_counter() - t0
    torch.use_deterministic_algorithms(False)
    run = open_run(f"{tmp}/{tag}")
    return {
        "tag": tag,
        "threads": threads,
        "deterministic_algorithms": deterministic,
        "steps_per_s": round(steps / dt, 1),
        "final_sha256": run.sha(run.last_step),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            one(args.steps, t, d, tmp, tag)
            for t, d, tag in [
                (1, False, "1t-a"),
                (1, False, "1t-b"),
                (2, False, "2t-a"),
                (2, False, "2t-b"),
                (2, True, "2t-det"),
            ]
        ]
    sha = {r["tag"]: r["final_sha256"] for r in runs}
    print(
        json.dumps(
            {
                "preset": "cpu-quick",
                "steps": args.steps,
                "runs": runs,
                "1_thread_rerun_identical": sha["1t-a"] == sha["1t-b"],
                "2_thread_rerun_identical": sha["2t-a"] == sha["2t-b"],
                "2_thread_deterministic_matches_2_thread": sha["2t-det"] == sha["2t-a"],
                "1_thread_matches_2_thread": sha["1t-a"] == sha["2t-a"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
