"""The measured findings of a double-descent launch (docs/experiments/double_descent.md).

    interp experiment double-descent --preset cpu-quick --jobs 2 --out OUT
    python docs/experiments/double_descent_findings.py OUT

Reads OUT/results.json and prints JSON lines: the model-wise peak per noise
level (with the issue's three conditions), the optimization factors (low
train loss at the threshold vs a clear peak), the sample-wise and epoch-wise
curves, and, for the run at the peak width and the widest run (seed 0 of the
largest noise), when the noisy and clean labels are first fitted and
settled (per-example sweep, interp.analysis.forgetting) and where the last
fitted examples sit relative to the epoch-wise test-error peak.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from interp import open_run
from interp.analysis import sweep
from interp.analysis.forgetting import example_events, noisy_from_run_data
from interp.experiments.example_fits import RunExampleFits
from interp.training.files import read_json


def _r(v: float, k: int = 4) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), k)


def largest_rise(steps: list[int], err: list[float]) -> tuple[int, int, float]:
    """(dip step, peak step, rise): the largest err(t) − err(s) over s < t,
    the epoch-wise peak (the start of training, at chance, is not a peak)."""
    best, lo, out = -1.0, 0, (steps[0], steps[0], 0.0)
    for j in range(1, len(err)):
        if err[j - 1] < err[lo]:
            lo = j - 1
        if err[j] - err[lo] > best:
            best, out = err[j] - err[lo], (steps[lo], steps[j], err[j] - err[lo])
    return out


def memorization(run_dir: str) -> dict:
    run = open_run(run_dir)
    data = read_json(run.path / "data.json")
    noisy = noisy_from_run_data(data, data["n_train"])
    ev = example_events(sweep(run, [RunExampleFits()], progress=False), noisy)
    m = run.metrics()
    test = m.query("split == 'test' and metric == 'accuracy' and step > 0").sort_values("step")
    _, peak_step, _ = largest_rise(test["step"].tolist(), (1 - test["value"]).tolist())
    settled = ev.dropna(subset=["settled_step"])
    last = settled[settled["settled_step"] >= settled["settled_step"].quantile(0.9)]
    out = {"run": str(Path(run_dir).relative_to(Path(run_dir).parents[2])),
           "epochwise_test_error_peak_step": peak_step}  # fmt: skip
    for name, g in (("noisy", ev[ev["noisy"]]), ("clean", ev[~ev["noisy"]])):
        out[name] = {
            "median_first_fit": _r(g["first_fit_step"].median(), 0),
            "median_settled": _r(g["settled_step"].median(), 0),
            "fitted_at_end": _r(g["final_fitted"].mean(), 3),
            "mean_forgetting_events": _r(g["forgetting_events"].mean(), 3),
            "settled_after_test_error_peak": _r((g["settled_step"] > peak_step).mean(), 3),
        }
    out["last_tenth_settled"] = {"noisy_share": _r(last["noisy"].mean(), 3),
                                 "from_step": _r(last["settled_step"].min(), 0)}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    res = read_json(args.out / "results.json")
    for p in res["peaks"]:
        print(json.dumps({"part": "modelwise_peak", **{k: _r(v) if isinstance(v, float) else v
                                                         for k, v in p.items()}}))  # fmt: skip
    mw = pd.DataFrame(res["modelwise"])
    for (arch, noise), g in mw.groupby(["model", "label_noise"]):
        print(json.dumps({"part": "modelwise_curve", "model": arch, "label_noise": noise,
                          "test_error": {int(w): [_r(a), _r(b)] for w, a, b in
                                         zip(g["width"], g["test_error_mean"],
                                             g["test_error_se"], strict=True)},
                          "train_error": {int(w): _r(a) for w, a in
                                          zip(g["width"], g["train_error_mean"], strict=True)},
                          "noisy_fit": {int(w): _r(a, 3) for w, a in
                                        zip(g["width"], g["noisy_fit_fraction_mean"],
                                            strict=True)}}))  # fmt: skip
    for f in res["factors"]:
        keep = [
            "factor",
            "threshold_width",
            "train_loss_at_threshold",
            "train_error_at_threshold",
            "low_train_loss",
            "peak_width",
            "peak_test_error",
            "over_narrower",
            "over_narrower_se",
            "over_widest",
            "over_widest_se",
            "peak_height",
            "clear_peak",
        ]
        print(json.dumps({"part": "factor", **{k: _r(f[k]) if isinstance(f[k], float) else f[k]
                                                for k in keep}}))  # fmt: skip
    sw = pd.DataFrame(res["samplewise"])
    if len(sw):
        cols = zip(sw["n_train"], sw["test_error_mean"], sw["test_error_se"], strict=True)
        print(json.dumps({"part": "samplewise",
                          "test_error": {int(n): [_r(a), _r(b)] for n, a, b in cols}}))  # fmt: skip
    ew = pd.DataFrame(res["epochwise"])
    if len(ew):
        ew = ew[ew["step"] > 0].sort_values("step").reset_index(drop=True)
        dip, peak, rise = largest_rise(ew["step"].tolist(), ew["test_error"].tolist())
        at = ew.set_index("step")
        print(json.dumps({"part": "epochwise", "width": int(ew["width"].iloc[0]),
                          "dip_step": int(dip), "dip_test_error": _r(at.loc[dip, "test_error"]),
                          "peak_step": int(peak), "peak_test_error": _r(at.loc[peak, "test_error"]),
                          "rise": _r(rise), "final_test_error": _r(ew["test_error"].iloc[-1]),
                          "noisy_fit_at_dip": _r(at.loc[dip].get("noisy_fit"), 3),
                          "noisy_fit_at_peak": _r(at.loc[peak].get("noisy_fit"), 3)}))  # fmt: skip
    rows = pd.DataFrame(res["rows"])
    model = rows[rows["roles"].str.contains("model") & (rows["seed"] == rows["seed"].min())]
    noise = model["label_noise"].max()
    model = model[model["label_noise"] == noise]
    peak = next(p for p in res["peaks"] if p["label_noise"] == noise)["peak_width"]
    for w in sorted({peak, int(model["width"].max())}):
        run_dir = model[model["width"] == w]["run_dir"].iloc[0]
        print(json.dumps({"part": "memorization", "width": w, **memorization(run_dir)}))


if __name__ == "__main__":
    main()
