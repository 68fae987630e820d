"""Cohort: roles, input types, time units, immutability, identifiers and bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import transport as tp
from transport import DataError

COVS = ["age", "ecog", "female"]


def make(frame, **kw):
    args = {"time": "os_days", "event": "death", "covariates": COVS, "name": "A"}
    args.update(kw)
    return tp.Cohort(frame, **args)


def test_roles_and_counts(small_frame: pl.DataFrame) -> None:
    c = make(small_frame, identifiers=["pid"], time_unit="days")
    assert c.n == len(c) == small_frame.height
    assert c.time == "os_days" and c.event == "death" and c.entry is None
    assert c.covariates == tuple(COVS)
    assert c.covariate_types == {
        "age": "continuous",
        "ecog": "categorical",
        "female": "categorical",
    }
    assert c.levels == {"ecog": ("0", "1", "2"), "female": ("false", "true")}
    assert c.exclusions.columns == ["reason", "column", "n_rows"]
    assert c.exclusions.height == 0 and c.n_excluded == 0
    np.testing.assert_array_equal(c.time_values, small_frame["os_days"].to_numpy())
    np.testing.assert_array_equal(c.event_values, small_frame["death"].to_numpy())


def test_other_columns_are_not_carried(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(pl.lit("free text").alias("notes"))
    c = make(frame, covariates=["age"])
    assert c.to_frame().columns == ["os_days", "death", "age"]
    assert "notes" not in repr(c) and "ecog" not in c.covariate_frame.columns


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Without pyarrow: numpy columns, strings as objects."""
    return pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})


def test_polars_pandas_and_lazy_inputs_agree(small_frame: pl.DataFrame) -> None:
    a = make(small_frame)
    b = make(to_pandas(small_frame))
    c = make(small_frame.lazy())
    for other in (b, c):
        assert other.to_frame().equals(a.to_frame())
        assert other.covariate_types == a.covariate_types and other.levels == a.levels
        np.testing.assert_array_equal(tp.kaplan_meier(other).survival, tp.kaplan_meier(a).survival)


def test_pandas_extension_types_and_missing_values() -> None:
    pdf = pd.DataFrame(
        {
            "t": pd.array([1.0, 2.0, None, 4.0], dtype="Float64"),
            "d": pd.array([1, 0, 1, 1], dtype="Int64"),
            "g": pd.array(["a", None, "b", "a"], dtype="string"),
            "x": pd.array([1, 2, 3, None], dtype="Int64"),
            "flag": pd.array([True, False, None, True], dtype="boolean"),
        }
    )
    c = tp.Cohort(pdf, time="t", event="d", covariates=["g", "x", "flag"], na_action="drop")
    assert c.n == 1
    assert c.exclusions.rows() == [
        ("missing time", "t", 1),
        ("missing covariate", "g", 1),
        ("missing covariate", "x", 1),
    ]
    assert c.covariate_types == {"g": "categorical", "x": "continuous", "flag": "categorical"}
    mixed = pd.DataFrame({"t": [1.0, 2.0], "d": [1, 0], "g": ["a", 3]})
    with pytest.raises(DataError, match=r"column 'g' mixes value types \['int', 'str'\]"):
        tp.Cohort(mixed, time="t", event="d", covariates=["g"])


def test_lazy_frame_collects_only_role_columns(small_frame: pl.DataFrame) -> None:
    # A column whose computation would fail is never evaluated.
    lazy = small_frame.lazy().with_columns(
        pl.col("ecog").str.to_datetime("%Y-%m-%d", strict=True).alias("broken")
    )
    with pytest.raises(pl.exceptions.PolarsError):
        lazy.collect()
    c = make(lazy)
    assert c.n == small_frame.height


def test_pandas_categorical_and_polars_enum_keep_their_level_order() -> None:
    order = ["2", "0", "1"]
    pdf = pd.DataFrame(
        {
            "t": [1.0, 2.0, 3.0],
            "d": [1, 0, 1],
            "g": pd.Categorical(["0", "1", "2"], categories=order),
        }
    )
    pl_enum = pl.DataFrame(
        {
            "t": [1.0, 2.0, 3.0],
            "d": [1, 0, 1],
            "g": pl.Series(["0", "1", "2"], dtype=pl.Enum(order)),
        }
    )
    for frame in (pdf, pl_enum):
        c = tp.Cohort(frame, time="t", event="d", covariates=["g"])
        assert c.covariate_types["g"] == "categorical"
        assert c.levels["g"] == ("2", "0", "1")
        assert c.covariate_frame["g"].to_list() == ["0", "1", "2"]


