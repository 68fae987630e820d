"""An option the chosen method does not read is refused, in the API, a plan and a shipped
model: ``moments=2`` with ``iow`` gave iow's answer as if the choice had been used."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import transport as tp
from transport.cli.plan import PlanError, check_plan
from transport.methods import ESTIMATOR_OPTIONS, METHODS, idle_options, options_read

#: A value away from the default for each option.
CHANGED = {
    "formula": "age",
    "outcome_formula": "age",
    "outcome_model": "pwexp",
    "ties": "breslow",
    "moments": 2,
    "censoring": "cox",
}


def _idle_cases() -> list[tuple[str, str]]:
    return [
        (m, k)
        for m in METHODS
        for k in ESTIMATOR_OPTIONS
        if k not in options_read(m) and not (k == "ties" and "outcome_model" in options_read(m))
    ]


@pytest.mark.parametrize(("method", "option"), _idle_cases())
def test_an_option_the_method_ignores_is_refused(method: str, option: str) -> None:
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    with pytest.raises(ValueError, match=rf"'{option}' parameter\(s\) of transport are not read"):
        tp.transport(us, jp, method=method, times=[365.25], **{option: CHANGED[option]})  # type: ignore[arg-type]


def test_the_default_value_of_an_unread_option_is_no_choice() -> None:
    # a loop over every method with transport()'s defaults spelt out still runs
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    for method in METHODS:
        res = tp.transport(us, jp, method=method, times=[365.25], **ESTIMATOR_OPTIONS)  # type: ignore[arg-type]
        assert 0 < float(res.transported.survival_at(365.25)[0]) < 1


def test_ties_are_read_only_by_the_cox_outcome_model() -> None:
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    with pytest.raises(ValueError, match=r"'ties' parameter\(s\) .* not read by method 'gformula'"):
        tp.transport(
            us, jp, method="gformula", times=[365.25], outcome_model="pwexp", ties="breslow"
        )
    assert idle_options("gformula", {"outcome_model": "cox", "ties": "breslow"}) == []


def test_an_option_read_changes_the_answer() -> None:
    # the refusal is for options that would not matter; those read do matter
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    one = tp.transport(us, jp, method="entropy", times=[365.25], formula="age + ecog")
    two = tp.transport(us, jp, method="entropy", times=[365.25], formula="age + ecog", moments=2)
    s1, s2 = (float(r.transported.survival_at(365.25)[0]) for r in (one, two))
    assert s1 != s2


def _plan(methods: list[str], **analysis: Any) -> dict[str, Any]:
    return {
        "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
        "analysis": {"source": "US", "targets": ["JP"], "methods": methods, **analysis},
    }


@pytest.mark.parametrize(
    ("methods", "option"),
    [
        (["iow"], {"moments": 2}),
        (["naive", "iow"], {"outcome_formula": "age"}),
        (["gformula"], {"outcome_model": "pwexp", "ties": "breslow"}),
        (["entropy", "gformula"], {"censoring": "cox"}),
    ],
)
def test_a_plan_option_no_method_reads_is_refused(
    methods: list[str], option: dict[str, Any]
) -> None:
    with pytest.raises(PlanError, match=r"would be ignored: no method of the plan reads"):
        check_plan(_plan(methods, **option))


def test_a_plan_option_one_method_reads_is_kept() -> None:
    # moments serves entropy; iow, run from the same plan, is given only what it reads
    plan = check_plan(_plan(["iow", "entropy"], moments=2, n_boot=0))
    assert plan["analysis"]["moments"] == 2
    with pytest.raises(PlanError, match=r"'outcome_formula'\] would be ignored"):
        check_plan(copy.deepcopy(_plan(["iow", "entropy"], outcome_formula="age")))


@pytest.mark.parametrize(
    ("key", "value"),
    [("methods", []), ("methods", ["iow", "iow"]), ("targets", []), ("targets", ["JP", "JP"])],
)
def test_a_plan_listing_no_method_or_one_twice_is_refused(key: str, value: list[str]) -> None:
    plan = _plan(["iow"])
    plan["analysis"][key] = value
    with pytest.raises(PlanError, match=rf"'{key}' must name at least one, each once"):
        check_plan(plan)


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"model": "pwexp", "ties": "breslow"}, r"'ties'"),
        ({"model": "cox", "breaks": [100.0, 200.0]}, r"'breaks'"),
        ({"model": "cox", "time_varying": False}, r"'time_varying'"),
    ],
)
def test_a_shipped_model_option_its_model_ignores_is_refused(
    kw: dict[str, Any], named: str
) -> None:
    src = tp.datasets.load_synthetic("DE")
    with pytest.raises(
        ValueError, match=rf"{named} parameter\(s\) of ShippedModel.fit are not read"
    ):
        tp.ShippedModel.fit(src, **kw)


def test_the_registry_knows_transports_options_and_their_defaults() -> None:
    # ESTIMATOR_OPTIONS restates transport()'s defaults: a default changed in one place only
    # would make the unchanged default of the other look like a user's choice
    import inspect

    params = inspect.signature(tp.transport).parameters
    assert {k: params[k].default for k in ESTIMATOR_OPTIONS} == ESTIMATOR_OPTIONS
    for m in METHODS:
        assert set(options_read(m)) <= set(ESTIMATOR_OPTIONS)
