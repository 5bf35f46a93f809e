"""The LLC of a grokking ticket against its dense run (and the random-mask
control) at the same steps, over training.

    python docs/experiments/llc_tickets.py SUITE_OUT [--seeds 0 1 2] \
        [--rate 0.6] [--jobs 1]

SUITE_OUT is the output directory of ``interp experiment tickets`` (its
``seedS/dense``, ``seedS/ticket-rRATE`` and ``seedS/random`` runs). For each
seed this sweeps ``llc`` (interp.experiments.llc_runs.RunLLC, its defaults;
a masked run is sampled in its mask's subspace) over every checkpoint of the
ticket and of the random control, and over the dense run's checkpoints up to
the ticket's last step and at its own t_mem, t_gen and end; then rewrites
SUITE_OUT/report.html (which draws the curves) and prints one JSON line per
seed (docs/llc.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from interp import open_run
from interp.experiments.sweeping import sweep_run
from interp.experiments.ticket_suite import write_suite_report
from interp.training.files import read_json


def curve(run_dir: Path, steps: list[int], jobs: int) -> dict[int, dict[str, float]]:
    df = sweep_run(run_dir, ["llc"], steps, jobs=jobs)
    piv = df[df["layer"].isna()].pivot_table(index="step", columns="metric", values="value")
    return {
        int(s): {"llc": round(r["llc_mean"], 2), "se": round(r["llc_se"], 2),
                 "flat": int(r["flat"])}
        for s, r in piv.iterrows()
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("suite", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rate", type=float, default=0.6)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of this process")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for seed in args.seeds:
        base = args.suite / f"seed{seed}"
        ticket, dense = open_run(base / f"ticket-r{args.rate}"), open_run(base / "dense")
        summary = {"ticket": ticket.summary(), "dense": dense.summary()}
        last = ticket.last_step
        marks = [summary["dense"].get(k) for k in ("t_mem", "t_gen")] + [dense.last_step]
        nearest = {min(dense.steps, key=lambda s, m=m: abs(s - m)) for m in marks if m is not None}
        dense_steps = sorted({s for s in dense.steps if s <= last} | nearest)
        out = {
            "seed": seed,
            "ticket": {k: summary["ticket"].get(k) for k in ("t_mem", "t_gen", "steps")},
            "dense": {k: summary["dense"].get(k) for k in ("t_mem", "t_gen", "steps")},
            "curves": {
                "ticket": curve(base / f"ticket-r{args.rate}", ticket.steps, args.jobs),
                "dense": curve(base / "dense", dense_steps, args.jobs),
            },
        }
        if (base / "random").exists():  # the random mask, at the ticket's steps
            rnd = open_run(base / "random")
            out["random"] = {"t_gen": rnd.summary().get("t_gen")}
            steps = [s for s in rnd.steps if s <= last] + [rnd.last_step]
            out["curves"]["random"] = curve(base / "random", sorted(set(steps)), args.jobs)
        print(json.dumps(out), flush=True)
    write_suite_report(args.suite, read_json(args.suite / "results.json"))


if __name__ == "__main__":
    main()
