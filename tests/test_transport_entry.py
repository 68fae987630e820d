"""tp.transport with delayed entry (left truncation): naive, iow and entropy are the
(weighted) Kaplan–Meier curves of tp.kaplan_meier, whose risk sets are ``entry < t <=
time``; gformula and aipw refuse an entry column."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, load_case

import transport as tp
from transport.estimators import EntropyEstimator, FixedGridKM, IOWEstimator, read_curve
from transport.survival._kernel import kaplan_meier_arrays

TIMES = [182.0, 365.0, 730.0]
TAU = 1095.0


def with_entry(
    cohort: tp.Cohort, seed: int, rows: np.ndarray | None = None, name: str | None = None
) -> tp.Cohort:
    """``cohort`` (or its ``rows``, repeats allowed) with a seeded delayed entry in whole
    days: half the rows enter at a uniform fraction of their follow-up, floored, so that
    ``entry < time`` and many entries tie with other rows' event days."""
    frame = cohort.to_frame()
    if rows is not None:
        frame = frame[rows.tolist()]
    rng = np.random.default_rng(seed)
    t = frame[cohort.time].to_numpy()
    late = rng.uniform(size=t.size) < 0.5
    start = np.floor(rng.uniform(0.0, 1.0, t.size) * t) * late
    return tp.Cohort(
        frame.with_columns(pl.Series("start", start)),
        time=cohort.time,
        event=cohort.event,
        entry="start",
        covariates=list(cohort.covariates),
        name=name or cohort.name,
        time_unit=cohort.time_unit,
    )


def subset(cohort: tp.Cohort, rows: np.ndarray) -> tp.Cohort:
    """The cohort made of ``rows`` (repeats allowed), entry kept: a resample as real rows."""
    return tp.Cohort(
        cohort.to_frame()[rows.tolist()],
        time=cohort.time,
        event=cohort.event,
        entry=cohort.entry,
        covariates=list(cohort.covariates),
        name=cohort.name,
        time_unit=cohort.time_unit,
    )


@pytest.fixture(scope="module")
def late_us_jp() -> tuple[tp.Cohort, tp.Cohort]:
    # a seeded 1,500-row subset of the US keeps the module fast
    us = tp.datasets.load_synthetic("US")
    rows = np.sort(np.random.default_rng(11).choice(us.n, 1500, replace=False))
    return with_entry(us, 1, rows), with_entry(tp.datasets.load_synthetic("JP"), 2)


def test_the_fixture_has_delayed_entry_tied_with_events(late_us_jp) -> None:
    for c in late_us_jp:
        a, t, d = c.entry_values, c.time_values, c.event_values
        assert c.entry == "start" and np.all(a < t) and 0.3 < np.mean(a > 0) < 0.7
        assert np.isin(a[a > 0], t[d > 0]).sum() > 50


# -- the fixed-grid Kaplan–Meier of the bootstrap ---------------------------------------
@pytest.mark.parametrize("scale", [1.0, 1.0 / 7.0], ids=["whole-days", "float-weeks"])
def test_fixed_grid_km_with_entry_equals_the_kernel(late_us_jp, scale: float) -> None:
    """Whole days take the counting path, weeks the sorted path; zero weights are absent."""
    us, _ = late_us_jp
    time, entry = us.time_values * scale, us.entry_values * scale
    w = np.random.default_rng(2).poisson(1.0, us.n).astype(float)
    km = FixedGridKM(time, us.event_values, entry)
    for weights in (w, np.ones(us.n)):
        ref = kaplan_meier_arrays(time, us.event_values, weights, entry, variance="ij")
        assert np.array_equal(km.grid, ref.grid)
        np.testing.assert_allclose(km.survival(weights), ref.survival, rtol=0, atol=1e-13)
    # entry 0 for every row is no delayed entry at all
    zero = FixedGridKM(time, us.event_values, np.zeros(us.n))
    plain = FixedGridKM(time, us.event_values)
    s0, s1 = zero.survival(w), plain.survival(w)
    np.testing.assert_allclose(s0[np.searchsorted(zero.grid, plain.grid)], s1, rtol=0, atol=1e-13)


