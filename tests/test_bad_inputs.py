"""Bad inputs get a named error, and no wrong answer is returned silently (DESIGN §8).

Each test is one input a careless or hurried user gives, and asserts the package either
answers correctly or refuses with an error that names the parameter and the rule.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import pytest

import transport as tp
from transport.exceptions import DataError, TransportWarning
from transport.inference import run_bootstrap


# -- bootstrap replicates fail softly, in one place, for every method ----------------------
class _Flaky:
    """A replicate that raises ``error`` on the replicates whose first draw is small."""

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform()
        if u < 0.3:
            raise self.error("singular information matrix in this resample")
        return np.array([u, 2 * u])


@pytest.mark.parametrize("error", [np.linalg.LinAlgError, ZeroDivisionError, DataError])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_replicate_without_a_fit_is_a_counted_row_of_nan(
    error: type[BaseException], n_jobs: int
) -> None:
    draws = run_bootstrap(_Flaky(error), 60, 5, n_jobs=n_jobs)
    bad = np.all(np.isnan(draws.values), axis=1)
    assert draws.values.shape == (60, 2) and draws.failed == int(bad.sum()) > 0
    ok = draws.values[~bad]
    assert np.all((ok[:, 0] >= 0.3) & (ok[:, 1] == 2 * ok[:, 0]))
    again = run_bootstrap(_Flaky(error), 60, 5, n_jobs=3 - n_jobs)  # any n_jobs: the same
    np.testing.assert_array_equal(again.values, draws.values)


def test_a_bug_in_a_replicate_is_not_hidden_as_a_failed_fit() -> None:
    with pytest.raises(TypeError):
        run_bootstrap(_Flaky(TypeError), 20, 1)


def test_a_bootstrap_whose_every_replicate_fails_is_refused_by_name() -> None:
    def never(rng: np.random.Generator) -> np.ndarray:
        raise np.linalg.LinAlgError("Singular matrix")

    with pytest.raises(DataError, match=r"every one of the 8 replicates of the bootstrap .*"):
        run_bootstrap(never, 8, 1)


def test_a_singular_resample_does_not_end_the_g_formula_bootstrap() -> None:
    """The issue's case: one replicate of DE's Cox model is singular."""
    de, jp = tp.datasets.load_synthetic("DE"), tp.datasets.load_synthetic("JP")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = tp.transport(de, jp, method="gformula", times=[365.25], n_boot=40, seed=123)
    row = res.summary().row(0, named=True)
    assert row["n_boot"] == 40 and row["n_boot_failed"] >= 1
    said = [str(w.message) for w in caught if issubclass(w.category, TransportWarning)]
    assert any(f"{row['n_boot_failed']} of 40 bootstrap replicates" in m for m in said)
    # the interval comes from the successful replicates: finite, around the estimate
    lo, hi = row["transported_ci_lower"], row["transported_ci_upper"]
    assert np.isfinite([lo, hi]).all() and lo < row["transported"] < hi


# -- options: one validation layer for the API and the plan reader --------------------------
BAD_OPTIONS = [
    ({"ties": "banana"}, "'ties' parameter must be 'efron' or 'breslow'"),
    ({"ties": "exact"}, "'ties' parameter must be 'efron' or 'breslow'"),
    ({"seed": -1, "n_boot": 2}, "'seed' parameter must be None, an integer >= 0"),
    ({"seed": 1.5, "n_boot": 2}, "'seed' parameter must be None, an integer >= 0"),
    ({"margin": 5}, "'margin' for a difference of S\\(t\\) must be below 1"),
    ({"margin": {"survival": 2.0}}, "margin for 'survival' must be below 1"),
    ({"moments": 3}, "'moments' parameter must be 1 or 2"),
    ({"censoring": "weibull"}, "'censoring' parameter must be 'km' or 'cox'"),
    ({"outcome_model": "weibull"}, "'outcome_model' parameter must be 'cox' or 'pwexp'"),
    ({"n_boot": 10**20, "seed": 1}, r"'n_boot' parameter must be at most 10,000,000"),
    ({"ties": np.array(["efron", "breslow"])}, r"'ties' parameter must be 'efron' or 'breslow'"),
    ({"window": [5.0]}, r"'window' parameter must be \(a, b\) with 0 <= a < b"),
    ({"tau": 1e308}, r"'tau' parameter of transport must be at most 1e\+12 time units"),
    (
        {"time_unit": "fortnights"},
        "'time_unit' parameter must be 'days', 'weeks', 'months' or 'years'. Got 'fortnights'",
    ),
]


@pytest.fixture(scope="module")
def pair() -> tuple[tp.Cohort, tp.Cohort]:
    return tp.datasets.load_synthetic("UK"), tp.datasets.load_synthetic("JP")


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_an_unknown_option_is_refused_by_name_never_read_as_the_default(
    pair: tuple[tp.Cohort, tp.Cohort], options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tp.transport(*pair, method="gformula", times=[365.25], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_a_plan_is_checked_by_the_same_rules(options: dict[str, object], message: str) -> None:
    from transport.cli.plan import PlanError, check_plan

    plan = {
        "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
        "analysis": {"source": "US", "targets": ["JP"], "methods": ["gformula"], **options},
    }
    with pytest.raises(PlanError, match=message):
        check_plan(plan)


def test_good_options_are_still_accepted(pair: tuple[tp.Cohort, tp.Cohort]) -> None:
    res = tp.transport(
        *pair,
        method="gformula",
        times=[365.25],
        ties="breslow",
        seed=np.int64(3),
        margin={"survival": 0.1, "rmst": 30.0},
        tau=730.5,
    )
    assert res.summary()["transported"].is_not_null().all()


# -- the suite itself: a test that runs R checks the R packages it loads --------------------
def test_r_tests_check_the_packages_their_scripts_load() -> None:
    """A machine with R but without ``sandwich`` must skip the pwexp test, not fail it:
    the skip reads the packages from the script the test runs."""
    from conftest import r_packages

    assert r_packages("pwexp_reference.R") == {"sandwich", "survival"}
    assert r_packages("km_reference.R") == {"survival"}


# -- a hand-edited summary document: one reader checks its shape before any use ------------
def _edits() -> dict[str, tuple[object, str]]:
    import copy

    jp = tp.datasets.load_synthetic("JP")
    base = tp.TargetSummary.from_cohort(jp, km_times=[91.3125, 182.625]).to_dict()
    out: dict[str, tuple[object, str]] = {}
    for key in ("columns", "mean", "sd", "covariates", "time_unit", "formula", "name", "n"):
        d = copy.deepcopy(base)
        del d[key]
        out[f"no {key}"] = (d, f"lacks field '{key}'")

    def edit(name: str, message: str, change: object) -> None:
        d = copy.deepcopy(base)
        change(d)  # type: ignore[operator]
        out[name] = (d, message)

    out["a list"] = ([base], "is a JSON object; got a list")
    edit(
        "covariate a string",
        "covariate 'age' must be an object",
        lambda d: d["covariates"].update(age="x"),
    )
    edit(
        "mean short", "'mean' has 21 values for 22 columns", lambda d: d.update(mean=d["mean"][:-1])
    )
    edit("n = 10**400", "'n' must be between 1 and", lambda d: d.update(n=10**400))
    edit("mean 1e300", "'mean' value 0 is 1e\\+300", lambda d: d["mean"].__setitem__(0, 1e300))
    edit(
        "fortnights",
        "time_unit 'fortnights' is not one of",
        lambda d: d.update(time_unit="fortnights"),
    )
    edit(
        "km survival 2",
        "'km' survival has 1 value",
        lambda d: d["km"]["survival"].__setitem__(0, 2.0),
    )
    edit(
        "km lengths",
        "'km' lists differ in length",
        lambda d: d["km"].update(time=d["km"]["time"][:1]),
    )
    edit(
        "level twice",
        "lists a level twice",
        lambda d: d["covariates"]["sex"].update(levels=["male", "male"]),
    )
    edit(
        "km times unsorted",
        "'km' time must be distinct times >= 0 in increasing order",
        lambda d: d["km"].update(time=d["km"]["time"][::-1]),
    )
    edit(
        "km times repeated",
        "'km' time must be distinct",
        lambda d: d["km"].update(time=[d["km"]["time"][0]] * len(d["km"]["time"])),
    )
    edit(
        "km survival rises",
        "'km' survival rises over time",
        lambda d: d["km"].update(survival=d["km"]["survival"][::-1]),
    )
    edit(
        "km interval inverted",
        "interval that does not hold its estimate",
        lambda d: d["km"].update(ci_lower=d["km"]["ci_upper"], ci_upper=d["km"]["ci_lower"]),
    )
    edit("km without se", "'km' must hold the lists", lambda d: d["km"].pop("se"))
    edit(
        "km time text",
        "'km' time must be numbers",
        lambda d: d["km"].update(time=["a"] * len(d["km"]["time"])),
    )
    edit(
        "shares contradict means",
        r"column 'ecog\[T.0\]' has mean 0.62625 but covariate 'ecog' gives level '0' \(of 3\)",
        lambda d: d["covariates"]["ecog"].update(shares=[0.3, 0.6, 0.1]),
    )
    return out


def test_shares_within_rounding_of_the_means_are_accepted() -> None:
    """A release rounds counts to 5 patients: shares and means may then differ by a few
    patients' worth, which is no contradiction."""
    import copy

    base = tp.TargetSummary.from_cohort(tp.datasets.load_synthetic("JP")).to_dict()
    d = copy.deepcopy(base)
    d["covariates"]["ecog"]["shares"] = [0.62625 + 5 / 800, 0.28875 - 5 / 800, 0.085]
    assert tp.TargetSummary.from_dict(d).n == 800


