"""The 1-D CNN's model-wise curve at the cpu-quick budget (20% noise, seeds
0–2, widths 4–128), without the sample-wise and factor runs:

    python docs/experiments/double_descent_cnn.py OUT [--jobs 2]

Prints the peak table and the mean curve (docs/experiments/double_descent.md).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from interp.experiments.double_descent_grid import grid_preset, run_grid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    spec = grid_preset("cpu-quick", models=("cnn",), noises=(0.2,), sample_sizes=(), factors={})
    t = time.time()
    res = run_grid(spec, args.out, jobs=args.jobs)
    print("wall", round(time.time() - t))
    print(pd.DataFrame(res["peaks"]).to_string())
    cols = ["width", "params", "test_error_mean", "test_error_se", "train_error_mean",
            "noisy_fit_fraction_mean"]  # fmt: skip
    print(pd.DataFrame(res["modelwise"])[cols].to_string())


if __name__ == "__main__":
    main()
