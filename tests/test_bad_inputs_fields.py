"""Hand-edited documents and mistyped parameters are refused with the field or the
parameter named (issue 15's remaining cases)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

import transport as tp
from transport.exceptions import DataError


# -- a shipped model: every field that no fit writes is refused, naming the field -----------
def _model_edits() -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    def cox(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda d: d["cox"].update({key: value})

    def top(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda d: d.update({key: value})

    return {
        "ties exact": (cox("ties", "exact"), "ties is 'exact'"),
        "ties number": (cox("ties", 1), "'cox.ties'"),
        "no hazard": (lambda d: d["cox"].pop("hazard"), "'cox.hazard'"),
        "grid_step zero": (top("grid_step", 0), "grid_step is 0.0"),
        "grid_step negative": (top("grid_step", -30.4375), "grid_step is -30.4375"),
        "grid_step off grid": (top("grid_step", 7.0), "multiples of grid_step"),
        "grid_step text": (top("grid_step", "30"), "'grid_step'"),
        "n negative": (top("n", -5), "n is -5.0"),
        "n zero": (top("n", 0), "n is 0.0"),
        "n bool": (top("n", True), "'n'"),
        "events above n": (lambda d: d.update(n_events=d["n"] + 1), "n_events is"),
        "names swapped": (lambda d: d.update(names=d["names"][::-1]), "names are not"),
        "names numbers": (lambda d: d.update(names=list(range(len(d["names"])))), "'names'"),
        "coef scalar": (top("coef", 3), "'coef'"),
        "cov ragged": (top("cov", [[1.0], [1.0, 2.0]]), "'cov'"),
        "counts negative": (
            lambda d: d["grid_counts"].update(
                {k: [-1.0] * len(v) for k, v in d["grid_counts"].items()}
            ),
            "grid_counts",
        ),
        "released text": (top("released", "yes"), "'released'"),
        "design list": (top("design", [1]), "'design'"),
        "source number": (top("source", 7), "'source'"),
    }


@pytest.fixture(scope="module")
def cox_model() -> dict[str, Any]:
    return tp.ShippedModel.fit(tp.datasets.load_synthetic("DE")).to_dict()


@pytest.mark.parametrize("case", sorted(_model_edits()))
def test_a_hand_edited_shipped_model_names_the_field(cox_model: dict[str, Any], case: str) -> None:
    edit, named = _model_edits()[case]
    data = copy.deepcopy(cox_model)
    edit(data)
    with pytest.raises(DataError, match="shipped model") as info:
        tp.ShippedModel.from_dict(data)
    assert named in str(info.value)


def test_a_piecewise_model_with_renamed_coefficients_is_refused() -> None:
    data = tp.ShippedModel.fit(tp.datasets.load_synthetic("DE"), model="pwexp").to_dict()
    tp.ShippedModel.from_dict(copy.deepcopy(data))  # as written, it reads
    names = list(data["names"])
    i = names.index("age")
    names[i], names[i + 1] = names[i + 1], names[i]
    data["names"] = names
    with pytest.raises(DataError, match="names are not the design's columns"):
        tp.ShippedModel.from_dict(data)


# -- covariate columns of a kind that is no covariate ----------------------------------------
def _odd_columns(n: int) -> dict[str, Any]:
    import datetime as dt

    import polars as pl

    return {
        "list": pl.Series([[1, 2]] * n),
        "array": pl.Series([[1, 2]] * n, dtype=pl.Array(pl.Int64, 2)),
        "object": pl.Series([object()] * n, dtype=pl.Object),
        "duration": pl.Series([dt.timedelta(days=i % 2) for i in range(n)]),
        "struct": pl.Series([{"a": i % 2} for i in range(n)]),
    }


@pytest.mark.parametrize("declared", [None, "categorical", "continuous"])
@pytest.mark.parametrize("kind", sorted(_odd_columns(1)))
def test_a_covariate_of_no_covariate_dtype_is_named(kind: str, declared: str | None) -> None:
    import numpy as np
    import polars as pl

    frame = pl.DataFrame({"t": np.arange(1.0, 21.0), "e": [1, 0] * 10})
    frame = frame.with_columns(_odd_columns(20)[kind].alias("x"))
    types = None if declared is None else {"x": declared}
    with pytest.raises(DataError, match=r"covariate column 'x' .*dtype .*in all 20 rows|'x' has"):
        tp.Cohort(frame, time="t", event="e", covariates=["x"], covariate_types=types, name="A")


def test_a_pandas_categorical_whose_levels_print_alike_is_refused() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"t": range(1, 21), "e": [1, 0] * 10, "x": pd.Categorical([1, "1", 2, 2] * 5)}
    )
    with pytest.raises(DataError, match=r"column 'x' is a pandas categorical .*print alike"):
        tp.Cohort(frame, time="t", event="e", covariates=["x"], name="A")


def test_a_lazy_frame_that_cannot_run_is_a_data_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    missing = pl.scan_csv(tmp_path / "absent.csv")
    with pytest.raises(DataError, match=r"LazyFrame .*cannot be collected \(FileNotFound"):
        tp.Cohort(missing, time="t", event="e", name="A")
    bad = pl.LazyFrame({"t": [1.0, 2.0], "e": [1, 0], "x": ["a", "b"]})
    bad = bad.with_columns(pl.col("x").cast(pl.Int64))
    with pytest.raises(
        DataError, match=r"LazyFrame .*cannot be collected \(InvalidOperation"
    ) as info:
        tp.Cohort(bad, time="t", event="e", covariates=["x"], name="A")
    assert '"a"' not in str(info.value)  # polars quotes the values it failed on: not passed on


# -- weighting options: each refused by name, never read as something else -------------------
@pytest.fixture(scope="module")
def de_jp() -> tuple[tp.Cohort, tp.Cohort]:
    return tp.datasets.load_synthetic("DE"), tp.datasets.load_synthetic("JP")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("overlap", (0.01, 0.5, 0.99)),
        ("overlap", "ab"),
        ("overlap", {0.99, 0.01}),
        ("overlap", (0.9, 0.1)),
        ("overlap", (0.0, float("nan"))),
        ("overlap", (True, 0.5)),
        ("trim", (0.1,)),
        ("trim", (-0.1, 0.9)),
        ("truncate", (0.01, 1.5)),
        ("truncate", "0.01,0.99"),
        ("max_extreme_share", -0.1),
        ("max_extreme_share", 2.0),
        ("max_extreme_share", float("nan")),
        ("max_extreme_share", "1%"),
        ("max_extreme_share", None),
    ],
)
def test_an_unusable_iow_option_is_named(de_jp, option: str, value: Any) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=rf"'{option}' parameter of inverse_odds_weights"):
        tp.weighting.inverse_odds_weights(*de_jp, **{option: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("tol", float("inf")),
        ("tol", 0.5),
        ("tol", 0.0),
        ("tol", -1e-8),
        ("tol", "1e-8"),
        ("tol", float("nan")),
        ("max_iter", 0),
        ("max_iter", 2.5),
        ("max_iter", True),
        ("max_iter", 10**9),
    ],
)
def test_an_unusable_entropy_option_is_named(de_jp, option: str, value: Any) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=rf"'{option}' parameter of entropy_balance"):
        tp.weighting.entropy_balance(*de_jp, **{option: value})


def test_a_loose_tolerance_still_gives_balanced_weights(de_jp) -> None:  # type: ignore[no-untyped-def]
    """At the loosest tolerance the weights balance every column to 1% of its SD:
    the tolerance never lets unbalanced weights through."""
    import numpy as np

    source, target = de_jp
    w = tp.weighting.entropy_balance(source, target, tol=1e-2)
    Xs = w.design.source_matrix
    p = w.values / w.values.sum()
    gap = np.abs(p @ Xs - w.target_mean) / Xs.std(axis=0)
    assert gap.max() <= 1e-2


# -- a parameter of the wrong kind is named, never read as something else --------------------
def _tiny() -> Any:
    import polars as pl

    return pl.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": [1, 0, 1, 0], "age": [1.0, 2, 3, 4]})


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"covariates": None}, "'covariates' parameter of Cohort"),
        ({"covariates": 5}, "'covariates' parameter of Cohort"),
        ({"covariates": {"age"}}, "'covariates' parameter of Cohort"),
        ({"identifiers": None}, "'identifiers' parameter of Cohort"),
        ({"covariates": ["age"], "covariate_types": ["age"]}, "'covariate_types' parameter"),
        ({"time_unit": ["days"]}, "'time_unit' parameter of Cohort"),
        ({"na_action": ["drop"]}, "'na_action' parameter of Cohort"),
    ],
)
def test_a_cohort_parameter_of_the_wrong_kind_is_named(kw: dict[str, Any], named: str) -> None:
    with pytest.raises((TypeError, ValueError), match=named):
        tp.Cohort(_tiny(), time="t", event="e", name="A", **kw)


@pytest.fixture(scope="module")
def us_jp() -> tuple[tp.Cohort, tp.Cohort]:
    return tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"times": True}, "'times' parameter of transport"),
        ({"times": ["100"]}, "'times' parameter of transport"),
        ({"times": [100, "200"]}, "'times' parameter of transport"),
        ({"times": [100], "progress": "x"}, "'progress' parameter"),
        ({"times": [100], "progress": 1}, "'progress' parameter"),
        ({"times": [100], "window": {1.0, 50.0}}, "'window' parameter"),
        ({"times": [100], "tau": 1j}, "'tau' parameter of transport"),
    ],
)
def test_a_transport_option_of_the_wrong_kind_is_named(
    us_jp, kw: dict[str, Any], named: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=named):
        tp.transport(*us_jp, **kw)


def test_numpy_integers_count_as_integers_everywhere(us_jp) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    a = tp.transport(*us_jp, times=[365.0], n_boot=np.int64(3), n_jobs=np.int64(1), seed=2)
    b = tp.transport(*us_jp, times=[365.0], n_boot=3, n_jobs=1, seed=2)
    assert a.summary().equals(b.summary())


def test_a_km_parameter_of_the_wrong_kind_is_named(us_jp) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="'timefix' parameter of kaplan_meier"):
        tp.kaplan_meier(us_jp[0], timefix="no")
    with pytest.raises(TypeError, match="'ax' parameter"):
        tp.kaplan_meier(us_jp[0]).plot(ax="x")
    with pytest.raises(TypeError, match="'ax' parameter"):
        tp.transport(*us_jp, times=[365.0]).plot(ax=object())
    with pytest.raises(ValueError, match=r"'km_times' parameter of TargetSummary\.from_cohort"):
        tp.TargetSummary.from_cohort(us_jp[0], km_times=[-1.0, 5.0])


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"methods": None}, "'methods' parameter"),
        ({"methods": 3}, "'methods' parameter"),
        ({"time_unit": ["days"]}, "'time_unit' parameter"),
    ],
)
def test_a_study_parameter_of_the_wrong_kind_is_named(kw: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        tp.simulate.Study(**kw)


# -- a plan's cohort key that its kind does not read is refused, not ignored ------------------
@pytest.mark.parametrize(
    ("cohort", "idle"),
    [
        ({"path": "us.csv", "time": "t", "event": "e", "outcome": "pfs"}, "outcome"),
        ({"dataset": "synthetic:US", "time": "pfs_days"}, "time"),
        ({"dataset": "synthetic:US", "covariates": ["age"]}, "covariates"),
        ({"dataset": "synthetic:US", "na_action": "drop"}, "na_action"),
        ({"summary": "jp.json", "time_unit": "months"}, "time_unit"),
        ({"summary": "jp.json", "covariates": ["age"]}, "covariates"),
    ],
)
def test_a_cohort_key_its_kind_ignores_is_refused(cohort: dict[str, Any], idle: str) -> None:
    from transport.cli.plan import PlanError, check_plan

    plan = {
        "cohorts": {"US": {"dataset": "synthetic:US"}, "X": cohort},
        "analysis": {"source": "US", "targets": ["X"], "methods": ["entropy"]},
    }
    with pytest.raises(PlanError, match=rf"\[cohorts\.X\] key\(s\) \['{idle}'\] do not apply"):
        check_plan(plan)
    if "path" in cohort:  # as the source too
        plan["analysis"] = {"source": "X", "targets": ["US"], "methods": ["iow"]}
        with pytest.raises(PlanError, match="do not apply"):
            check_plan(plan)


# -- a disclosure policy file or table that is no policy --------------------------------------
@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, FileNotFoundError, "does not exist or is not a file"),
        ("dir", FileNotFoundError, "does not exist or is not a file"),
        (b"min_cell = [", ValueError, "cannot be read as TOML"),
        (b"\xff\xfe\x00", ValueError, "cannot be read as TOML"),
        (b"disclosure = 5", ValueError, r"\[disclosure\] must be a table"),
        (b"forbidden_roles = 5", ValueError, "'forbidden_roles' must be a list of names"),
        (b"forbidden_names = [[1]]", ValueError, "'forbidden_names' must be a list of names"),
        (b"time_unit = ['days']", ValueError, "'time_unit' must be one of"),
    ],
)
def test_a_policy_file_that_is_no_policy_is_named(tmp_path, content, error, message) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.toml"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message) as info:
        tp.disclosure.Policy.from_toml(path)
    assert "policy.toml" in str(info.value)  # the file is named, whatever is wrong


def test_a_policy_table_that_is_no_table_is_named() -> None:
    with pytest.raises(ValueError, match="must be a table of the Policy's keys; got list"):
        tp.disclosure.Policy.from_dict([1])  # type: ignore[arg-type]


def test_a_floor_refusal_names_only_the_loosened_fields() -> None:
    floor, plan = tp.disclosure.Policy(min_cell=20), tp.disclosure.Policy(min_cell=10)
    with pytest.raises(tp.DisclosureError) as info:
        floor.refuse_looser(plan, "the plan")
    assert "min_cell (floor 20, got 10)" in str(info.value)
    assert "min_ess" not in str(info.value)  # both follow min_cell: not a second field
    with pytest.raises(tp.DisclosureError, match=r"min_ess \(floor 30, got None\)"):
        tp.disclosure.Policy(min_cell=20, min_ess=30).refuse_looser(
            tp.disclosure.Policy(min_cell=20), "the plan"
        )


def test_a_release_onto_a_file_says_it_is_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary = tp.TargetSummary.from_cohort(tp.datasets.load_synthetic("JP"))
    target = tmp_path / "outbox"
    target.write_text("a file the user keeps")
    with pytest.raises(FileExistsError, match="is a file, not a directory"):
        tp.disclosure.release(summary, target, tp.disclosure.Policy())
    assert target.read_text() == "a file the user keeps"


def test_times_past_any_unit_are_refused() -> None:
    """A median of 1e308 days came back as inf: times past 1e12 units are no times."""
    import polars as pl

    frame = pl.DataFrame({"t": [1e308] * 6 + [5.0] * 4, "e": [1] * 10})
    with pytest.raises(DataError, match=r"time column 't' has 6 of 10 rows above 1e\+12"):
        tp.Cohort(frame, time="t", event="e", name="A")
    near = tp.Cohort(
        frame.with_columns(pl.Series("t", [1e12] * 6 + [5.0] * 4)), time="t", event="e"
    )
    assert tp.kaplan_meier(near).median().value == 1e12


def test_a_spline_past_the_source_range_is_named_not_a_formulaic_error() -> None:
    import numpy as np
    import polars as pl

    frame = pl.DataFrame(
        {"t": np.arange(1, 41.0), "e": [1, 0] * 20, "age": np.linspace(40, 60, 40)}
    )
    source = tp.Cohort(frame, time="t", event="e", covariates=["age"], name="A")
    older = frame.with_columns(pl.col("age") + 5)
    target = tp.Cohort(older, time="t", event="e", covariates=["age"], name="B")
    with pytest.raises(DataError, match=r"cannot encode cohort 'B' \(40 rows\): term 'bs\(age\)'"):
        tp.transport(source, target, times=[5.0], formula="bs(age)")
    with pytest.warns(tp.PositivityWarning, match="poor overlap"):  # 5 years older, by design
        clipped = tp.transport(source, target, times=[5.0], formula="bs(age, extrapolation='clip')")
    assert 0.0 <= clipped.summary()["transported"][0] <= 1.0


@pytest.mark.parametrize("title", [{"a": 1}, ["t"], 5, "x" * 201, "two\nlines"])
def test_a_plan_title_that_is_no_title_is_refused(title: Any) -> None:
    from transport.cli.plan import PlanError, check_plan

    plan = {
        "title": title,
        "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
        "analysis": {"source": "US", "targets": ["JP"], "methods": ["iow"]},
    }
    with pytest.raises(PlanError, match="the plan's title must be one line of text"):
        check_plan(plan)
    plan["title"] = "US to JP, overall survival"
    assert check_plan(plan)["title"] == "US to JP, overall survival"
