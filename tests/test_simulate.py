"""The data-generating process and its truth: sampler against the exact covariate
distribution, the truth against Monte Carlo and against large simulated cohorts, and the
true participation model against the transported truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport.simulate.dgp import (
    COUNTRIES,
    PROFILES,
    OutcomeModel,
    covariate_codes,
    covariate_log_pmf,
    death_shape,
    hazard_multipliers,
    sample_covariates,
    simulate_cohort,
)
from transport.simulate.truth import GRID_DAYS, PopulationCurve, covariate_patterns, truth_table

PATTERNS = covariate_patterns()
GRID = np.asarray(GRID_DAYS, dtype=float)


def population(target: str, mechanism: str, outcome: str = "os", model=None) -> PopulationCurve:
    model = model or OutcomeModel()
    prob = np.exp(covariate_log_pmf(PROFILES[target], PATTERNS))
    mech = PROFILES[mechanism]
    return PopulationCurve(prob, PATTERNS, model, mech.setting_loghr, mech.u_prevalence, outcome)


@pytest.mark.parametrize("country", COUNTRIES)
def test_pattern_probabilities_sum_to_one(country: str) -> None:
    prob = np.exp(covariate_log_pmf(PROFILES[country], PATTERNS))
    assert len(prob) == 96_768
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("country", COUNTRIES)
def test_sampler_draws_from_the_exact_covariate_distribution(country: str) -> None:
    n = 200_000
    cov = sample_covariates(PROFILES[country], n, np.random.default_rng(1))
    prob = np.exp(covariate_log_pmf(PROFILES[country], PATTERNS))
    for name, codes in PATTERNS.items():
        for value in np.unique(codes):
            exact = prob[codes == value].sum()
            if exact < 1e-4:
                continue
            observed = np.mean(cov[name] == value)
            assert abs(observed - exact) < 5 * np.sqrt(exact * (1 - exact) / n), (name, value)


@pytest.mark.parametrize("outcome", ["os", "pfs"])
def test_population_curve_equals_monte_carlo_over_patients(outcome: str) -> None:
    """The pattern sum against an average of conditional curves over sampled patients."""
    model = OutcomeModel()
    p = PROFILES["JP"]
    n = 200_000
    rng = np.random.default_rng(2)
    cov = sample_covariates(p, n, rng)
    u = rng.uniform(size=n) < p.u_prevalence
    d0, d1, p0, p1 = hazard_multipliers(cov, model, p.setting_loghr)
    k = death_shape(cov, model)
    pop = population("JP", "JP", outcome)
    for t in GRID:
        H = (t / model.scale_os) ** k * np.where(u, d1, d0)
        if outcome == "pfs":
            H = H + (t / model.scale_prog) ** model.shape_prog * np.where(u, p1, p0)
        s = np.exp(-H)
        assert abs(s.mean() - pop.survival(t)[0]) < 5 * s.std() / np.sqrt(n), t


@pytest.mark.parametrize("outcome", ["os", "pfs"])
def test_rmst_of_whole_days_equals_the_daily_sum(outcome: str) -> None:
    """Euler-Maclaurin beyond day 16 against summing S(j) over every day."""
    rng = np.random.default_rng(3)
    keep = rng.choice(PATTERNS["age"].size, 3000, replace=False)
    sub = {k: v[keep] for k, v in PATTERNS.items()}
    prob = np.exp(covariate_log_pmf(PROFILES["UK"], sub))
    pop = PopulationCurve(prob / prob.sum(), sub, OutcomeModel(), 0.1, 0.25, outcome)
    for tau in (10, 365, 730, 1826):
        daily = float(pop.survival(np.arange(tau, dtype=float)).sum())
        assert pop.rmst_days(tau) == pytest.approx(daily, abs=1e-6)


def test_median_is_the_first_whole_day_at_or_below_one_half() -> None:
    pop = population("DE", "US", "pfs")
    m = pop.median_days()
    assert pop.survival(m - 1)[0] > 0.5 >= pop.survival(m)[0]
    with pytest.raises(ValueError, match="whole number of days"):
        pop.rmst_days(365.25)


@pytest.mark.parametrize(("country", "outcome"), [("UK", "os"), ("JP", "pfs")])
def test_large_simulated_cohort_matches_its_truth(country: str, outcome: str) -> None:
    frame = simulate_cohort(country, 200_000, seed=4)
    km = tp.kaplan_meier(tp.Cohort(frame, time=f"{outcome}_days", event=f"{outcome}_event"))
    pop = population(country, country, outcome)
    at = km.at(GRID)
    z = (at["survival"].to_numpy() - pop.survival(GRID)) / at["se"].to_numpy()
    assert np.all(np.abs(z) < 4.5), z
    rmst = km.rmst(730)
    assert abs(rmst.value - pop.rmst_days(730)) < 4.5 * rmst.se
    assert abs(km.median().value - pop.median_days()) <= 3  # days; KM median SE ~ 1.5 days


def test_true_participation_model_recovers_the_transported_truth() -> None:
    """Weighting a large US cohort by the exact density ratio JP / US gives truth_table's
    "transported" US -> JP curve (JP mix, US outcome mechanism), not JP's own curve."""
    frame = simulate_cohort("US", 300_000, seed=5)
    codes = covariate_codes(frame)
    w = np.exp(covariate_log_pmf(PROFILES["JP"], codes) - covariate_log_pmf(PROFILES["US"], codes))
    km = tp.kaplan_meier(tp.Cohort(frame, time="os_days", event="os_event"), weights=w)
    table = truth_table(countries=("US", "JP")).filter(
        (pl.col("source") == "US") & (pl.col("target") == "JP") & (pl.col("outcome") == "os")
        & (pl.col("estimand") == "survival")
    ).sort("time")  # fmt: skip
    at = km.at(table["time"].unique(maintain_order=True).to_numpy())
    for quantity in ("transported", "target"):
        value = table.filter(pl.col("quantity") == quantity)["value"].to_numpy()
        z = (at["survival"].to_numpy() - value) / at["se"].to_numpy()
        if quantity == "transported":
            assert np.all(np.abs(z) < 4.5), z
        else:  # the setting and U make JP's own curve different
            assert np.max(np.abs(z)) > 10, z