def test_covariate_type_override_orders_numeric_levels_numerically() -> None:
    frame = pl.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "d": [1, 0, 1, 1], "ecog": [10, 2, 0, 2]})
    c = tp.Cohort(
        frame, time="t", event="d", covariates=["ecog"], covariate_types={"ecog": "categorical"}
    )
    assert c.covariate_types == {"ecog": "categorical"}
    assert c.levels["ecog"] == ("0", "2", "10")
    assert c.covariate_frame["ecog"].to_list() == ["10", "2", "0", "2"]


def test_time_units_convert_exactly(small_frame: pl.DataFrame) -> None:
    days = make(small_frame, time_unit="days")
    years = days.in_unit("years")
    months = days.in_unit("months")
    weeks = days.in_unit("weeks")
    np.testing.assert_allclose(years.time_values * 365.25, days.time_values, rtol=1e-15)
    np.testing.assert_allclose(months.time_values / 12, years.time_values, rtol=1e-15)
    np.testing.assert_allclose(weeks.time_values * 7, days.time_values, rtol=1e-15)
    assert months.time_unit == "months" and days.time_unit == "days"
    np.testing.assert_allclose(months.in_unit("days").time_values, days.time_values, rtol=1e-14)
    assert tp.TIME_UNITS["months"] == 365.25 / 12
    # the curve follows: median in months = median in days / (365.25 / 12)
    med_d = tp.kaplan_meier(days).median().value
    med_m = tp.kaplan_meier(months).median().value
    assert med_m == pytest.approx(med_d / (365.25 / 12), rel=1e-12)


def test_cohort_is_immutable(small_frame: pl.DataFrame) -> None:
    c = make(small_frame)
    with pytest.raises(AttributeError):
        c.name = "B"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        c._name = "B"
    with pytest.raises(ValueError):
        c.time_values[0] = 5.0
    c.exclusions.clear()
    assert c.exclusions.columns == ["reason", "column", "n_rows"]


def test_identifiers_stay_inside(small_frame: pl.DataFrame) -> None:
    c = make(small_frame, identifiers=["pid"])
    assert "pid" not in c.to_frame().columns
    assert "pid" not in c.covariate_frame.columns
    assert c.identifiers == ("pid",)
    assert c.linkage_keys()["pid"].to_list() == small_frame["pid"].to_list()
    km = tp.kaplan_meier(c)
    assert "pid" not in km.to_frame().columns and "pid" not in str(km.to_dict())
    with pytest.raises(DataError, match="without identifier"):
        make(small_frame).linkage_keys()


def test_na_action_drop_logs_every_reason(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.int_range(pl.len()).is_between(5, 7))
        .then(None)
        .otherwise(pl.col("ecog"))
        .alias("ecog"),
        pl.when(pl.int_range(pl.len()) == 9)
        .then(float("nan"))
        .otherwise(pl.col("os_days"))
        .alias("os_days"),
    )
    c = make(frame, na_action="drop")
    assert c.n == small_frame.height - 9
    ex = c.exclusions
    assert ex.rows() == [
        ("missing time", "os_days", 1),
        ("missing covariate", "age", 5),
        ("missing covariate", "ecog", 3),
    ]
    assert c.n_excluded == 9 and "9 excluded" in repr(c)


# -- bad inputs (DESIGN section 8): each names the column, the rule and the row count ----


def test_missing_covariate_is_an_error_by_default(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 4).then(None).otherwise(pl.col("ecog")).alias("ecog")
    )
    with pytest.raises(
        DataError,
        match=r"covariate column 'ecog' has 4 of 300 rows missing.*"
        r"na_action='drop'",
    ):
        make(frame)


def test_nan_covariate_counts_as_missing(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(float("nan")).otherwise(pl.col("age")).alias("age")
    )
    with pytest.raises(DataError, match=r"'age' has 2 of 300 rows missing"):
        make(frame)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (-1.0, r"time column 'os_days' has 3 of 300 rows negative \(rule: time >= 0"),
        (float("inf"), r"time column 'os_days' has 3 of 300 rows infinite \(rule: finite"),
        (None, r"time column 'os_days' has 3 of 300 rows missing"),
    ],
)
def test_bad_times(small_frame: pl.DataFrame, value, rule: str) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(value)
        .otherwise(pl.col("os_days"))
        .alias("os_days")
    )
    with pytest.raises(DataError, match=rule):
        make(frame)