def test_fixed_grid_km_entry_tied_with_an_event_is_not_at_risk_for_it() -> None:
    # rows (entry, time, event): C enters at 2, when A dies: C is not at risk at 2
    entry = np.array([0.0, 0.0, 2.0, 0.0])
    time = np.array([2.0, 6.0, 4.0, 4.0])
    event = np.array([1.0, 0.0, 1.0, 1.0])
    km = FixedGridKM(time, event, entry)
    assert km.grid.tolist() == [0.0, 2.0, 4.0, 6.0]
    # at 2: A, B, D at risk (Y = 3, d = 1); at 4: B, C, D (Y = 3, d = 2)
    expect = [1.0, 2.0 / 3.0, 2.0 / 9.0, 2.0 / 9.0]
    np.testing.assert_allclose(km.survival(np.ones(4)), expect, rtol=1e-15, atol=0)
    w = np.array([1.0, 2.0, 5.0, 0.5])  # at 2: Y = 3.5, d = 1; at 4: Y = 7.5, d = 5.5
    expect = (1.0 - 1.0 / 3.5) * (1.0 - 5.5 / 7.5)
    assert km.survival(w)[2] == pytest.approx(expect, rel=1e-15)
    cohort = tp.Cohort(
        pl.DataFrame({"a": entry, "t": time, "d": event}), time="t", event="d", entry="a"
    )
    np.testing.assert_allclose(
        tp.kaplan_meier(cohort, w).survival_at(km.grid), km.survival(w), rtol=0, atol=1e-15
    )


@pytest.mark.parametrize("case", ["delayed_entry_weights", "nonmonotone_weighted_entry"])
def test_fixed_grid_km_with_entry_matches_r(case: str) -> None:
    """R's survfit(Surv(entry, time, event) ~ 1, weights=) of tests/r/km_reference: the
    first case has entries tied with event times (2.61, 6.55, 6.71, 8.92)."""
    data, row = load_case(case)
    assert row["has_entry"]
    ref = pl.read_csv(R_DIR / "km_reference" / "curve.csv", infer_schema=False).filter(
        (pl.col("case") == case) & (pl.col("conf_type") == "log-log")
    )
    km = FixedGridKM(
        data["time"].to_numpy().astype(float),
        data["event"].to_numpy().astype(float),
        data["entry"].to_numpy().astype(float),
    )
    r_time = ref["time"].cast(pl.Float64).to_numpy()
    s = read_curve(km.grid, km.survival(data["weight"].to_numpy()), r_time, None)[:-1]
    np.testing.assert_allclose(s, ref["surv"].cast(pl.Float64).to_numpy(), rtol=0, atol=1e-10)


def test_fixed_grid_km_refuses_entry_tied_with_exit_and_censoring_survival() -> None:
    with pytest.raises(tp.DataError, match=r"1 of 2 rows have entry equal to exit"):
        FixedGridKM(np.array([1.0, 2.0]), np.ones(2), np.array([0.0, 2.0 - 1e-12]))
    km = FixedGridKM(np.array([1.0, 2.0]), np.ones(2), np.array([0.0, 0.5]))
    with pytest.raises(tp.DataError, match=r"right-censored data only"):
        km.censoring_survival(np.ones(2))


# -- point estimates ------------------------------------------------------------------------
def test_iow_and_entropy_point_estimates_with_entry_are_the_weighted_km_exactly(
    late_us_jp,
) -> None:
    us, jp = late_us_jp
    for method, w in (
        ("iow", tp.inverse_odds_weights(us, jp)),
        ("entropy", tp.entropy_balance(us, jp)),
    ):
        res = tp.transport(us, jp, method=method, times=TIMES, tau=TAU)
        km = tp.kaplan_meier(us, w)
        assert np.array_equal(res.transported.survival, km.survival)
        assert np.array_equal(res.transported.se, km.se)
        s = res.summary()
        row = s.filter(pl.col("estimand") == "survival")
        assert np.array_equal(row["transported"].to_numpy(), km.survival_at(TIMES))
        assert np.array_equal(row["transported_se"].to_numpy(), km.se_at(TIMES))
        assert np.array_equal(row["transported_ci_lower"].to_numpy(), km.at(TIMES)["ci_lower"])
        assert row["ci_method"].to_list() == ["influence-function (weights fixed)"] * 3
        rm = s.filter(pl.col("estimand") == "rmst")
        assert rm["transported"][0] == km.rmst(TAU).value
        assert rm["transported_se"][0] == km.rmst(TAU).se
        med = s.filter(pl.col("estimand") == "median")
        assert med["transported"][0] == km.median().value
        assert med["transported_ci_upper"][0] == km.median().ci_upper


