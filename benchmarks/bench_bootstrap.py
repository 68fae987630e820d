"""IOW transport with a bootstrap: transport vs a lifelines + statsmodels loop vs the floor.

    make bench   (or: .venv/bin/python benchmarks/bench_bootstrap.py [--sizes 10000 100000])

For each n (rows per cohort) a seeded source ("US") and target ("JP") cohort of n rows
each are simulated by :func:`transport.simulate.simulate_cohort` (whole-day OS times, the
covariates of :data:`transport.datasets.COVARIATES`, levels in :data:`~transport.datasets.
LEVELS` order, as :mod:`transport.datasets` builds them), and the same bootstrap of the
inverse-odds-weighted (IOW) transport of S(365), S(730), the median and RMST(1095) is run
three ways, one after the other in this process, single-process:

* ours    ``tp.transport(src, tgt, method="iow", ..., n_boot=B, seed=1, n_jobs=1)``. The
  whole call is timed, and so is its bootstrap part alone (``run_bootstrap`` on the
  ``_Replicate``; each replicate also reads the naive source curve, the observed target
  curve and their distance), by wrapping ``transport.analysis.run_bootstrap`` for the call:
  the same replicates, not a second run;
* peer    the plain loop: per replicate, draw row indices of each cohort with numpy
  (``rng.integers``, the draw behind ours' counts), fit ``sm.GLM(y, X, Binomial())`` on
  the stacked resampled design (built once, the same columns as ours plus an intercept,
  rows taken by index), inverse odds weights ``exp(-x'beta)`` on the resampled source,
  ``KaplanMeierFitter().fit(T, E, weights=w)``, then S(t), ``median_survival_time_`` and
  ``restricted_mean_survival_time``. It runs on replicate ``b``'s own generator (the
  ``b``-th child of ``SeedSequence(1)``), so it resamples exactly ours' rows and must give
  ours' numbers: the largest absolute difference is printed;
* floor   what no implementation of this bootstrap can avoid: draw the counts (as ours
  does), one ``X.T @ (X * v[:, None])`` on the stacked design (one information matrix of
  the participation model) and one ``np.bincount`` of the source weights on the time
  index (one weighted Kaplan–Meier pass).

Printed per n: B, the milliseconds per replicate of each (the median over the replicates
timed one by one; the mean is printed beside ours), peer/ours and ours/floor, and the
``tracemalloc`` peak of one replicate of each (arrays allocated by the replicate; the
data and designs are built before). B is 200 at every n; ``--large-n-boot`` lowers it at
10^6 rows for a quicker run, and the printout then says so. The peer loop is timed on a
few replicates only (``PEER_REPS``: at 10^6 rows one of its replicates takes most of a
minute). Timings share the machine with whatever else runs: the load average is printed.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

import transport as tp
import transport.analysis as tp_analysis
from transport.datasets import COVARIATES, IDENTIFIERS, LEVELS
from transport.inference import resample_counts
from transport.simulate import simulate_cohort

TIMES = (365.0, 730.0)
TAU = 1095.0
SEED = 1
ESTIMANDS = ("S(365)", "S(730)", "median", "RMST")
PEER_REPS = {10_000: 10, 100_000: 5, 1_000_000: 3}
LARGE = 1_000_000


def make_cohort(country: str, n: int, index: int) -> tp.Cohort:
    """n simulated patients of ``country``, as :func:`transport.datasets.load_synthetic`
    builds its cohorts (OS in whole days, covariate levels in LEVELS order)."""
    rng = np.random.default_rng(np.random.SeedSequence([SEED, n, index]))
    frame = simulate_cohort(country, n, seed=rng).with_columns(
        pl.col(c).cast(pl.Enum(list(lv))) for c, lv in LEVELS.items()
    )
    return tp.Cohort(
        frame,
        time="os_days",
        event="os_event",
        covariates=list(COVARIATES),
        identifiers=list(IDENTIFIERS),
        name=country,
        time_unit="days",
    )


class _Timed:
    """A replicate function that records the wall time of every call."""

    def __init__(self, fn: Callable[[np.random.Generator], np.ndarray]) -> None:
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.fn(rng)
        self.seconds.append(time.perf_counter() - t0)
        return out


def ours(src: tp.Cohort, tgt: tp.Cohort, n_boot: int) -> dict[str, Any]:
    """The whole ``tp.transport`` call, timed, with its bootstrap part timed inside it."""
    real = tp_analysis.run_bootstrap
    seen: dict[str, Any] = {}

    def spy(fn: Any, n: int, seed: Any, **kw: Any) -> Any:
        timed = _Timed(fn)
        t0 = time.perf_counter()
        draws = real(timed, n, seed, **kw)
        seen.update(rep=fn, boot=time.perf_counter() - t0, per=np.array(timed.seconds))
        return draws

    tp_analysis.run_bootstrap = spy  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        res = tp.transport(
            src, tgt, method="iow", times=list(TIMES), tau=TAU, n_boot=n_boot, seed=SEED, n_jobs=1
        )
        whole = time.perf_counter() - t0
    finally:
        tp_analysis.run_bootstrap = real  # type: ignore[assignment]
    if "rep" not in seen:
        raise RuntimeError("transport() did not call transport.analysis.run_bootstrap")
    assert isinstance(res, tp.TransportResult) and res.bootstrap is not None
    k = len(ESTIMANDS)
    return {**seen, "whole": whole, "values": res.bootstrap.values[:, k : 2 * k]}


def stacked_design(src: tp.Cohort, tgt: tp.Cohort) -> tuple[np.ndarray, np.ndarray]:
    """Intercept + the default main-effects design of source then target rows, and y."""
    design = tp.Design(src)
    Xs, Xt = design.source_matrix, design.matrix(tgt)
    X = np.column_stack((np.ones(src.n + tgt.n), np.vstack((Xs, Xt))))
    return X, np.concatenate((np.ones(src.n), np.zeros(tgt.n)))


class Peer:
    """One replicate of the plain statsmodels GLM + lifelines Kaplan–Meier loop."""

    def __init__(self, src: tp.Cohort, tgt: tp.Cohort, X: np.ndarray, y: np.ndarray) -> None:
        self.ns, self.nt = src.n, tgt.n
        self.X, self.y = X, y
        self.time, self.event = src.time_values, src.event_values

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        import statsmodels.api as sm
        from lifelines import KaplanMeierFitter
        from lifelines.utils import restricted_mean_survival_time

        i = rng.integers(0, self.ns, size=self.ns)  # what resample_counts draws, in order
        j = rng.integers(0, self.nt, size=self.nt)
        rows = np.concatenate((i, self.ns + j))
        beta = sm.GLM(self.y[rows], self.X[rows], family=sm.families.Binomial()).fit().params
        w = np.exp(-(self.X[i] @ beta))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines: non-integer weights
            km = KaplanMeierFitter().fit(self.time[i], self.event[i], weights=w)
            s = km.survival_function_at_times(list(TIMES)).to_numpy()
            rmst = restricted_mean_survival_time(km, t=TAU)
        return np.concatenate((s, [km.median_survival_time_, rmst]))


class Floor:
    """The counts, one X'WX on the stacked design and one bincount on the time index."""

    def __init__(self, src: tp.Cohort, tgt: tp.Cohort, X: np.ndarray) -> None:
        self.ns, self.nt = src.n, tgt.n
        self.X = X
        self.grid, self.index = np.unique(src.time_values, return_inverse=True)
        p = src.n / (src.n + tgt.n)
        self.var = np.full(src.n + tgt.n, p * (1.0 - p))  # any fixed mu (1 - mu): same cost
        self.odds = np.full(src.n, (1.0 - p) / p)

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        cs = resample_counts(rng, self.ns)
        ct = resample_counts(rng, self.nt)
        v = np.concatenate((cs, ct)) * self.var
        info = self.X.T @ (self.X * v[:, None])
        e = np.bincount(self.index, weights=cs * self.odds, minlength=self.grid.size)
        return np.array([info[0, 0], e[0]])