EDITS = _edits()


@pytest.mark.parametrize("case", sorted(EDITS))
def test_an_edited_summary_is_refused_naming_the_field(case: str) -> None:
    data, message = EDITS[case]
    with pytest.raises(DataError, match=message):
        tp.TargetSummary.from_dict(data)  # type: ignore[arg-type]


def test_a_deeply_nested_summary_file_is_refused_naming_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match=r"deep\.json' is not a JSON summary"):
        tp.TargetSummary.from_json(path)


# -- silent wrong answers ------------------------------------------------------------------
def test_times_past_follow_up_are_warned_about(pair: tuple[tp.Cohort, tp.Cohort]) -> None:
    from transport.exceptions import ExtrapolationWarning

    last = min(float(c.time_values.max()) for c in pair)
    with pytest.warns(ExtrapolationWarning, match="past the last follow-up time"):
        tp.transport(*pair, method="iow", times=[365.25, last + 100.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        tp.transport(*pair, method="iow", times=[365.25])  # within follow-up: no warning


def test_a_time_too_large_for_the_unit_is_refused_not_made_infinite() -> None:
    import polars as pl

    frame = pl.DataFrame({"t": [1e308, 2.0, 3.0], "e": [1, 0, 1]})
    with pytest.raises(DataError, match=r"time column 't' has 1 of 3 rows above 1e\+12"):
        tp.Cohort(frame, time="t", event="e", time_unit="years", name="far")
    edge = frame.with_columns(pl.Series("t", [1e12, 2.0, 3.0]))
    far = tp.Cohort(edge, time="t", event="e", time_unit="years", name="far")
    days = far.in_unit("days")  # the largest time allowed converts to a number
    assert days.time_values.max() == pytest.approx(1e12 * 365.25)


@pytest.mark.parametrize("weights", [np.array(["1", "2", "3"]), ["1.0", "2", "3"]])
def test_weights_given_as_strings_are_refused(weights: object) -> None:
    import polars as pl

    cohort = tp.Cohort(pl.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]}), time="t", event="e")
    with pytest.raises(DataError, match=r"weights are .* not numbers, in 3 rows"):
        tp.kaplan_meier(cohort, weights=weights)


