"""The disclosure policy and the release gate refuse bad input by name (issue 15): a
policy file read one way only, a policy method given the wrong kind of argument, a
release flag or directory that is no such thing, an operating system's refusal to write,
and a curve or summary edited by hand."""

from __future__ import annotations

import copy
import errno
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import transport as tp
import transport.staging
from transport.disclosure import Policy, release
from transport.exceptions import DataError
from transport.policy import coarsen_km, verify_release

P = Policy()


@pytest.fixture(scope="module")
def curve() -> tp.SurvivalCurve:
    return tp.kaplan_meier(tp.datasets.load_synthetic("UK"))


@pytest.fixture(scope="module")
def result() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tp.transport(
            tp.datasets.load_synthetic("US"),
            tp.datasets.load_synthetic("UK"),
            method="iow",
            times=[365.25],
        )


@pytest.fixture(scope="module")
def summary_dict() -> dict[str, Any]:
    summary = tp.TargetSummary.from_cohort(
        tp.datasets.load_synthetic("JP"), km_times=[100.0, 365.25, 730.5]
    )
    return summary.to_dict()


# -- a policy file states its settings one way --------------------------------------------
@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("min_cell = 20\n[disclosure]\nround_to = 10\n", r"\['min_cell'\]"),
        ("[analysis]\nsource = 'US'\n[disclosure]\nmin_cell = 20\n", r"\['analysis'\]"),
        ("name = 'TRE'\nmin_cell = 20\n[disclosure]\n", r"\['min_cell', 'name'\]"),
    ],
)
def test_settings_beside_a_disclosure_table_are_refused(
    tmp_path: Path, content: str, named: str
) -> None:
    """A top-level min_cell beside a [disclosure] table was silently dropped."""
    path = tmp_path / "policy.toml"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"policy\.toml.*{named} beside its \[disclosure\] table"):
        Policy.from_toml(path)
    with pytest.raises(DataError, match=r"beside its \[disclosure\] table"):
        Policy.read_table(path)  # what a plan's policy = FILE reads


