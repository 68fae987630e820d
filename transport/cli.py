"""The ``transport`` command.

``transport demo``
    The end-to-end analysis on the bundled synthetic cohorts: US to UK, DE and JP with
    every method, bootstrap intervals and diagnostics. Writes ``transport-demo/``: the
    HTML report, the tidy results (CSV and JSON), one release per result through the
    gate, the plan that reproduces the run (``transport run transport-demo/plan.toml``)
    and a manifest.
``transport run PLAN``
    An analysis plan (TOML: cohorts and their roles, source, targets, methods, times,
    tau, margin, bootstrap, seed, disclosure policy, output directory): the same outputs.
``transport summarize COHORT``
    Target side: a :class:`~transport.TargetSummary` of a cohort, with its Kaplan–Meier
    table on the policy's grid, released through the gate into a directory.
``transport simulate STUDY``
    A methods-validation study (TOML: scenarios, methods, replicates, seed, times, tau,
    bootstrap; backend, workers, checkpoint, Dask scheduler): the metrics table with
    Monte Carlo SEs, the replicates, and the HTML study report.
``transport release curve COHORT`` / ``transport release verify DIRECTORY``
    Release a cohort's Kaplan–Meier curve through the gate; check a release directory
    against its manifest before it is exported.

A cohort is a CSV or Parquet file with its roles given as options (``--time``,
``--event``, ``--covariates``, ...), or a bundled synthetic cohort, ``synthetic:JP``.
Errors are reported in one line naming the column, the rule and the rows (exit 2).

The run's own outputs (report, tidy results) are for the analyst inside the environment
the rows are in; what may leave is the ``release/`` directories, each written by
:func:`transport.disclosure.release` with its own manifest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from transport import manifest as manifests
from transport._version import __version__
from transport.manifest import MANIFEST, RUN_SCHEMA
from transport.methods import METHODS, SUMMARY_METHODS

__all__ = ["DEMO_PLAN", "load_plan", "main", "run_plan"]

RUN_MANIFEST = MANIFEST

#: The plan ``transport demo`` runs (cohorts from the bundled synthetic data).
DEMO_PLAN: dict[str, Any] = {
    "title": "transport demo: synthetic first-line advanced NSCLC, US to UK, DE and JP",
    "cohorts": {c: {"dataset": f"synthetic:{c}"} for c in ("US", "UK", "DE", "JP")},
    "analysis": {
        "source": "US",
        "targets": ["UK", "DE", "JP"],
        "methods": list(METHODS),
        "times": [182.625, 365.25, 730.5],
        "tau": 1095.75,
        "margin": {"survival": 0.05},
        "n_boot": 200,
        "seed": 20261122,
        "n_jobs": 2,
    },
    "output": {"directory": "transport-demo"},
}

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
_ANALYSIS_KEYS = {
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
}
_PLAN_KEYS = {"title", "cohorts", "analysis", "output", "disclosure"}


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class PlanError(ValueError):
    """A plan that cannot be run: the message names the key and the rule."""


# -- plans ---------------------------------------------------------------------------------
def _unknown(given: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise PlanError(f"{where} has unknown key(s) {extra} (allowed: {sorted(allowed)})")


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read and check an analysis plan (TOML). Relative paths in it are taken from the
    plan's directory. See ``transport run --help`` for the keys."""
    path = Path(path)
    with path.open("rb") as fh:
        plan = tomllib.load(fh)
    plan["_base"] = str(path.resolve().parent)
    return check_plan(plan)


