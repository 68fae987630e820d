"""Inputs of metrics_reference.R: a seeded table of simulation-study replicate results.

    .venv/bin/python tests/r/make_metrics_cases.py && Rscript tests/r/metrics_reference.R tests/r

Writes tests/r/data/metrics_replicates.csv with the columns transport.simulate.performance
reads (scenario, method, estimand, time, rep, estimate, se, ci_lower, ci_upper, truth),
rows shuffled. Null is an empty field, NaN is "NaN", infinity "inf". The groups are made to
reach every branch of the measures:

* clean groups (S(365), RMST) with Wald intervals;
* failures: NaN and -inf estimates, missing SEs and intervals here and there;
* a median with unreached upper limits (+inf) and some with no interval at all (NaN);
* a method without SEs or intervals (naive);
* a group of 2 replicates, one of 1, one whose estimates all failed;
* truth 0 (relative bias undefined); constant estimates and SEs (EmpSE 0, Var(se^2) 0);
  estimates all equal to the truth (MSE 0); intervals that always cover;
* one finite SE among many, one interval among many (measure without MCSE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
SEED = 20240707
Z = 1.959963984540054


def _group(
    scenario: str,
    method: str,
    estimand: str,
    time: float | None,
    truth: float,
    estimate: np.ndarray,
    se: np.ndarray | None,
    *,
    ci: bool = True,
) -> pl.DataFrame:
    n = estimate.size
    se_arr = np.full(n, np.nan) if se is None else se
    lower = estimate - Z * se_arr if ci else np.full(n, np.nan)
    upper = estimate + Z * se_arr if ci else np.full(n, np.nan)
    return pl.DataFrame(
        {
            "scenario": [scenario] * n,
            "method": [method] * n,
            "estimand": [estimand] * n,
            "time": pl.Series([time] * n, dtype=pl.Float64),
            "rep": np.arange(1, n + 1, dtype=np.int64),
            "estimate": estimate,
            "se": se_arr,
            "ci_lower": lower,
            "ci_upper": upper,
            "truth": np.full(n, truth),
        }
    )


def _null(frame: pl.DataFrame, column: str, rows: np.ndarray) -> pl.DataFrame:
    """Set ``column`` to null (not NaN) in the given rows."""
    mask = np.zeros(frame.height, dtype=bool)
    mask[rows] = True
    return frame.with_columns(
        pl.when(pl.Series(mask)).then(None).otherwise(pl.col(column)).alias(column)
    )


def cases(rng: np.random.Generator) -> pl.DataFrame:
    groups: list[pl.DataFrame] = []

    # clean: S(365) by IOW, 200 replicates, slightly biased, SEs a little too small
    n = 200
    est = rng.normal(0.615, 0.030, n)
    groups.append(
        _group("correct", "iow", "survival", 365.0, 0.62, est, rng.uniform(0.022, 0.032, n))
    )

    # failures and gaps: S(730)
    est = rng.normal(0.40, 0.035, n)
    g = _group("correct", "iow", "survival", 730.0, 0.41, est, rng.uniform(0.028, 0.040, n))
    fail = rng.choice(n, 9, replace=False)
    g = g.with_columns(
        pl.when(pl.Series(np.isin(np.arange(n), fail[:7])))
        .then(float("nan"))
        .otherwise(pl.col("estimate"))
        .alias("estimate")
    )
    g = _null(g, "estimate", fail[7:])  # null estimates are failures too
    g = _null(g, "se", rng.choice(n, 5, replace=False))
    no_ci = rng.choice(n, 4, replace=False)
    g = _null(_null(g, "ci_lower", no_ci), "ci_upper", no_ci)
    groups.append(g)

    # median in days: skewed, some not reached (NaN), one -inf, unreached upper limits
    n = 150
    est = 245.0 * np.exp(rng.normal(0.02, 0.08, n))
    se = est * rng.uniform(0.06, 0.10, n)
    g = _group("correct", "iow", "median", None, 245.0, est, se)
    lower = g["ci_lower"].to_numpy().copy()
    upper = g["ci_upper"].to_numpy().copy()
    estimate = g["estimate"].to_numpy().copy()
    estimate[rng.choice(n, 6, replace=False)] = np.nan
    estimate[3] = -np.inf
    upper[rng.choice(n, 12, replace=False)] = np.inf
    gone = rng.choice(n, 5, replace=False)
    upper[gone] = np.nan
    lower[gone[:2]] = np.nan
    g = g.with_columns(
        pl.Series("estimate", estimate),
        pl.Series("ci_lower", lower),
        pl.Series("ci_upper", upper),
    )
    groups.append(g)

    # RMST(1826.25) in days, right-skewed estimates
    n = 200
    est = 520.0 + rng.gamma(4.0, 6.0, n) - 24.0
    groups.append(_group("correct", "iow", "rmst", 1826.25, 521.5, est, rng.uniform(20.0, 30.0, n)))

    # naive: no SEs, no intervals
    est = rng.normal(0.58, 0.03, n)
    groups.append(_group("correct", "naive", "survival", 365.0, 0.62, est, None, ci=False))

    # entropy: two replicates; one replicate
    groups.append(
        _group(
            "correct",
            "entropy",
            "survival",
            365.0,
            0.62,
            rng.normal(0.62, 0.03, 2),
            rng.uniform(0.02, 0.03, 2),
        )
    )
    groups.append(
        _group(
            "correct",
            "entropy",
            "median",
            None,
            245.0,
            rng.normal(245.0, 20.0, 1),
            rng.uniform(15.0, 25.0, 1),
        )
    )

    # truth 0: S(t) beyond the support
    n = 60
    est = np.abs(rng.normal(0.0, 0.004, n))
    groups.append(
        _group("weak_overlap", "gformula", "survival", 5000.0, 0.0, est, np.full(n, 0.004))
    )

    # constant estimates and constant SEs
    n = 40
    groups.append(
        _group(
            "weak_overlap",
            "gformula",
            "rmst",
            730.0,
            400.0,
            np.full(n, 401.25),
            np.full(n, 12.5),
        )
    )

    # every estimate failed
    n = 3
    groups.append(
        _group(
            "weak_overlap",
            "aipw",
            "survival",
            365.0,
            0.55,
            np.full(n, np.nan),
            np.full(n, np.nan),
        )
    )

    # intervals that always cover
    n = 80
    g = _group(
        "weak_overlap",
        "aipw",
        "median",
        None,
        230.0,
        rng.normal(232.0, 25.0, n),
        rng.uniform(18.0, 30.0, n),
    )
    groups.append(
        g.with_columns(
            pl.lit(-np.inf).alias("ci_lower"),
            pl.lit(np.inf).alias("ci_upper"),
        )
    )

    # estimates all equal to the truth (MSE 0)
    n = 25
    groups.append(
        _group(
            "weak_overlap",
            "naive",
            "rmst",
            365.0,
            300.0,
            np.full(n, 300.0),
            rng.uniform(5.0, 9.0, n),
        )
    )

    # a single finite SE, a single interval, among 30 replicates
    n = 30
    est = rng.normal(0.33, 0.05, n)
    se = np.full(n, np.nan)
    se[17] = 0.045
    g = _group("weak_overlap", "iow", "survival", 730.0, 0.35, est, se)
    groups.append(_null(g, "se", np.setdiff1d(np.arange(n), [17])))

    frame = pl.concat(groups, how="vertical")
    return frame.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(2**31)))


def main() -> None:
    out = HERE / "data" / "metrics_replicates.csv"
    cases(np.random.default_rng(SEED)).write_csv(out)


if __name__ == "__main__":
    main()