@pytest.mark.parametrize(
    "content", ["min_cell = 20\nround_to = 10\n", "[disclosure]\nmin_cell = 20\nround_to = 10\n"]
)
def test_a_policy_file_at_one_level_is_read(tmp_path: Path, content: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(content)
    policy = Policy.from_toml(path)
    assert (policy.min_cell, policy.round_to) == (20, 10)


# -- time_unit comes with its km_grid_step, however a policy is read -------------------------
def test_time_unit_without_its_step_is_refused_as_tightened_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('time_unit = "months"\n')
    named = r"time_unit 'months' without km_grid_step"
    with pytest.raises(DataError, match=named):
        Policy.from_toml(path)
    with pytest.raises(DataError, match=named):
        Policy.from_dict({"time_unit": "months"})
    with pytest.raises(tp.DisclosureError, match=named):
        P.tightened({"time_unit": "months"}, "the plan")
    stated = Policy.from_dict({"time_unit": "months", "km_grid_step": 1.0})
    assert (stated.km_grid_step, stated.time_unit) == (1.0, "months")
    assert Policy.from_dict({"time_unit": "days"}) == P  # the default step is in days


# -- a policy's methods name the parameter they were given wrongly --------------------------
def _method_calls() -> dict[str, tuple[Callable[[], Any], str]]:
    grid_unit = r"'time_unit' parameter of Policy\.grid must be one of"
    last = r"'last' parameter of Policy\.grid must be a finite time >= 0"
    count = r"'x' parameter of Policy\.round_count must be a finite number"
    other = r"'other' parameter of Policy\.{} must be a Policy"
    settings = r"'settings' parameter of Policy\.tightened must be a table"
    calls: dict[str, tuple[Callable[[], Any], str]] = {
        "grid_step_in unknown unit": (
            lambda: P.grid_step_in("fortnights"),
            r"'time_unit' parameter of Policy\.grid_step_in must be one of",
        ),
        "grid_step_in None": (lambda: P.grid_step_in(None), r"'time_unit' .* Got None"),  # type: ignore[arg-type]
        "grid unknown unit": (lambda: P.grid(100.0, "fortnights"), grid_unit),
        "grid unit list": (lambda: P.grid(100.0, ["days"]), grid_unit),  # type: ignore[arg-type]
        "grid None": (lambda: P.grid(None, "days"), last),  # type: ignore[arg-type]
        "grid text": (lambda: P.grid("100", "days"), last + r".*Got str"),  # type: ignore[arg-type]
        "grid inf": (lambda: P.grid(math.inf, "days"), last + r".*Got inf"),
        "grid nan": (lambda: P.grid(math.nan, "days"), last + r".*Got nan"),
        "grid negative": (lambda: P.grid(-5.0, "days"), last),
        "grid bool": (lambda: P.grid(True, "days"), last),
        "round_count inf": (lambda: P.round_count(math.inf), count + r".*Got inf"),
        "round_count -inf": (lambda: P.round_count(-math.inf), count + r".*Got -inf"),
        "round_count nan": (lambda: P.round_count(math.nan), count + r".*Got nan"),
        "round_count text": (lambda: P.round_count("5"), count + r".*Got str"),  # type: ignore[arg-type]
        "round_count None": (lambda: P.round_count(None), count),  # type: ignore[arg-type]
        "round_count bool": (lambda: P.round_count(True), count + r".*Got bool"),
        "round_count list": (lambda: P.round_count([1]), count),  # type: ignore[arg-type]
        "round_count huge int": (lambda: P.round_count(10**400), count),
        "from_dict int key": (lambda: Policy.from_dict({5: 1}), r"key\(s\) that are no names"),  # type: ignore[dict-item]
        "from_dict mixed keys": (
            lambda: Policy.from_dict({5: 1, "min_cell": 20}),  # type: ignore[dict-item]
            r"key\(s\) that are no names: \[5\]",
        ),
        "tightened None": (lambda: P.tightened(None, "the plan"), settings + r".*Got NoneType"),  # type: ignore[arg-type]
        "tightened int": (lambda: P.tightened(5, "the plan"), settings + r".*Got int"),  # type: ignore[arg-type]
        "tightened list": (lambda: P.tightened([], "the plan"), settings),  # type: ignore[arg-type]
        "tightened where int": (
            lambda: P.tightened({}, 5),  # type: ignore[arg-type]
            r"'where' parameter of Policy\.tightened must be text",
        ),
        "refuse_looser where None": (
            lambda: P.refuse_looser(P, None),  # type: ignore[arg-type]
            r"'where' parameter of Policy\.refuse_looser must be text",
        ),
    }
    for method in ("refuse_looser", "loosened_by"):
        for name, value in (("dict", {}), ("None", None), ("int", 5)):
            args = (value, "the plan") if method == "refuse_looser" else (value,)
            calls[f"{method} {name}"] = (
                lambda m=method, a=args: getattr(P, m)(*a),  # type: ignore[misc]
                other.format(method) + rf".*Got {type(value).__name__}",
            )
    return calls


@pytest.mark.parametrize("case", sorted(_method_calls()))
def test_a_policy_method_names_its_parameter(case: str) -> None:
    call, named = _method_calls()[case]
    with pytest.raises(DataError, match=named):
        call()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"round_to": 10**400}, r"'round_to' must be an integer >= 1 \(at most 1e\+10\)"),
        ({"min_cell": True}, r"'min_cell' must be an integer >= 1"),
        ({"min_ess": 2.5}, r"'min_ess' must be None or an integer >= 1"),
        ({"km_grid_step": 10**400}, r"'km_grid_step' must be a finite number > 0"),
        ({"km_grid_step": "30"}, r"'km_grid_step' must be a finite number > 0"),
        ({"max_log_hazard_ratio": math.inf}, r"'max_log_hazard_ratio' must be a finite number"),
        ({"dominance_k": 10**400}, r"'dominance_k' must be a number in \(0, 1\]"),
        ({"dominance_n": np.float64(2.0)}, r"'dominance_n' must be an integer from 1"),
        ({"p_percent": "0.1"}, r"'p_percent' must be a number in \[0, 1\)"),
    ],
)
def test_a_policy_field_out_of_any_range_is_refused(fields: dict[str, Any], named: str) -> None:
    """Integers past the floats' range overflowed later (round_count), or in the check."""
    with pytest.raises(DataError, match=rf"Policy {named}"):
        Policy(**fields)


def test_numpy_numbers_and_paths_stay_valid_policy_settings(tmp_path: Path) -> None:
    policy = Policy(
        min_cell=np.int64(20),  # type: ignore[arg-type]
        round_to=np.int32(10),  # type: ignore[arg-type]
        dominance_n=np.int64(3),  # type: ignore[arg-type]
        km_grid_step=np.float32(7.0),  # type: ignore[arg-type]
        dominance_k=np.float64(0.8),
        signing_key_file=tmp_path / "key",  # type: ignore[arg-type]
    )
    assert policy.min_cell == 20 and type(policy.min_cell) is int
    assert type(policy.round_to) is int and type(policy.dominance_n) is int
    assert policy.km_grid_step == 7.0 and type(policy.km_grid_step) is float
    assert policy.signing_key_file == str(tmp_path / "key")
    assert Policy.from_dict(policy.to_dict()) == policy  # what a manifest carries
    assert P.round_count(np.int64(7)) == 5 and P.round_count(12.5) == 15
    assert P.grid(np.float64(100.0), "days")[-1] == pytest.approx(4 * 30.4375)


