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
``transport release curve COHORT`` / ``transport release verify DIRECTORY [--key-file K]``
    Release a cohort's Kaplan–Meier curve through the gate; check a release directory
    against its manifest, its content against the policy it states, and (with the
    environment's release key) its signature, before it is exported.

The environment's disclosure policy (``--policy FILE``, else the file ``TRANSPORT_POLICY``
names, else the defaults) is a floor: a plan's ``[disclosure]`` may tighten it, never
loosen it.

A cohort is a CSV or Parquet file with its roles given as options (``--time``,
``--event``, ``--covariates``, ...), or a bundled synthetic cohort, ``synthetic:JP``.
Errors are reported in one line naming the column, the rule and the rows (exit 2).

The run's own outputs (report, tidy results) are for the analyst inside the environment
the rows are in; what may leave is the ``release/`` directories, each written by
:func:`transport.disclosure.release` with its own manifest.

The commands are here; plans are read, checked and written in :mod:`transport.cli.plan`,
run in :mod:`transport.cli.run` and study files in :mod:`transport.cli.study`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from transport._version import __version__
from transport.cli.plan import (
    PlanError,
    check_plan,
    dump_plan,
    load_cohort,
    load_plan,
    read_frame,
    resolve_path,
)
from transport.cli.run import RUN_MANIFEST, run_plan
from transport.cli.study import load_study, run_study
from transport.methods import METHODS

__all__ = [
    "DEMO_PLAN",
    "RUN_MANIFEST",
    "PlanError",
    "build_parser",
    "check_plan",
    "dump_plan",
    "load_cohort",
    "load_plan",
    "load_study",
    "main",
    "read_frame",
    "run_plan",
    "run_study",
]

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


# -- commands ------------------------------------------------------------------------------
def _cohort_from_args(args: argparse.Namespace) -> Any:
    spec: dict[str, Any]
    if args.cohort.startswith("synthetic:"):
        spec = {"dataset": args.cohort}
        idle = [f"--{k.replace('_', '-')}" for k in _FILE_ONLY if getattr(args, k)]
        if idle:  # each would be ignored without a word: the summary of another cohort
            raise PlanError(
                f"{args.cohort} is a bundled cohort with its own columns and name: "
                f"{', '.join(idle)} {'applies' if len(idle) == 1 else 'apply'} only to a cohort "
                "read from a file"
            )
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


#: The options that describe a cohort read from a file (a bundled cohort has its own).
_FILE_ONLY = ("time", "event", "covariates", "identifiers", "entry", "na_action", "name")


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _load_policy(path: str | None) -> Any:
    """The policy file ``path``, else the environment's (``TRANSPORT_POLICY``, else the
    defaults)."""
    from transport.policy import environment_policy

    return environment_policy(path)


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
    out = args.out or resolve_path(plan["_base"], plan.get("output", {}).get("directory", default))
    run_plan(
        plan,
        out,
        overwrite=args.overwrite,
        progress=not args.quiet,
        figures=not args.no_figures,
        policy=_load_policy(args.policy),
    )
    print(f"report: {Path(out) / 'report.html'}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    plan = load_study(args.study)
    default = f"{Path(args.study).stem}-output"
    out = args.out or resolve_path(plan["_base"], plan.get("output", {}).get("directory", default))
    if args.n_jobs is not None:
        plan.setdefault("run", {})["n_jobs"] = args.n_jobs
    run_study(plan, out, overwrite=args.overwrite, progress=not args.quiet)
    print(f"metrics: {Path(out) / 'metrics.csv'}")
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

    manifest = verify(args.directory, args.key_file)
    print(
        f"{args.directory}: {len(manifest['files'])} file(s) match manifest.json "
        f"({manifest['object']} {manifest['name']!r}, policy {manifest['policy']['name']!r})"
    )
    if manifest.signature == "valid":
        print("signature: valid (hmac-sha256 under the release key)")
    else:
        state = "signed" if "signature" in manifest else "unsigned"
        print(
            f"signature: not checked ({state}; no release key: set TRANSPORT_RELEASE_KEY or "
            "pass --key-file)"
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
    p.add_argument(
        "--policy",
        help="disclosure policy (TOML; default: TRANSPORT_POLICY, else the package defaults)",
    )
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
    run.add_argument(
        "--policy",
        help="the environment's disclosure policy (TOML), the floor the plan's [disclosure] "
        "may only tighten (default: TRANSPORT_POLICY, else the package defaults)",
    )
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
    ver.add_argument(
        "--key-file",
        help="the release key (default: TRANSPORT_RELEASE_KEY, or the signing_key_file of "
        "the policy TRANSPORT_POLICY names); without one the signature is not checked",
    )
    ver.set_defaults(func=cmd_release_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``transport`` command; returns the exit status."""
    from transport.exceptions import DisclosureError, TransportError

    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    main_thread = threading.current_thread() is threading.main_thread()
    # a terminated run unwinds, so its partial output is removed on the way out
    before = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
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
        print(f"transport: {kind}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RecursionError:  # a file nested too deep to read: input, not a bug
        print("transport: a file given is nested too deeply to read", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, and how to see it
        if os.environ.get("TRANSPORT_DEBUG"):
            raise
        text = _one_line(exc)[:300]
        print(
            f"transport: internal error: {type(exc).__name__}: {text} (a bug in transport; "
            "run again with TRANSPORT_DEBUG=1 for the traceback and report it)",
            file=sys.stderr,
        )
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)
    return status


def _one_line(exc: BaseException) -> str:
    """The message on one line: a library's multi-line text (a CSV parser's hint) folded."""
    return " ".join(str(exc).split())


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"transport: warning: {category.__name__}: {message}", file=sys.stderr)
