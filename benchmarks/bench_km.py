"""Weighted Kaplan–Meier: transport vs lifelines vs statsmodels, side by side in one run.

    make bench            (or: .venv/bin/python benchmarks/bench_km.py [--sizes 10000 100000])

For each n and each kind of time, the same seeded data go to

* transport    ``tp.kaplan_meier(cohort, weights=w)``: S(t) with the infinitesimal-
  jackknife (robust) SE of R's ``survfit(robust=TRUE)``; and with
  ``weight_type="frequency"``: Greenwood's SE on the weighted counts, the variance the
  peers compute;
* lifelines    ``KaplanMeierFitter().fit(t, d, weights=w)``;
* statsmodels  ``SurvfuncRight(t, d, freq_weights=w)``.

Weights are integers 1-4, so that all four compute the same weighted curve and the
Greenwood variance on weighted counts is legitimate. Times are "days" (whole days, as
real-world data record them: many ties) or "continuous" (almost every time distinct).
transport runs with ``timefix=False`` here: by default it treats times closer than
sqrt(machine eps) as tied, as R does, which the peers do not; with continuous times that
changes S(t) by ~1e-5 at n = 10^5.

Printed: the best of ``--repeat`` wall times, each method's time relative to
transport's Greenwood run (above 1 means slower than transport), peak memory traced by
``tracemalloc`` in one call, and the largest absolute difference of S(t) from
transport's at every distinct time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
import polars as pl

import transport as tp


def make_data(n: int, kind: str, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.weibull(1.1, n) * 400.0
    c = rng.uniform(30.0, 1800.0, n)
    time_ = np.minimum(t, c)
    if kind == "days":
        time_ = np.round(time_) + 1.0
    event = (t <= c).astype(np.float64)
    w = rng.integers(1, 5, n).astype(np.float64)  # integer: frequency weights are valid
    return time_, event, w


def best_of(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    best, out = np.inf, np.empty(0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def methods(t: np.ndarray, d: np.ndarray, w: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    from lifelines import KaplanMeierFitter
    from statsmodels.duration.survfunc import SurvfuncRight

    cohort = tp.Cohort(pl.DataFrame({"t": t, "d": d}), time="t", event="d")
    grid = np.unique(t)

    def ours_ij() -> np.ndarray:
        return tp.kaplan_meier(cohort, weights=w, timefix=False).survival_at(grid)

    def ours_greenwood() -> np.ndarray:
        km = tp.kaplan_meier(cohort, weights=w, weight_type="frequency", timefix=False)
        return km.survival_at(grid)

    def lifelines_km() -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = KaplanMeierFitter().fit(t, d, weights=w)
        return fit.survival_function_at_times(grid).to_numpy()

    def statsmodels_km() -> np.ndarray:
        fit = SurvfuncRight(t, d, freq_weights=w)
        idx = np.searchsorted(fit.surv_times, grid, side="right") - 1
        return np.where(idx >= 0, fit.surv_prob[np.maximum(idx, 0)], 1.0)

    return {
        "transport (Greenwood SE)": ours_greenwood,
        "transport (IJ robust SE)": ours_ij,
        "lifelines KaplanMeierFitter": lifelines_km,
        "statsmodels SurvfuncRight": statsmodels_km,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    head = f"{'times':<11}{'n':>9}  {'method':<28}{'seconds':>9}{'relative':>10}{'peak MB':>9}"
    print(head + f"{'max|dS|':>10}")
    for kind in ("days", "continuous"):
        for n in args.sizes:
            t, d, w = make_data(n, kind)
            base_time, base = np.nan, np.empty(0)
            for name, fn in methods(t, d, w).items():
                secs, s = best_of(fn, args.repeat)
                if name.startswith("transport (Greenwood"):
                    base_time, base = secs, s
                diff = float(np.max(np.abs(s - base)))
                print(
                    f"{kind:<11}{n:>9}  {name:<28}{secs:9.4f}{secs / base_time:10.2f}"
                    f"{peak_mb(fn):9.1f}{diff:10.1e}"
                )
            print()


if __name__ == "__main__":
    main()
