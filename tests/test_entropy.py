"""Entropy balancing and TargetSummary: against an independent R solution, exact balance,
summary-only targets (JSON), properties, and the bad inputs that concern them."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, needs_r
from test_iow import FORMULAS, cohort, small

import transport as tp
from transport import DataError

REF = R_DIR / "entropy_reference"
CASES = {"main": (None, 1), "interactions": (FORMULAS["interactions"], 1), "moments2": (None, 2)}


@pytest.fixture(scope="module")
def cohorts() -> tuple[tp.Cohort, tp.Cohort]:
    return cohort("source", "US"), cohort("target", "JP")


@pytest.mark.parametrize("case", list(CASES))
def test_weights_match_an_independent_r_solution(case: str, cohorts) -> None:
    src, tgt = cohorts
    formula, moments = CASES[case]
    w = tp.entropy_balance(src, tgt, moments=moments, formula=formula)
    ref = pl.read_csv(REF / "weights.csv").filter(pl.col("case") == case)["weight"].to_numpy()
    np.testing.assert_allclose(w.values, ref, rtol=1e-8)
    assert w.values.sum() == pytest.approx(src.n)


@pytest.mark.parametrize("moments", [1, 2])
def test_balance_is_exact_and_weights_positive(moments: int, cohorts) -> None:
    src, tgt = cohorts
    w = tp.entropy_balance(src, tgt, moments=moments)
    assert np.all(w.values > 0)
    bal = w.balance()
    assert np.max(np.abs(bal["smd_after"].to_numpy())) < 1e-10
    assert w.details["max_standardised_imbalance"] < 1e-10
    if moments == 2:  # the target's variance of age (denominator n) is matched too
        X = w.design.source_matrix
        age = X[:, list(w.design.columns).index("age")]
        t_age = w.design.matrix(tgt)[:, list(w.design.columns).index("age")]
        wn = w.values / w.values.sum()
        var_w = wn @ (age - wn @ age) ** 2
        assert var_w == pytest.approx(t_age.var(), rel=1e-10)


def test_summary_target_equals_row_target(cohorts, tmp_path) -> None:
    src, tgt = cohorts
    rows = tp.entropy_balance(src, tgt)
    summary = tp.TargetSummary.from_cohort(tgt, km_times=[91.0, 365.0])
    path = summary.to_json(tmp_path / "jp.json")
    back = tp.TargetSummary.from_json(path)
    via_json = tp.entropy_balance(src, back)
    np.testing.assert_allclose(via_json.values, rows.values, rtol=0, atol=1e-10)
    assert via_json.details["target_kind"] == "summary"
    np.testing.assert_allclose(via_json.balance()["smd_after"].to_numpy(),
                               rows.balance()["smd_after"].to_numpy(), atol=1e-12)  # fmt: skip
    for moments in (2,):
        a = tp.entropy_balance(src, tgt, moments=moments)
        b = tp.entropy_balance(src, back, moments=moments)
        np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-10)


def test_summary_json_holds_no_rows(tmp_path) -> None:
    jp = tp.datasets.load_synthetic("JP")
    path = tp.TargetSummary.from_cohort(jp).to_json(tmp_path / "jp.json")
    text = path.read_text()
    data = json.loads(text)
    assert data["schema"] == "transport.TargetSummary" and data["version"] == 1
    assert data["n"] == 800 and len(data["mean"]) == len(data["columns"])
    assert "JP-" not in text and "patient_id" not in text and "practice_id" not in text
    numbers = [x for x in json.dumps(data["mean"] + data["sd"]).split(",")]
    assert len(numbers) == 2 * len(data["columns"])  # aggregates only
    bad = dict(data, version=99)
    with pytest.raises(DataError, match="version 99"):
        tp.TargetSummary.from_dict(bad)
    with pytest.raises(DataError, match="not a TargetSummary"):
        tp.TargetSummary.from_dict({"schema": "other"})


def test_level_absent_from_the_target_is_a_zero_mean() -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    frame = jp.to_frame().filter(pl.col("regimen") != "targeted")
    no_tgt = tp.Cohort(frame, time="os_days", event="os_event",
                       covariates=list(tp.datasets.COVARIATES), name="JP-no-targeted")  # fmt: skip
    summary = tp.TargetSummary.from_cohort(no_tgt)
    assert "regimen[T.targeted]" not in summary.columns
    a = tp.entropy_balance(us, no_tgt)
    b = tp.entropy_balance(us, summary)
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-10)
    col = list(a.design.columns).index("regimen[T.targeted]")
    assert (a.values @ a.design.source_matrix[:, col]) / a.values.sum() < 1e-10


def test_identical_target_and_permutation(cohorts) -> None:
    src, tgt = cohorts
    same = tp.entropy_balance(src, src)
    np.testing.assert_allclose(same.values, 1.0, atol=1e-10)
    frame = src.to_frame()
    perm = np.random.default_rng(4).permutation(src.n)
    shuffled = tp.Cohort(frame[perm], time="t", event="d",
                         covariates=list(tp.datasets.COVARIATES), name="US")  # fmt: skip
    np.testing.assert_allclose(tp.entropy_balance(shuffled, tgt).values,
                               tp.entropy_balance(src, tgt).values[perm], rtol=1e-9)  # fmt: skip


# -- bad inputs (DESIGN section 8) -----------------------------------------------------------


def test_infeasible_balance_names_the_covariates() -> None:
    rng = np.random.default_rng(5)
    a = small({"age": rng.uniform(50, 70, 300), "ecog": rng.choice(["0", "1"], 300)}, "A")
    b = small({"age": rng.uniform(75, 85, 100), "ecog": rng.choice(["0", "1"], 100)}, "B")
    with pytest.raises(DataError, match=r"infeasible: .* \['age'\] \(covariates \['age'\]\)"):
        tp.entropy_balance(a, b)
    # jointly infeasible: each mean within the source's range, the combination outside the
    # convex hull of the source patterns (0, 0), (1, 1), (1, 0)
    x1 = ["0"] * 40 + ["1"] * 40 + ["1"] * 40
    x2 = ["0"] * 40 + ["1"] * 40 + ["0"] * 40
    c = small({"x1": x1, "x2": x2}, "C")
    d = small({"x1": ["0"] * 30, "x2": ["1"] * 30}, "D")
    with pytest.raises(DataError, match=r"infeasible: .*covariates \['x\d'(, 'x\d')?\]"):
        tp.entropy_balance(c, tp.TargetSummary.from_cohort(d))


def test_summary_level_unseen_in_the_source_and_stateful_formulas() -> None:
    a = small({"age": [50.0, 60, 70, 80], "ecog": ["0", "1", "0", "1"]}, "A")
    b = small({"age": [55.0, 65, 75], "ecog": ["0", "2+", "1"]}, "B")
    s = tp.TargetSummary.from_cohort(b)
    with pytest.raises(DataError, match=r"'ecog' of target summary 'B' has 1 level\(s\) that "
                                        r"the source never saw: 1 not named"):  # fmt: skip
        tp.entropy_balance(a, s)
    with pytest.raises(DataError, match=r"stateful transforms \('center\(age\)',\)"):
        tp.TargetSummary.from_cohort(b, "center(age) + ecog")
    with pytest.raises(ValueError, match="'moments'"):
        tp.entropy_balance(a, b, moments=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Cohort or a TargetSummary"):
        tp.entropy_balance(a, {"n": 3})  # type: ignore[arg-type]


@pytest.mark.r
@needs_r("entropy_reference.R")
def test_r_regenerates_the_stored_weights(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("iow_source.csv", "iow_target.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    subprocess.run(["Rscript", str(R_DIR / "entropy_reference.R"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    fresh = (tmp_path / "entropy_reference" / "weights.csv").read_bytes()
    assert fresh == (REF / "weights.csv").read_bytes()


def test_summary_path_matches_covariate_names_exactly() -> None:
    """A dummy of 'x' is not a dummy of 'xy': the interaction mean is the target's."""
    rng = np.random.default_rng(9)
    n = 600
    src = small({"age": rng.normal(60, 8, n), "x": rng.choice(["a0", "a1"], n),
                 "xy": rng.choice(["b0", "b1", "b2"], n)}, "S")  # fmt: skip
    m = 300
    tgt = small({"age": rng.normal(62, 8, m), "x": rng.choice(["a0", "a1"], m),
                 "xy": rng.choice(["b1", "b2"], m)}, "T")  # no b0  # fmt: skip
    formula = "age + x + xy + x:xy"
    rows = tp.entropy_balance(src, tgt, formula=formula)
    summary = tp.TargetSummary.from_cohort(tgt, formula)
    np.testing.assert_allclose(tp.entropy_balance(src, summary, formula=formula).values,
                               rows.values, rtol=0, atol=1e-10)  # fmt: skip


