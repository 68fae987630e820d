"""A target summary, its document and the cohorts behind it: every summary the package
writes is one it reads back, and every hand-made one it cannot use is named."""

from __future__ import annotations

import copy
from pathlib import Path
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


@pytest.fixture(scope="module")
def jp_summary() -> tp.TargetSummary:
    return tp.TargetSummary.from_cohort(tp.datasets.load_synthetic("JP"))


def _fields(s: tp.TargetSummary) -> dict[str, Any]:
    return {
        "name": s.name,
        "n": s.n,
        "time_unit": s.time_unit,
        "formula": s.formula,
        "columns": s.columns,
        "mean": list(s.mean),
        "sd": list(s.sd),
        "types": s.types,
        "levels": s.levels,
        "shares": s.shares,
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"mean": [float("nan")]}, r"mean of column 'age' is missing or not finite"),
        ({"sd": [float("inf")]}, r"SD of column 'age' must be finite"),
        ({"sd": [-1.0]}, r"SD of column 'age' must be finite and >= 0"),
        ({"n": 0}, r"field 'n' must be between 1"),
        ({"n": "800"}, r"n an integer"),
        ({"name": None}, r"name must be text"),
        ({"time_unit": "fortnights"}, r"time_unit 'fortnights' is not one of"),
    ],
)
def test_a_summary_built_in_python_is_checked_as_a_document_is(
    jp_summary: tp.TargetSummary, change: dict[str, Any], named: str
) -> None:
    # a nan mean reached entropy balancing (raw 'array must not contain infs or NaNs'),
    # an infinite SD, n = 0 or a unit no cohort has were transported as they stood
    fields = _fields(jp_summary)
    for key, value in change.items():
        fields[key] = value + fields[key][1:] if isinstance(value, list) else value
    with pytest.raises(DataError, match=named):
        tp.TargetSummary(**fields)


def test_shares_that_contradict_the_means_are_refused_in_python(
    jp_summary: tp.TargetSummary,
) -> None:
    fields = _fields(jp_summary)
    v = next(k for k, t in jp_summary.types.items() if t == "categorical")
    shares = fields["shares"][v]
    fields["shares"] = {**fields["shares"], v: tuple(reversed(shares))}
    if tuple(reversed(shares)) != tuple(shares):
        with pytest.raises(DataError, match=rf"covariate {v!r}|{v}"):
            tp.TargetSummary(**fields)
    again = tp.TargetSummary(**_fields(jp_summary))  # the summary as it is: accepted
    np.testing.assert_array_equal(again.mean, jp_summary.mean)


def test_a_summary_document_is_a_copy(km_document: dict[str, Any]) -> None:
    # to_dict handed out the summary's own life table: editing the document edited it
    summary = tp.TargetSummary.from_dict(copy.deepcopy(km_document))
    document = summary.to_dict()
    document["km"]["survival"][0] = 2.0
    assert summary.km is not None and summary.km["survival"][0] < 1


@pytest.mark.parametrize(
    ("where", "edit", "named"),
    [
        ("top", {"meen": [0.5]}, r"unknown field\(s\) \['meen'\]"),
        ("covariate", {"share": [1.0]}, r"covariate '\w+' has unknown field\(s\) \['share'\]"),
        ("top", {"version": True}, r"schema version True is not supported"),
        ("top", {"version": 1.0}, r"schema version 1.0 is not supported"),
    ],
)
def test_a_misspelt_or_mistyped_summary_field_is_refused(
    km_document: dict[str, Any], where: str, edit: dict[str, Any], named: str
) -> None:
    document = copy.deepcopy(km_document)
    target = document if where == "top" else next(iter(document["covariates"].values()))
    target.update(edit)
    with pytest.raises(DataError, match=named):
        tp.TargetSummary.from_dict(document)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"grid_stepp": 30.0}, r"unknown field\(s\) \['grid_stepp'\]"),
        ({"version": True}, r"schema version True is not supported"),
        ({"version": 2}, r"schema version 2 is not supported"),
    ],
)
def test_a_misspelt_shipped_model_field_is_refused(edit: dict[str, Any], named: str) -> None:
    model = tp.ShippedModel.fit(tp.datasets.load_synthetic("DE"))
    document = {**model.to_dict(), **edit}
    with pytest.raises(DataError, match=named):
        tp.ShippedModel.from_dict(document)
    tp.ShippedModel.from_dict(model.to_dict())


