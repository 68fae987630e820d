"""Piecewise exponential model against statsmodels' Poisson GLM, R's glm and closed forms."""

from __future__ import annotations

import itertools
import subprocess
import time
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from conftest import R_DIR, needs_r, r_name, read_levelled

import transport as tp
from transport.survival._pwexp import (
    default_breaks,
    exposure_matrix,
    fit_pwexp,
    interval_index,
)
from transport.survival.models import CoxModel, PiecewiseExponentialModel

REF = R_DIR / "pwexp_reference"
COVARIATES = list(tp.datasets.COVARIATES)


@pytest.fixture(scope="module")
def us() -> tp.Cohort:
    return tp.datasets.load_synthetic("US")


@pytest.fixture(scope="module")
def us_subset(us: tp.Cohort) -> tp.Cohort:
    return tp.Cohort(us.to_frame().head(3000), time="os_days", event="os_event",
                     covariates=COVARIATES, name="US")  # fmt: skip


@pytest.fixture
def small(small_frame: pl.DataFrame) -> tp.Cohort:
    return tp.Cohort(small_frame, time="os_days", event="death",
                     covariates=["age", "ecog", "female"], name="small")  # fmt: skip


def expanded(cohort: tp.Cohort, model: PiecewiseExponentialModel):
    """Person-interval rows (positive exposure): design, events, offset, patient index,
    with the model's breaks and representative times."""
    fit = model.fit
    t, e, X = cohort.time_values, cohort.event_values, model.design.source_matrix
    E = exposure_matrix(t, fit.breaks)
    i, k = np.nonzero(E > 0)
    parts = [np.eye(fit.n_intervals)[k], X[i]]
    if fit.time_varying:
        parts.append(X[i] * fit.shift[k][:, None])
    y = ((e[i] > 0) & (interval_index(t[i], fit.breaks) == k)).astype(np.float64)
    return np.hstack(parts), y, np.log(E[i, k]), i


def statsmodels_fit(cohort, model, weights=None, *, robust=False):
    Z, y, offset, i = expanded(cohort, model)
    kw = {} if weights is None else {"var_weights" if robust else "freq_weights": weights[i]}
    glm = sm.GLM(y, Z, family=sm.families.Poisson(), offset=offset, **kw)
    if robust:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cov_type not fully supported with var_weights"
            return glm.fit(tol=1e-15, maxiter=200, cov_type="cluster",
                           cov_kwds={"groups": i, "use_correction": False})  # fmt: skip
    return glm.fit(tol=1e-15, maxiter=200)


def by_hand(model: PiecewiseExponentialModel, params: np.ndarray, X: np.ndarray, times):
    """``exp(-sum_k h_k(x) |(0, t] ∩ I_k|)`` with explicit loops over intervals and times."""
    fit = model.fit
    K, p = fit.n_intervals, X.shape[1]
    edges = np.concatenate(([0.0], fit.breaks, [np.inf]))
    beta = params[K : K + p]
    gamma = params[K + p :] if fit.time_varying else np.zeros(p)
    s = np.log(fit.mid) - fit.center
    out = np.zeros((X.shape[0], len(times)))
    for j, t in enumerate(times):
        H = np.zeros(X.shape[0])
        for k in range(K):
            overlap = max(min(t, edges[k + 1]) - edges[k], 0.0)
            H += np.exp(params[k] + X @ beta + s[k] * (X @ gamma)) * overlap
        out[:, j] = np.exp(-H)
    return out


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


