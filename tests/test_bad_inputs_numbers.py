"""Numbers no float can hold (``10**400``), and other values a hurried user types, at
every entry point that takes a number: a named error, never an ``OverflowError``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport.exceptions import DataError

BIG = 10**400  # an integer Python holds exactly and no float does


@pytest.fixture(scope="module")
def us_jp() -> tuple[tp.Cohort, tp.Cohort]:
    return tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")


@pytest.fixture(scope="module")
def shipped() -> tp.ShippedModel:
    return tp.ShippedModel.fit(tp.datasets.load_synthetic("DE"))


CALLS: dict[str, tuple[Callable[..., Any], str]] = {
    "times": (lambda us, jp, m: tp.transport(us, jp, times=[BIG]), r"'times' parameter"),
    "tau": (lambda us, jp, m: tp.transport(us, jp, times=[365], tau=BIG), r"'tau' parameter"),
    "margin": (lambda us, jp, m: tp.transport(us, jp, times=[365], margin=BIG), r"'margin'"),
    "margin rmst": (
        lambda us, jp, m: tp.transport(us, jp, times=[365], margin={"rmst": BIG}),
        r"margin for 'rmst'",
    ),
    "window": (
        lambda us, jp, m: tp.transport(us, jp, times=[365], window=(0, BIG)),
        r"'window' parameter",
    ),
    "ci_level": (
        lambda us, jp, m: tp.transport(us, jp, times=[365], ci_level=BIG),
        r"'ci_level' parameter",
    ),
    "km weights": (lambda us, jp, m: tp.kaplan_meier(us, weights=[BIG] * us.n), r"weights"),
    "rmst": (lambda us, jp, m: tp.kaplan_meier(us).rmst(BIG), r"'tau' parameter"),
    "quantile": (lambda us, jp, m: tp.kaplan_meier(us).quantile(BIG), r"'p' parameter"),
    "conf_level": (
        lambda us, jp, m: tp.kaplan_meier(us, conf_level=BIG),
        r"conf_level",
    ),
    "apply tau": (lambda us, jp, m: m.apply(jp, times=[365], tau=BIG), r"'tau' parameter"),
    "apply times": (lambda us, jp, m: m.apply(jp, times=[BIG]), r"'times' parameter"),
}


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_number_past_the_floats_is_named(
    us_jp: tuple[tp.Cohort, tp.Cohort], shipped: tp.ShippedModel, case: str
) -> None:
    call, named = CALLS[case]
    with pytest.raises((ValueError, DataError), match=named) as caught:
        call(*us_jp, shipped)
    assert not isinstance(caught.value, OverflowError)


def test_the_largest_float_is_still_a_number_where_one_is_allowed(
    us_jp: tuple[tp.Cohort, tp.Cohort],
) -> None:
    # the conversion refuses only what no float holds: a large exact integer within range
    # is a valid margin of the RMST
    us, jp = us_jp
    res = tp.transport(us, jp, times=[365], tau=1095, margin={"rmst": 10**300})
    assert res.summary().filter(estimand="rmst")["transported"].is_not_null().all()


def test_a_missing_target_names_the_targets_there_are(us_jp: tuple[tp.Cohort, tp.Cohort]) -> None:
    us, jp = us_jp
    results = tp.transport(us, {"JP": jp}, times=[365])
    with pytest.raises(KeyError, match=r"no result for target 'DE'; the results are for \['JP'\]"):
        results["DE"]
    assert results.get("DE") is None and "JP" in results  # still a mapping


@pytest.mark.parametrize("unit", [["days"], {"days": 1}, None, 5])
def test_a_unit_that_is_no_name_is_named(us_jp: tuple[tp.Cohort, tp.Cohort], unit: Any) -> None:
    with pytest.raises(ValueError, match=r"'time_unit' parameter of Cohort.in_unit must be one of"):
        us_jp[0].in_unit(unit)


def test_a_bootstrap_asking_for_countless_workers_starts_few(
    us_jp: tuple[tp.Cohort, tp.Cohort],
) -> None:
    # n_jobs=10**6 would start a million processes; the replicates are the same for any n_jobs
    us, jp = us_jp
    kw: dict[str, Any] = {"times": [365], "n_boot": 4, "seed": 3}
    many = tp.transport(us, jp, n_jobs=10**6, **kw)
    one = tp.transport(us, jp, n_jobs=1, **kw)
    np.testing.assert_array_equal(many.bootstrap.values, one.bootstrap.values)


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"t": [5.0, 8.0, 3.0, 9.0], "e": [1, 0, 1, 1], "age": [50.0, 60, 70, 55]})


@pytest.mark.parametrize("name", [None, ["x"], 5, "", "  "])
def test_a_cohort_name_that_is_no_text_is_named(name: Any) -> None:
    # name=None named the cohort 'None' in every table and report
    with pytest.raises(TypeError, match=r"'name' parameter of Cohort must be non-empty text"):
        tp.Cohort(_frame(), time="t", event="e", covariates=["age"], name=name)


@pytest.mark.parametrize("times", [[True], [False, True], np.array([True])])
def test_a_bool_is_no_time_of_a_curve(us_jp: tuple[tp.Cohort, tp.Cohort], times: Any) -> None:
    # survival_at([True]) gave S(1)
    with pytest.raises(ValueError, match=r"'times' parameter of SurvivalCurve.survival_at"):
        tp.kaplan_meier(us_jp[0]).survival_at(times)


@pytest.mark.parametrize("targets", [[["JP"]], "nested", {"JP": ["x"]}])
def test_a_target_list_holding_no_target_is_named(
    us_jp: tuple[tp.Cohort, tp.Cohort], targets: Any
) -> None:
    # [[jp]] gave results of results, the inner one named '0'
    us, jp = us_jp
    given = [[jp]] if targets == "nested" else targets
    with pytest.raises(TypeError, match=r"'target' parameter of transport .* are not"):
        tp.transport(us, given, times=[365])


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"ci": "no"}, r"'ci' parameter of plot must be True or False"),  # truthy: drew the band
        ({"ci": None}, r"'ci' parameter"),
        ({"risk_table": None}, r"'risk_table' parameter"),
        ({"risk_times": "abc"}, r"'risk_times' parameter of plot"),
        ({"risk_times": [365, float("nan")]}, r"'risk_times' parameter"),
    ],
)
def test_a_plot_option_of_the_wrong_kind_is_named(
    us_jp: tuple[tp.Cohort, tp.Cohort], kw: dict[str, Any], named: str
) -> None:
    with pytest.raises((ValueError, TypeError, DataError), match=named):
        tp.kaplan_meier(us_jp[0]).plot(**kw)


@pytest.mark.parametrize("key", ["formula", "outcome_formula"])
def test_a_formula_that_is_no_text_names_its_parameter(
    us_jp: tuple[tp.Cohort, tp.Cohort], key: str
) -> None:
    # outcome_formula=3 blamed 'formula'
    method = "gformula" if key == "outcome_formula" else "iow"
    with pytest.raises(TypeError, match=rf"The '{key}' parameter of transport must be a string"):
        tp.transport(*us_jp, method=method, times=[365], **{key: 3})  # type: ignore[arg-type]


def test_a_piecewise_model_without_a_cut_point_names_the_time_column() -> None:
    # every follow-up time equal: no cut point, and a raw ValueError from the fitter
    frame = pl.DataFrame({"t": [5.0] * 20, "e": [1, 0] * 10, "x": np.arange(20.0)})
    cohort = tp.Cohort(frame, time="t", event="e", covariates=["x"])
    with pytest.raises(DataError, match=r"time column 't' of cohort 'cohort' gives no cut point"):
        tp.transport(cohort, cohort, method="gformula", outcome_model="pwexp", times=[3.0])


@pytest.fixture(scope="module")
def model_curve(us_jp: tuple[tp.Cohort, tp.Cohort]) -> Any:
    return tp.transport(*us_jp, method="gformula", times=[365]).transported


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.quantile(2), r"'p' parameter of ModelCurve.quantile"),  # nan, 'above -1'
        (lambda c: c.quantile(-1), r"'p' parameter"),  # 0
        (lambda c: c.quantile("0.5"), r"'p' parameter"),  # 330
        (lambda c: c.quantile(BIG), r"'p' parameter"),  # OverflowError
        (lambda c: c.survival_at([BIG]), r"'times' parameter of ModelCurve.survival_at"),
        (lambda c: c.survival_at([-1]), r"'times' parameter"),
        (lambda c: c.at([True]), r"'times' parameter of ModelCurve.at"),
    ],
)
def test_a_model_curve_names_what_it_cannot_read(model_curve: Any, call: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        call(model_curve)
    assert 0 < float(model_curve.survival_at([365])[0]) < 1


def test_the_default_of_an_unread_option_may_be_a_numpy_number(
    us_jp: tuple[tp.Cohort, tp.Cohort],
) -> None:
    res = tp.transport(*us_jp, method="iow", times=[365], moments=np.int64(1))  # type: ignore[arg-type]
    assert res.summary().height > 0


def test_breaks_no_float_holds_are_named() -> None:
    with pytest.raises(ValueError, match=r"'breaks' parameter .*\(breaks must be finite numbers"):
        tp.ShippedModel.fit(tp.datasets.load_synthetic("DE"), model="pwexp", breaks=[100, BIG])


@pytest.mark.parametrize("threshold", [float("nan"), BIG, -0.1, "0.1"])
def test_a_balance_threshold_that_is_no_number_is_named(
    us_jp: tuple[tp.Cohort, tp.Cohort], threshold: Any
) -> None:
    # nan drew no line at all, 10**400 overflowed
    w = tp.inverse_odds_weights(*us_jp)
    with pytest.raises(ValueError, match=r"'threshold' parameter of plot_balance"):
        w.plot_balance(threshold=threshold)