def test_summary_refuses_non_treatment_contrasts_and_missing_covariates() -> None:
    jp = tp.datasets.load_synthetic("JP")
    with pytest.raises(DataError, match="contrasts other than treatment"):
        tp.TargetSummary.from_cohort(jp, "age + C(ecog, contr.sum)")
    with pytest.raises(DataError, match=r"'contr\.poly' .* not a contrast of the closed grammar"):
        tp.TargetSummary.from_cohort(jp, "age + C(ecog, contr.poly)")
    us = tp.datasets.load_synthetic("US")
    with pytest.raises(DataError, match="contrasts other than treatment"):
        tp.entropy_balance(us, tp.TargetSummary.from_cohort(jp), formula="age + C(ecog, contr.sum)")
    frame = jp.to_frame()
    partial = tp.Cohort(frame, time="os_days", event="os_event", covariates=["age", "sex"],
                        name="JP-partial")  # fmt: skip
    summary = tp.TargetSummary.from_cohort(partial)
    with pytest.raises(DataError, match=r"covariates \[.*'ecog'.*\] of the design are not in "
                                        r"target summary 'JP-partial'"):  # fmt: skip
        tp.entropy_balance(us, summary)  # formula None: every US covariate
    tp.entropy_balance(us, summary, formula="age + sex")  # what the summary describes


