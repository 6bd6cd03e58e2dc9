#!/usr/bin/env python3
"""Checks an experiment report of `warmstart experiments report --json` against an independent
computation with NumPy and SciPy on the exported per-session counts (--sessions-csv):
CTR, its delta-method standard error (and that a bootstrap over sessions agrees with it), the
lift against control with its interval and p-value, cart and purchase rates, and the
sample-ratio chi-square test.

usage: check_experiment_stats.py REPORT.json SESSIONS.csv
"""
import csv
import json
import sys

import numpy as np
from scipy import stats


def close(a, b, what, rel=1e-6, abs_=1e-12):
    if not (abs(a - b) <= abs_ + rel * max(abs(a), abs(b))):
        sys.exit(f"MISMATCH {what}: warmstart {a!r} vs scipy {b!r}")


def ratio(y, x):
    """Sum ratio and its delta-method standard error over sessions."""
    n = len(x)
    r = y.sum() / x.sum()
    if n < 2:
        return r, 0.0
    cov = np.cov(np.vstack([y, x]), ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * x.mean() ** 2)
    return r, float(np.sqrt(max(var, 0.0)))


def main():
    report = json.load(open(sys.argv[1]))
    rows = list(csv.DictReader(open(sys.argv[2])))
    z = stats.norm.ppf(0.975)
    by = {}
    for r in rows:
        by.setdefault(r["variant"], []).append([float(r[k]) for k in ("impressions", "clicks", "carts", "purchases")])
    arrays = {v: np.array(x) for v, x in by.items()}
    control = report["control"]
    rc, sc = ratio(arrays[control][:, 1], arrays[control][:, 0])
    rng = np.random.default_rng(7)
    checked = 0
    for v in report["variants"]:
        a = arrays.get(v["name"])
        if a is None:
            continue
        if v["sessions"] != len(a) or v["impressions"] != a[:, 0].sum() or v["clicks"] != a[:, 1].sum():
            sys.exit(f"MISMATCH counts of {v['name']}")
        r, se = ratio(a[:, 1], a[:, 0])
        close(v["ctr"]["value"], r, f"{v['name']} CTR")
        close(v["ctr"]["se"], se, f"{v['name']} CTR standard error")
        close(v["ctr"]["hi"], r + z * se, f"{v['name']} CTR upper 95%")
        for col, key in ((2, "cart_rate"), (3, "purchase_rate")):
            rr, ss = ratio(a[:, col], a[:, 0])
            close(v[key]["value"], rr, f"{v['name']} {key}")
            close(v[key]["se"], ss, f"{v['name']} {key} se")
        # the clustered variance itself: a bootstrap over sessions lands near the delta method
        idx = rng.integers(0, len(a), size=(2000, len(a)))
        boot = a[idx, 1].sum(axis=1) / a[idx, 0].sum(axis=1)
        if se > 0 and not (0.85 < boot.std(ddof=1) / se < 1.15):
            sys.exit(f"MISMATCH {v['name']}: bootstrap se {boot.std(ddof=1)} vs delta-method {se}")
        if v["lift"] is not None:
            diff = r - rc
            sd = np.hypot(se, sc)
            p = 2 * stats.norm.sf(abs(diff) / sd)
            close(v["lift"]["p_value"], p, f"{v['name']} lift p-value", rel=1e-6, abs_=1e-15)
            rel = r / rc - 1
            se_rel = np.sqrt(se**2 / rc**2 + r**2 * sc**2 / rc**4)
            close(v["lift"]["relative"], rel, f"{v['name']} lift")
            close(v["lift"]["lo"], rel - z * se_rel, f"{v['name']} lift lower 95%")
        checked += 1
    srm = report.get("sample_ratio")
    if srm is not None:
        observed = np.array([v["sessions"] for v in report["variants"]], dtype=float)
        w = np.array([v["weight"] for v in report["variants"]], dtype=float)
        chi2, p = stats.chisquare(observed, observed.sum() * w / w.sum())
        close(srm["chi2"], chi2, "SRM chi-square")
        close(srm["p_value"], p, "SRM p-value", rel=1e-6, abs_=1e-300)
        if srm["mismatch"] != bool(p < 0.001):
            sys.exit("MISMATCH SRM flag")
    print(f"ok: {report['experiment']}: {checked} variants, {len(rows)} sessions agree with SciPy"
          + (f"; SRM p = {srm['p_value']:.3g}" if srm else ""))


if __name__ == "__main__":
    main()
