"""A target summary, its document and the cohorts behind it: every summary the package
writes is one it reads back, and every hand-made one it cannot use is named."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport.exceptions import DataError


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 11, 30])
def test_a_small_cohort_summary_reads_back(n: int) -> None:
    # the cumulative shares of every contribution summed past 1 by a rounding (1 + 2e-16),
    # so the package refused the summary it had just written
    rng = np.random.default_rng(n)
    for _ in range(4):
        frame = pl.DataFrame(
            {
                "time": rng.exponential(100.0, n) + 1.0,
                "event": rng.integers(0, 2, n),
                "age": rng.normal(60.0, 10.0, n),
                "stage": rng.choice(["I", "II", "III"], size=n, p=[0.1, 0.3, 0.6]),
            }
        )
        cohort = tp.Cohort(frame, time="time", event="event", covariates=["age", "stage"])
        summary = tp.TargetSummary.from_cohort(cohort, "age + stage")
        assert summary.concentration is not None
        assert np.nanmax(summary.concentration) <= 1.0
        again = tp.TargetSummary.from_dict(summary.to_dict())
        np.testing.assert_array_equal(again.mean, summary.mean)


@pytest.fixture(scope="module")
def km_document() -> dict[str, Any]:
    jp = tp.datasets.load_synthetic("JP")
    return tp.TargetSummary.from_cohort(jp, km_times=[91.3125, 182.625, 365.25]).to_dict()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("n_risk", ["x", 1, 2], r"'km' n_risk must be a list of counts"),  # released as text
        ("n_risk", "698", r"'km' n_risk must be a list of counts"),
        ("n_event", [-1, 0, 0], r"'km' n_event must be a list of counts"),
        ("n_censor", [True, 0, 0], r"'km' n_censor must be a list of counts"),
        ("conf_type", "banana", r"conf_type 'banana' is not one of"),
        ("conf_type", 3, r"conf_type must be the name"),
        ("delayed_entry", "no", r"delayed_entry must be true or false; got 'no'"),  # truthy
        ("survival_at", [0.9, 0.8, 0.7], r"unknown field\(s\) \['survival_at'\]"),
    ],
)
def test_a_hand_edited_life_table_is_named_on_reading(
    km_document: dict[str, Any], field: str, value: Any, named: str
) -> None:
    # n_risk = ["x", 1, 2] was read, transported and released as it stood; a misspelt
    # field was ignored, so the curve the user meant to give was not the one used
    document = copy.deepcopy(km_document)
    document["km"][field] = value
    with pytest.raises(DataError, match=named):
        tp.TargetSummary.from_dict(document)
    tp.TargetSummary.from_dict(km_document)  # the document as written is read