def _ages(lo: float, hi: float, n: int, seed: int) -> tp.Cohort:
    import polars as pl

    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "t": rng.exponential(400.0, n).round() + 1.0,
            "e": rng.integers(0, 2, n),
            "age": rng.uniform(lo, hi, n),
        }
    )
    return tp.Cohort(frame, time="t", event="e", covariates=["age"], name=f"ages{lo:g}")


@pytest.mark.parametrize("method", ["gformula", "aipw"])
def test_an_outcome_model_far_outside_the_source_is_warned_about(method: str) -> None:
    """Source ages 20-50, target 70-90: the g-formula is a pure extrapolation."""
    from transport.exceptions import PositivityWarning

    young, old = _ages(20, 50, 400, 1), _ages(70, 90, 300, 2)
    expected = r"100% of 'ages70''s 300 rows lie outside 'ages20''s covariate ranges"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # aipw's participation model may then refuse the weights outright: after the warning
        with contextlib.suppress(DataError):
            tp.transport(young, old, method=method, times=[180.0])
    said = [str(w.message) for w in caught if issubclass(w.category, PositivityWarning)]
    assert any(re.search(expected, m) for m in said), said


def test_overlapping_cohorts_are_not_warned_about() -> None:
    from transport.exceptions import PositivityWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", PositivityWarning)
        tp.transport(_ages(20, 90, 400, 3), _ages(30, 80, 300, 4), method="gformula", times=[180.0])


