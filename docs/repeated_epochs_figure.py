"""Draws the damage from repetition against the repeated epochs E (Hernandez et
al. 2022, Fig. 2 shape) from a repeated-data grid's ``results.csv``: one panel
per model size, one colour per repeated fraction f; each repeated run's test
loss minus the unique-only control of its own seed and f (fewer steps, left
column; same steps, right column), seeds as dots and their mean ± s.e. as the
line. Above 0 = worse than not having the repeated tokens at all.

Usage: ``python docs/repeated_epochs_figure.py RESULTS.csv [OUT.png]`` (default
``docs/repeated_epochs.png``; needs matplotlib, which is not a dependency of
the package; ``repeated_report.html`` has the absolute losses).
"""

import sys

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from interp.experiments.repeated_grid import CONTROLS, aggregate, paired_differences

COLOURS = {0.1: "tab:blue", 0.5: "tab:red"}


def main(csv: str, out: str = "docs/repeated_epochs.png") -> None:
    table = pd.read_csv(csv)
    agg = aggregate(table)
    rep = table[table["kind"] == "repeated"]
    sizes = [s for s in ("tiny", "xs", "s", "m", "l", "xl") if s in set(rep["size"])]
    fig, axes = plt.subplots(
        len(sizes), 2, figsize=(10, 3.2 * len(sizes)), squeeze=False, sharex=True
    )
    paired = paired_differences(table)
    for i, size in enumerate(sizes):
        for j, ctrl in enumerate(CONTROLS):
            ax, col = axes[i][j], f"vs_{ctrl}"
            ax.axhline(0.0, color="grey", lw=1)
            for f in sorted(set(rep.loc[rep["size"] == size, "f"])):
                pts = paired[(paired["size"] == size) & (paired["f"] == f)].dropna(subset=[col])
                pts = pts[pts["kind"] == "repeated"]
                c = COLOURS.get(f, "k")
                ax.scatter(pts["E"], pts[col], s=12, color=c, alpha=0.5)
                a = agg[(agg["size"] == size) & (agg["f"] == f) & (agg["kind"] == "repeated")]
                a = a.dropna(subset=[col]).sort_values("E")
                ax.errorbar(
                    a["E"], a[col], yerr=a[f"{col}_se"].fillna(0.0), color=c, marker="o",
                    ms=3, capsize=2, label=f"f = {f:g}",
                )  # fmt: skip
            ax.set_xscale("log")
            ax.set_title(f"{size}: test loss − {ctrl.replace('-', ' ')} control", fontsize=9)
            ax.set_ylabel("nats / token")
            ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("repeated epochs E")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
