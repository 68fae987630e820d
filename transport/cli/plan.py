"""Analysis plans: reading and checking them, the cohorts and the disclosure policy they
name, and writing a plan (or any table-of-tables document) back as TOML.

The lowest module of :mod:`transport.cli`: :mod:`transport.cli.run` and
:mod:`transport.cli.study` build on it, and it imports neither.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from transport import _validate as v
from transport.cohort import TIME_UNITS
from transport.inference import MAX_WORKERS
from transport.methods import METHODS, SUMMARY_METHODS, idle_options, options_read

__all__ = [
    "ANALYSIS_KEYS",
    "PlanError",
    "check_plan",
    "dump_plan",
    "dump_toml",
    "load_cohort",
    "load_plan",
    "policy_from_plan",
    "read_frame",
    "read_summary",
    "reject_unknown",
    "resolve_path",
]

_COHORT_KEYS = {
    "dataset",
    "path",
    "summary",
    "time",
    "event",
    "covariates",
    "identifiers",
    "entry",
    "name",
    "time_unit",
    "na_action",
    "covariate_types",
    "outcome",
}
#: The keys of a plan's ``[analysis]`` table.
ANALYSIS_KEYS = {
    "source",
    "targets",
    "methods",
    "times",
    "tau",
    "formula",
    "outcome_formula",
    "outcome_model",
    "margin",
    "window",
    "n_boot",
    "seed",
    "n_jobs",
    "ci_level",
    "moments",
    "censoring",
    "ties",
    "time_unit",
}
#: Most bootstrap replicates and analysis times a plan may ask for (a plan is text that
#: may come from another environment; the Python API has no such bound).
PLAN_MAX_BOOT = 100_000
PLAN_MAX_TIMES = 1_000
_PLAN_KEYS = {"title", "cohorts", "analysis", "output", "disclosure"}
#: Longest plan title (it heads the report and the run's record).
MAX_TITLE = 200


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class PlanError(ValueError):
    """A plan that cannot be run: the message names the key and the rule."""


def reject_unknown(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Raise :class:`PlanError` if ``given`` (a table of a plan or study file, found at
    ``where``) has keys outside ``allowed``.

    >>> reject_unknown({"directory": "out", "dir": "out"}, {"directory"}, "[output]")
    Traceback (most recent call last):
    ...
    transport.cli.plan.PlanError: [output] has unknown key(s) ['dir'] (allowed: ['directory'])
    """
    extra = sorted(set(given) - allowed)
    if extra:
        raise PlanError(f"{where} has unknown key(s) {extra} (allowed: {sorted(allowed)})")


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read and check an analysis plan (TOML). Relative paths in it are taken from the
    plan's directory. See ``transport run --help`` for the keys."""
    path = Path(path)
    plan = read_toml(path, "plan")
    plan["_base"] = str(path.resolve().parent)
    return check_plan(plan)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` (a ``what``: "plan", "study file"), refused by name when it
    is no file, not text or not TOML (the error names the file, the line and column)."""
    if not path.exists() or path.is_dir():  # a pipe (<(...), /dev/stdin) is read
        raise PlanError(f"{what} {str(path)!r} does not exist or is a directory")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError:
        raise PlanError(f"{what} {str(path)!r} is not a text file (rule: TOML in UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{what} {str(path)!r} is not valid TOML: {exc}") from None


#: What a plan's text values must be (a plan is text from another environment; a value
#: of another type is named, never met later as a crash).
_TEXT, _NAMES = "a string", "a list of strings"
#: The keys each kind of cohort reads (a synthetic dataset, a file, a released summary).
_KIND_KEYS = {
    "dataset": {"dataset", "outcome", "time_unit"},
    "path": _COHORT_KEYS - {"dataset", "summary", "outcome"},
    "summary": {"summary"},
}
_COHORT_TYPES = {
    **dict.fromkeys(
        ("dataset", "path", "summary", "time", "event", "entry", "name", "time_unit"), _TEXT
    ),
    **dict.fromkeys(("na_action", "outcome"), _TEXT),
    **dict.fromkeys(("covariates", "identifiers"), _NAMES),
    "covariate_types": "a table of strings",
}
_ANALYSIS_TYPES = {
    **dict.fromkeys(("source", "formula", "outcome_formula"), _TEXT),
    **dict.fromkeys(("targets", "methods"), "a string or a list of strings"),
}


def _is(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if kind == "a table of strings":
        return isinstance(value, dict) and all(isinstance(x, str) for x in value.values())
    names = isinstance(value, list) and all(isinstance(x, str) for x in value)
    return names or (kind != _NAMES and isinstance(value, str))


def _check_types(table: Mapping[str, Any], kinds: Mapping[str, str], where: str) -> None:
    for key, kind in kinds.items():
        if key in table and not _is(table[key], kind):
            raise PlanError(f"{where} {key!r} must be {kind}; got {table[key]!r:.60}")


def _check_title(title: Any) -> None:
    if not isinstance(title, str) or len(title) > MAX_TITLE or "\n" in title:
        raise PlanError(
            f"the plan's title must be one line of text of at most {MAX_TITLE} characters; "
            f"got {type(title).__name__} of length {len(title) if isinstance(title, str) else '?'}"
        )


def _check_cohorts(cohorts: Mapping[str, Any]) -> None:
    """Each ``[cohorts.<name>]`` table: a usable name, one kind (a synthetic dataset, a
    file, a released summary), the keys that kind reads and values of their types."""
    for name, spec in cohorts.items():
        if not _NAME.fullmatch(name):
            raise PlanError(
                f"cohort name {name!r} must be letters, digits, '_', '-' or '.' (rule: names "
                "become directory names)"
            )
        if not isinstance(spec, dict):
            raise PlanError(f"cohort {name!r} must be a table [cohorts.{name}]")
        reject_unknown(spec, _COHORT_KEYS, f"[cohorts.{name}]")
        _check_types(spec, _COHORT_TYPES, f"[cohorts.{name}]")
        given = [k for k in ("dataset", "path", "summary") if k in spec]
        if len(given) != 1:
            raise PlanError(
                f"[cohorts.{name}] needs exactly one of 'dataset', 'path' or 'summary' "
                f"(got {given or 'none'})"
            )
        if "dataset" in spec and "name" in spec:
            raise PlanError(
                f"[cohorts.{name}] a synthetic cohort is named by its country: 'name' applies "
                "to a cohort read from a file"
            )
        kind = given[0]
        idle = sorted(set(spec) - _KIND_KEYS[kind])
        if idle:  # a key the cohort's kind does not read would be ignored without a word
            raise PlanError(
                f"[cohorts.{name}] key(s) {idle} do not apply to a cohort given by {kind!r} "
                f"(rule: it reads {sorted(_KIND_KEYS[kind])})"
            )
        if "path" in spec and not {"time", "event"} <= set(spec):
            raise PlanError(f"[cohorts.{name}] reads a file: it needs 'time' and 'event'")


def check_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with its keys checked; raises :class:`PlanError` naming what is wrong."""
    if not isinstance(plan, dict):
        raise PlanError(f"a plan is a table of tables; got a {type(plan).__name__}")
    reject_unknown({k: v for k, v in plan.items() if k != "_base"}, _PLAN_KEYS, "the plan")
    _check_title(plan.get("title", ""))
    cohorts = plan.get("cohorts")
    if not isinstance(cohorts, dict) or not cohorts:
        raise PlanError("the plan has no [cohorts.<name>] tables (rule: at least a source)")
    _check_cohorts(cohorts)
    analysis = plan.get("analysis")
    if not isinstance(analysis, dict):
        raise PlanError("the plan has no [analysis] table")
    reject_unknown(analysis, ANALYSIS_KEYS, "[analysis]")
    for key in ("source", "targets", "methods"):
        if key not in analysis:
            raise PlanError(f"[analysis] needs {key!r}")
    _check_types(analysis, _ANALYSIS_TYPES, "[analysis]")
    if isinstance(analysis["targets"], str):
        analysis["targets"] = [analysis["targets"]]
    if isinstance(analysis["methods"], str):
        analysis["methods"] = [analysis["methods"]]
    for key in ("targets", "methods"):
        given = analysis[key]
        if not given or len(set(given)) != len(given):
            raise PlanError(
                f"[analysis] {key!r} must name at least one, each once; got {given!r:.80}"
            )
    for who in [analysis["source"], *analysis["targets"]]:
        if who not in cohorts:
            raise PlanError(
                f"[analysis] names cohort {who!r}, which has no [cohorts.{who}] table "
                f"(cohorts: {sorted(cohorts)})"
            )
    if "summary" in cohorts[analysis["source"]]:
        raise PlanError(
            f"the source {analysis['source']!r} is a summary: the source needs its rows"
        )
    for method in analysis["methods"]:
        if method not in METHODS:
            raise PlanError(f"[analysis] method {method!r} is not one of {list(METHODS)}")
        for who in analysis["targets"]:
            if "summary" in cohorts[who] and method not in SUMMARY_METHODS:
                raise PlanError(
                    f"target {who!r} is a released summary; method {method!r} needs the "
                    f"target's rows (rule: a summary-only target takes {list(SUMMARY_METHODS)})"
                )
    for key in ("times", "window"):
        if key in analysis and not isinstance(analysis[key], list):
            raise PlanError(f"[analysis] {key!r} must be a list of numbers")
    _check_analysis_values(analysis)
    _check_options_read(analysis)
    output = plan.get("output", {})
    if not isinstance(output, dict):
        raise PlanError("the plan's [output] must be a table")
    reject_unknown(output, {"directory"}, "[output]")
    if "directory" in output and not isinstance(output["directory"], str):
        raise PlanError("[output] directory must be a string")
    return plan


def resolve_path(base: str | None, p: str) -> Path:
    """``p`` taken from the directory ``base`` (a plan's or study file's), unless it is
    absolute or there is no base."""
    path = Path(p)
    return path if path.is_absolute() or base is None else Path(base) / path


def load_cohort(name: str, spec: Mapping[str, Any], base: str | None = None) -> Any:
    """A :class:`~transport.Cohort` (or, for ``summary = FILE``, a released
    :class:`~transport.TargetSummary`) from a plan's cohort table."""
    import transport as tp

    if "summary" in spec:
        return read_summary(resolve_path(base, spec["summary"]))
    if "dataset" in spec:
        kind, _, country = str(spec["dataset"]).partition(":")
        if kind != "synthetic" or not country:
            raise PlanError(
                f"[cohorts.{name}] dataset {spec['dataset']!r} is not 'synthetic:<country>' "
                "(countries US, UK, DE, JP)"
            )
        unit = spec.get("time_unit", "days")
        return tp.datasets.load_synthetic(
            country, outcome=spec.get("outcome", "os"), time_unit=unit
        )
    path = resolve_path(base, spec["path"])
    frame = read_frame(path)
    return tp.Cohort(
        frame,
        time=spec["time"],
        event=spec["event"],
        covariates=spec.get("covariates", ()),
        identifiers=spec.get("identifiers", ()),
        entry=spec.get("entry"),
        name=spec.get("name", name),
        time_unit=spec.get("time_unit", "days"),
        na_action=spec.get("na_action", "error"),
        covariate_types=spec.get("covariate_types"),
    )


def read_summary(path: Path) -> Any:
    """A released :class:`~transport.TargetSummary`: ``target_summary.json`` of the
    release directory ``path``, or the file ``path``. A summary inside a release
    directory (one with a manifest) is read only after the directory is verified
    and audited (:func:`transport.disclosure.verify`, as a release from another
    environment)."""
    import transport as tp
    from transport.disclosure import verify
    from transport.manifest import MANIFEST

    directory = path if path.is_dir() else path.parent
    if path.is_dir() or (directory / MANIFEST).exists():
        manifest = verify(directory, environment=False)
        name = "target_summary.json" if path.is_dir() else path.name
        if manifest["object"] != "TargetSummary" or name != "target_summary.json":
            raise PlanError(
                f"release {str(directory)!r} holds a {manifest['object']!r}; a plan's summary "
                "is the target_summary.json of a TargetSummary release"
            )
        path = directory / name
    return tp.TargetSummary.from_json(path)


def read_frame(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a polars frame."""
    if not path.is_file():
        raise FileNotFoundError(f"cohort file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".txt"):
        raise PlanError(f"cohort file {str(path)!r}: only .csv and .parquet are read")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        _check_header(path)
        return pl.read_csv(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        why = " ".join(str(exc).split())[:300]
        raise PlanError(f"cohort file {str(path)!r} cannot be read: {why}") from None


def _check_header(path: Path) -> None:
    """Refuse a CSV file that names a column twice: its reader would rename the second
    (``age_duplicated_0``) and the first would be used without a word."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    # an empty name is no column a cohort can use (a spreadsheet's trailing commas)
    twice = sorted(c for c, k in Counter(header).items() if k > 1 and c.strip())
    if twice:
        raise PlanError(
            f"cohort file {str(path)!r} names the column(s) {twice} more than once (rule: "
            "one column per name; rename or remove the copies)"
        )


def _choice(x: Any, *, name: str, allowed: tuple[Any, ...]) -> Any:
    return v.check_choice(x, name, allowed)


def _check_options_read(analysis: Mapping[str, Any]) -> None:
    """Refuse an option none of the plan's methods reads (``moments`` with only ``iow``):
    it would be ignored without a word. Each method is given the options it reads."""
    methods = analysis["methods"]
    idle = set.intersection(*(set(idle_options(m, analysis)) for m in methods))
    if idle:
        reads = {m: list(options_read(m, analysis.get("outcome_model", "cox"))) for m in methods}
        raise PlanError(
            f"[analysis] {sorted(idle)} would be ignored: no method of the plan reads "
            f"{'it' if len(idle) == 1 else 'them'} (they read {reads}); leave "
            f"{'it' if len(idle) == 1 else 'them'} out or add a method that reads "
            f"{'it' if len(idle) == 1 else 'them'}"
        )


def _check_analysis_values(analysis: Mapping[str, Any]) -> None:
    """The analysis settings under the rules transport() applies (:mod:`transport._validate`),
    checked before any cohort is read, so that a wrong value costs no loading."""
    checks = {
        "times": lambda x: v.check_times(x, "transport"),
        "tau": lambda x: v.check_tau(x, "transport"),
        "n_boot": v.check_n_boot,
        "n_jobs": v.check_n_jobs,
        "ci_level": v.check_ci_level,
        "window": v.check_window,
        "margin": lambda x: v.check_margins(x, v.ESTIMANDS),
        "seed": v.check_seed,
        "time_unit": lambda x: v.check_choice(x, "time_unit", tuple(TIME_UNITS)),
    }
    for name, allowed in v.OPTION_CHOICES.items():
        checks[name] = functools.partial(_choice, name=name, allowed=allowed)
    for key, check in checks.items():
        if key in analysis:
            try:
                check(analysis[key])
            except (ValueError, TypeError) as exc:
                raise PlanError(f"[analysis] {key!r}: {exc}") from None
    # a plan may come from another environment: it may not ask for unbounded work
    n_times = np.atleast_1d(np.asarray(analysis.get("times", []), dtype=float)).size
    bounds = {
        "n_boot": (analysis.get("n_boot", 0), PLAN_MAX_BOOT),
        "times": (n_times, PLAN_MAX_TIMES),
        "n_jobs": (analysis.get("n_jobs", 1), MAX_WORKERS),
    }
    for key, (value, most) in bounds.items():
        if value > most:
            raise PlanError(
                f"[analysis] {key!r} asks for {value}, more than {most} (rule: a plan asks "
                "for bounded work; run such an analysis from Python)"
            )


def policy_from_plan(plan: Mapping[str, Any], floor: Any = None) -> Any:
    """The disclosure :class:`~transport.disclosure.Policy` of a plan: the environment's
    policy ``floor`` (default :func:`transport.policy.environment_policy`: the file
    ``TRANSPORT_POLICY`` names, else the defaults), tightened by the plan's
    ``[disclosure]`` settings or by those of the file its ``policy = FILE`` names. A
    setting that loosens the floor is refused, naming the field, the floor's value and
    the plan's (rule ``policy_floor``)."""
    from transport.policy import Policy, environment_policy

    floor = environment_policy() if floor is None else floor
    spec = plan.get("disclosure")
    if spec is None:
        return floor
    if isinstance(spec, dict) and set(spec) == {"policy"}:
        if not isinstance(spec["policy"], str):
            raise PlanError(
                f"[disclosure] policy must be the name of a file; got {spec['policy']!r:.60}"
            )
        path = resolve_path(plan.get("_base"), spec["policy"])
        return floor.tightened(Policy.read_table(path), f"the plan's policy file {str(path)!r}")
    if not isinstance(spec, dict):
        raise PlanError("[disclosure] must be a table of policy settings or policy = FILE")
    reject_unknown(spec, set(Policy.__dataclass_fields__), "[disclosure]")
    return floor.tightened(spec, "the plan's [disclosure]")


# -- TOML out ------------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        raise PlanError("a plan value is None: leave the key out instead")
    raise PlanError(f"cannot write {type(v).__name__} to a plan")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_table(header: str, table: Mapping[str, Any]) -> list[str]:
    return [f"\n[{header}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())]


def dump_toml(
    doc: Mapping[str, Any],
    comment: str,
    tables: Sequence[str],
    groups: Sequence[str] = (),
) -> str:
    """``doc`` as TOML: the ``comment`` line, its ``title``, then each of ``tables``
    present in it as ``[table]``, then each entry of each of ``groups`` (required: a
    table of tables) as ``[group.name]``. Other keys are not written.

    >>> doc = {"title": "t", "run": {"n_jobs": 2}, "other": 1}
    >>> print(dump_toml(doc, "# a study", ["study", "run"]))
    # a study
    title = "t"
    <BLANKLINE>
    [run]
    n_jobs = 2
    <BLANKLINE>
    """
    lines = [comment]
    if "title" in doc:
        lines.append(f"title = {_toml_value(doc['title'])}")
    for table in tables:
        if table in doc:
            lines += _toml_table(table, doc[table])
    for group in groups:
        for name, spec in doc[group].items():
            lines += _toml_table(f"{group}.{_toml_key(name)}", spec)
    return "\n".join(lines) + "\n"


def dump_plan(plan: Mapping[str, Any]) -> str:
    """The plan as TOML (what :func:`load_plan` reads back)."""
    return dump_toml(
        plan,
        "# transport analysis plan: run with `transport run <this file> --out DIRECTORY`",
        ("analysis", "disclosure", "output"),
        ("cohorts",),
    )