def test_events_other_than_0_1(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 6).then(2).otherwise(pl.col("death")).alias("death")
    )
    with pytest.raises(
        DataError,
        match=r"event column 'death' has 6 of 300 rows with values "
        r"other than 0/1.*2\.0",
    ):
        make(frame)


def test_boolean_events_are_accepted(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(pl.col("death").cast(pl.Boolean))
    np.testing.assert_array_equal(make(frame).event_values, make(small_frame).event_values)


def test_empty_cohort(small_frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"empty.*got 0 rows"):
        make(small_frame.head(0))


def test_every_row_dropped(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("age"))
    with pytest.raises(DataError, match=r"empty after dropping.*all 300 rows"):
        make(frame, na_action="drop")


def test_missing_column_and_conflicting_roles(small_frame: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"\['stage'\].*not in the data"):
        make(small_frame, covariates=["age", "stage"])
    with pytest.raises(ValueError, match="two roles"):
        make(small_frame, covariates=["age", "os_days"])


def test_non_numeric_time_and_continuous_override_on_strings(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(pl.col("os_days").cast(pl.String))
    with pytest.raises(DataError, match=r"time column 'os_days' must be numeric"):
        make(frame)
    with pytest.raises(DataError, match=r"'ecog' is declared continuous"):
        make(small_frame, covariate_types={"ecog": "continuous"})


def test_infinite_covariate(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(float("inf"))
        .otherwise(pl.col("age"))
        .alias("age")
    )
    with pytest.raises(DataError, match=r"covariate column 'age' has 1 of 300 rows infinite"):
        make(frame)


def test_entry_must_precede_time(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 7).then(pl.col("os_days")).otherwise(0.0).alias("start")
    )
    with pytest.raises(
        DataError,
        match=r"entry column 'start' is not before time column "
        r"'os_days' in 7 of 300 rows \(rule: entry < time\)",
    ):
        make(frame, entry="start")
    neg = small_frame.with_columns(pl.lit(-1.0).alias("start"))
    with pytest.raises(DataError, match=r"entry column 'start' has 300 of 300 rows negative"):
        make(neg, entry="start")


def test_bad_arguments(small_frame: pl.DataFrame) -> None:
    with pytest.raises(TypeError, match="polars DataFrame"):
        make(small_frame.to_numpy())
    with pytest.raises(ValueError, match=r"'time_unit'.*Got 'hours'"):
        make(small_frame, time_unit="hours")
    with pytest.raises(ValueError, match=r"'na_action'.*Got 'omit'"):
        make(small_frame, na_action="omit")
    with pytest.raises(ValueError, match="'covariate_types' parameter names 'stage'"):
        make(small_frame, covariate_types={"stage": "categorical"})


def test_numeric_categorical_levels_match_their_values() -> None:
    big = pl.DataFrame(
        {
            "t": [1.0, 2.0, 3.0, 4.0],
            "d": [1, 0, 1, 1],
            "x": [1e20, 2e20, 1e20, 3.0],
            "k": [2**60 + 1, 2**60, 5, 2**60 + 1],
        }
    )
    c = tp.Cohort(
        big,
        time="t",
        event="d",
        covariates=["x", "k"],
        covariate_types={"x": "categorical", "k": "categorical"},
    )
    assert c.levels["x"] == ("3.0", "1e+20", "2e+20")  # numeric order, not lexicographic
    assert set(c.covariate_frame["x"].to_list()) == set(c.levels["x"])
    assert c.levels["k"] == ("5", str(2**60), str(2**60 + 1))
    assert c.covariate_frame["k"].to_list() == [str(2**60 + 1), str(2**60), "5", str(2**60 + 1)]


def test_pandas_frames_with_non_string_column_names() -> None:
    pdf = pd.DataFrame({0: [1.0, 2.0, 3.0], 1: [1, 0, 1]})
    c = tp.Cohort(pdf, time="0", event="1")
    assert c.n == 3 and c.time == "0"
