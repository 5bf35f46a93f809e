"""Member-steps per second of the ensemble trainer versus ensemble size (prints JSON).

For each model (the ``cpu-quick`` grokking transformer, the ``tickets-mlp``
MLP, the ``tiny`` repeated-data LM, whose preset fixes its own 32 steps)
and each N, N seeds
train ``--steps`` steps together (:mod:`interp.training.ensemble`, torch's
threads), with one evaluation and checkpoint at the start and end;
``member_steps_per_s`` = N · steps / wall. The baseline is the same run
alone at one thread, times two: what ``--jobs 2`` (two single-thread
processes on the two cores) can reach at best, so the comparison favours it.

``--target`` instead times the issue's target: 8 seeds of ``cpu-quick``
grokking, all 2,000 steps with every evaluation and checkpoint, as one
ensemble, against one run of the same preset (both in this process, torch's
default threads).

    python benchmarks/ensemble_throughput.py [--sizes 1 2 4 8 16 32] [--steps 50]
    python benchmarks/ensemble_throughput.py --target
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from interp.experiments.common import numerics_environment
from interp.experiments.registry import experiment

MODELS = [
    ("grokking", "cpu-quick"),
    ("grokking", "tickets-mlp"),
    ("repeated-data", "tiny"),
]


def _configs(exp: str, preset: str, n: int, steps: int | None) -> list:
    e = experiment(exp)
    over = [] if steps is None else [
        f"train.steps={steps}", f"train.eval_every={steps}",
        f"train.checkpoint_every={steps}", "train.checkpoint_log_early=false",
    ]  # fmt: skip
    return [e.preset(preset, seed=s, overrides=over) for s in range(n)]


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rates(exp: str, preset: str, sizes: list[int], steps: int) -> dict:
    e = experiment(exp)
    with tempfile.TemporaryDirectory() as tmp:
        one = _configs(exp, preset, 1, steps)[0]
        steps_run = one.resolve().train.steps
        torch.set_num_threads(1)
        alone = _time(lambda: e.train(one, Path(tmp) / "alone", quiet=True, threads=1))
        torch.set_num_threads(2)
        out = {"steps": steps_run, "jobs2_bound_member_steps_per_s": 2 * steps_run / alone}
        for n in sizes:
            cfgs = _configs(exp, preset, n, steps)
            dirs = [Path(tmp) / f"n{n}" / str(i) for i in range(n)]
            wall = _time(lambda: e.train_ensemble(cfgs, dirs, quiet=True))  # noqa: B023
            out[f"N={n}"] = round(n * steps_run / wall, 1)
        out["jobs2_bound_member_steps_per_s"] = round(out["jobs2_bound_member_steps_per_s"], 1)
        return out


def target() -> dict:
    e = experiment("grokking")
    with tempfile.TemporaryDirectory() as tmp:
        one = e.preset("cpu-quick", seed=7)
        single = _time(lambda: e.train(one, Path(tmp) / "one", quiet=True))
        cfgs = [e.preset("cpu-quick", seed=s) for s in range(8)]
        dirs = [Path(tmp) / f"m{s}" for s in range(8)]
        eight = _time(lambda: e.train_ensemble(cfgs, dirs, quiet=True))
    return {
        "one_run_s": round(single, 1),
        "eight_seeds_ensemble_s": round(eight, 1),
        "ratio": round(eight / single, 2),
        "issue_target_ratio": 2.5,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--target", action="store_true")
    args = ap.parse_args()
    env = {**numerics_environment(), "torch_threads": torch.get_num_threads()}
    if args.target:
        print(json.dumps({"environment": env, "target": target()}, indent=1))
        return
    print(json.dumps({"environment": env}), flush=True)
    for e, p in MODELS:
        print(json.dumps({f"{e}/{p}": rates(e, p, args.sizes, args.steps)}), flush=True)


if __name__ == "__main__":
    main()
