"""transport.simulate.performance: simulation-study performance measures and their MCSEs.

Every number is checked against tests/r/metrics_reference.R, written in plain R from the
formulas of Morris, White & Crowther (2019), Table 6, on the seeded replicate table of
tests/r/make_metrics_cases.py; properties (hypothesis, derandomised) and input errors below.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, needs_r
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import transport as tp
from transport.exceptions import DataError
from transport.simulate import performance
from transport.simulate.metrics import COUNTS, MEASURES

KEYS = ["scenario", "method", "estimand", "time"]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
# R's mean/sd/var and numpy's sums differ by a few ulps; relative error of the model SE
# (ratio - 1) loses a few more digits to cancellation. Observed worst: 4e-15 relative.
RTOL, ATOL = 1e-12, 1e-15


def replicates_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides={"time": pl.Float64})


def reference(path: Path) -> pl.DataFrame:
    schema = {"time": pl.Float64} | dict.fromkeys(COUNTS, pl.Int64)
    schema |= {f"{m}{s}": pl.Float64 for m in MEASURES for s in ("", "_mcse")}
    return pl.read_csv(path, schema_overrides=schema).sort(KEYS, nulls_last=False)


def assert_same(ours: pl.DataFrame, ref: pl.DataFrame, rtol: float, atol: float) -> None:
    ours = ours.sort(KEYS, nulls_last=False)
    assert ours.select(KEYS).equals(ref.select(KEYS), null_equal=True)
    for c in COUNTS:
        assert ours[c].to_list() == ref[c].to_list(), c
    for m in MEASURES:
        for c in (m, f"{m}_mcse"):
            a, b = ours[c].to_numpy(), ref[c].to_numpy()
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"nulls of {c}")
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=c)


def frame(
    estimate: list[float] | np.ndarray,
    *,
    truth: float = 0.5,
    se: list[float | None] | np.ndarray | None = None,
    ci_lower: list[float | None] | np.ndarray | None = None,
    ci_upper: list[float | None] | np.ndarray | None = None,
    scenario: str = "correct",
    method: str = "iow",
    estimand: str = "survival",
    time: float | None = 365.0,
) -> pl.DataFrame:
    n = len(estimate)
    none: list[float | None] = [None] * n
    return pl.DataFrame(
        {
            "scenario": [scenario] * n,
            "method": [method] * n,
            "estimand": [estimand] * n,
            "time": pl.Series([time] * n, dtype=pl.Float64),
            "rep": np.arange(n, dtype=np.int64),
            "estimate": pl.Series(list(estimate), dtype=pl.Float64),
            "se": pl.Series(none if se is None else list(se), dtype=pl.Float64),
            "ci_lower": pl.Series(none if ci_lower is None else list(ci_lower), dtype=pl.Float64),
            "ci_upper": pl.Series(none if ci_upper is None else list(ci_upper), dtype=pl.Float64),
            "truth": [truth] * n,
        }
    )


# --- the independent reference ------------------------------------------------------


def test_matches_the_r_reference() -> None:
    reps = replicates_csv(R_DIR / "data" / "metrics_replicates.csv")
    ref = reference(R_DIR / "metrics_reference" / "metrics.csv")
    ours = performance(reps)
    assert ours.height == ref.height == 13
    assert_same(ours, ref, RTOL, ATOL)


def test_reference_covers_every_branch() -> None:
    """The stored case exercises what it says it does (a guard against a regenerated
    table that no longer reaches the edge cases)."""
    ref = reference(R_DIR / "metrics_reference" / "metrics.csv")
    assert set(ref["n_reps"].to_list()) >= {0, 1, 2}
    assert ref["n_failed"].max() > 0
    assert (ref["n_model_se"] < ref["n_reps"]).any()
    assert (ref["n_ci"] < ref["n_reps"]).any()
    assert ((ref["n_model_se"] == 1) & (ref["n_reps"] > 2)).any()
    assert ((ref["n_ci"] == 1) & (ref["n_reps"] > 2)).any()
    assert (ref["model_se"].is_null() & (ref["n_reps"] > 2)).any()  # no SEs at all
    assert (ref["relative_bias"].is_null() & ref["bias"].is_not_null()).any()  # truth 0
    assert (ref["empirical_se"] == 0).any() and (ref["model_se_mcse"] == 0).any()
    assert (ref["mse"] == 0).any()
    assert ((ref["coverage"] == 1) & (ref["coverage_mcse"] == 0)).any()
    assert ((ref["coverage"] > 0) & (ref["coverage"] < 1)).any()


def test_generator_reproduces_the_stored_replicates() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_metrics_cases", R_DIR / "make_metrics_cases.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.cases(np.random.default_rng(module.SEED))
    stored = pl.read_csv(R_DIR / "data" / "metrics_replicates.csv", schema=made.schema)
    # the same draws; floats to the last few bits, which numpy releases may move
    assert_frame_equal(made, stored, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.r
@needs_r("metrics_reference.R")
def test_r_regenerates_the_metrics_reference(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    name = "metrics_replicates.csv"
    (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    script = str(R_DIR / "metrics_reference.R")
    subprocess.run(["Rscript", script, str(tmp_path)], check=True, capture_output=True)
    new = reference(tmp_path / "metrics_reference" / "metrics.csv")
    old = reference(R_DIR / "metrics_reference" / "metrics.csv")
    assert new.columns == old.columns
    assert_same(new, old, 1e-15, 0.0)
    assert_same(performance(replicates_csv(tmp_path / "data" / name)), new, RTOL, ATOL)


# --- the output ------------------------------------------------------------------------


def test_columns_meet_the_design_contract() -> None:
    out = performance(frame([0.4, 0.5, 0.6], se=[0.1] * 3))
    design = [
        "scenario",
        "method",
        "estimand",
        "time",
        "bias",
        "bias_mcse",
        "empirical_se",
        "model_se",
        "coverage",
        "coverage_mcse",
        "rmse",
        "n_reps",
    ]
    assert set(design) <= set(out.columns)
    measures = [f"{m}{s}" for m in MEASURES for s in ("", "_mcse")]
    assert out.columns == [*KEYS, *COUNTS, *measures, "level"]
    assert out.schema["n_reps"] == pl.Int64 and out.schema["bias_mcse"] == pl.Float64
    assert tp.simulate.performance is performance and "performance" in tp.simulate.__all__


def test_hand_computed_small_case() -> None:
    est = [0.4, 0.5, 0.9]
    out = performance(
        frame(
            est, truth=0.5, se=[0.1, 0.2, 0.2], ci_lower=[0.3, 0.45, 0.6], ci_upper=[0.55, 0.7, 1.0]
        ),
        level=0.9,
    ).row(0, named=True)
    mean = 0.6
    ss = 0.04 + 0.01 + 0.09
    assert out["bias"] == pytest.approx(mean - 0.5, rel=1e-14)
    assert out["relative_bias"] == pytest.approx(0.2, rel=1e-14)
    assert out["empirical_se"] == pytest.approx(np.sqrt(ss / 2), rel=1e-14)
    assert out["bias_mcse"] == pytest.approx(np.sqrt(ss / 6), rel=1e-14)
    assert out["model_se"] == pytest.approx(np.sqrt(0.09 / 3), rel=1e-14)
    assert out["mse"] == pytest.approx((0.01 + 0 + 0.16) / 3, rel=1e-14)
    assert out["coverage"] == pytest.approx(2 / 3)  # 0.5 in the first two
    assert out["be_coverage"] == pytest.approx(2 / 3)  # 0.6 in the last two
    assert out["coverage_mcse"] == pytest.approx(np.sqrt(2 / 9 / 3))
    assert out["level"] == 0.9


def test_groups_sorted_and_null_time_is_its_own_group() -> None:
    a = frame([1.0, 2.0], estimand="median", time=None, truth=1.5)
    b = frame([0.5, 0.6], time=365.0)
    c = frame([0.4, 0.3], time=730.0, method="aipw")
    out = performance(pl.concat([b, c, a]))
    assert out.select("method", "estimand", "time").rows() == [
        ("aipw", "survival", 730.0),
        ("iow", "median", None),
        ("iow", "survival", 365.0),
    ]
    one = performance(pl.concat([b, b.with_columns(rep=pl.col("rep") + 2)]), by=())
    assert one.columns[0] == "n_reps" and one["n_reps"].to_list() == [4]
    by_method = performance(pl.concat([b, c]), by="method")
    assert by_method["method"].to_list() == ["aipw", "iow"]


def test_time_column_of_medians_only() -> None:
    """A table of medians alone has a time column of dtype Null."""
    reps = frame([240.0, 250.0, 260.0], truth=245.0, estimand="median", time=None)
    out = performance(reps.with_columns(pl.lit(None).alias("time")))
    assert out["time"].to_list() == [None] and out["bias"][0] == pytest.approx(5.0)


def test_empty_table_gives_no_rows_with_the_full_schema() -> None:
    out = performance(frame([0.5]).head(0))
    assert out.height == 0 and out.columns[: len(KEYS)] == KEYS and "rmse_mcse" in out.columns


def test_n_of_one_and_failed_groups() -> None:
    one = performance(frame([0.55], se=[0.02], ci_lower=[0.5], ci_upper=[0.6])).row(0, named=True)
    assert one["n_reps"] == 1 and one["bias"] == pytest.approx(0.05)
    assert one["model_se"] == pytest.approx(0.02) and one["coverage"] == 1.0
    for c in (
        "bias_mcse",
        "empirical_se",
        "empirical_se_mcse",
        "model_se_mcse",
        "relative_error_model_se",
        "coverage_mcse",
        "mse_mcse",
        "rmse_mcse",
    ):
        assert one[c] is None, c
    failed = performance(frame([np.nan, np.inf, -np.inf], se=[0.1] * 3)).row(0, named=True)
    assert (failed["n_reps"], failed["n_failed"], failed["n_model_se"]) == (0, 3, 0)
    assert all(failed[f"{m}{s}"] is None for m in MEASURES for s in ("", "_mcse"))


def test_zero_model_ses_give_zero_mcse_without_warnings() -> None:
    out = performance(frame([0.4, 0.6, 0.5], se=[0.0] * 3)).row(0, named=True)
    assert out["model_se"] == 0.0 and out["model_se_mcse"] == 0.0
    assert out["relative_error_model_se"] == -1.0
    assert out["relative_error_model_se_mcse"] == 0.0  # ModSE/EmpSE = 0, no 0/0


# --- properties ------------------------------------------------------------------------

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(c=finite, truth=finite, n=st.integers(2, 60), se=st.floats(0, 10))
def test_constant_estimates(c: float, truth: float, n: int, se: float) -> None:
    out = performance(frame([c] * n, truth=truth, se=[se] * n)).row(0, named=True)
    assert out["bias"] == c - truth
    assert out["bias_mcse"] == 0.0 and out["empirical_se"] == 0.0
    assert out["empirical_se_mcse"] == 0.0
    assert out["relative_error_model_se"] is None  # EmpSE 0
    assert out["model_se"] == pytest.approx(se, rel=1e-15) and out["model_se_mcse"] == 0.0
    assert out["mse"] == pytest.approx((c - truth) ** 2, rel=1e-15)
    assert out["rmse"] == pytest.approx(abs(c - truth), rel=1e-15)
    assert out["mse_mcse"] == 0.0 and out["rmse_mcse"] == 0.0
    if truth != 0:
        assert out["relative_bias"] == pytest.approx((c - truth) / truth, rel=1e-15)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), width=st.floats(0, 5))
def test_intervals_that_always_cover(seed: int, n: int, width: float) -> None:
    rng = np.random.default_rng(seed)
    est = rng.normal(0.5, 0.1, n)
    truth = 0.5
    lo = np.minimum(est, truth) - width
    hi = np.maximum(est, truth) + width
    lo[rng.uniform(size=n) < 0.2] = -np.inf  # unbounded limits cover too
    out = performance(frame(est, truth=truth, ci_lower=lo, ci_upper=hi)).row(0, named=True)
    assert out["coverage"] == 1.0 and out["coverage_mcse"] == 0.0
    assert out["n_ci"] == n
    never = performance(frame(est, truth=truth, ci_lower=hi + 1, ci_upper=hi + 2))
    assert never["coverage"][0] == 0.0 and never["coverage_mcse"][0] == 0.0


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_row_order_does_not_matter_bit_for_bit(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    parts = []
    for method, truth in (("iow", 0.5), ("gformula", 0.3)):
        est = rng.normal(truth, 0.07, n)
        est[rng.uniform(size=n) < 0.1] = np.nan
        se = rng.uniform(0.03, 0.09, n)
        parts.append(
            frame(
                est, truth=truth, se=se, ci_lower=est - 2 * se, ci_upper=est + 2 * se, method=method
            )
        )
    reps = pl.concat(parts)
    shuffled = reps.sample(fraction=1.0, shuffle=True, seed=seed % 2**31)
    assert performance(shuffled).equals(performance(reps), null_equal=True)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 60),
    scale=st.floats(1e-3, 1e3),
    n_bad=st.integers(0, 5),
)
def test_identities_scale_and_failures(seed: int, n: int, scale: float, n_bad: int) -> None:
    rng = np.random.default_rng(seed)
    truth = 0.6
    est = rng.normal(0.58, 0.05, n)
    se = rng.uniform(0.02, 0.08, n)
    reps = frame(est, truth=truth, se=se, ci_lower=est - 1.96 * se, ci_upper=est + 1.96 * se)
    out = performance(reps).row(0, named=True)
    # MSE = bias^2 + (n-1)/n EmpSE^2; bias MCSE = EmpSE / sqrt(n)
    assert out["mse"] == pytest.approx(
        out["bias"] ** 2 + (n - 1) / n * out["empirical_se"] ** 2, rel=1e-9
    )
    assert out["bias_mcse"] == pytest.approx(out["empirical_se"] / np.sqrt(n), rel=1e-12)
    assert out["rmse"] == pytest.approx(np.sqrt(out["mse"]), rel=1e-15)
    # rescaling every value scales the measures, leaves the relative ones alone
    k = scale
    scaled = performance(
        frame(
            k * est,
            truth=k * truth,
            se=k * se,
            ci_lower=k * (est - 1.96 * se),
            ci_upper=k * (est + 1.96 * se),
        )
    ).row(0, named=True)
    for m, power in (
        ("bias", 1),
        ("empirical_se", 1),
        ("model_se", 1),
        ("mse", 2),
        ("rmse", 1),
        ("relative_bias", 0),
        ("relative_error_model_se", 0),
    ):
        for c in (m, f"{m}_mcse"):
            assert scaled[c] == pytest.approx(out[c] * k**power, rel=1e-9, abs=1e-12), c
    # failed replicates are counted and change nothing else
    bad = frame(
        [np.nan] * n_bad,
        truth=truth,
        se=[0.01] * n_bad,
        ci_lower=[0.0] * n_bad,
        ci_upper=[1.0] * n_bad,
    ).with_columns(rep=pl.col("rep") + n)
    more = performance(pl.concat([reps, bad])).row(0, named=True)
    assert more["n_failed"] == n_bad and more["n_reps"] == n
    assert {c: v for c, v in more.items() if c != "n_failed"} == {
        c: v for c, v in out.items() if c != "n_failed"
    }


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column", [*KEYS, "rep", "estimate", "se", "ci_lower", "ci_upper", "truth"]
)
def test_missing_column_is_named(column: str) -> None:
    with pytest.raises(DataError, match=f"lacks column.*'{column}'"):
        performance(frame([0.5, 0.6]).drop(column))


@pytest.mark.parametrize("column", ["estimate", "se", "ci_lower", "ci_upper", "truth"])
def test_non_numeric_value_column_is_named(column: str) -> None:
    reps = frame([0.5, 0.6], se=[0.1, 0.1]).with_columns(pl.col(column).cast(pl.String))
    with pytest.raises(DataError, match=f"column '{column}' must be numeric.*String"):
        performance(reps)


def test_rep_must_be_integer_present_and_unique() -> None:
    reps = frame([0.5, 0.6, 0.7])
    with pytest.raises(DataError, match="column 'rep' must be integer"):
        performance(reps.with_columns(pl.col("rep").cast(pl.Float64)))
    with pytest.raises(DataError, match="'rep' has 1 of 3 rows missing"):
        performance(reps.with_columns(rep=pl.Series([0, None, 2], dtype=pl.Int64)))
    with pytest.raises(DataError, match="'rep' repeats within a group in 2 of 3 rows"):
        performance(reps.with_columns(rep=pl.Series([0, 1, 1], dtype=pl.Int64)))
    # the same rep in different groups is fine
    assert performance(pl.concat([reps, reps.with_columns(method=pl.lit("aipw"))])).height == 2


def test_truth_must_be_finite_and_one_per_group() -> None:
    reps = frame([0.5, 0.6, 0.7])
    with pytest.raises(DataError, match="'truth' is missing or not finite in 1 of 3 rows"):
        performance(reps.with_columns(truth=pl.Series([0.5, None, 0.5])))
    with pytest.raises(DataError, match="'truth' is missing or not finite in 1 of 3 rows"):
        performance(reps.with_columns(truth=pl.Series([0.5, np.inf, 0.5])))
    with pytest.raises(DataError, match=r"'truth' takes 2 different values in the group.*iow"):
        performance(reps.with_columns(truth=pl.Series([0.5, 0.5, 0.51])))


def test_negative_se_reversed_interval_and_bad_arguments() -> None:
    reps = frame([0.5, 0.6], se=[0.1, 0.1], ci_lower=[0.4, 0.5], ci_upper=[0.6, 0.7])
    with pytest.raises(DataError, match="'se' is negative in 1 of 2 rows"):
        performance(reps.with_columns(se=pl.Series([0.1, -0.1])))
    with pytest.raises(DataError, match="'ci_lower' > 'ci_upper' in 1 of 2 rows"):
        performance(reps.with_columns(ci_lower=pl.Series([0.4, 0.8])))
    for level in (0, 1, 95, -0.5, float("nan"), True):
        with pytest.raises(DataError, match="level must be"):
            performance(reps, level=level)
    with pytest.raises(DataError, match="cannot group on the value column"):
        performance(reps, by=("method", "estimate"))
    with pytest.raises(DataError, match="more than once"):
        performance(reps, by=("method", "method"))
    with pytest.raises(TypeError, match="polars DataFrame"):
        performance(reps.to_dict(as_series=False))  # type: ignore[arg-type]
