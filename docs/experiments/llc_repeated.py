"""The LLC of repeated-data runs at the end of training: f = 0 against
f > 0 at each repeated-epoch count E (docs/llc.md).

    python docs/experiments/llc_repeated.py GRID_OUT [--size xs] [--jobs 1]

GRID_OUT is the output directory of ``interp experiment repeated-data``.
For every finished f0 and repeated run of SIZE it sweeps ``llc``
(interp.experiments.llc_runs.RunLLC, its defaults: 1,024 training
sequences, 4 chains × 100 draws) at the run's last checkpoint, rewrites
GRID_OUT/report.html (which draws them) and prints one JSON line per run and
one per (f, E) with the seed-paired difference from f = 0.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
import torch

from interp import open_run
from interp.experiments.repeated_grid import last_step_llc, write_report
from interp.experiments.sweeping import sweep_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("grid", type=Path)
    ap.add_argument("--size", default="xs")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of this process")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    table = pd.read_csv(args.grid / "results.csv")
    table = table[(table["size"] == args.size) & table["kind"].isin(["f0", "repeated"])]
    for _, r in table.iterrows():
        run_dir = args.grid / args.size / r["run"] / f"seed{int(r['seed'])}"
        sweep_run(run_dir, ["llc"], [open_run(run_dir).last_step], jobs=args.jobs)
    llc = last_step_llc(args.grid, table)
    merged = llc.merge(table[["run", "seed", "test_loss"]], on=["run", "seed"])
    for _, r in merged.iterrows():
        print(json.dumps({"run": r["run"], "seed": int(r["seed"]),
                          "llc": round(r["llc_mean"], 2), "llc_se": round(r["llc_se"], 2),
                          "test_loss": round(r["test_loss"], 4)}))  # fmt: skip
    base = merged[merged["run"] == "f0"].set_index("seed")["llc_mean"]
    for run, g in merged[merged["run"] != "f0"].groupby("run"):
        d = (g.set_index("seed")["llc_mean"] - base).dropna()
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None
        print(json.dumps({"run": run, "seeds": len(d), "llc_minus_f0": round(float(d.mean()), 2),
                          "se": None if se is None else round(se, 2),
                          "per_seed": [round(v, 2) for v in d]}))  # fmt: skip
    full = pd.read_csv(args.grid / "results.csv")
    write_report(args.grid, full)


if __name__ == "__main__":
    main()