def test_the_estimators_at_unit_counts_are_the_weighted_km(late_us_jp) -> None:
    """The bootstrap's fast path with every count 1 is the point estimate (to 1e-12)."""
    us, jp = late_us_jp
    ones_s, ones_t = np.ones(us.n), np.ones(jp.n)
    w_iow = tp.inverse_odds_weights(us, jp)
    w_eb = tp.entropy_balance(us, jp)
    for est, w in (
        (IOWEstimator(us, jp, None, w_iow), w_iow),
        (EntropyEstimator(us, jp, None, 1, w_eb.details["lambda"]), w_eb),
    ):
        curve = est.curve(ones_s, ones_t)
        assert curve is not None
        km = tp.kaplan_meier(us, w)
        fast = read_curve(curve[0], curve[1], np.asarray(TIMES), TAU)
        exact = [*km.survival_at(TIMES), km.median().value, km.rmst(TAU).value]
        np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            read_curve(curve[0], curve[1], km.time, None)[:-1], km.survival, rtol=0, atol=1e-12
        )


def test_naive_is_the_source_km_and_observed_the_target_km_with_entry(late_us_jp) -> None:
    us, jp = late_us_jp
    res = tp.transport(us, jp, method="naive", times=TIMES, tau=TAU)
    s = res.summary()
    km_s, km_t = tp.kaplan_meier(us), tp.kaplan_meier(jp)
    for col, km in (("transported", km_s), ("observed", km_t), ("naive", km_s)):
        assert np.array_equal(s[col].to_numpy()[:3], km.survival_at(TIMES))
        assert np.array_equal(s[f"{col}_se"].to_numpy()[:3], km.se_at(TIMES))
        assert s[col][3] == km.median().value
        assert s[col][4] == km.rmst(TAU).value
        assert s[f"{col}_se"][4] == km.rmst(TAU).se
    assert np.array_equal(res.observed.survival, km_t.survival)
    # delayed entry changes the curve: the naive one is not the right-censored KM
    plain = tp.kaplan_meier(tp.Cohort(us.to_frame(), time=us.time, event=us.event))
    assert np.max(np.abs(plain.survival_at(TIMES) - km_s.survival_at(TIMES))) > 0.01
    se = np.sqrt(km_s.se_at(TIMES) ** 2 + km_t.se_at(TIMES) ** 2)
    np.testing.assert_allclose(s["difference_se"].to_numpy()[:3], se, rtol=1e-15)


def test_entropy_with_entry_and_a_summary_target(late_us_jp) -> None:
    us, jp = late_us_jp
    plain_jp = tp.Cohort(
        jp.to_frame().drop("start"),
        time=jp.time,
        event=jp.event,
        covariates=list(jp.covariates),
        name="JP",
    )
    summary = tp.TargetSummary.from_cohort(plain_jp)
    res = tp.transport(us, summary, method="entropy", times=TIMES, tau=TAU, n_boot=4, seed=3)
    km = tp.kaplan_meier(us, tp.entropy_balance(us, summary))
    assert np.array_equal(res.transported.survival, km.survival)
    assert np.isfinite(res.bootstrap.values[:, : 2 * res.k]).all()


# -- the bootstrap ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["naive", "iow", "entropy"])
def test_a_replicate_with_entry_equals_the_analysis_of_its_resampled_rows(
    late_us_jp, method: str
) -> None:
    """Counts as case weights (the fast path) reproduce the analysis of the resample,
    delayed entry included in source and target."""
    us, jp = late_us_jp
    res = tp.transport(us, jp, method=method, times=TIMES, tau=TAU, n_boot=3, seed=5)
    b = 2
    rng = np.random.default_rng(np.random.SeedSequence(5).spawn(3)[b])
    rs = rng.integers(0, us.n, us.n)
    rt = rng.integers(0, jp.n, jp.n)
    direct = tp.transport(subset(us, rs), subset(jp, rt), method=method, times=TIMES, tau=TAU)
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


# -- bad inputs -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["gformula", "aipw"])
@pytest.mark.parametrize("late", ["source", "target"])
def test_outcome_model_methods_refuse_delayed_entry(late_us_jp, method: str, late: str) -> None:
    us, jp = late_us_jp
    right = {
        c.name: tp.Cohort(
            c.to_frame().drop("start"),
            time=c.time,
            event=c.event,
            covariates=list(c.covariates),
            name=c.name,
        )
        for c in (us, jp)
    }
    src, tgt = (us, right["JP"]) if late == "source" else (right["US"], jp)
    name = src.name if late == "source" else tgt.name
    with pytest.raises(
        tp.DataError,
        match=rf"cohort '{name}' has delayed entry \(column 'start'; \d+ rows\) \(rule: "
        rf"method '{method}' needs right-censored data.*methods 'naive', 'iow' and "
        r"'entropy' accept delayed entry\)",
    ):
        tp.transport(src, tgt, method=method, times=TIMES)
