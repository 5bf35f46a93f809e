"""Draws prefix matching and copying over training for a self-quoting grid
(``cpu-copy`` or ``cpu-copy-text``) from its runs' metrics.jsonl files.

Usage: ``python docs/repeated_copy_figure.py GRID_DIR [OUT.png]`` (default
``docs/repeated_copy_training.png``; needs matplotlib, which is not a dependency
of the package; the same curves are in ``GRID_DIR/repeated_report.html``).
Every run of the list below that the grid holds is drawn; seeds 0, 1, 2 solid,
dashed, dotted.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RUNS = [
    ("f0", "f = 0 (all unique)", "k"),
    ("unique-fewer-steps-f0.5", "unique only, fewer steps", "tab:blue"),
    ("unique-same-steps-f0.5", "unique only, same steps", "tab:cyan"),
    ("f0.5-E10", "f = 0.5, E = 10", "gold"),
    ("f0.5-E30", "f = 0.5, E = 30", "tab:olive"),
    ("f0.5-E100", "f = 0.5, E = 100", "tab:orange"),
    ("f0.5-E300", "f = 0.5, E = 300", "tab:red"),
    ("f0.5-E1000", "f = 0.5, E = 1000", "tab:purple"),
    ("f0.5-E3000", "f = 0.5, E = 3000", "tab:brown"),
]
STYLES = {0: "-", 1: "--", 2: ":"}  # line style per seed
PANELS = [("heads", "prefix_matching_max"), ("copy", "gain")]


def curve(rows: list[dict], split: str, metric: str) -> list[tuple[int, float]]:
    return sorted(
        (r["step"], r["value"])
        for r in rows
        if r["split"] == split and r["metric"] == metric and r["step"] > 0
    )


def main(grid: Path, out: Path) -> None:
    spec = json.loads((grid / "grid.json").read_text())
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for run, label, color in RUNS:
        for seed in (0, 1, 2):
            path = grid / "xs" / run / f"seed{seed}" / "metrics.jsonl"
            if not path.exists():
                continue
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            for ax, (split, metric) in zip(axes, PANELS, strict=True):
                d = curve(rows, split, metric)
                ax.plot(
                    [x for x, _ in d],
                    [y for _, y in d],
                    color=color,
                    lw=1.2,
                    ls=STYLES[seed],
                    label=label if seed == 0 else None,
                )
    axes[0].axhline(0.3, color="gray", ls=":", lw=1)
    axes[0].set(
        xlabel="step",
        ylabel="best head's prefix matching (random tokens)",
        title="Induction heads over training (3 seeds)",
    )
    axes[1].set(
        xlabel="step", ylabel="copy gain (nats)", title="Copying: loss on copy 1 − copies 2–4"
    )
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"{spec['base']} grid (xs model); seeds 0, 1, 2 solid, dashed, dotted", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    default = Path(__file__).parent / "repeated_copy_training.png"
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else default)