# -- a release's flags and directory ------------------------------------------------------
@pytest.mark.parametrize("overwrite", ["no", "yes", 1, 0, None, [True]])
def test_overwrite_must_be_a_bool(tmp_path: Path, curve: tp.SurvivalCurve, overwrite: Any) -> None:
    """overwrite="no" was truthy and replaced the earlier release."""
    out = tmp_path / "release"
    release(curve, out, P)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataError, match=r"'overwrite' parameter of release must be True or False"):
        release(curve, out, Policy(round_to=10), overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_numpy_bool_is_a_flag(tmp_path: Path, curve: tp.SurvivalCurve) -> None:
    out = tmp_path / "release"
    release(curve, out, P)
    manifest = release(curve, out, Policy(round_to=10), overwrite=np.bool_(True))
    assert manifest["policy"]["round_to"] == 10
    assert verify_release(out, environment=np.bool_(False))["object"] == "SurvivalCurve"


@pytest.mark.parametrize("environment", ["no", 0, None])
def test_verify_environment_must_be_a_bool(
    tmp_path: Path, curve: tp.SurvivalCurve, environment: Any
) -> None:
    release(curve, tmp_path / "release", P)
    with pytest.raises(DataError, match=r"'environment' parameter of verify_release must be"):
        verify_release(tmp_path / "release", environment=environment)


def test_coarsen_km_exact_values_must_be_a_bool() -> None:
    table = {"time": [30.0, 60.0], "n_event": [20.0, 20.0], "n_censor": [10.0, 10.0]}
    assert coarsen_km(table, 100.0, P).height == 2
    with pytest.raises(DataError, match=r"'exact_values' parameter must be True or False"):
        coarsen_km(table, 100.0, P, exact_values="no")  # type: ignore[arg-type]


@pytest.mark.parametrize("directory", ["", "   ", None, 5, b"out", "out\0put"])
def test_a_release_directory_that_is_no_path_is_named(
    curve: tp.SurvivalCurve, directory: Any
) -> None:
    """ "" was the working directory; None, 5 and a NUL byte gave raw TypeError/ValueError."""
    with pytest.raises(DataError, match=r"'directory' parameter of release must be the path"):
        release(curve, directory, P)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_release_into_proc_names_the_directory_and_the_reason(curve: tp.SurvivalCurve) -> None:
    with pytest.raises(
        DataError, match=r"release directory '/proc/x' cannot be written \(No such file"
    ):
        release(curve, "/proc/x", P)


def test_a_release_under_a_file_names_the_directory_and_the_reason(
    tmp_path: Path, curve: tp.SurvivalCurve
) -> None:
    (tmp_path / "afile").write_text("kept")
    with pytest.raises(DataError, match=r"afile/sub' cannot be written \(Not a directory\)"):
        release(curve, tmp_path / "afile" / "sub", P)
    assert (tmp_path / "afile").read_text() == "kept"


def test_a_release_onto_a_full_disk_names_the_directory_and_leaves_it_as_it_was(
    tmp_path: Path, curve: tp.SurvivalCurve, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transport.staging.os, "fsync", full)
    out = tmp_path / "release"
    with pytest.raises(DataError, match=r"release' cannot be written \(No space left on device\)"):
        release(curve, out, P)
    assert list(out.iterdir()) == []


def test_a_release_into_new_parents_still_works(tmp_path: Path, curve: tp.SurvivalCurve) -> None:
    out = tmp_path / "new" / "deeper" / "release"
    assert release(curve, str(out), P)["object"] == "SurvivalCurve"
    assert (out / "manifest.json").is_file()


# -- a summary's Kaplan–Meier table edited by hand -----------------------------------------
def _km_edits() -> dict[str, tuple[str, Any, str]]:
    counts = r"field '{}' must hold one finite number >= 0"
    edits: dict[str, tuple[str, Any, str]] = {
        "conf_type banana": ("conf_type", "banana", r"conf_type 'banana', not one of"),
        "conf_type null": ("conf_type", None, r"conf_type None, not one of"),
        "conf_type number": ("conf_type", 5, r"conf_type 5, not one of"),
    }
    for key in ("n_event", "n_censor"):
        for name, value in (("text", "text"), ("null", None), ("nulls", [None] * 3)):
            edits[f"{key} {name}"] = (key, value, counts.format(key))
        edits[f"{key} texts"] = (key, ["a"] * 3, counts.format(key))
        edits[f"{key} negative"] = (key, [-1, 2, 3], counts.format(key))
        edits[f"{key} bools"] = (key, [True] * 3, counts.format(key))
    return edits


@pytest.mark.parametrize("case", sorted(_km_edits()))
def test_a_hand_edited_summary_km_is_named_at_release(
    tmp_path: Path, summary_dict: dict[str, Any], case: str
) -> None:
    key, value, named = _km_edits()[case]
    data = copy.deepcopy(summary_dict)
    data["km"][key] = value
    if value != [None] * 3:  # nulls are counts withheld, which the reader accepts
        with pytest.raises(DataError, match=r"TargetSummary 'km'"):
            tp.TargetSummary.from_dict(data)  # a document is refused on reading
    summary = tp.TargetSummary.from_dict(copy.deepcopy(summary_dict))
    summary.km = {**summary.km, key: value}  # type: ignore[dict-item]  # and built in Python
    with pytest.raises(DataError, match=rf"Kaplan–Meier .*'JP'.*{named}"):
        release(summary, tmp_path / "out", P)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("time", ["100", "365.25", "730.5"], r"field 'time' must hold one finite number >= 0"),
        ("time", None, r"field 'time' must hold"),
        ("n_event", [1, 2], r"field 'n_event' must hold one finite number >= 0 per time \(3\)"),
        ("n_censor", np.array([1.0, np.nan, 2.0]), r"field 'n_censor' must hold"),
    ],
)
def test_a_summary_km_built_by_hand_is_named(
    tmp_path: Path, summary_dict: dict[str, Any], key: str, value: Any, named: str
) -> None:
    """A summary built in Python, past the document reader."""
    summary = tp.TargetSummary.from_dict(copy.deepcopy(summary_dict))
    summary.km = {**summary.km, key: value}  # type: ignore[dict-item]
    with pytest.raises(DataError, match=named):
        release(summary, tmp_path / "out", P)