@pytest.mark.parametrize("where", ["directory", "no parent", "proc"])
def test_a_summary_or_model_written_where_it_cannot_be_is_named(
    tmp_path: Path, jp_summary: tp.TargetSummary, where: str
) -> None:
    path = {
        "directory": tmp_path,
        "no parent": tmp_path / "missing" / "s.json",
        "proc": Path("/proc/transport-summary.json"),
    }[where]
    with pytest.raises(DataError, match=r"summary file .* (is a directory|cannot be written)"):
        jp_summary.to_json(path)
    model = tp.ShippedModel.fit(tp.datasets.load_synthetic("DE"))
    with pytest.raises(DataError, match=r"shipped model file .*(is a directory|cannot be written)"):
        model.to_json(path)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written left


def test_a_summary_written_whole_reads_back(tmp_path: Path, jp_summary: tp.TargetSummary) -> None:
    path = jp_summary.to_json(tmp_path / "s.json")
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    np.testing.assert_array_equal(tp.TargetSummary.from_json(path).mean, jp_summary.mean)


def test_a_summary_is_written_through_a_link_and_keeps_the_files_mode(
    tmp_path: Path, jp_summary: tp.TargetSummary
) -> None:
    # writing a hidden piece and renaming it over the path replaced a symbolic link by a
    # file (the file it named left stale) and reset a file's mode to the umask's
    real = tmp_path / "real.json"
    real.write_text("{}")
    real.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    jp_summary.to_json(link)
    assert link.is_symlink() and oct(real.stat().st_mode & 0o777) == "0o600"
    np.testing.assert_array_equal(tp.TargetSummary.from_json(real).mean, jp_summary.mean)


def test_a_withheld_share_beside_its_visible_mean_is_refused(jp_summary: tp.TargetSummary) -> None:
    # shares withheld, the mean of sex[T.female] edited to 0.9: read and transported, S(365)
    # moved from 0.462 to 0.483; the gate never writes a share withheld beside its mean
    document = jp_summary.to_dict()
    document["covariates"]["sex"]["shares"] = [None, None]
    document["mean"][document["columns"].index("sex[T.female]")] = 0.9
    with pytest.raises(DataError, match=r"column 'sex\[T\.\w+\]' has mean .* withheld where"):
        tp.TargetSummary.from_dict(document)


def test_level_means_past_one_are_refused(jp_summary: tp.TargetSummary) -> None:
    document = jp_summary.to_dict()
    document["covariates"]["sex"].pop("pooled", None)
    j = document["columns"].index("sex[T.female]")
    document["mean"][j] = 1.3
    with pytest.raises(DataError, match=r"sex\[T\.female\]' has mean 1\.3 .* in \[0, 1\]"):
        tp.TargetSummary.from_dict(document)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"types": {"zz": "categorical"}}, r"KeyError: 'zz'"),
        ({"concentration": np.zeros((3, 3))}, r"TypeError"),
        ({"column_levels": [("x", "a")]}, r"ValueError: not enough values"),
        ({"suppressed": ["x"]}, r"ValueError: dictionary update"),
        ({"counts": [2.7]}, r"a count must be an integer; got 2\.7"),  # truncated to 2
        ({"mean": [10**400]}, r"OverflowError"),
    ],
)
def test_a_summary_field_of_the_wrong_kind_is_a_data_error(
    jp_summary: tp.TargetSummary, change: dict[str, Any], named: str
) -> None:
    fields = _fields(jp_summary)
    for key, value in change.items():
        if key == "types":
            fields["types"] = {**fields["types"], **value}
        elif isinstance(value, list) and key in ("mean", "counts"):
            fields[key] = (
                value * len(jp_summary.columns) if key == "counts" else value + fields[key][1:]
            )
        else:
            fields[key] = value
    with pytest.raises(DataError, match=rf"field of the wrong kind .*{named}"):
        tp.TargetSummary(**fields)


def test_shares_given_as_text_are_refused(jp_summary: tp.TargetSummary) -> None:
    fields = _fields(jp_summary)
    v = next(k for k, t in jp_summary.types.items() if t == "categorical")
    fields["shares"] = {**fields["shares"], v: tuple(str(x) for x in fields["shares"][v])}
    with pytest.raises(DataError, match=r"a share must be a number or None"):
        tp.TargetSummary(**fields)


def test_numpy_counts_are_counts(jp_summary: tp.TargetSummary) -> None:
    fields = _fields(jp_summary)
    cells = [np.int64(3)] * len(jp_summary.columns)
    assert tp.TargetSummary(**fields, value_cells=cells).value_cells == (3,) * len(cells)
