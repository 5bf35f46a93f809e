"""Effective model size of the cpu-full grid with 95% intervals over seeds.

    python docs/experiments/repeated_effective_size.py [docs/experiments/repeated_cpu_full.csv]

Prints, per (size, run): the ratio of effective to actual non-embedding
parameters at the seeds' mean test loss with its bootstrap interval (seeds
resampled, law refitted: interp.analysis.memorization.effective_size_intervals),
and the per-seed ratios with the interval from the law's bootstrap alone;
first with the pure power law L = a·N^−α (used in results.csv), then, as a
sensitivity check, with an irreducible term L = E + a·N^−α, which three sizes
determine exactly.
"""

from __future__ import annotations

import sys

import pandas as pd

from interp.analysis.memorization import effective_size_intervals


def show(table: pd.DataFrame, irreducible: bool) -> None:
    iv = effective_size_intervals(table, n_boot=2000, seed=0, irreducible=irreducible)
    print(f"\nlaw: {iv.attrs['law']} ({iv.attrs['bootstrap_fits']} bootstrap fits)")
    print("| size | run | seeds | ratio (95% interval) | per seed (law's interval only) |")
    print("|---|---|---|---|---|")
    for r in iv.to_dict(orient="records"):
        seeds = ", ".join(
            f"{r[k]:.2f} ({r[k + '_lo']:.2f}–{r[k + '_hi']:.2f})"
            for k in sorted(r) if k.startswith("ratio_seed") and k[-1].isdigit()
            and pd.notna(r[k])
        )  # fmt: skip
        print(f"| {r['size']} | {r['run']} | {r['seeds']} | {r['ratio']:.2f} "
              f"({r['ratio_lo']:.2f}–{r['ratio_hi']:.2f}) | {seeds} |")  # fmt: skip


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/experiments/repeated_cpu_full.csv"
    table = pd.read_csv(path)
    show(table, irreducible=False)
    show(table, irreducible=True)


if __name__ == "__main__":
    main()