def check_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with its keys checked; raises :class:`PlanError` naming what is wrong."""
    _unknown({k: v for k, v in plan.items() if k != "_base"}, _PLAN_KEYS, "the plan")
    cohorts = plan.get("cohorts")
    if not isinstance(cohorts, dict) or not cohorts:
        raise PlanError("the plan has no [cohorts.<name>] tables (rule: at least a source)")
    for name, spec in cohorts.items():
        if not _NAME.fullmatch(name):
            raise PlanError(
                f"cohort name {name!r} must be letters, digits, '_', '-' or '.' (rule: names "
                "become directory names)"
            )
        if not isinstance(spec, dict):
            raise PlanError(f"cohort {name!r} must be a table [cohorts.{name}]")
        _unknown(spec, _COHORT_KEYS, f"[cohorts.{name}]")
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
        if "path" in spec and not {"time", "event"} <= set(spec):
            raise PlanError(f"[cohorts.{name}] reads a file: it needs 'time' and 'event'")
    analysis = plan.get("analysis")
    if not isinstance(analysis, dict):
        raise PlanError("the plan has no [analysis] table")
    _unknown(analysis, _ANALYSIS_KEYS, "[analysis]")
    for key in ("source", "targets", "methods"):
        if key not in analysis:
            raise PlanError(f"[analysis] needs {key!r}")
    if isinstance(analysis["targets"], str):
        analysis["targets"] = [analysis["targets"]]
    if isinstance(analysis["methods"], str):
        analysis["methods"] = [analysis["methods"]]
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
    output = plan.get("output", {})
    _unknown(output, {"directory"}, "[output]")
    if "directory" in output and not isinstance(output["directory"], str):
        raise PlanError("[output] directory must be a string")
    return plan


def _resolve(base: str | None, p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() or base is None else Path(base) / path


def load_cohort(name: str, spec: Mapping[str, Any], base: str | None = None) -> Any:
    """A :class:`~transport.Cohort` (or, for ``summary = FILE``, a released
    :class:`~transport.TargetSummary`) from a plan's cohort table."""
    import transport as tp

    if "summary" in spec:
        return tp.TargetSummary.from_json(_resolve(base, spec["summary"]))
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
    path = _resolve(base, spec["path"])
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


def read_frame(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a polars frame."""
    if not path.is_file():
        raise FileNotFoundError(f"cohort file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pl.read_csv(path, infer_schema_length=None)
    raise PlanError(f"cohort file {str(path)!r}: only .csv and .parquet are read")


def _policy(plan: Mapping[str, Any]) -> Any:
    from transport.disclosure import Policy

    spec = plan.get("disclosure")
    if spec is None:
        return Policy()
    if isinstance(spec, dict) and set(spec) == {"policy"}:
        return Policy.from_toml(_resolve(plan.get("_base"), spec["policy"]))
    if not isinstance(spec, dict):
        raise PlanError("[disclosure] must be a table of policy settings or policy = FILE")
    fields = dict(spec)
    for key in ("forbidden_roles", "forbidden_names"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = tuple(fields[key])
    _unknown(fields, set(Policy.__dataclass_fields__), "[disclosure]")
    return Policy(**fields)


# -- running -------------------------------------------------------------------------------
def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _check_output(directory: Path, overwrite: bool) -> None:
    """The output directory is new or empty; or, with ``overwrite``, holds an earlier
    run's output and nothing else (every file listed in its run manifest). Nothing is
    deleted here: a run writes into a temporary sibling and replaces the directory only
    when it has finished."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"output {str(directory)!r} exists and is not a directory")
    present = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    if not present and not any(directory.iterdir()):
        return
    listed = manifests.listed(directory, RUN_SCHEMA)
    if not overwrite or listed is None:
        raise FileExistsError(
            f"output directory {str(directory)!r} is not empty: a run writes into an empty "
            "directory (--overwrite replaces an earlier run's output there)"
        )
    others = sorted(present - listed)
    if others:
        raise FileExistsError(
            f"output directory {str(directory)!r} holds files that are not an earlier run's "
            f"output ({others[:3]}{' ...' if len(others) > 3 else ''}): --overwrite replaces "
            "only a directory of run output; choose another --out"
        )


def _swap_in(tmp: Path, directory: Path, overwrite: bool) -> None:
    _check_output(directory, overwrite)  # again: the directory may have changed meanwhile
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)