@pytest.mark.parametrize("method", ["gformula", "aipw"])
@pytest.mark.parametrize("model", ["cox", "pwexp"])
def test_a_collinear_outcome_design_is_refused_naming_the_column(method: str, model: str) -> None:
    import polars as pl

    rng = np.random.default_rng(1)
    n = 300
    frame = pl.DataFrame(
        {
            "t": rng.exponential(300.0, n).round() + 1,
            "e": rng.integers(0, 2, n),
            "age": rng.uniform(30, 80, n),
        }
    ).with_columns((pl.col("age") * 2 + 1).alias("age2"))
    a = tp.Cohort(frame, time="t", event="e", covariates=["age", "age2"], name="A")
    b = tp.Cohort(frame, time="t", event="e", covariates=["age", "age2"], name="B")
    with pytest.raises(DataError, match=r"design columns \['age2'\] are collinear .* cohort 'A'"):
        tp.transport(a, b, method=method, times=[100.0], outcome_model=model)  # type: ignore[arg-type]


@pytest.mark.parametrize("drop", ["files", "sha256"])
def test_verify_of_a_manifest_without_its_hashes_is_a_named_refusal(tmp_path, drop: str) -> None:  # type: ignore[no-untyped-def]
    import json

    from transport import disclosure as dc

    out = tmp_path / "km"
    dc.release(tp.kaplan_meier(tp.datasets.load_synthetic("UK")), out)
    manifest = json.loads((out / "manifest.json").read_text())
    if drop == "files":
        del manifest["files"]
    else:
        del manifest["files"][0]["sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(tp.DisclosureError, match=f"{drop}.*rule: release_manifest"):
        dc.verify(out)


# -- pandas frames -------------------------------------------------------------------------
@pytest.mark.parametrize(("na_action", "rows"), [("error", None), ("drop", 5)])
def test_a_pandas_categorical_whose_first_value_is_missing(
    na_action: str, rows: int | None
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "t": [1.0, 2, 3, 4, 5, 6],
            "e": [1, 0, 1, 1, 0, 1],
            "x": pd.Categorical([None, "a", "b", "a", "b", "a"]),
        }
    )
    if rows is None:
        with pytest.raises(DataError, match=r"covariate column 'x' has 1 of 6 rows missing"):
            tp.Cohort(frame, time="t", event="e", covariates=["x"], na_action=na_action)  # type: ignore[arg-type]
    else:
        cohort = tp.Cohort(frame, time="t", event="e", covariates=["x"], na_action=na_action)  # type: ignore[arg-type]
        assert cohort.n == rows and cohort.covariate_frame["x"].to_list() == [
            "a",
            "b",
            "a",
            "b",
            "a",
        ]


@pytest.mark.parametrize("columns", [["t", "e", "t"], [1, "e", "1"]])
def test_a_pandas_name_two_columns_answer_to_is_refused(columns: list[object]) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([[1.0, 1, 3.0], [2.0, 0, 4.0], [3.0, 1, 5.0]], columns=columns)
    name = str(columns[0])
    with pytest.raises(DataError, match=rf"several are named \['{name}'\]"):
        tp.Cohort(frame, time=name, event="e")


