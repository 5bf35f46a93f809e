"""Calibrate the LLC sampler on models with a known learning coefficient.

    python docs/experiments/llc_calibration.py > calibration.json

For SGLD step sizes ε, chain lengths and inverse temperatures nβ (as a
multiple of n / log n), estimates λ̂ with 4 chains (γ = 100, batch 64) on
a regular model (linear regression, d = 10: λ = 5) and a singular one (a
two-layer linear network 3→3→3 at a rank-1 map: λ = 4, Aoyagi & Watanabe
2005), over data seeds 0–2, and prints one JSON line per setting with the
estimates, their mean and the relative error of the mean. The chosen
defaults and the table are in docs/llc.md.
"""

from __future__ import annotations

import json
import sys
import time

import torch

from interp.analysis.learning_coefficient import LLCDiverged, default_n_beta, llc
from interp.analysis.llc_known import (
    deep_linear,
    linear_regression,
    per_example_sq_error,
    reduced_rank_lambda,
)

MODELS = {
    "linear d=10": (lambda seed: linear_regression(10, 2000, seed), 5.0),
    "deep linear 3-3-3 r=1": (lambda seed: deep_linear(3, 3, 3, 1, 2000, seed),
                              reduced_rank_lambda(3, 3, 3, 1)),
}  # fmt: skip

SETTINGS = [
    *[(lr, draws, 1.0) for lr in (5e-5, 1e-4, 2e-4, 4e-4, 1e-3) for draws in (100, 250, 1000)],
    (1e-4, 1000, 0.5),
    (1e-4, 1000, 2.0),
    (5e-5, 1000, 2.0),
]


def main() -> None:
    torch.set_num_threads(1)
    for name, (make, truth) in MODELS.items():
        for lr, draws, beta_factor in SETTINGS:
            start = time.perf_counter()
            values, diverged = [], 0
            for seed in range(3):
                model, x, y = make(seed)
                try:
                    res = llc(
                        model, (x, y), loss_fn=per_example_sq_error, lr=lr, draws=draws,
                        chains=4, batch_size=64, seed=seed,
                    n_beta=beta_factor * default_n_beta(x.shape[0]),
                    )  # fmt: skip
                except LLCDiverged:
                    diverged += 1
                    continue
                values.append(res["llc_mean"])
            mean = sum(values) / len(values) if values else float("nan")
            row = {
                "model": name, "true": truth, "lr": lr, "draws": draws,
                "n_beta_factor": beta_factor, "estimates": [round(v, 2) for v in values],
                "mean": round(mean, 2), "rel_error": round(mean / truth - 1, 3),
                "diverged": diverged,
                "passes_per_estimate": 4 * draws,
                "seconds": round((time.perf_counter() - start) / 3, 2),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
    print(json.dumps({"cpu": torch.backends.cpu.get_cpu_capability(),
                      "threads": torch.get_num_threads()}), file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
