"""tp.transport: point estimates, the bootstrap engine, the comparison table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, read_levelled

import transport as tp
from transport.assess import curve_distance, verdict
from transport.estimators import FixedGridKM
from transport.survival._kernel import kaplan_meier_arrays

TIMES = [182.0, 365.0, 730.0]
TAU = 1095.0


@pytest.fixture(scope="module")
def us_jp() -> tuple[tp.Cohort, tp.Cohort]:
    # a seeded 2,000-row subset of the US keeps the module fast
    us = tp.datasets.load_synthetic("US")
    rows = np.sort(np.random.default_rng(11).choice(us.n, 2000, replace=False))
    return subset(us, rows), tp.datasets.load_synthetic("JP")


def subset(cohort: tp.Cohort, rows: np.ndarray, name: str | None = None) -> tp.Cohort:
    """The cohort made of ``rows`` (repeats allowed): a resample as real rows."""
    frame = cohort.to_frame()[rows.tolist()]
    return tp.Cohort(
        frame,
        time=cohort.time,
        event=cohort.event,
        covariates=list(cohort.covariates),
        name=name or cohort.name,
        time_unit=cohort.time_unit,
    )


# -- point estimates ------------------------------------------------------------------------
def test_iow_and_entropy_point_estimates_are_the_weighted_km_exactly(us_jp) -> None:
    us, jp = us_jp
    for method, w in (
        ("iow", tp.inverse_odds_weights(us, jp)),
        ("entropy", tp.entropy_balance(us, jp)),
    ):
        res = tp.transport(us, jp, method=method, times=TIMES, tau=TAU)
        km = tp.kaplan_meier(us, w)
        assert np.array_equal(res.transported.survival, km.survival)
        assert np.array_equal(res.transported.se, km.se)
        row = res.summary().filter(pl.col("estimand") == "survival")
        assert np.array_equal(row["transported"].to_numpy(), km.survival_at(TIMES))
        assert np.array_equal(row["transported_se"].to_numpy(), km.se_at(TIMES))
        rm = res.summary().filter(pl.col("estimand") == "rmst")["transported"][0]
        assert rm == km.rmst(TAU).value
        assert res.summary().filter(pl.col("estimand") == "median")["transported"][0] == (
            km.median().value
        )


def test_naive_is_the_source_km_and_observed_the_target_km(us_jp) -> None:
    us, jp = us_jp
    res = tp.transport(us, jp, method="naive", times=TIMES, tau=TAU)
    s = res.summary()
    assert np.array_equal(s["transported"].to_numpy()[:3], tp.kaplan_meier(us).survival_at(TIMES))
    assert np.array_equal(s["observed"].to_numpy()[:3], tp.kaplan_meier(jp).survival_at(TIMES))
    assert s["difference"].to_numpy()[:3] == pytest.approx(
        s["transported"].to_numpy()[:3] - s["observed"].to_numpy()[:3], abs=0
    )


def test_fixed_grid_km_equals_the_kernel(us_jp) -> None:
    us, _ = us_jp
    rng = np.random.default_rng(2)
    w = rng.poisson(1.0, us.n).astype(float)
    km = FixedGridKM(us.time_values, us.event_values)
    ref = kaplan_meier_arrays(us.time_values, us.event_values, w)
    np.testing.assert_allclose(km.survival(w), ref.survival, rtol=0, atol=1e-13)


def test_gformula_with_breslow_ties_matches_r() -> None:
    """The g-formula curve is the mean of R's survfit.coxph predictions (tests/r)."""
    src = read_levelled("cox_source.csv")
    us = tp.Cohort(
        src, time="os_days", event="os_event", covariates=list(tp.datasets.COVARIATES), name="US"
    )
    new = read_levelled("cox_newdata.csv").with_columns(
        pl.lit(1.0).alias("t"), pl.lit(1).alias("d")
    )
    jp = tp.Cohort(new, time="t", event="d", covariates=list(tp.datasets.COVARIATES), name="JP")
    ref = pl.read_csv(R_DIR / "cox_reference" / "survival.csv").filter(pl.col("case") == "breslow")
    mean = ref.group_by("time").agg(pl.col("surv").mean()).sort("time")
    times = mean["time"].to_numpy().astype(float)
    # the target's rows stand in for R's newdata: their follow-up (1 day) is not read
    with pytest.warns(tp.ExtrapolationWarning, match="past the last follow-up time 1 of"):
        res = tp.transport(us, jp, method="gformula", ties="breslow", times=times)
    ours = res.transported.survival_at(times)
    np.testing.assert_allclose(ours, mean["surv"].to_numpy(), rtol=0, atol=1e-8)