# -- (a), (b): statsmodels on the expanded data -----------------------------------------------
@pytest.mark.parametrize("data", ["us", "small"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("time_varying", [True, False])
def test_matches_statsmodels_poisson_glm_and_predicts_by_hand(
    data: str, weighted: bool, time_varying: bool, us_subset, small
) -> None:
    cohort = us_subset if data == "us" else small
    w = np.random.default_rng(11).uniform(0.2, 3.0, cohort.n) if weighted else None
    model = PiecewiseExponentialModel(cohort, weights=w, time_varying=time_varying,
                                      breaks=None if data == "us" else 6)  # fmt: skip
    fit = model.fit
    assert fit.converged
    ref = statsmodels_fit(cohort, model, w)
    print(f"\n{data} weighted={weighted} tv={time_varying}: coef {rel(fit.coef, ref.params):.2e}"
          f" se {rel(np.sqrt(np.diag(fit.cov)), ref.bse):.2e} "
          f"loglik {rel(fit.loglik, ref.llf):.2e}")  # fmt: skip
    np.testing.assert_allclose(fit.coef, ref.params, rtol=1e-8, atol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ref.bse, rtol=1e-8, atol=0)
    assert fit.loglik == pytest.approx(ref.llf, rel=1e-12)
    if weighted:  # robust SE: patient-clustered sandwich, no small-sample factor
        rob = statsmodels_fit(cohort, model, w, robust=True)
        np.testing.assert_allclose(list(model.se.values()), rob.bse, rtol=1e-8, atol=0)
    else:
        np.testing.assert_allclose(list(model.se.values()), ref.bse, rtol=1e-8, atol=0)
    # (b) S(t | x) from statsmodels' coefficients, at cut points, between them and beyond
    X = model.design.source_matrix[:40]
    times = [0.0, 0.5, *fit.breaks[:3].tolist(), 100.25, 365.0, float(fit.breaks[-1]) + 1.0,
             3000.0]  # fmt: skip
    expect = by_hand(model, np.asarray(ref.params), X, times)
    np.testing.assert_allclose(fit.survival(X, np.asarray(times)), expect, rtol=1e-9, atol=0)
    np.testing.assert_allclose(fit.cumulative_hazard(X, np.asarray(times)), -np.log(expect),
                               rtol=1e-8, atol=1e-300)  # fmt: skip
    np.testing.assert_allclose(model.predict_survival(cohort, times)[:40], expect, rtol=1e-9)


def test_names_and_readable_coefficients(us_subset) -> None:
    model = PiecewiseExponentialModel(us_subset, breaks=[30, 91.5, 365])
    cols = model.design.columns
    assert model.names[:4] == ("interval(0,30]", "interval(30,91.5]", "interval(91.5,365]",
                               "interval(365,inf)")  # fmt: skip
    assert model.names[4:] == (*cols, *(f"log(t):{c}" for c in cols))
    assert list(model.coef) == list(model.names) == list(model.se)
    assert model.coef["log(t):age"] == model.fit.coef[-len(cols)]
    np.testing.assert_array_equal(model.breaks, [30, 91.5, 365])
    ph = PiecewiseExponentialModel(us_subset, breaks=4, time_varying=False)
    assert len(ph.coef) == 4 + len(cols) and "PiecewiseExponentialModel('US'" in repr(ph)


# -- (c), (d): integer weights are replicated rows; zero weights are absent rows --------------
def test_integer_weights_equal_replicated_rows(small) -> None:
    k = np.random.default_rng(3).integers(1, 4, small.n)
    rep = np.repeat(np.arange(small.n), k)
    frame = small.to_frame()[rep]
    big = tp.Cohort(frame, time="os_days", event="death", covariates=["age", "ecog", "female"])
    a = PiecewiseExponentialModel(small, weights=k.astype(float))  # default breaks, weighted
    b = PiecewiseExponentialModel(big)
    np.testing.assert_array_equal(a.breaks, b.breaks)
    np.testing.assert_allclose(a.fit.coef, b.fit.coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.fit.cov, b.fit.cov, rtol=1e-8, atol=1e-14)
    assert a.fit.loglik == pytest.approx(b.fit.loglik, rel=1e-12)
    assert a.fit.center == pytest.approx(b.fit.center, rel=1e-13)


def test_zero_weights_equal_absent_rows(small) -> None:
    rng = np.random.default_rng(5)
    w = rng.uniform(0.5, 2.0, small.n) * (rng.uniform(size=small.n) > 0.3)
    keep = w > 0
    sub = tp.Cohort(small.to_frame().filter(pl.Series(keep)), time="os_days", event="death",
                    covariates=["age", "ecog", "female"])  # fmt: skip
    a = PiecewiseExponentialModel(small, weights=w)
    b = PiecewiseExponentialModel(sub, weights=w[keep])
    np.testing.assert_array_equal(a.breaks, b.breaks)
    np.testing.assert_allclose(a.fit.coef, b.fit.coef, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-10, atol=1e-16)  # robust
    np.testing.assert_allclose(a.fit.cov, b.fit.cov, rtol=1e-10, atol=1e-16)
    assert a.fit.loglik == pytest.approx(b.fit.loglik, rel=1e-13)


# -- (e): closed forms --------------------------------------------------------------------------
def test_exponential_closed_forms(small) -> None:
    t, e = small.time_values, small.event_values
    w = np.random.default_rng(9).uniform(0.5, 2.0, small.n)
    for weights in (None, w):
        ww = np.ones(t.size) if weights is None else weights
        d, E = float(ww @ e), float(ww @ t)
        # one interval, no covariates: rate = events / exposure, var(log rate) = 1 / events
        one = fit_pwexp(t, e, np.empty((t.size, 0)), [], weights, time_varying=False)
        assert one.converged
        assert one.coef[0] == pytest.approx(np.log(d / E), rel=1e-13)
        assert one.cov[0, 0] == pytest.approx(1.0 / d, rel=1e-12)
        assert one.loglik == pytest.approx(d * np.log(d / E) - d + float(ww @ (e * np.log(t))),
                                           rel=1e-12)  # fmt: skip
        # one interval, one binary covariate: rate ratio and sqrt(1/d0 + 1/d1)
        x = (small.covariate_frame["female"].cast(pl.String) == "true").to_numpy().astype(float)
        two = fit_pwexp(t, e, x[:, None], [], weights, time_varying=False)
        d0, d1 = float(ww @ (e * (1 - x))), float(ww @ (e * x))
        E0, E1 = float(ww @ (t * (1 - x))), float(ww @ (t * x))
        np.testing.assert_allclose(two.coef, [np.log(d0 / E0), np.log(d1 / E1 * E0 / d0)],
                                   rtol=1e-11)  # fmt: skip
        assert np.sqrt(two.cov[1, 1]) == pytest.approx(np.sqrt(1 / d0 + 1 / d1), rel=1e-11)
        # K intervals, no covariates: alpha_k = log(d_k / E_k), S(t) by hand
        cuts = np.array([50.0, 120.0, 300.0])
        pw = fit_pwexp(t, e, np.empty((t.size, 0)), cuts, weights, time_varying=False)
        dk = np.bincount(interval_index(t[e > 0], cuts), weights=ww[e > 0], minlength=4)
        Ek = ww @ exposure_matrix(t, cuts)
        np.testing.assert_allclose(pw.coef, np.log(dk / Ek), rtol=1e-12)
        np.testing.assert_allclose(np.diag(pw.cov), 1.0 / dk, rtol=1e-11)
        rate = dk / Ek
        H = rate[0] * 50 + rate[1] * 70 + rate[2] * 180 + rate[3] * 100
        np.testing.assert_allclose(pw.survival(np.empty((1, 0)), np.array([400.0])),
                                   [[np.exp(-H)]], rtol=1e-12)  # fmt: skip


def test_default_breaks_put_events_in_every_interval(us) -> None:
    t, e = us.time_values, us.event_values
    cuts = default_breaks(t, e)
    assert cuts.size == 9 and np.all(np.diff(cuts) > 0)
    k = interval_index(t[e > 0], cuts)
    counts = np.bincount(k, minlength=cuts.size + 1)
    assert counts.min() > 0.08 * e.sum()  # ~10% of the events each (ties at whole days)
    # heavy ties: fewer intervals, still each with events
    tt = np.repeat([5.0, 10.0], 50)
    ee = np.ones(100)
    np.testing.assert_array_equal(default_breaks(tt, ee, 10), [5.0])


def test_warm_start_and_speed(us) -> None:
    X = tp.Design(us).source_matrix
    t, e = us.time_values, us.event_values
    cuts = default_breaks(t, e)
    start = time.perf_counter()
    cold = fit_pwexp(t, e, X, cuts)
    elapsed = time.perf_counter() - start
    counts = np.random.default_rng(17).multinomial(us.n, np.full(us.n, 1.0 / us.n))
    a = fit_pwexp(t, e, X, cuts, counts.astype(float))
    b = fit_pwexp(t, e, X, cuts, counts.astype(float), start=cold.coef)
    print(f"\ncold fit on {us.n} rows: {elapsed * 1000:.1f} ms, {cold.n_iter} steps; "
          f"bootstrap refit {a.n_iter} steps cold, {b.n_iter} warm")  # fmt: skip
    assert cold.converged and a.converged and b.converged
    assert b.n_iter < a.n_iter
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-9, atol=1e-12)
    again = fit_pwexp(t, e, X, cuts, start=cold.coef)
    assert again.n_iter <= 2
    np.testing.assert_allclose(again.coef, cold.coef, rtol=1e-10, atol=1e-13)


def test_kernel_reports_an_empty_interval_as_not_converged(small) -> None:
    t, e = small.time_values, small.event_values
    X = small.covariate_frame["age"].to_numpy()[:, None]
    fit = fit_pwexp(t, e, X, [t.max() + 10.0])
    assert not fit.converged and np.all(np.isnan(fit.coef))
    with pytest.raises(ValueError, match="at least two intervals"):
        fit_pwexp(t, e, X, [])
    with pytest.raises(ValueError, match="start has 3 values"):
        fit_pwexp(t, e, X, [100.0], start=np.zeros(3))
    with pytest.raises(ValueError, match="strictly increasing"):
        fit_pwexp(t, e, X, [100.0, 50.0])


# -- (f): input errors ---------------------------------------------------------------------------
def test_bad_inputs(small, small_frame: pl.DataFrame) -> None:
    covs = ["age", "ecog", "female"]
    none = tp.Cohort(small_frame.with_columns(pl.lit(0).alias("death")), time="os_days",
                     event="death", covariates=covs)  # fmt: skip
    with pytest.raises(tp.DataError, match=r"event column 'death' has no events in 300 rows"):
        PiecewiseExponentialModel(none)
    entry = tp.Cohort(small_frame.with_columns(pl.lit(0.5).alias("entry")), time="os_days",
                      event="death", entry="entry", covariates=covs)  # fmt: skip
    with pytest.raises(tp.DataError, match=r"delayed entry .*'entry'"):
        PiecewiseExponentialModel(entry)
    with pytest.raises(tp.DataError, match="measures time in months"):
        PiecewiseExponentialModel(small).predict_survival(small.in_unit("months"), [30.0])
    last = float(small.time_values.max())
    message = rf"interval \({last:g},inf\) of time column 'os_days' has no exposure .*0 of 300"
    with pytest.raises(tp.DataError, match=message + r" rows.*rule: every interval"):
        PiecewiseExponentialModel(small, breaks=[100.0, last])
    # an interval with exposure but only censorings
    t, d = small.time_values, small.event_values
    ev = np.sort(t[d > 0])
    gap = next((a, b) for a, b in itertools.pairwise(ev) if b - a > 2)
    lo, hi = gap[0] + 0.5, gap[1] - 0.5
    with pytest.raises(tp.DataError, match=rf"interval \({lo:g},{hi:g}\] .* has no events "
                       r"\(0 of 300 rows"):  # fmt: skip
        PiecewiseExponentialModel(small, breaks=[lo, hi])
    with pytest.raises(tp.DataError, match=r"one interval .*time-varying"):
        PiecewiseExponentialModel(small, breaks=1)
    at_zero = tp.Cohort(small_frame.with_columns(pl.when(pl.col("pid") < 3).then(0.0)
                        .otherwise(pl.col("os_days")).alias("os_days"),
                        pl.when(pl.col("pid") < 3).then(1).otherwise(pl.col("death"))
                        .alias("death")), time="os_days", event="death",
                        covariates=covs)  # fmt: skip
    with pytest.raises(tp.DataError, match="'os_days' has 3 of 300 rows with an event at time 0"):
        PiecewiseExponentialModel(at_zero)
    # a covariate that predicts survival perfectly: the MLE is at -inf
    rng = np.random.default_rng(23)
    marker = (rng.uniform(size=300) < 0.2) & (small_frame["death"].to_numpy() == 0)
    sep = small_frame.with_columns(pl.Series("marker", marker.astype(float)))
    cohort = tp.Cohort(sep, time="os_days", event="death", covariates=["age", "marker"])
    with pytest.raises(tp.DataError, match=r"did not converge in \d+ Newton steps"):
        PiecewiseExponentialModel(cohort, breaks=3)
    with pytest.raises(ValueError, match="'breaks' parameter must be increasing"):
        PiecewiseExponentialModel(small, breaks=[100.0, 50.0])
    with pytest.raises(ValueError, match="'breaks' parameter, a number of intervals"):
        PiecewiseExponentialModel(small, breaks=0)
    with pytest.raises(TypeError, match="'breaks'"):
        PiecewiseExponentialModel(small, breaks=True)
    with pytest.raises(ValueError, match="'start' parameter has 2 values"):
        PiecewiseExponentialModel(small, start=[0.0, 1.0])
    with pytest.raises(TypeError, match="must be a Cohort"):
        PiecewiseExponentialModel(small_frame)  # type: ignore[arg-type]
    with pytest.raises(tp.DataError, match="weights have 2 values"):
        PiecewiseExponentialModel(small, weights=[1.0, 2.0])


# -- (g): non-proportional hazards, transported to JP --------------------------------------------
def test_gformula_us_to_jp_beats_cox_under_non_proportional_hazards(us) -> None:
    jp = tp.datasets.load_synthetic("JP")
    truth = tp.datasets.load_truth().filter(
        source="US",
        target="JP",
        quantity="transported",
        outcome="os",
        estimand="survival",
        time=365.0,
    )
    assert truth.height == 1
    true = float(truth["value"][0])
    pw = float(PiecewiseExponentialModel(us).marginal_survival(jp, [365.0])[0])
    cox = float(CoxModel(us).marginal_survival(jp, [365.0])[0])
    print(f"\nJP S(365): piecewise exponential {pw:.4f}, Cox {cox:.4f}, truth {true:.4f}")
    assert abs(pw - true) < 0.02
    assert abs(pw - true) < abs(cox - true)
    # weighted average of the predictions (bootstrap counts of the target)
    counts = np.random.default_rng(29).integers(0, 3, jp.n).astype(float)
    model = PiecewiseExponentialModel(us, breaks=5)
    pred = model.predict_survival(jp, [91.0, 365.0])
    np.testing.assert_allclose(model.marginal_survival(jp, [91.0, 365.0], weights=counts),
                               counts @ pred / counts.sum(), rtol=1e-13)  # fmt: skip


# -- R: glm(poisson) on survSplit rows ------------------------------------------------------------
R_CASES = ["tv", "tv_weighted", "ph", "ph_weighted"]


@pytest.fixture(scope="module")
def r_data():
    src = read_levelled("cox_source.csv")
    cohort = tp.Cohort(src, time="os_days", event="os_event", covariates=COVARIATES,
                       name="US")  # fmt: skip
    new = read_levelled("cox_newdata.csv").with_columns(
        pl.lit(1.0).alias("t"), pl.lit(1).alias("d")
    )
    target = tp.Cohort(new, time="t", event="d", covariates=COVARIATES, name="JP")
    cuts = pl.read_csv(R_DIR / "data" / "pwexp_breaks.csv")["cut"].to_numpy()
    return cohort, target, cuts, src["w"].to_numpy()


@pytest.mark.parametrize("case", R_CASES)
def test_matches_r_glm(case: str, r_data) -> None:
    cohort, target, cuts, w = r_data
    weighted = case.endswith("_weighted")
    model = PiecewiseExponentialModel(cohort, breaks=cuts, time_varying=case.startswith("tv"),
                                      weights=w if weighted else None)  # fmt: skip
    fit = model.fit
    coef = pl.read_csv(REF / "coef.csv").filter(pl.col("case") == case)
    assert [r_name(n).replace("log(t):", "") for n in model.names] == [
        n.replace("log(t):", "") for n in coef["term"].to_list()
    ]
    ll = pl.read_csv(REF / "loglik.csv").filter(pl.col("case") == case)
    iv = pl.read_csv(REF / "intervals.csv").filter(pl.col("case") == case)
    surv = pl.read_csv(REF / "survival.csv").filter(pl.col("case") == case)
    times = np.sort(surv["time"].unique().to_numpy()).astype(float)
    theirs = surv.sort("patient", "time")["surv"].to_numpy().reshape(-1, times.size)
    ours = model.predict_survival(target, times)
    diffs = {
        "coef": rel(fit.coef, coef["estimate"]),
        "se": rel(np.sqrt(np.diag(fit.cov)), coef["se"]),
        "model se": rel(list(model.se.values()), coef["robust_se" if weighted else "se"]),
        "loglik": rel(fit.loglik, ll["loglik"]),
        "survival": rel(ours, theirs),
    }
    print(f"\nR {case}: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    np.testing.assert_allclose(fit.coef, coef["estimate"].to_numpy(), rtol=1e-8, atol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), coef["se"].to_numpy(), rtol=1e-8)
    reported = coef["robust_se" if weighted else "se"].to_numpy()
    np.testing.assert_allclose(list(model.se.values()), reported, rtol=1e-8)
    assert fit.loglik == pytest.approx(ll["loglik"][0], rel=1e-12)
    assert fit.center == pytest.approx(ll["center"][0], rel=1e-14)
    np.testing.assert_allclose(fit.mid, iv["mid"].to_numpy(), rtol=1e-14)
    np.testing.assert_allclose(fit.events, iv["events"].to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(fit.exposure, iv["exposure"].to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=0)


@pytest.mark.r
@needs_r("pwexp_reference.R")
def test_r_regenerates_the_stored_numbers(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("cox_source.csv", "cox_newdata.csv", "pwexp_breaks.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    subprocess.run(["Rscript", str(R_DIR / "pwexp_reference.R"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for name in ("coef.csv", "loglik.csv", "intervals.csv", "survival.csv"):
        new = pl.read_csv(tmp_path / "pwexp_reference" / name)
        old = pl.read_csv(REF / name)
        assert new.columns == old.columns and new.height == old.height
        for col in new.columns:
            if new[col].dtype.is_float():
                np.testing.assert_allclose(new[col].to_numpy(), old[col].to_numpy(),
                                           rtol=1e-10, atol=0)  # fmt: skip
            else:
                assert new[col].to_list() == old[col].to_list()
