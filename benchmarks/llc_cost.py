"""Seconds per checkpoint of the LLC with its defaults (4 chains x 100 draws,
interp.experiments.llc_runs.LLC_DEFAULTS), for each experiment's preset
(prints JSON, one line per preset, with the CPU capability and threads).

The model is the preset's init (the cost does not depend on the weights);
the data and loss are the run's (llc_runs.task_llc_data). Nothing is trained.

    python benchmarks/llc_cost.py [--threads 1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

PRESETS = [
    ("grokking", "cpu-quick"),
    ("grokking", "tickets-mlp"),
    ("induction", "cpu-quick"),
    ("induction", "1-layer"),
    ("repeated-data", "cpu-quick"),
]


def main() -> None:
    from interp.analysis.learning_coefficient import default_n_beta, llc
    from interp.experiments.llc_runs import LLC_DEFAULTS, task_llc_data
    from interp.experiments.registry import experiment
    from interp.models import make_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = LLC_DEFAULTS["default"]
    for name, preset in PRESETS:
        exp = experiment(name)
        try:
            cfg = exp.preset(preset, 0)
        except Exception as err:  # a preset this experiment does not have
            print(json.dumps({"experiment": name, "preset": preset, "error": str(err)}))
            continue
        x, y, loss_fn = task_llc_data(exp.make_task(cfg), s["examples"])
        model = make_model(cfg.model, seed=0)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            llc(
                model, (x, y), loss_fn=loss_fn, lr=s["lr"], localization=s["localization"],
                chains=s["chains"], draws=s["draws"], batch_size=min(s["batch_size"], len(x)),
                n_beta=s["n_beta_factor"] * default_n_beta(len(x)),
            )  # fmt: skip
            times.append(time.perf_counter() - start)
        print(json.dumps({
            "experiment": name, "preset": preset, "examples": len(x),
            "parameters": sum(p.numel() for p in model.parameters()),
            "passes": s["chains"] * s["draws"], "seconds": round(min(times), 2),
            "cpu": torch.backends.cpu.get_cpu_capability(), "threads": args.threads,
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
