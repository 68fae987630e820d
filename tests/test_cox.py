"""Cox proportional hazards kernel against R's coxph and survfit.coxph (tests/r)."""

from __future__ import annotations

import subprocess

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, needs_r, r_name, read_levelled

import transport as tp
from transport.survival._cox import fit_cox, robust_cov

REF = R_DIR / "cox_reference"
CASES = ["breslow", "efron", "breslow_weighted", "efron_weighted"]


@pytest.fixture(scope="module")
def data():
    src = read_levelled("cox_source.csv")
    cohort = tp.Cohort(src, time="os_days", event="os_event",
                       covariates=list(tp.datasets.COVARIATES), name="US")  # fmt: skip
    design = tp.Design(cohort)
    new = read_levelled("cox_newdata.csv").with_columns(
        pl.lit(1.0).alias("t"), pl.lit(1).alias("d")
    )
    newcohort = tp.Cohort(new, time="t", event="d", covariates=list(tp.datasets.COVARIATES),
                          name="JP")  # fmt: skip
    return cohort, design, design.matrix(newcohort), src["w"].to_numpy()


@pytest.mark.parametrize("case", CASES)
def test_coefficients_loglik_and_predictions_match_r(case: str, data) -> None:
    cohort, design, Xnew, w = data
    ties = case.split("_")[0]
    fit = fit_cox(cohort.time_values, cohort.event_values, design.source_matrix,
                  w if "weighted" in case else None, ties=ties)  # type: ignore[arg-type]  # fmt: skip
    assert fit.converged
    ref = pl.read_csv(REF / "coef.csv").filter(pl.col("case") == case)
    assert [r_name(c) for c in design.columns] == ref["term"].to_list()
    np.testing.assert_allclose(fit.coef, ref["estimate"].to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ref["naive_se"].to_numpy(), rtol=1e-8)
    ll = pl.read_csv(REF / "loglik.csv").filter(pl.col("case") == case)["loglik"][0]
    assert fit.loglik == pytest.approx(ll, abs=1e-8)
    surv = pl.read_csv(REF / "survival.csv").filter(pl.col("case") == case)
    times = np.sort(surv["time"].unique().to_numpy()).astype(float)
    ours = fit.survival(Xnew, times)  # patients x times
    theirs = surv.sort("patient", "time")["surv"].to_numpy().reshape(ours.shape)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_efron_equals_breslow_without_ties() -> None:
    rng = np.random.default_rng(4)
    n = 300
    X = rng.normal(size=(n, 3))
    t = rng.exponential(1.0 / np.exp(X @ np.array([0.5, -0.3, 0.2])))
    e = (rng.uniform(size=n) < 0.8).astype(float)
    a = fit_cox(t, e, X, ties="breslow")
    b = fit_cox(t, e, X, ties="efron")
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-12)
    np.testing.assert_allclose(a.hazard, b.hazard, rtol=1e-12)
    # integer weights equal replicated rows
    k = rng.integers(1, 4, n)
    rep = np.repeat(np.arange(n), k)
    c = fit_cox(t, e, X, k.astype(float), ties="breslow")
    d = fit_cox(t[rep], e[rep], X[rep], ties="breslow")
    np.testing.assert_allclose(c.coef, d.coef, atol=1e-10)
    np.testing.assert_allclose(c.cov, d.cov, rtol=1e-9)


@pytest.mark.r
@needs_r("cox_reference.R")
def test_r_regenerates_the_stored_numbers(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("cox_source.csv", "cox_newdata.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    subprocess.run(["Rscript", str(R_DIR / "cox_reference.R"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for name in ("coef.csv", "loglik.csv", "survival.csv"):
        assert (tmp_path / "cox_reference" / name).read_bytes() == (REF / name).read_bytes()


@pytest.mark.parametrize("case", ["breslow", "efron"])
def test_cox_model_on_cohorts_gives_r_predictions_and_their_average(case: str, data) -> None:
    from transport.survival.models import CoxModel

    cohort, _, _, _ = data
    model = CoxModel(cohort, ties=case)  # type: ignore[arg-type]
    new = read_levelled("cox_newdata.csv").with_columns(
        pl.lit(1.0).alias("t"), pl.lit(1).alias("d")
    )
    target = tp.Cohort(new, time="t", event="d", covariates=list(tp.datasets.COVARIATES),
                       name="JP")  # fmt: skip
    surv = pl.read_csv(REF / "survival.csv").filter(pl.col("case") == case)
    times = np.sort(surv["time"].unique().to_numpy()).astype(float)
    theirs = surv.sort("patient", "time")["surv"].to_numpy().reshape(-1, times.size)
    np.testing.assert_allclose(model.predict_survival(target, times), theirs, atol=1e-8)
    np.testing.assert_allclose(model.marginal_survival(target, times), theirs.mean(axis=0),
                               atol=1e-8)  # fmt: skip
    ref = pl.read_csv(REF / "coef.csv").filter(pl.col("case") == case)
    assert list(model.coef.values()) == pytest.approx(ref["estimate"].to_list(), abs=1e-8)


def test_cox_model_bad_inputs(data) -> None:
    from transport.survival.models import CoxModel

    cohort, _, _, _ = data
    frame = cohort.to_frame().with_columns(pl.lit(0).alias("os_event"))
    none = tp.Cohort(frame, time="os_days", event="os_event",
                     covariates=list(tp.datasets.COVARIATES))  # fmt: skip
    with pytest.raises(tp.DataError, match=r"event column 'os_event' has no events in 2000"):
        CoxModel(none)
    with pytest.raises(tp.DataError, match="measures time in months"):
        CoxModel(cohort).predict_survival(cohort.in_unit("months"), [30.0])
    with pytest.raises(ValueError, match="'ties'"):
        CoxModel(cohort, ties="exact")  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES)
def test_cox_model_standard_errors_are_those_r_reports(case: str, data) -> None:
    """Inverse information unweighted; the robust sandwich (Lin & Wei) with weights."""
    from transport.survival.models import CoxModel

    cohort, _, _, w = data
    weighted = "weighted" in case
    model = CoxModel(cohort, ties=case.split("_")[0], weights=w if weighted else None)  # type: ignore[arg-type]
    ref = pl.read_csv(REF / "coef.csv").filter(pl.col("case") == case)
    np.testing.assert_allclose(list(model.se.values()), ref["se"].to_numpy(), rtol=1e-8)


def test_zero_weight_rows_are_absent() -> None:
    """A row of weight 0 gives the fit of the data without it (Efron ties included), even
    when it is the last at risk, where it would otherwise leave an empty risk set."""
    rng = np.random.default_rng(9)
    n = 200
    X = rng.normal(size=(n, 2))
    t = np.round(rng.exponential(10.0, n)) + 1.0
    e = (rng.uniform(size=n) < 0.7).astype(float)
    w = rng.poisson(1.0, n).astype(float)
    w[np.argmax(t)] = 0.0  # the last row: its risk set has no positive weight
    e[np.argmax(t)] = 1.0
    keep = w > 0
    for ties in ("efron", "breslow"):
        a = fit_cox(t, e, X, w, ties=ties)
        b = fit_cox(t[keep], e[keep], X[keep], w[keep], ties=ties)
        assert a.converged and np.isfinite(a.loglik)
        np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12)
        np.testing.assert_allclose(a.hazard, b.hazard, rtol=1e-12)
        np.testing.assert_allclose(
            robust_cov(t, e, X, w, a), robust_cov(t[keep], e[keep], X[keep], w[keep], b), rtol=1e-10
        )