# -- times meant in another unit, and cohorts with no follow-up ----------------------------
@pytest.mark.parametrize(
    ("unit", "t", "tau"), [("weeks", 52.0, 104.0), ("months", 12.0, 24.0), ("years", 1.0, 3.0)]
)
def test_time_unit_reads_times_in_that_unit_exactly(
    pair: tuple[tp.Cohort, tp.Cohort], unit: str, t: float, tau: float
) -> None:
    from transport.cohort import TIME_UNITS

    days = TIME_UNITS[unit] / TIME_UNITS["days"]
    asked = tp.transport(*pair, times=[t], tau=tau, time_unit=unit).summary()
    direct = tp.transport(*pair, times=[t * days], tau=tau * days).summary()
    assert asked["time"].to_list() == [t, None, tau]
    for column in ("transported", "observed", "transported_se"):
        np.testing.assert_allclose(asked[column][[0]], direct[column][[0]], rtol=1e-12)
    # the median and RMST come back in the unit asked for
    np.testing.assert_allclose(asked["transported"][1:], direct["transported"][1:] / days)


def test_time_unit_reaches_a_summary_target_and_every_target_of_a_list(
    pair: tuple[tp.Cohort, tp.Cohort],
) -> None:
    source, target = pair
    summary = tp.TargetSummary.from_cohort(target)
    res = tp.transport(source, summary, method="entropy", times=[12.0], time_unit="months")
    direct = tp.transport(source, summary, method="entropy", times=[365.25])
    assert res.time_unit == "months"
    np.testing.assert_allclose(
        res.transported.survival_at([12.0]), direct.transported.survival_at([365.25])
    )
    both = {"rows": target, "summary": summary}
    many = tp.transport(source, both, method="entropy", times=[12.0], time_unit="months")
    assert {r.time_unit for r in many.values()} == {"months"}


def test_an_unknown_time_unit_is_refused_by_name(pair: tuple[tp.Cohort, tp.Cohort]) -> None:
    with pytest.raises(ValueError, match=r"'time_unit'.*'fortnights'"):
        tp.transport(*pair, times=[12.0], time_unit="fortnights")  # type: ignore[arg-type]


def test_times_before_the_first_events_are_warned_about_as_a_unit_slip(
    pair: tuple[tp.Cohort, tp.Cohort],
) -> None:
    """``times=[12], tau=24`` on a cohort in days: S(12 days) is about 1, the answer to a
    question nobody asked. The warning names the unit and the way to say another."""
    with pytest.warns(TransportWarning, match=r"\(12, 24 days\) lies before 10% of .*time_unit="):
        tp.transport(*pair, times=[12.0], tau=24.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TransportWarning)
        tp.transport(*pair, times=[12.0], tau=24.0, time_unit="months")
        tp.transport(*pair, times=[90.0])  # 90 days is past the first tenth of events


@pytest.mark.parametrize("who", ["source", "target"])
@pytest.mark.parametrize("method", ["iow", "gformula", "aipw"])
def test_a_cohort_with_no_follow_up_is_refused(who: str, method: str) -> None:
    """Every source patient with the event at time 0: the g-formula's Breslow curve said
    S(10) = 0.0028 where the data say 0; no estimate stands on no time at risk."""
    import polars as pl

    rng = np.random.default_rng(11)
    n = 120
    zero = tp.Cohort(
        pl.DataFrame({"t": np.zeros(n), "e": np.ones(n), "age": rng.normal(60, 9, n)}),
        time="t",
        event="e",
        covariates=["age"],
        name="zero",
    )
    some = _ages(40, 80, n, 12)
    source, target = (zero, some) if who == "source" else (some, zero)
    with pytest.raises(DataError, match=rf"cohort 'zero' has no follow-up: all {n} values"):
        tp.transport(source, target, method=method, times=[10.0])


# -- a damaged checkpoint is named, never a raw parser error --------------------------------
@pytest.mark.parametrize(
    ("damaged", "payload", "fix"),
    [
        ("s000-r000001.parquet", b"PAR1 not a parquet file", "recomputes the replicate"),
        ("s000-r000000.parquet", b"", "recomputes the replicate"),
        ("study.json", b'{"seed": 1,', "use another checkpoint directory"),
        ("study.json", b"[1, 2]", "use another checkpoint directory"),
    ],
)
def test_a_damaged_checkpoint_file_is_named(
    tmp_path, damaged: str, payload: bytes, fix: str
) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from transport.simulate import Study, scenario

    sc = scenario("correct")
    sc = replace(sc, source=replace(sc.source, n=200), target=replace(sc.target, n=100))
    study = Study(scenario=[sc], methods=["naive"], n_reps=2, seed=3, times=[12.0])
    study.run(checkpoint=tmp_path)
    (tmp_path / damaged).write_bytes(payload)
    with pytest.raises(
        DataError, match=rf"checkpoint file '.*{re.escape(damaged)}' cannot be read.*{fix}"
    ):
        study.run(checkpoint=tmp_path)