@pytest.mark.parametrize(
    ("formula", "keep"),
    [("age + ecog + age:ecog", pl.col("ecog") != "0"),  # target lacks the reference level
     ("age + sex + ecog + age:sex", pl.col("sex") == "female"),  # a single level
     ("age + sex * ecog", pl.col("ecog") != "2+")],
)  # fmt: skip
def test_summary_equals_rows_whatever_levels_the_target_has(formula: str, keep) -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    frame = jp.to_frame().filter(keep)
    sub = tp.Cohort(frame, time="os_days", event="os_event",
                    covariates=list(tp.datasets.COVARIATES), name="JP-sub")  # fmt: skip
    rows = tp.entropy_balance(us, sub, formula=formula)
    summary = tp.TargetSummary.from_cohort(sub, formula)
    np.testing.assert_allclose(tp.entropy_balance(us, summary, formula=formula).values,
                               rows.values, rtol=0, atol=1e-10)  # fmt: skip


def test_dependent_columns_and_extreme_scales() -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    w = tp.entropy_balance(us, jp, moments=2, formula="age + {age**2} + ecog")
    assert w.details["implied_by_others"] == ["age ** 2"]
    assert w.details["max_standardised_imbalance"] < 1e-10
    base = tp.entropy_balance(us, jp, moments=2)
    scaled = []
    for c in (us, jp):
        f = c.to_frame().with_columns(pl.col("age") * 1e6)
        scaled.append(tp.Cohort(f, time="os_days", event="os_event",
                                covariates=list(tp.datasets.COVARIATES), name=c.name))  # fmt: skip
    np.testing.assert_allclose(tp.entropy_balance(*scaled, moments=2).values, base.values,
                               rtol=1e-9)  # fmt: skip


def test_bad_formulas_summaries_and_arguments_are_named_errors() -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    for bad in ("age ~ sex", "age | sex", "1"):
        with pytest.raises(DataError, match="formula"):
            tp.entropy_balance(us, jp, formula=bad)
    with pytest.raises(DataError, match="formula"):
        tp.Design(us, "C(sex, levels=['male'])")
    data = tp.TargetSummary.from_cohort(jp).to_dict()
    for field, value, message in (
        ("n", 0, "'n' must be between 1 and"),
        ("sd", [-1.0, *data["sd"][1:]], "SD of column 'age' must be finite and >= 0"),
        ("mean", [None, *data["mean"][1:]], "mean of column 'age' is missing"),
    ):
        with pytest.raises(DataError, match=message):
            tp.TargetSummary.from_dict(dict(data, **{field: value}))
    broken = json.loads(json.dumps(data))
    broken["covariates"]["sex"]["shares"] = [0.9, 0.6]
    with pytest.raises(DataError, match=r"shares of covariate 'sex' sum to 1\.5"):
        tp.TargetSummary.from_dict(broken)
    with pytest.raises(ValueError, match="'moments'"):
        tp.entropy_balance(us, jp, moments=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'overlap'"):
        tp.inverse_odds_weights(us, jp, overlap=(0.9, 0.1))


def test_offsets_are_not_collinearity_and_absent_levels_balance_to_zero_smd() -> None:
    rng = np.random.default_rng(3)
    a = small({"age": 1e6 + rng.normal(0, 5, 200), "ecog": rng.choice(["0", "1", "2+"], 200)},
              "A")  # fmt: skip
    b = small({"age": 1e6 + rng.normal(1, 5, 80), "ecog": rng.choice(["0", "1"], 80)}, "B")
    tp.Design(a)  # an offset is not collinearity with the intercept
    w = tp.entropy_balance(a, tp.TargetSummary.from_cohort(b))
    bal = w.balance()
    row = bal.filter(pl.col("covariate") == "ecog[T.2+]")
    assert row["mean_target"][0] == 0 and row["smd_after"][0] == 0.0
    json.dumps(w.to_dict(), allow_nan=False)


# -- regression: the Newton polish stalled where the dual is flat to rounding ----------------


@pytest.mark.parametrize(("seed", "rep"), [(0, 27), (4, 123), (5, 92)])
def test_study_replicates_that_stalled_reach_exact_balance(seed: int, rep: int) -> None:
    """Replicates of the 'correct' scenario (drawn as Study draws them) whose trust-region
    solve stopped with |gradient| ~1e-9, where a Newton step changes the dual by ~1e-17,
    below its rounding: the polish compared duals, refused the step and raised
    "imbalance 2.08e-09 > 1e-10" (1.69e-10, 4.55e-09). About 1 replicate in 500."""
    sc = tp.simulate.scenario("correct")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, rep, 0)))
    src, tgt = sc.simulate(rng)
    w = tp.entropy_balance(src, tgt, formula=sc.formula)
    assert w.details["max_standardised_imbalance"] < 1e-12
    means = w.values @ w.design.source_matrix / w.values.sum()
    np.testing.assert_allclose(means, w.design.matrix(tgt).mean(axis=0), rtol=0, atol=1e-12)