# -- a curve or result edited by hand ------------------------------------------------------
@pytest.mark.parametrize(
    ("attr", "value", "named"),
    [
        ("conf_type", "banana", r"survival curve 'UK' has conf_type 'banana', not one of"),
        ("conf_type", None, r"has conf_type None"),
        ("conf_level", "0.95", r"has conf_level '0\.95', not a number in \(0, 1\)"),
        ("conf_level", None, r"has conf_level None"),
        ("conf_level", 1.5, r"has conf_level 1\.5"),
        ("name", 5, r"the SurvivalCurve's name must be text \(a cohort's name\); got int"),
    ],
)
def test_a_hand_edited_curve_is_named_at_release(
    tmp_path: Path, curve: tp.SurvivalCurve, attr: str, value: Any, named: str
) -> None:
    edited = copy.copy(curve)
    object.__setattr__(edited, attr, value)  # past the curve's immutability
    with pytest.raises(DataError, match=named):
        release(edited, tmp_path / "out", P)


@pytest.mark.parametrize("part", ["naive", "transported"])
@pytest.mark.parametrize(
    ("attr", "value", "named"),
    [("conf_type", "banana", r"conf_type 'banana'"), ("conf_level", None, r"conf_level None")],
)
def test_a_result_with_a_hand_edited_curve_is_named_at_release(
    tmp_path: Path, result: Any, part: str, attr: str, value: Any, named: str
) -> None:
    edited, piece = copy.copy(result), copy.copy(getattr(result, part))
    object.__setattr__(piece, attr, value)
    setattr(edited, part, piece)
    with pytest.raises(DataError, match=rf"the result's {part} curve has {named}"):
        release(edited, tmp_path / "out", P)


@pytest.mark.parametrize(("attr", "value"), [("source", 5), ("target", None)])
def test_a_result_whose_cohort_name_is_no_text_is_named(
    tmp_path: Path, result: Any, attr: str, value: Any
) -> None:
    """The gate claimed its own bug (RuntimeError: the layout it wrote)."""
    edited = copy.copy(result)
    setattr(edited, attr, value)
    with pytest.raises(DataError, match=rf"the TransportResult's {attr} must be text"):
        release(edited, tmp_path / "out", P)