def test_weights_whose_total_overflows_are_refused() -> None:
    import polars as pl

    cohort = tp.Cohort(pl.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]}), time="t", event="e")
    with pytest.raises(DataError, match=r"weights sum past the largest number a float holds"):
        tp.kaplan_meier(cohort, weights=np.full(3, 1e308))
    with pytest.raises(DataError, match=r"weights span more than 1e\+60 from the smallest"):
        tp.kaplan_meier(cohort, weights=[1.7e308, 1e-300, 1.0])
    scaled = tp.kaplan_meier(cohort, weights=np.full(3, 1e300)).survival_at([3.0])
    np.testing.assert_allclose(scaled, tp.kaplan_meier(cohort).survival_at([3.0]))


def test_a_continuous_covariate_as_categories_is_refused_without_quoting_values() -> None:
    """``C(age)``: the target's ages are categories the source never saw. formulaic warns,
    quoting every unseen age; the package refuses, quoting none (the text may leave)."""
    young, old = _ages(20, 50, 200, 5), _ages(40, 70, 150, 6)
    with pytest.raises(DataError, match=r"formula 'C\(age\)' .* does not encode cohort") as err:
        tp.inverse_odds_weights(young, old, formula="C(age)")
    ages = old.covariate_frame["age"].to_list()
    assert not any(f"{a:.6g}"[:6] in str(err.value) for a in ages)


def test_an_unknown_interval_kind_is_refused_not_labelled(
    pair: tuple[tp.Cohort, tp.Cohort],
) -> None:
    """``summary(interval_kind="bogus")`` gave percentile intervals labelled
    'bootstrap-bogus'; every method that takes the kind refuses it by name."""
    res = tp.transport(*pair, times=[365.25], tau=730.5, n_boot=4, seed=1)
    calls = [
        lambda: res.summary(interval_kind="bogus"),  # type: ignore[arg-type]
        lambda: res.decomposition("bogus"),  # type: ignore[arg-type]
        lambda: res.curve_distance("bogus"),  # type: ignore[arg-type]
        lambda: res.equivalence(0.1, interval_kind="bogus"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"'interval_kind' parameter must be 'percentile'"):
            call()
    assert res.summary(interval_kind="normal")["ci_method"][0] == "bootstrap-normal"


@pytest.mark.parametrize("damage", ["layout", "method", "file"])
def test_a_checkpoint_of_another_layout_or_study_is_refused_not_merged(
    tmp_path, damage: str
) -> None:  # type: ignore[no-untyped-def]
    """A replicate file copied from elsewhere would merge its rows (an 'iow' method into a
    naive-only study); a checkpoint path that is a file is named."""
    from dataclasses import replace

    import polars as pl

    from transport.simulate import Study, scenario

    sc = scenario("correct")
    sc = replace(sc, source=replace(sc.source, n=200), target=replace(sc.target, n=100))
    study = Study(scenario=[sc], methods=["naive"], n_reps=2, seed=3, times=[12.0])
    if damage == "file":
        (tmp_path / "ck").write_text("not a directory")
        with pytest.raises(DataError, match=r"checkpoint '.*ck' is a file, not a directory"):
            study.run(checkpoint=tmp_path / "ck")
        return
    study.run(checkpoint=tmp_path)
    path = tmp_path / "s000-r000001.parquet"
    frame = pl.read_parquet(path)
    if damage == "layout":
        pl.DataFrame({"a": [1]}).write_parquet(path)
    else:
        frame.with_columns(pl.lit("iow").alias("method")).write_parquet(path)
    with pytest.raises(DataError, match=r"s000-r000001\.parquet' cannot be read"):
        study.run(checkpoint=tmp_path)


def test_an_empty_list_of_targets_is_refused(pair: tuple[tp.Cohort, tp.Cohort]) -> None:
    with pytest.raises(ValueError, match=r"'target' parameter of transport is an empty list"):
        tp.transport(pair[0], [], times=[365.25])


@pytest.mark.parametrize("dtype", ["M8[D]", "m8[D]", "complex128"])
def test_weights_of_dates_durations_or_complex_numbers_are_refused(dtype: str) -> None:
    import polars as pl

    cohort = tp.Cohort(pl.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]}), time="t", event="e")
    with pytest.raises(DataError, match=r"weights are .* values in 3 rows \(rule: real numbers"):
        tp.kaplan_meier(cohort, weights=np.arange(1, 4).astype(dtype))


