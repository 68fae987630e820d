"""The methods-validation study of issue 7 ("Done when"), run with ``tp.simulate.Study``.

Built-in scenarios ``correct``, ``participation_misspecified``, ``outcome_misspecified``
and ``both_misspecified`` (source 1,000, target 500 patients; truth by quadrature, see
``transport/simulate/scenarios.py``): S(12 months), the median and RMST(24 months) of the
target. Seed 2024 throughout, so every figure below is reproducible bit for bit (for any
``n_jobs`` and backend). Monte Carlo SEs (MCSE) are Morris, White & Crowther's, from
``StudyResult.metrics()``.

Figures of the full run, ``n_jobs=2``, 2026-11-22 (``-m slow``: 2 passed in 22.9 minutes
on 2 cores shared with other jobs, load average 7-10; 15.3 CPU minutes in all, so about 8
minutes on two idle cores):

* ``test_bias_study``: 4 scenarios x 5 methods x 1,000 replicates, no bootstrap; 845 s
  (0.18 s a replicate for all five methods on an idle core). Bias of
  S(12) (truth 0.48232), MCSE 0.0005-0.0007, in MCSEs:

  ==========================  =======  =======  =======  ========  =======
  scenario                    naive    iow      entropy  gformula  aipw
  ==========================  =======  =======  =======  ========  =======
  correct                     -315     +0.5     +0.4     -0.1      -0.5
  participation_misspecified  -319     -145     -161     +0.4      -0.2
  outcome_misspecified        -320     +1.7     +1.8     -72       +1.5
  both_misspecified           -324     -150     -165     -70       -169
  ==========================  =======  =======  =======  ========  =======

  (naive -0.154, iow / entropy with the participation model wrong -0.088 / -0.095,
  gformula with the outcome model wrong -0.047, aipw with both wrong -0.113.) RMST(24)
  (truth 12.617 months, MCSE 0.011-0.013) of the unbiased ones: within 1.4 MCSE; median
  (truth 11.272, MCSE 0.024-0.027): +0.020 to +0.066, 0.7 to 2.5 MCSE (see the test).
* ``test_bootstrap_coverage_study``: ``correct``, 200 replicates x 200 bootstrap
  replicates, iow, entropy, gformula; 527 s. Percentile coverage of S(12): iow
  0.950 (MCSE 0.015), entropy 0.955 (0.015), gformula 0.945 (0.016); of RMST(24) 0.92 to
  0.93 and of the median 0.94 to 0.945 (not asserted). The first 240 replicates (an
  exploratory run) gave 0.950 to 0.954 for S(12).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import transport as tp

SEED = 2024
SCENARIOS = ["correct", "participation_misspecified", "outcome_misspecified", "both_misspecified"]
METHODS = ["naive", "iow", "entropy", "gformula", "aipw"]
# (scenario, method) whose every model is right, or aipw with one right: unbiased
UNBIASED = {
    ("correct", "iow"),
    ("correct", "entropy"),
    ("correct", "gformula"),
    ("correct", "aipw"),
    ("participation_misspecified", "gformula"),
    ("participation_misspecified", "aipw"),
    ("outcome_misspecified", "iow"),
    ("outcome_misspecified", "entropy"),
    ("outcome_misspecified", "aipw"),
}
# a model the method relies on is wrong (aipw: both): biased
BIASED = {
    ("participation_misspecified", "iow"),
    ("participation_misspecified", "entropy"),
    ("outcome_misspecified", "gformula"),
    ("both_misspecified", "iow"),
    ("both_misspecified", "entropy"),
    ("both_misspecified", "gformula"),
    ("both_misspecified", "aipw"),
}
N_BIAS = 1000
N_COVERAGE, N_BOOT = 200, 200
COVERAGE_METHODS = ["iow", "entropy", "gformula"]


def _table(m: pl.DataFrame, cols: list[str]) -> str:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, float_precision=5):
        return str(m.select(cols))


def _half_event_gap_near_median(n: int = 50) -> float:
    """Half the mean gap between consecutive source event times within 1.5 months of
    the true median, over the first ``n`` replicates' source cohorts (drawn with the
    study's seeds, ``SeedSequence(seed, spawn_key=(0, r, 0))``): the expected upward
    shift of a step-function median, ``inf{t: S(t) <= 1/2}``, over the crossing of the
    underlying smooth curve."""
    sc = tp.simulate.scenario("correct")
    true_median = sc.median()
    gaps = []
    for r in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(0, r, 0)))
        source, _ = sc.simulate(rng)
        ev = np.sort(source.time_values[source.event_values == 1])
        near = ev[np.abs(ev - true_median) < 1.5]
        gaps.append(np.mean(np.diff(near)))
    return float(np.mean(gaps)) / 2.0


@pytest.mark.slow
def test_bias_study() -> None:
    """1,000 replicates of each of the four scenarios, every method, no bootstrap.

    Unbiased where the models the method rests on are right (iow, entropy, gformula, aipw
    under ``correct``; gformula and aipw under ``participation_misspecified``; iow,
    entropy and aipw under ``outcome_misspecified``): S(12) and RMST(24) within 2 MCSE,
    with the S(12) MCSE below 0.001 (so "unbiased" means within 0.002 of the truth). The
    median within 2 MCSE plus half the mean gap between source event times near it
    (0.030 months, computed below): a Kaplan-Meier or Breslow median is the first event
    time at which the step curve reaches 1/2, above the smooth curve's crossing by about
    half a gap. That O(1/n) shift is in every method alike: identical estimators on the
    independent draws of two scenarios pool to iow +0.050 (MCSE 0.018), entropy +0.052
    (0.018), gformula +0.031 (0.017), aipw +0.035 (0.015 over three), of a median of
    11.27 months; alone, the 2 MCSE bound fails iow, entropy and aipw under
    ``outcome_misspecified`` (2.3, 2.5, 2.2 MCSE) though iow and entropy there do not even
    use the outcome model.

    Biased: naive (its S(12) bias below -0.1 and beyond 100 MCSE in every scenario);
    iow and entropy with the participation model wrong, gformula with the outcome model
    wrong, aipw with both wrong: S(12) beyond 10 MCSE.

    No method fails in the run below. Entropy balancing before its Newton polish was
    changed to backtrack on the residual (working tree of 2026-11-22 15:50) failed in 7
    of the 4,000 replicates (stopping at an imbalance of 1e-10 to 4e-9, over its 1e-10
    tolerance; S(12) bias under ``correct`` +0.00030 on 998 replicates against +0.00027
    on 1,000 below); failures are counted, not hidden, and only such entropy failures
    are allowed, at most 5 per scenario.
    """
    study = tp.simulate.Study(
        scenario=SCENARIOS, methods=METHODS, n_reps=N_BIAS, seed=SEED, times=[12.0], tau=24.0
    )
    out = study.run(backend="processes", n_jobs=2)
    m = out.metrics().with_columns((pl.col("bias") / pl.col("bias_mcse")).alias("z"))
    print()
    cols = ["scenario", "method", "estimand", "n_reps", "n_failed", "bias", "bias_mcse", "z"]
    print(_table(m, [*cols, "empirical_se", "coverage", "coverage_mcse"]))

    fails = out.failures()
    print(fails)
    assert set(fails["method"]) <= {"entropy"}, fails
    assert fails["error"].str.contains("entropy balancing of 'source' did not converge").all()
    per_scenario = fails.group_by("scenario").len()
    assert per_scenario.height == 0 or per_scenario["len"].max() <= 5, per_scenario
    assert (m["n_reps"] + m["n_failed"] == N_BIAS).all()

    half_gap = _half_event_gap_near_median()
    print(f"half the mean gap between source event times near the median: {half_gap:.4f}")
    assert 0.01 < half_gap < 0.05

    problems = []
    for row in m.iter_rows(named=True):
        key = (row["scenario"], row["method"])
        bias, mcse, est = row["bias"], row["bias_mcse"], row["estimand"]
        where = f"{key} {est}: bias {bias:+.5f}, MCSE {mcse:.5f}"
        if est == "survival":
            assert mcse < 0.001, where  # small enough to tell
        if key in UNBIASED:
            bound = 2 * mcse + (half_gap if est == "median" else 0.0)
            if abs(bias) > bound:
                problems.append(f"{where} > {bound:.5f} (should be unbiased)")
        elif est == "survival" and row["method"] == "naive":
            if not (bias < -0.1 and abs(bias) > 100 * mcse):
                problems.append(f"{where} (naive should be biased)")
        elif est == "survival" and key in BIASED and abs(bias) <= 10 * mcse:
            problems.append(f"{where} (should be biased)")
    assert not problems, problems


@pytest.mark.slow
def test_bootstrap_coverage_study() -> None:
    """200 replicates of ``correct``, 200 bootstrap replicates each (percentile
    intervals; source and target resampled), for iow, entropy and gformula: coverage of
    S(12) within its Monte Carlo interval of 95%, in the stricter form of
    tests/test_synthetic_recovery.py, ``|coverage - 0.95| <= 2 sqrt(0.95 x 0.05 / 200)``
    (3.1 points), and also in the issue's form, 0.95 within coverage +- 1.96 MCSE.
    aipw is left out for time: its bootstrap costs 4.4 s a replicate, against 0.4 (iow),
    0.35 (entropy) and 1.6 (gformula).
    """
    study = tp.simulate.Study(
        scenario="correct",
        methods=COVERAGE_METHODS,
        n_reps=N_COVERAGE,
        seed=SEED,
        times=[12.0],
        tau=24.0,
        n_boot=N_BOOT,
    )
    out = study.run(backend="processes", n_jobs=2)
    r = out.replicates
    assert r.filter(pl.col("estimate").is_not_null())["ci_method"].eq("bootstrap-percentile").all()
    m = out.metrics()
    print()
    cols = ["scenario", "method", "estimand", "n_reps", "n_failed", "n_ci", "bias", "bias_mcse"]
    print(_table(m, [*cols, "empirical_se", "coverage", "coverage_mcse", "be_coverage"]))
    print(out.failures())
    warned = r.filter(pl.col("warning").str.contains("bootstrap replicates").fill_null(False))
    print(f"replicates warning of failed bootstrap replicates: {warned.height // 3}")

    s12 = m.filter(pl.col("estimand") == "survival")
    assert s12.height == len(COVERAGE_METHODS)
    strict = 2 * math.sqrt(0.95 * 0.05 / N_COVERAGE)
    problems = []
    for row in s12.iter_rows(named=True):
        c, c_mcse, k = row["coverage"], row["coverage_mcse"], row["n_ci"]
        where = f"{row['method']}: coverage {c:.3f} (MCSE {c_mcse:.3f}, {k} intervals)"
        if k < N_COVERAGE - 5:
            problems.append(f"{where}: too few intervals")
        if abs(c - 0.95) > strict:
            problems.append(f"{where}: off 0.95 by more than {strict:.4f}")
        if not (c - 1.96 * c_mcse <= 0.95 <= c + 1.96 * c_mcse):
            problems.append(f"{where}: 0.95 outside coverage +- 1.96 MCSE")
    assert not problems, problems
