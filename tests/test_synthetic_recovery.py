"""Recovery of the transported truth on cohorts drawn from the synthetic data's process.

Each replicate draws a US cohort (2,000 patients) and a JP cohort (800) from
``transport.simulate`` with fresh seeds and transports US to JP; the estimand is the
exact transported truth of ``load_truth()`` (JP's patient mix under the US outcome
mechanism). The participation and outcome models use main effects: close to, not
exactly, the process (whose outcome has regimen-specific Weibull shapes, interactions and
an unmeasured modifier). The Cox g-formula is misspecified by design (the hazards are
not proportional); the piecewise exponential one is not.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from joblib import Parallel, delayed

import transport as tp
from transport.datasets import COVARIATES, LEVELS
from transport.simulate.dgp import simulate_cohort

T_EVAL = 365.0
METHODS = {
    "naive": {"method": "naive"},
    "iow": {"method": "iow"},
    "entropy": {"method": "entropy"},
    "gformula (pwexp)": {"method": "gformula", "outcome_model": "pwexp"},
    "aipw (pwexp)": {"method": "aipw", "outcome_model": "pwexp"},
}


def cohort(seed: int, country: str, n: int) -> tp.Cohort:
    df = simulate_cohort(country, n, seed=seed)
    df = df.with_columns(pl.col(c).cast(pl.Enum(list(LEVELS[c]))) for c in LEVELS)
    return tp.Cohort(
        df, time="os_days", event="os_event", covariates=list(COVARIATES), name=country
    )


def truth() -> float:
    t = tp.datasets.load_truth().filter(
        (pl.col("source") == "US")
        & (pl.col("target") == "JP")
        & (pl.col("outcome") == "os")
        & (pl.col("quantity") == "transported")
        & (pl.col("estimand") == "survival")
        & (pl.col("time") == T_EVAL)
    )
    return float(t["value"][0])


def replicate(r: int, methods: dict, n_boot: int = 0) -> dict[str, tuple[float, float, float]]:
    us, jp = cohort(70_000 + r, "US", 2000), cohort(90_000 + r, "JP", 800)
    out = {}
    for name, kw in methods.items():
        res = tp.transport(us, jp, times=[T_EVAL], n_boot=n_boot, seed=r, **kw)
        row = res.summary().row(0, named=True)
        out[name] = (row["transported"], row["transported_ci_lower"], row["transported_ci_upper"])
    return out


def test_methods_recover_the_transported_truth() -> None:
    """8 seeded replicates (the slow study has 200 with the bootstrap)."""
    reps = [replicate(r, METHODS) for r in range(8)]
    s = truth()
    for name in METHODS:
        v = np.array([rep[name][0] for rep in reps])
        bias, mcse = v.mean() - s, v.std(ddof=1) / np.sqrt(v.size)
        if name == "naive":
            assert bias < -0.03 and abs(bias) > 10 * mcse  # US patients fare worse than JP's mix
        else:
            assert abs(bias) < 3 * mcse + 2e-3, (name, bias, mcse)


@pytest.mark.slow
def test_recovery_and_bootstrap_coverage_study() -> None:
    """200 replicates, 200 bootstrap replicates each: percentile coverage of S(365)
    within its Monte Carlo interval of 95% (MCSE 1.5 points), and bias within 2 MCSE or
    0.01 (0.6 empirical SE), whichever is larger: the main-effects participation model is
    close to, not exactly, the process's density ratio (age differs in spread between the
    countries), and a 100-replicate run showed iow +0.007 (MCSE 0.0017); see the issue
    note for the figures."""
    methods = {k: v for k, v in METHODS.items() if k != "naive"}
    reps = Parallel(n_jobs=2)(delayed(replicate)(r, methods, 200) for r in range(200))
    s = truth()
    lines, failures = [], []
    for name in methods:
        est = np.array([rep[name] for rep in reps])
        v = est[:, 0]
        bias, mcse = v.mean() - s, v.std(ddof=1) / np.sqrt(v.size)
        cover = np.mean((est[:, 1] <= s) & (s <= est[:, 2]))
        c_mcse = np.sqrt(cover * (1 - cover) / v.size)
        lines.append(
            f"{name:18s} bias {bias:+.4f} (MCSE {mcse:.4f})  coverage {cover:.3f} "
            f"(MCSE {c_mcse:.3f})  empirical SE {v.std(ddof=1):.4f}"
        )
        if abs(bias) > max(2 * mcse, 0.01):
            failures.append(f"{name}: bias {bias:+.4f} > max(2 MCSE, 0.01)")
        if abs(cover - 0.95) > 2 * np.sqrt(0.95 * 0.05 / v.size):
            failures.append(f"{name}: coverage {cover:.3f}")
    print("\n".join(lines))
    assert not failures, failures
