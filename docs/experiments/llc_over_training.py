"""The LLC over a run's checkpoints, over seeds.

    python docs/experiments/llc_over_training.py OUT --experiment grokking \
        [--preset cpu-quick] [--seeds 0 1 2] [--jobs 2] [--threads N]

Trains (or reuses) `interp train EXPERIMENT --preset PRESET --seed S` in
OUT/seedS, sweeps the LLC analyzer (interp.experiments.llc_runs.RunLLC, its
defaults) over every checkpoint, writes OUT/seedS/report.html and prints one
JSON line per seed: the run's transition steps (t_mem and t_gen, or
t_induction), the step where the LLC peaks, the LLC at the checkpoints
nearest each transition and at the end, and the curve (docs/llc.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interp import open_run
from interp.experiments.registry import experiment
from interp.experiments.sweeping import sweep_run

MARKS = ("t_mem", "t_gen", "t_induction")


def nearest(curve: dict[int, float], step: int | None) -> tuple[int, float] | None:
    if step is None:
        return None
    s = min(curve, key=lambda k: abs(k - step))
    return s, round(curve[s], 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--experiment", default="grokking")
    ap.add_argument("--preset", default="cpu-quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    for seed in args.seeds:
        run_dir = args.out / f"seed{seed}"
        exp = experiment(args.experiment)
        exp.train(exp.preset(args.preset, seed), run_dir, quiet=True, threads=args.threads)
        run = open_run(run_dir)
        df = sweep_run(run_dir, ["llc"], jobs=args.jobs)
        exp.write_report(run)
        llc = df[df["metric"] == "llc_mean"].set_index("step")["value"]
        flat = df[df["metric"] == "flat"].set_index("step")["value"]
        curve = {int(k): float(v) for k, v in llc.items()}
        summary = run.summary()
        peak = max(curve, key=curve.get)
        marks = {m: summary[m] for m in MARKS if m in summary}
        print(json.dumps({
            "seed": seed, **marks, "peak_step": peak, "peak_llc": round(curve[peak], 2),
            **{f"at_{m}": nearest(curve, t) for m, t in marks.items()},
            "final": nearest(curve, max(curve)),
            "flat_steps": [int(s) for s, f in flat.items() if f],
            "curve": {k: round(v, 2) for k, v in curve.items()},
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