def per_replicate(fn: Callable[[np.random.Generator], np.ndarray], reps: int) -> dict[str, Any]:
    """Run ``fn`` on the generators of replicates 0..reps-1 of ``SeedSequence(SEED)``."""
    children = np.random.SeedSequence(SEED).spawn(reps)
    timed = _Timed(fn)
    values = np.vstack([timed(np.random.default_rng(c)) for c in children])
    return {"per": np.array(timed.seconds), "values": values}


def peak_mb(fn: Callable[[np.random.Generator], np.ndarray]) -> float:
    rng = np.random.default_rng(np.random.SeedSequence(SEED).spawn(1)[0])
    tracemalloc.start()
    fn(rng)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def ms(per: np.ndarray) -> float:
    return 1000.0 * float(np.median(per))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument(
        "--large-n-boot", type=int, default=200, help=f"B at n >= {LARGE:.0e} (for a shorter run)"
    )
    parser.add_argument("--floor-reps", type=int, default=20)
    args = parser.parse_args()

    import lifelines  # noqa: F401  (imports outside the timings)
    import statsmodels.api  # noqa: F401

    print(
        f"IOW transport US -> JP of S(365), S(730), median, RMST({TAU:.0f}); n rows per cohort;"
        f" single process; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows = []
    for n in args.sizes:
        src, tgt = make_cohort("US", n, 0), make_cohort("JP", n, 1)
        b = args.large_n_boot if n >= LARGE else args.n_boot
        o = ours(src, tgt, b)
        X, y = stacked_design(src, tgt)
        peer_fn, floor_fn = Peer(src, tgt, X, y), Floor(src, tgt, X)
        reps = PEER_REPS.get(n, 3)
        p = per_replicate(peer_fn, reps)
        f = per_replicate(floor_fn, args.floor_reps)
        mem = [peak_mb(fn) for fn in (o["rep"], peer_fn, floor_fn)]
        diff = np.nanmax(np.abs(p["values"] - o["values"][:reps]), axis=0)
        ours_mean = 1000.0 * o["boot"] / b
        print(
            f"\nn = {n}: whole tp.transport call {o['whole']:.1f} s = point estimate "
            f"{o['whole'] - o['boot']:.1f} s + bootstrap {o['boot']:.1f} s "
            f"({b} replicates, mean {ours_mean:.1f} ms, median {ms(o['per']):.1f} ms each)"
        )
        if b < args.n_boot:
            print(
                f"  B = {b} at this n (--large-n-boot): {args.n_boot} replicates would take "
                f"about {args.n_boot * ours_mean / 1000:.0f} s of bootstrap alone"
            )
        print(
            f"  peer timed on {reps} replicates, floor on {args.floor_reps}; peer vs ours on the "
            f"same {reps} resamples, max |difference|: "
            + ", ".join(f"{e} {d:.1e}" for e, d in zip(ESTIMANDS, diff, strict=True))
        )
        rows.append((n, b, ms(o["per"]), ms(p["per"]), ms(f["per"]), mem))

    print(
        f"\nms per replicate (median of the replicates); peak MB: tracemalloc, one replicate;"
        f" load average now {os.getloadavg()[0]:.1f}"
    )
    head = f"{'n':>9}{'B':>5}{'ours':>9}{'peer':>10}{'floor':>9}{'peer/ours':>11}{'ours/floor':>12}"
    print(head + f"{'peak MB ours':>14}{'peer':>8}{'floor':>8}")
    for n, b, t_o, t_p, t_f, mem in rows:
        print(
            f"{n:>9}{b:>5}{t_o:9.1f}{t_p:10.1f}{t_f:9.1f}{t_p / t_o:11.1f}{t_o / t_f:12.2f}"
            f"{mem[0]:14.1f}{mem[1]:8.1f}{mem[2]:8.1f}"
        )


if __name__ == "__main__":
    main()