def test_a_ragged_csv_is_one_named_line_from_the_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "ragged.csv"
    path.write_text("t,e,age\n1,1,50\n2,0\n3,1,60,7\n")
    command = Path(sys.executable).parent / "transport"
    args = [str(command), "release", "curve", str(path), "--time", "t", "--event", "e"]
    done = subprocess.run([*args, "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "ragged.csv' cannot be read" in done.stderr


# -- a shipped model edited by hand is refused naming the field ------------------------------
def _model_edits() -> dict[str, object]:
    return {
        "grid_counts text": lambda d: d.update(grid_counts="x"),
        "grid_counts list": lambda d: d.update(grid_counts=[1, 2]),
        "level_counts text": lambda d: d.update(level_counts="x"),
        "coef text": lambda d: d.update(coef=["a"] * len(d["coef"])),
        "cov ragged": lambda d: d.update(cov=[[1.0], [1.0, 2.0]]),
        "grid_step text": lambda d: d.update(grid_step="abc"),
        "design types": lambda d: d["design"].update(types=[[1]]),
    }


@pytest.fixture(scope="module")
def shipped() -> dict[str, object]:
    return tp.ShippedModel.fit(tp.datasets.load_synthetic("DE")).to_dict()


@pytest.mark.parametrize("case", sorted(_model_edits()))
def test_an_edited_shipped_model_is_refused_by_name(shipped: dict[str, object], case: str) -> None:
    import copy

    data = copy.deepcopy(shipped)
    _model_edits()[case](data)  # type: ignore[operator]
    with pytest.raises(DataError, match=r"shipped model|design|formula|TargetSummary|column"):
        tp.ShippedModel.from_dict(data)


@pytest.mark.parametrize("text", ["{broken", "[" * 100_000 + "]" * 100_000, None])
def test_a_shipped_model_file_that_is_no_json_is_named(tmp_path, text: str | None) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.json"
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=r"shipped model file '.*model\.json'"):
        tp.ShippedModel.from_json(path)


@pytest.mark.parametrize(
    "times", [(x for x in [3.0]), {3.0}, "abc", 3 + 0j, np.datetime64("2020-01-01")]
)
def test_curve_times_that_are_no_list_of_numbers_are_refused_by_name(times: object) -> None:
    """A generator, a set (no order), text, a complex number or a date (read as days
    since 1970) is no time of a curve."""
    km = tp.kaplan_meier(tp.datasets.load_synthetic("DE"))
    with pytest.raises(
        ValueError, match=r"'times' parameter of SurvivalCurve.survival_at must be numbers"
    ):
        km.survival_at(times)  # type: ignore[arg-type]


def test_a_grid_step_too_fine_for_any_release_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """km_grid_step = 1e-300 asked for 1e303 grid points (a bare numpy error); 1e-3 for a
    60,000-row curve: a released curve has at most 100,000 steps."""
    km = tp.kaplan_meier(tp.datasets.load_synthetic("DE"))
    policy = tp.disclosure.Policy(km_grid_step=1e-300)
    with pytest.raises(ValueError, match=r"'km_grid_step' 1e-300 days cuts the follow-up"):
        tp.disclosure.release(km, tmp_path / "out", policy)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("key", "value"), [("n_reps", 10**11), ("n_boot", 10**9)])
def test_a_study_file_cannot_ask_for_unbounded_work(tmp_path, key: str, value: int) -> None:  # type: ignore[no-untyped-def]
    from transport.cli.plan import PlanError
    from transport.cli.study import load_study

    path = tmp_path / "study.toml"
    path.write_text(f'[study]\nscenarios = ["correct"]\nmethods = ["naive"]\n{key} = {value}\n')
    with pytest.raises(PlanError, match=rf"\[study\] '{key}' asks for {value}, more than"):
        load_study(path)