def run_plan(
    plan: dict[str, Any],
    directory: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> dict[str, Any]:
    """Run a checked plan and write its outputs; returns the run manifest.

    Writes ``report.html``; ``results/`` (the report's tables as CSV, and all of them in
    ``results.json``); ``release/<source>-<target>-<method>/`` (each result through the
    release gate under the plan's policy); ``plan.toml`` (the plan as run); and
    ``manifest.json`` (SHA-256 of every file, settings, versions).
    """
    import transport as tp

    quiet = not progress
    bars = progress and sys.stderr.isatty()  # replicate counters only on a terminal
    plan = check_plan(plan)
    out = Path(directory or plan.get("output", {}).get("directory", "transport-output"))
    _check_output(out, overwrite)
    policy = _policy(plan)
    a = plan["analysis"]
    base = plan.get("_base")
    names = [a["source"], *a["targets"]]
    cohorts = {n: load_cohort(n, plan["cohorts"][n], base) for n in names}
    source = cohorts[a["source"]]
    targets = {n: cohorts[n] for n in a["targets"]}
    kw = {k: a[k] for k in _ANALYSIS_KEYS - {"source", "targets", "methods", "margin"} if k in a}
    margin = a.get("margin")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for i, method in enumerate(a["methods"], start=1):
        _say(
            f"[{i}/{len(a['methods'])}] {method}: {a['source']} -> {', '.join(a['targets'])}", quiet
        )
        t0 = time.perf_counter()
        results[method] = tp.transport(
            source, targets, method=method, margin=margin, progress=bars, **kw
        )
        _say(f"      done in {time.perf_counter() - t0:.1f} s", quiet)
    settings = {
        "plan": plan.get("title", "analysis plan"),
        "methods": list(a["methods"]),
        "formula": a.get("formula") or "main effects of every covariate",
        "outcome_model": a.get("outcome_model", "cox"),
        "seed": a.get("seed"),
        "n_boot": a.get("n_boot", 0),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    try:
        manifest = _write_outputs(
            tmp, plan, results, policy, settings, figures, quiet, time.perf_counter() - started
        )
        _swap_in(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _say(f"wrote {out / 'report.html'} ({len(manifest['files'])} files)", quiet)
    return manifest


def _write_outputs(
    out: Path,
    plan: dict[str, Any],
    results: dict[str, Any],
    policy: Any,
    settings: dict[str, Any],
    figures: bool,
    quiet: bool,
    seconds: float,
) -> dict[str, Any]:
    from transport.disclosure import release
    from transport.report import tidy_tables, versions, write_report

    a = plan["analysis"]
    _say("writing the report and the tidy results", quiet)
    write_report(
        results,
        out / "report.html",
        title=plan.get("title"),
        settings=settings,
        policy=policy,
        figures=figures,
    )
    tables = tidy_tables(results, policy=policy)
    res_dir = out / "results"
    res_dir.mkdir()
    for key, frame in tables.items():
        frame.write_csv(res_dir / f"{key}.csv", float_precision=None)
    (res_dir / "results.json").write_text(
        json.dumps(
            {k: _records(v) for k, v in tables.items()}, indent=1, allow_nan=False, default=str
        )
        + "\n"
    )
    _say("releasing each result through the gate", quiet)
    releases: list[dict[str, Any]] = []
    for method, by_target in results.items():
        for target, res in by_target.items():
            rdir = out / "release" / f"{a['source']}-{target}-{method}"
            m = release(res, rdir, policy)
            releases.append(
                {"directory": str(rdir.relative_to(out)), "withheld": len(m["suppressed"])}
            )
    (out / "plan.toml").write_text(dump_plan(_portable(plan)))
    manifest = {
        "schema": RUN_SCHEMA,
        "version": 1,
        "title": plan.get("title"),
        "settings": settings,
        "policy": policy.to_dict(),
        "versions": versions(),
        "seconds": round(seconds, 1),
        "releases": releases,
        "files": manifests.entries(out),
        "note": "the report and results/ stay in the environment of the rows; only the "
        "release/ directories, each with its own manifest, may leave",
    }
    manifests.write(out, manifest)
    return manifest


def _portable(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as run, to be saved with its output: file paths made absolute (the saved
    plan lives elsewhere than the original), no output directory."""
    base = plan.get("_base")
    out: dict[str, Any] = {k: v for k, v in plan.items() if k not in ("output", "_base")}
    out["cohorts"] = {
        name: {
            k: str(_resolve(base, v).resolve()) if k in ("path", "summary") else v
            for k, v in spec.items()
        }
        for name, spec in plan["cohorts"].items()
    }
    spec = plan.get("disclosure")
    if isinstance(spec, dict) and set(spec) == {"policy"}:
        out["disclosure"] = {"policy": str(_resolve(base, spec["policy"]).resolve())}
    return out


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame, JSON-safe: NaN and infinities (a ratio to an S of 0) as null."""
    return [_finite(r) for r in frame.to_dicts()] if frame.height else []


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


def dump_plan(plan: Mapping[str, Any]) -> str:
    """The plan as TOML (what :func:`load_plan` reads back)."""
    lines = ["# transport analysis plan: run with `transport run <this file> --out DIRECTORY`"]
    if "title" in plan:
        lines.append(f"title = {_toml_value(plan['title'])}")
    for section in ("analysis", "disclosure", "output"):
        if section in plan:
            lines.append(f"\n[{section}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plan[section].items()]
    for name, spec in plan["cohorts"].items():
        lines.append(f"\n[cohorts.{_toml_key(name)}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in spec.items()]
    return "\n".join(lines) + "\n"


# -- simulation studies ---------------------------------------------------------------------
_STUDY_KEYS = {
    "scenarios",
    "methods",
    "n_reps",
    "seed",
    "times",
    "tau",
    "time_unit",
    "n_boot",
    "ci_level",
}
_RUN_KEYS = {"backend", "n_jobs", "checkpoint", "scheduler"}


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a study file (TOML): ``title``; ``[study]`` with ``scenarios``,
    ``methods``, ``n_reps``, ``seed``, ``times``, ``tau``, ``time_unit``, ``n_boot``,
    ``ci_level`` (the arguments of :class:`transport.simulate.Study`); ``[run]`` with
    ``backend`` ("processes" or "dask"), ``n_jobs``, ``checkpoint`` (a directory, so an
    interrupted study resumes) and ``scheduler`` (the address of an existing Dask
    scheduler); ``[output]`` with ``directory``."""
    path = Path(path)
    with path.open("rb") as fh:
        plan = tomllib.load(fh)
    _unknown(plan, {"title", "study", "run", "output"}, "the study file")
    study = plan.get("study")
    if not isinstance(study, dict):
        raise PlanError("the study file has no [study] table")
    _unknown(study, _STUDY_KEYS, "[study]")
    _unknown(plan.get("run", {}), _RUN_KEYS, "[run]")
    _unknown(plan.get("output", {}), {"directory"}, "[output]")
    plan["_base"] = str(path.resolve().parent)
    return plan


def run_study(
    plan: dict[str, Any],
    directory: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a checked study file; write ``metrics.csv``, ``replicates.parquet``,
    ``report.html``, ``study.toml`` (as run) and ``manifest.json``; return the manifest."""
    from transport.report import versions
    from transport.simulate import Study
    from transport.study_report import write_study_report

    out = Path(directory)
    _check_output(out, overwrite)
    spec = dict(plan["study"])
    if "scenarios" in spec:
        spec["scenario"] = spec.pop("scenarios")
    study = Study(**spec)
    run = dict(plan.get("run", {}))
    client = None
    if "scheduler" in run:
        from distributed import Client

        client = Client(run.pop("scheduler"))
        run["backend"] = "dask"
    checkpoint = run.pop("checkpoint", None)
    if checkpoint is not None:
        checkpoint = _resolve(plan.get("_base"), checkpoint)
    started = time.perf_counter()
    try:
        result = study.run(
            client=client, checkpoint=checkpoint, progress=progress and sys.stderr.isatty(), **run
        )
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - started
    _say(
        f"{result.replicates.height} rows from {study.n_reps} replicates in {seconds:.1f} s",
        not progress,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        metrics = result.metrics()
        metrics.write_csv(tmp / "metrics.csv", float_precision=None)
        result.replicates.write_parquet(tmp / "replicates.parquet")
        write_study_report(result, tmp / "report.html", title=plan.get("title"))
        saved = {k: v for k, v in plan.items() if k not in ("_base", "output")}
        if checkpoint is not None:
            saved["run"] = {**saved.get("run", {}), "checkpoint": str(Path(checkpoint).resolve())}
        (tmp / "study.toml").write_text(_dump_tables(saved))
        manifest = {
            "schema": RUN_SCHEMA,
            "version": 1,
            "title": plan.get("title"),
            "study": study.config(),
            "n_reps": study.n_reps,
            "versions": versions(),
            "seconds": round(seconds, 1),
            "files": manifests.entries(tmp),
        }
        manifests.write(tmp, _finite(manifest))
        _swap_in(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _dump_tables(plan: Mapping[str, Any]) -> str:
    lines = ["# transport simulation study: run with `transport simulate <this file> --out DIR`"]
    if "title" in plan:
        lines.append(f"title = {_toml_value(plan['title'])}")
    for section in ("study", "run"):
        if section in plan:
            lines.append(f"\n[{section}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plan[section].items()]
    return "\n".join(lines) + "\n"


def cmd_simulate(args: argparse.Namespace) -> int:
    plan = load_study(args.study)
    default = f"{Path(args.study).stem}-output"
    out = args.out or _resolve(plan["_base"], plan.get("output", {}).get("directory", default))
    if args.n_jobs is not None:
        plan.setdefault("run", {})["n_jobs"] = args.n_jobs
    run_study(plan, out, overwrite=args.overwrite, progress=not args.quiet)
    print(f"metrics: {Path(out) / 'metrics.csv'}")
    print(f"report: {Path(out) / 'report.html'}")
    return 0


# -- commands ------------------------------------------------------------------------------
def _cohort_from_args(args: argparse.Namespace) -> Any:
    spec: dict[str, Any]
    if args.cohort.startswith("synthetic:"):
        spec = {"dataset": args.cohort}
    else:
        if not args.time or not args.event:
            raise PlanError(f"cohort file {args.cohort!r} needs --time and --event")
        spec = {"path": args.cohort, "time": args.time, "event": args.event}
        if args.covariates:
            spec["covariates"] = _split(args.covariates)
        if args.identifiers:
            spec["identifiers"] = _split(args.identifiers)
        if args.entry:
            spec["entry"] = args.entry
        if args.na_action:
            spec["na_action"] = args.na_action
    if args.time_unit:
        spec["time_unit"] = args.time_unit
    if args.name:
        spec["name"] = args.name
    name = args.name or Path(args.cohort).stem.replace("synthetic:", "")
    return load_cohort(name, spec, str(Path.cwd()))


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _load_policy(path: str | None) -> Any:
    from transport.disclosure import Policy

    return Policy() if path is None else Policy.from_toml(path)


def _print_manifest(manifest: Mapping[str, Any], directory: Path) -> None:
    files = ", ".join(e["file"] for e in manifest["files"])
    print(f"released to {directory}: {files} (+ manifest.json)")
    rules: dict[str, int] = {}
    for s in manifest["suppressed"]:
        rules[s["rule"]] = rules.get(s["rule"], 0) + 1
    if rules:
        print("withheld: " + ", ".join(f"{n} under {r}" for r, n in sorted(rules.items())))
    else:
        print("withheld: nothing")


def cmd_demo(args: argparse.Namespace) -> int:
    plan = json.loads(json.dumps(DEMO_PLAN))
    a = plan["analysis"]
    if args.n_boot is not None:
        a["n_boot"] = args.n_boot
    if args.methods:
        a["methods"] = _split(args.methods)
    if args.n_jobs is not None:
        a["n_jobs"] = args.n_jobs
    a["seed"] = args.seed
    out = Path(args.out)
    plan["output"]["directory"] = str(out)
    run_plan(
        plan, out, overwrite=args.overwrite, progress=not args.quiet, figures=not args.no_figures
    )
    print(f"report: {out / 'report.html'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    default = f"{Path(args.plan).stem}-output"
    out = args.out or _resolve(plan["_base"], plan.get("output", {}).get("directory", default))
    run_plan(
        plan, out, overwrite=args.overwrite, progress=not args.quiet, figures=not args.no_figures
    )
    print(f"report: {Path(out) / 'report.html'}")
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    import transport as tp
    from transport.disclosure import release

    cohort = _cohort_from_args(args)
    policy = _load_policy(args.policy)
    km_times = None
    if args.km_every < 1:
        raise PlanError(f"--km-every must be a whole number >= 1; got {args.km_every}")
    if not args.no_km:
        grid = policy.grid(float(cohort.time_values.max()), cohort.time_unit)
        km_times = grid[args.km_every - 1 :: args.km_every]
    summary = tp.TargetSummary.from_cohort(cohort, args.formula, km_times=km_times)
    out = Path(args.out)
    manifest = release(summary, out, policy, overwrite=args.overwrite)
    _print_manifest(manifest, out)
    return 0


def cmd_release_curve(args: argparse.Namespace) -> int:
    import transport as tp
    from transport.disclosure import release

    cohort = _cohort_from_args(args)
    policy = _load_policy(args.policy)
    out = Path(args.out)
    manifest = release(tp.kaplan_meier(cohort), out, policy, overwrite=args.overwrite)
    _print_manifest(manifest, out)
    return 0


def cmd_release_verify(args: argparse.Namespace) -> int:
    from transport.disclosure import verify

    manifest = verify(args.directory)
    print(
        f"{args.directory}: {len(manifest['files'])} file(s) match manifest.json "
        f"({manifest['object']} {manifest['name']!r}, policy {manifest['policy']['name']!r})"
    )
    return 0


def _cohort_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("cohort", help="a .csv or .parquet file, or synthetic:<US|UK|DE|JP>")
    p.add_argument("--time", help="follow-up time column")
    p.add_argument("--event", help="event indicator column (1 event, 0 censored)")
    p.add_argument("--covariates", help="comma-separated covariate columns")
    p.add_argument("--identifiers", help="comma-separated identifier columns (never output)")
    p.add_argument("--entry", help="delayed-entry time column")
    p.add_argument("--name", help="cohort name (default: the file's stem)")
    p.add_argument("--time-unit", choices=["days", "weeks", "months", "years"])
    p.add_argument("--na-action", choices=["error", "drop"])
    p.add_argument("--policy", help="disclosure policy (TOML; default: the package defaults)")
    p.add_argument("--out", required=True, help="release directory (must be empty)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier release")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transport",
        description="Transport real-world survival from one country's cohort to another's "
        "patient mix, and test whether it transports.",
    )
    parser.add_argument("--version", action="version", version=f"transport {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the end-to-end analysis on the synthetic cohorts")
    demo.add_argument("--out", default="transport-demo", help="output directory")
    demo.add_argument("--n-boot", type=int, help="bootstrap replicates (default 200)")
    demo.add_argument("--methods", help="comma-separated subset of the five methods")
    demo.add_argument("--n-jobs", type=int, help="worker processes (default 2)")
    demo.add_argument("--seed", type=int, default=DEMO_PLAN["analysis"]["seed"])
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run an analysis plan (TOML)")
    run.add_argument("plan", help="the plan file")
    run.add_argument("--out", help="output directory (default: the plan's [output])")
    run.set_defaults(func=cmd_run)
    for p in (demo, run):
        p.add_argument("--overwrite", action="store_true", help="replace an earlier run")
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")
        p.add_argument("--no-figures", action="store_true", help="tables only (faster)")

    sim = sub.add_parser("simulate", help="run a methods-validation study (TOML)")
    sim.add_argument("study", help="the study file")
    sim.add_argument("--out", help="output directory (default: the file's [output])")
    sim.add_argument("--n-jobs", type=int, help="worker processes (overrides [run] n_jobs)")
    sim.add_argument("--overwrite", action="store_true", help="replace an earlier run")
    sim.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sim.set_defaults(func=cmd_simulate)

    summ = sub.add_parser("summarize", help="target side: release a TargetSummary")
    _cohort_options(summ)
    summ.add_argument("--formula", help="formulaic right-hand side (default: main effects)")
    summ.add_argument("--no-km", action="store_true", help="leave the Kaplan–Meier table out")
    summ.add_argument(
        "--km-every",
        type=int,
        default=3,
        help="Kaplan–Meier at every k-th grid time (default 3: quarterly)",
    )
    summ.set_defaults(func=cmd_summarize)

    rel = sub.add_parser("release", help="release a curve, or verify a release directory")
    rsub = rel.add_subparsers(dest="what", required=True)
    curve = rsub.add_parser("curve", help="a cohort's Kaplan–Meier curve, on the grid")
    _cohort_options(curve)
    curve.set_defaults(func=cmd_release_curve)
    ver = rsub.add_parser("verify", help="check a release directory against its manifest")
    ver.add_argument("directory")
    ver.set_defaults(func=cmd_release_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transport`` command; returns the exit status."""
    from transport.exceptions import DisclosureError, TransportError

    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        status: int = args.func(args)
    except (
        PlanError,
        TransportError,
        DisclosureError,
        OSError,
        tomllib.TOMLDecodeError,
        ValueError,
        TypeError,
        pl.exceptions.PolarsError,
    ) as exc:
        if os.environ.get("TRANSPORT_DEBUG"):
            raise
        kind = type(exc).__name__
        print(f"transport: {kind}: {exc}", file=sys.stderr)
        return 2
    return status


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"transport: warning: {category.__name__}: {message}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
