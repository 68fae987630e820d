"""The simulation functions given what a hurried user types: each argument of the wrong
kind is named before any draw, never numpy's error from inside one, and never a cohort
quietly simulated from a coerced value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import transport as tp
from transport.exceptions import DataError
from transport.simulate import (
    PROFILES,
    CensoringModel,
    covariate_log_pmf,
    sample_covariates,
    simulate_cohort,
    truth_table,
)


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"unmeasured_strength": float("nan")}, r"'unmeasured_strength'"),  # was simulated
        ({"unmeasured_strength": float("inf")}, r"'unmeasured_strength'"),
        ({"unmeasured_strength": 10**400}, r"'unmeasured_strength'"),  # OverflowError
        ({"unmeasured_strength": "1"}, r"'unmeasured_strength'"),  # coerced
        ({"missing": "mcar", "missing_rate": 1.5}, r"'missing_rate' .* share in \[0, 1\]"),
        ({"missing": "mar", "missing_rate": 0.0}, r"'missing_rate' .* share in \(0, 1\)"),
        ({"missing": "mar", "missing_rate": -0.1}, r"'missing_rate'"),  # nan probabilities
        ({"missing": "mcar", "missing_rate": "0.2"}, r"'missing_rate'"),  # numpy ufunc error
        ({"missing": "MCAR"}, r"'missing' parameter .* 'mcar', 'mar' or None"),
        ({"n": -5}, r"'n' parameter .* integer from 1"),  # numpy broadcast error
        ({"n": 0}, r"'n' parameter"),
        ({"n": 2.7}, r"'n' parameter"),  # two patients, silently
        ({"n": "50"}, r"'n' parameter"),
        ({"n": True}, r"'n' parameter"),
        ({"n": 10**12}, r"'n' parameter .* 50,000,000"),  # MemoryError
        ({"seed": -1}, r"'seed' parameter"),
        ({"seed": 1.5}, r"'seed' parameter"),
        ({"setting_effect": "no"}, r"'setting_effect' parameter .* True or False"),  # truthy
        ({"return_truth_columns": "no"}, r"'return_truth_columns'"),  # truth columns out
        ({"profile": "JP"}, r"'profile' parameter .* CountryProfile"),  # AttributeError
        ({"outcome": {}}, r"'outcome' parameter .* OutcomeModel"),
        ({"censoring": 5}, r"'censoring' parameter .* CensoringModel"),
    ],
)
def test_a_simulate_cohort_argument_of_the_wrong_kind_is_named(
    kw: dict[str, Any], named: str
) -> None:
    args = {"n": 50, **kw}
    with pytest.raises((ValueError, TypeError), match=named):
        simulate_cohort("US", **args)


@pytest.mark.parametrize("country", [["JP"], "XX", None, 5])
def test_a_country_that_is_no_country_is_named(country: Any) -> None:
    with pytest.raises(ValueError, match=r"'country' parameter of simulate_cohort must be one of"):
        simulate_cohort(country, 10)


def test_the_arguments_checked_are_still_the_ones_used() -> None:
    # numpy integers and a Generator are arguments; the same seed gives the same cohort
    a = simulate_cohort("US", np.int64(40), seed=np.int64(3), missing="mar", missing_rate=0.3)
    b = simulate_cohort("US", 40, seed=np.random.default_rng(3), missing="mar", missing_rate=0.3)
    assert a.height == 40 and a.equals(b)
    c = simulate_cohort("XX", 30, profile=PROFILES["JP"], censoring=CensoringModel())
    assert c["patient_id"][0].startswith("XX-")


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"countries": ["XX"]}, r"'country' parameter of truth_table"),  # KeyError
        ({"countries": "US"}, r"'countries' parameter of truth_table must be a list"),
        ({"countries": []}, r"'countries' parameter"),
        ({"grid_days": "abc"}, r"'grid_days' parameter .* whole days"),
        ({"grid_days": [365, 100]}, r"'grid_days' parameter"),
        ({"grid_days": [365.5]}, r"'grid_days' parameter"),
        ({"taus_days": [0]}, r"'taus_days' parameter"),
        ({"unmeasured_strength": float("nan")}, r"'unmeasured_strength'"),
        ({"setting_effect": "no"}, r"'setting_effect'"),
        ({"profiles": {"US": 1}}, r"'profiles' parameter"),
        ({"outcome_model": 3}, r"'outcome_model' parameter"),
    ],
)
def test_a_truth_table_argument_of_the_wrong_kind_is_named(kw: dict[str, Any], named: str) -> None:
    with pytest.raises((ValueError, TypeError), match=named):
        truth_table(**kw)


def _codes() -> dict[str, np.ndarray]:
    return sample_covariates(PROFILES["US"], 6, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # age 20 indexed the age table from its end: another age's probability, silently
        (lambda c: {**c, "age": c["age"] * 0 + 20}, r"'age' must be .* codes from 35 to 90"),
        (lambda c: {**c, "smoking": c["smoking"] + 5}, r"'smoking' must be .* from 0 to 2"),
        (lambda c: {**c, "age": c["age"].astype(float)}, r"'age' must be a 1-d array of integer"),
        (lambda c: {k: v for k, v in c.items() if k != "female"}, r"lacks the covariate\(s\)"),
        (lambda c: {**c, "ecog": c["ecog"][:2]}, r"different lengths"),
        (lambda c: list(c.values()), r"'cov' parameter .* dict of code arrays"),
    ],
)
def test_covariate_codes_out_of_range_are_named(edit: Any, named: str) -> None:
    with pytest.raises((ValueError, TypeError), match=named):
        covariate_log_pmf(PROFILES["US"], edit(_codes()))
    assert np.all(np.isfinite(covariate_log_pmf(PROFILES["US"], _codes())))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("US", 5, np.random.default_rng(0)), r"'profile' parameter .* must be a CountryProfile\."),
        ((None, 5, np.random.default_rng(0)), r"'profile' parameter"),
        ((PROFILES["US"], -1, np.random.default_rng(0)), r"'n' parameter"),
        ((PROFILES["US"], 5, 0), r"'rng' parameter"),
    ],
)
def test_a_sample_covariates_argument_of_the_wrong_kind_is_named(args: tuple, named: str) -> None:
    with pytest.raises((ValueError, TypeError), match=named):
        sample_covariates(*args)


def test_a_checkpoint_where_none_can_be_written_is_named() -> None:
    study = tp.simulate.Study(["correct"], methods=["naive"], n_reps=1, times=[12.0], seed=1)
    with pytest.raises(DataError, match=r"checkpoint directory '/proc/transport-ckpt' cannot be"):
        study.run(checkpoint=Path("/proc/transport-ckpt"))


@pytest.mark.parametrize("n_reps", [10**400, 10**8, 0, 2.5])
def test_a_study_of_countless_replicates_is_refused(n_reps: Any) -> None:
    with pytest.raises(ValueError, match=r"'n_reps' parameter must be an integer from 1 to"):
        tp.simulate.Study(["correct"], methods=["naive"], n_reps=n_reps)


def test_grids_and_countries_given_as_arrays_or_whole_floats_are_read() -> None:
    # np.array([365, 730]) and (365.0, 730.0) are whole days in order; both were refused
    a = truth_table(countries=("US", "JP"), grid_days=np.array([365, 730]), taus_days=(730,))
    b = truth_table(countries=np.array(["US", "JP"]), grid_days=(365.0, 730.0), taus_days=[730])
    assert a.equals(b) and a.height > 0
    with pytest.raises(
        ValueError, match=r"'countries' parameter of truth_table names a country twice"
    ):
        truth_table(countries=("US", "US"))  # duplicate rows, silently
    with pytest.raises(ValueError, match=r"'grid_days'"):
        truth_table(grid_days=(365.5,))


def test_a_missing_rate_is_read_only_with_missingness() -> None:
    assert simulate_cohort("US", 10, missing=None, missing_rate=None).height == 10
    with pytest.raises(ValueError, match=r"'missing_rate'"):
        simulate_cohort("US", 10, missing="mcar", missing_rate=None)


def test_codes_given_as_lists_or_series_give_the_same_probabilities() -> None:
    import polars as pl

    codes = _codes()
    want = covariate_log_pmf(PROFILES["US"], codes)
    as_lists = covariate_log_pmf(PROFILES["US"], {k: v.tolist() for k, v in codes.items()})
    as_series = covariate_log_pmf(PROFILES["US"], {k: pl.Series(v) for k, v in codes.items()})
    np.testing.assert_array_equal(as_lists, want)
    np.testing.assert_array_equal(as_series, want)


@pytest.mark.parametrize("strength", [10**400, float("nan"), "1"])
def test_a_scenario_strength_no_float_holds_is_named(strength: Any) -> None:
    with pytest.raises(ValueError, match=r"'strength' option must be a finite number"):
        tp.simulate.scenario("unmeasured_modifier", strength=strength)