# -- the bootstrap ----------------------------------------------------------------------------
def test_same_seed_gives_identical_results_for_any_n_jobs(us_jp) -> None:
    us, jp = us_jp
    kw = {"times": TIMES, "tau": TAU, "n_boot": 12, "seed": 7}
    a = tp.transport(us, jp, method="iow", n_jobs=1, **kw)
    b = tp.transport(us, jp, method="iow", n_jobs=2, **kw)
    c = tp.transport(us, jp, method="iow", n_jobs=1, **{**kw, "seed": 8})
    assert np.array_equal(a.bootstrap.values, b.bootstrap.values, equal_nan=True)
    assert a.summary().equals(b.summary())
    assert not np.array_equal(a.bootstrap.values, c.bootstrap.values)


@pytest.mark.parametrize("method", ["iow", "entropy", "gformula", "aipw"])
def test_a_replicate_equals_the_analysis_of_its_resampled_rows(us_jp, method: str) -> None:
    """Counts as case weights (the fast path) reproduce the analysis of the resample."""
    us, jp = us_jp
    ties = {"ties": "breslow"} if method in ("gformula", "aipw") else {}
    res = tp.transport(us, jp, method=method, times=TIMES, tau=TAU, n_boot=3, seed=5, **ties)
    b = 2
    rng = np.random.default_rng(np.random.SeedSequence(5).spawn(3)[b])
    rs = rng.integers(0, us.n, us.n)
    rt = rng.integers(0, jp.n, jp.n)
    direct = tp.transport(
        subset(us, rs), subset(jp, rt), method=method, times=TIMES, tau=TAU, **ties
    )
    k = res.k
    s = direct.summary()
    np.testing.assert_allclose(
        res.bootstrap.values[b, k : 2 * k], s["transported"].to_numpy(), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        res.bootstrap.values[b, 2 * k : 3 * k], s["observed"].to_numpy(), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        res.bootstrap.values[b, :k],
        [
            *direct.naive.survival_at(TIMES),
            direct.naive.median().value,
            direct.naive.rmst(TAU).value,
        ],
        rtol=1e-12,
    )


def test_percentile_interval_is_the_quantiles_of_the_replicates(us_jp) -> None:
    us, jp = us_jp
    res = tp.transport(us, jp, method="iow", times=TIMES, tau=TAU, n_boot=40, seed=3)
    k = res.k
    r = res.bootstrap.values
    s = res.summary()
    lo, hi = np.quantile(r[:, k : 2 * k], [0.025, 0.975], axis=0)
    np.testing.assert_allclose(s["transported_ci_lower"].to_numpy(), lo)
    np.testing.assert_allclose(s["transported_ci_upper"].to_numpy(), hi)
    d = r[:, k : 2 * k] - r[:, 2 * k : 3 * k]
    np.testing.assert_allclose(s["difference_ci_lower"].to_numpy(), np.quantile(d, 0.025, axis=0))
    sn = res.summary("normal")
    np.testing.assert_allclose(sn["transported_se"].to_numpy(), r[:, k : 2 * k].std(0, ddof=1))
    np.testing.assert_allclose(
        sn["transported_ci_upper"].to_numpy(),
        sn["transported"].to_numpy() + 1.959963984540054 * sn["transported_se"].to_numpy(),
    )
    assert set(s["ci_method"]) == {"bootstrap-percentile"}
    assert set(sn["ci_method"]) == {"bootstrap-normal"}
    # the ratio: percentile limits are the replicate ratios' quantiles, the normal interval
    # is exp(log ratio -/+ z SD of the replicate log ratios)
    ratio_reps = r[:, k : 2 * k] / r[:, 2 * k : 3 * k]
    np.testing.assert_allclose(
        s["ratio_ci_upper"].to_numpy(), np.quantile(ratio_reps, 0.975, axis=0)
    )
    sd_log = np.log(ratio_reps).std(0, ddof=1)
    log_ratio = np.log(sn["ratio"].to_numpy())
    np.testing.assert_allclose(
        sn["ratio_ci_lower"].to_numpy(), np.exp(log_ratio - 1.959963984540054 * sd_log)
    )
    np.testing.assert_allclose(
        sn["ratio_ci_upper"].to_numpy(), np.exp(log_ratio + 1.959963984540054 * sd_log)
    )