def test_without_setting_and_unmeasured_modifier_everything_transports() -> None:
    model = OutcomeModel(u_main=0.0, u_immuno=0.0)
    table = truth_table(countries=("US", "JP"), outcome_model=model, setting_effect=False)
    by = ["source", "target", "outcome", "estimand", "time"]
    tr = table.filter(pl.col("quantity") == "transported").sort(by)
    own = table.filter(pl.col("quantity") == "target").sort(by)
    assert tr.select(by).equals(own.select(by))
    np.testing.assert_allclose(tr["value"].to_numpy(), own["value"].to_numpy(), rtol=1e-12)
    default = truth_table(countries=("US", "JP"))
    gap = default.filter(
        (pl.col("source") == "US")
        & (pl.col("target") == "JP")
        & (pl.col("estimand") == "median")
        & (pl.col("outcome") == "os")
    )
    values = dict(zip(gap["quantity"], gap["value"], strict=True))
    assert values["target"] - values["transported"] > 30  # days


def test_missingness_knobs() -> None:
    base = simulate_cohort("UK", 50_000, seed=6)
    mcar = simulate_cohort("UK", 50_000, seed=6, missing="mcar", missing_rate=0.2)
    mar = simulate_cohort("UK", 50_000, seed=6, missing="mar", missing_rate=0.2)
    assert mcar.drop("pdl1").equals(base.drop("pdl1"))
    assert mcar["pdl1"].null_count() / mcar.height == pytest.approx(0.2, abs=0.01)
    rates = mar.group_by("regimen").agg(pl.col("pdl1").is_null().mean().alias("r"))
    r = dict(zip(rates["regimen"], rates["r"], strict=True))
    assert r["chemo"] > r["chemo-io"] + 0.1  # missing at random given the regimen
    with pytest.raises(
        tp.DataError, match=r"covariate column 'pdl1' has \d+ of 50000 rows missing"
    ):
        tp.Cohort(mcar, time="os_days", event="os_event", covariates=["pdl1"])


def test_identifiers_are_declared_and_unique() -> None:
    frame = simulate_cohort("DE", 500, seed=7)
    assert frame["patient_id"].n_unique() == 500
    assert frame["practice_id"].str.starts_with("DE-P").all()
    assert frame["practice_id"].n_unique() <= PROFILES["DE"].n_practices