def test_progress_is_reported(us_jp) -> None:
    us, jp = us_jp
    seen: list[tuple[int, int]] = []
    tp.transport(
        us,
        jp,
        method="naive",
        times=TIMES,
        n_boot=30,
        seed=1,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (30, 30)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# -- influence-function intervals and the comparison -----------------------------------------
def test_influence_function_intervals_without_bootstrap(us_jp) -> None:
    us, jp = us_jp
    res = tp.transport(us, jp, method="iow", times=TIMES, tau=TAU)
    s = res.summary()
    obs = tp.kaplan_meier(jp)
    surv = s.filter(pl.col("estimand") == "survival")
    se = np.sqrt(surv["transported_se"].to_numpy() ** 2 + obs.se_at(TIMES) ** 2)
    np.testing.assert_allclose(surv["difference_se"].to_numpy(), se)
    np.testing.assert_allclose(
        surv["difference_ci_upper"].to_numpy(),
        surv["difference"].to_numpy() + 1.959963984540054 * se,
    )
    assert surv["ci_method"].to_list() == ["influence-function (weights fixed)"] * 3
    med = s.filter(pl.col("estimand") == "median")
    assert med["difference_ci_lower"][0] is None  # no variance for a difference of medians
    assert med["ci_method"][0] == "band-inversion (weights fixed)"
    g = tp.transport(us, jp, method="gformula", times=TIMES).summary()
    assert g["transported_ci_lower"].null_count() == g.height


def test_decomposition_adds_up(us_jp) -> None:
    us, jp = us_jp
    res = tp.transport(us, jp, method="iow", times=TIMES, tau=TAU, n_boot=20, seed=2)
    d = res.decomposition().pivot(on="component", index=["estimand", "time"], values="value")
    np.testing.assert_allclose(d["raw_gap"], d["patient_mix"] + d["residual"], atol=1e-12)
    s = res.summary()
    np.testing.assert_allclose(d["residual"], s["difference"])
    np.testing.assert_allclose(d["raw_gap"], s["naive"] - s["observed"])


def test_curve_distance_equals_numerical_integral() -> None:
    t1, s1 = np.array([1.0, 2.5, 4.0]), np.array([0.8, 0.5, 0.2])
    t2, s2 = np.array([2.0, 3.0]), np.array([0.6, 0.4])
    grid = np.linspace(0.5, 3.5, 3_000_001)[:-1] + 0.5e-6  # midpoints

    def step(t: np.ndarray, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(t, x, side="right") - 1
        return np.where(k >= 0, s[np.maximum(k, 0)], 1.0)

    numeric = np.mean(np.abs(step(t1, s1, grid) - step(t2, s2, grid)))
    assert curve_distance(t1, s1, t2, s2, 0.5, 3.5) == pytest.approx(numeric, abs=1e-6)
    with pytest.raises(ValueError, match="b > a"):
        curve_distance(t1, s1, t2, s2, 2.0, 2.0)


def test_equivalence_verdicts() -> None:
    lo = np.array([-0.02, 0.06, -0.08, np.nan, -0.2])
    hi = np.array([0.03, 0.09, 0.01, 0.01, -0.07])
    v = verdict(lo, hi, np.full(5, 0.05))
    assert v.tolist() == [
        "equivalent",
        "not equivalent",
        "inconclusive",
        "inconclusive",
        "not equivalent",
    ]


def test_equivalence_uses_the_1_minus_2_alpha_interval(us_jp) -> None:
    us, jp = us_jp
    res = tp.transport(us, jp, method="iow", times=TIMES, tau=TAU, margin={"survival": 0.1})
    eq = res.equivalence()
    s90 = res._columns("percentile", 0.90)
    np.testing.assert_allclose(eq["lower"].to_numpy(), s90["difference_ci_lower"])
    assert eq.filter(pl.col("estimand") == "survival")["margin"].to_list() == [0.1] * 3
    assert eq.filter(pl.col("estimand") == "rmst")["verdict"][0] is None
    assert "verdict" in res.summary().columns
    with pytest.raises(ValueError, match="margin"):
        tp.transport(us, jp, method="naive", times=TIMES).equivalence()


# -- targets ------------------------------------------------------------------------------------
def test_several_targets_give_one_result_each_and_a_tidy_table(us_jp) -> None:
    us, jp = us_jp
    uk = tp.datasets.load_synthetic("UK")
    many = tp.transport(us, {"JP": jp, "UK": uk}, method="iow", times=TIMES, tau=TAU)
    assert isinstance(many, tp.TransportResults) and list(many) == ["JP", "UK"]
    one = tp.transport(us, uk, method="iow", times=TIMES, tau=TAU)
    assert many["UK"].summary().equals(one.summary())
    table = many.summary()
    assert table.height == 2 * one.k and set(table["target"]) == {"JP", "UK"}
    assert list(tp.transport(us, [jp, uk], method="naive", times=TIMES)) == ["JP", "UK"]


def test_summary_target_equals_row_level_target_for_entropy(us_jp) -> None:
    us, jp = us_jp
    summ = tp.TargetSummary.from_cohort(jp, km_times=TIMES)
    a = tp.transport(us, summ, method="entropy", times=TIMES, tau=TAU)
    b = tp.transport(us, jp, method="entropy", times=TIMES, tau=TAU)
    assert a.observed is None
    np.testing.assert_allclose(a.transported.survival, b.transported.survival, atol=1e-10)
    sa, sb = a.summary(), b.summary()
    np.testing.assert_allclose(sa["observed"].to_numpy()[:3], sb["observed"].to_numpy()[:3])
    assert sa["observed"][3] is None  # the median is not on the summary's grid
    boot = tp.transport(us, summ, method="entropy", times=TIMES, n_boot=10, seed=1)
    assert boot.summary()["ci_method"][0] == "bootstrap-percentile (target summary fixed)"


def test_time_units_are_aligned(us_jp) -> None:
    us, jp = us_jp
    a = tp.transport(us, jp, method="iow", times=TIMES)
    b = tp.transport(us, jp.in_unit("months"), method="iow", times=TIMES)
    np.testing.assert_allclose(
        a.summary()["observed"].to_numpy(), b.summary()["observed"].to_numpy()
    )


# -- bad input ------------------------------------------------------------------------------
def test_bad_inputs(us_jp) -> None:
    us, jp = us_jp
    summ = tp.TargetSummary.from_cohort(jp)
    with pytest.raises(tp.DataError, match="needs the target's rows"):
        tp.transport(us, summ, method="iow")
    with pytest.raises(ValueError, match="'method'"):
        tp.transport(us, jp, method="ipw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_boot"):
        tp.transport(us, jp, n_boot=1)
    with pytest.raises(ValueError, match="n_boot"):
        tp.transport(us, jp, n_boot=-3)
    with pytest.raises(ValueError, match="times"):
        tp.transport(us, jp, times=[-1.0])
    with pytest.raises(ValueError, match="tau"):
        tp.transport(us, jp, tau=0.0)
    with pytest.raises(ValueError, match="n_jobs"):
        tp.transport(us, jp, n_boot=4, n_jobs=0)
    with pytest.raises(TypeError, match="'target'"):
        tp.transport(us, "JP")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct names"):
        tp.transport(us, [jp, jp])
    bad = jp.to_frame().with_columns(pl.lit("never-seen").alias("regimen"))
    with pytest.raises(tp.DataError, match="regimen"):
        tp.transport(
            us,
            tp.Cohort(
                bad, time="os_days", event="os_event", covariates=list(us.covariates), name="X"
            ),
            method="gformula",
        )


# -- review findings, each pinned ---------------------------------------------------------------
def test_aipw_with_the_source_as_target_is_the_km_despite_tied_times(us_jp) -> None:
    """With target = source the odds are 1 and aipw reduces to mean 1{T > t} / G(t), which
    is the Kaplan–Meier exactly when deaths leave before censorings at a tied time."""
    us, _ = us_jp  # whole-day times: many deaths tie with censorings
    res = tp.transport(us, us, method="aipw", times=TIMES)
    km = tp.kaplan_meier(us)
    np.testing.assert_allclose(
        res.transported.survival_at(TIMES), km.survival_at(TIMES), rtol=0, atol=1e-9
    )
    cox = tp.transport(us, us, method="aipw", times=TIMES, censoring="cox")
    np.testing.assert_allclose(cox.transported.survival_at(TIMES), km.survival_at(TIMES), atol=5e-3)


def _rare_level_pair() -> tuple[tp.Cohort, tp.Cohort]:
    rng = np.random.default_rng(21)
    n = 300

    def frame(shift: float, rare: int) -> pl.DataFrame:
        g = np.array(["a"] * (n - rare) + ["b"] * rare)
        return pl.DataFrame(
            {
                "t": np.round(rng.exponential(10.0, n)) + 1.0,
                "d": rng.binomial(1, 0.7, n),
                "x": rng.normal(shift, 1.0, n),
                "g": g,
            }
        )

    src = tp.Cohort(frame(0.0, 3), time="t", event="d", covariates=["x", "g"], name="S")
    tgt = tp.Cohort(frame(0.3, 30), time="t", event="d", covariates=["x", "g"], name="T")
    return src, tgt


def test_participation_refit_matches_a_full_newton_fit_on_every_resample() -> None:
    from transport.estimators import IOWEstimator
    from transport.weighting._logistic import fit_logistic

    src, tgt = _rare_level_pair()
    est = IOWEstimator(src, tgt, None)
    part = est.participation
    rng = np.random.default_rng(3)
    for _ in range(100):
        c = np.concatenate(
            (
                rng.multinomial(src.n, np.full(src.n, 1 / src.n)),
                rng.multinomial(tgt.n, np.full(tgt.n, 1 / tgt.n)),
            )
        ).astype(float)
        full = fit_logistic(part.X, part.y, c)
        ours = part.refit(c)
        if full.converged and np.max(np.abs(full.eta)) <= 30:
            assert ours is not None
            np.testing.assert_allclose(ours, full.coef, rtol=1e-7, atol=1e-7)
        else:
            assert ours is None


def test_failed_replicates_are_reported() -> None:
    src, tgt = _rare_level_pair()
    with pytest.warns(tp.TransportWarning, match="could not be refitted"):
        res = tp.transport(src, tgt, method="iow", times=[5.0], n_boot=60, seed=1)
    s = res.summary()
    assert s["n_boot_failed"][0] == res.bootstrap.failed > 0
    assert "replicates failed" in s["ci_method"][0]


def test_a_seed_sequence_is_not_consumed(us_jp) -> None:
    us, jp = us_jp
    ss = np.random.SeedSequence(7)
    a = tp.transport(us, jp, method="naive", times=TIMES, n_boot=5, seed=ss)
    b = tp.transport(us, jp, method="naive", times=TIMES, n_boot=5, seed=ss)
    c = tp.transport(us, jp, method="naive", times=TIMES, n_boot=5, seed=7)
    assert np.array_equal(a.bootstrap.values, b.bootstrap.values)
    assert np.array_equal(a.bootstrap.values, c.bootstrap.values)


def test_more_bad_inputs(us_jp) -> None:
    us, jp = us_jp
    with pytest.warns(tp.ExtrapolationWarning, match="past the last follow-up"):
        tp.transport(us, jp, method="naive", tau=50_000.0)
    for margin in (-0.5, 0, True, float("inf"), {"survival": -0.1}):
        with pytest.raises(ValueError, match="margin"):
            tp.transport(us, jp, method="naive", times=TIMES, margin=margin)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        tp.transport(us, jp, method="naive", times=TIMES, window=(0.0, float("inf")))
    entry = jp.to_frame().with_columns((pl.col("os_days") * 0.1).alias("start"))
    late = tp.Cohort(
        entry,
        time="os_days",
        event="os_event",
        entry="start",
        covariates=list(jp.covariates),
        name="late",
    )
    with pytest.raises(tp.DataError, match="delayed entry"):
        tp.transport(us, late, method="gformula")
    sep = jp.to_frame().with_columns(pl.lit("targeted").alias("regimen"))
    sep_jp = tp.Cohort(
        sep.with_columns(pl.col("regimen").cast(us.to_frame()["regimen"].dtype)),
        time="os_days",
        event="os_event",
        covariates=list(jp.covariates),
        name="all-targeted",
    )
    with pytest.raises(tp.DataError, match="separation"):
        tp.transport(us, sep_jp, method="aipw", times=TIMES)


def test_median_only_bootstrap_keeps_replicates_that_never_reach_the_median() -> None:
    """A replicate whose curves stay above 0.5 is a successful replicate with a median
    'not reached', not a failed one: with the median as the only estimand its interval
    must equal the one computed alongside S(t), and nothing counts as failed."""
    rng = np.random.default_rng(5)

    def cohort(n: int, name: str, shift: float) -> tp.Cohort:
        age = rng.normal(65.0 + shift, 8.0, n)
        t = np.ceil(rng.exponential(917.0 * np.exp(-(age - 65.0) / 30.0), n))
        frame = pl.DataFrame(
            {"time": np.minimum(t, 600.0), "event": (t <= 600).astype(np.int64), "age": age}
        )
        return tp.Cohort(frame, time="time", event="event", covariates=["age"], name=name)

    src, tgt = cohort(400, "S", 0.0), cohort(300, "T", 3.0)
    med = pl.col("estimand") == "median"
    only = tp.transport(src, tgt, method="iow", times=[], n_boot=60, seed=1).summary()
    both = tp.transport(src, tgt, method="iow", times=[100.0], n_boot=60, seed=1).summary()
    a, b = only.filter(med).row(0, named=True), both.filter(med).row(0, named=True)
    assert a["n_boot_failed"] == 0
    for col in ("transported_ci_lower", "transported_ci_upper", "observed_ci_upper"):
        assert a[col] == b[col]
    # the target's median is reached by fewer than 97.5% of its replicates: no upper limit
    assert a["observed_ci_lower"] is not None and a["observed_ci_upper"] is None
