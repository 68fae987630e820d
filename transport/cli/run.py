"""Running an analysis plan and writing its outputs: the report, the tidy results, one
release per result through the gate, the plan as run and the run manifest.

The output directory is written the same way here and for ``transport simulate``
(:mod:`transport.cli.study`): :func:`check_output` refuses a directory that is not new,
empty or an earlier run's output, and :func:`staged_output` writes into a temporary
sibling that replaces the directory only once everything is written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from transport import manifest as manifests
from transport.cli.plan import (
    ANALYSIS_KEYS,
    check_plan,
    dump_plan,
    load_cohort,
    policy_from_plan,
    resolve_path,
)
from transport.design import closed_text
from transport.manifest import MANIFEST, RUN_SCHEMA, json_safe
from transport.methods import ESTIMATOR_OPTIONS, options_read
from transport.staging import check_writable, staged_directory

__all__ = ["RUN_MANIFEST", "check_output", "finite", "run_plan", "say", "staged_output"]

RUN_MANIFEST = MANIFEST


def say(msg: str, quiet: bool) -> None:
    """A progress line on stderr, unless ``quiet``."""
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def check_output(directory: Path, overwrite: bool) -> None:
    """The output directory is new or empty; or, with ``overwrite``, holds an earlier
    run's output and nothing else: every file listed in its run manifest, every folder
    one that holds a listed file (a user's empty folder there is not the run's to
    delete). Nothing is deleted here: a run writes into a hidden sibling and replaces
    the directory only when it has finished (:func:`staged_output`); a place where it
    cannot (a parent that is read-only or virtual) is refused here, before the work."""
    check_writable(directory, "output directory")
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"output {str(directory)!r} exists and is not a directory")
    if not any(directory.iterdir()):
        return
    listed = manifests.listed(directory, RUN_SCHEMA)
    if not overwrite or listed is None:
        raise FileExistsError(
            f"output directory {str(directory)!r} is not empty: a run writes into an empty "
            "directory (--overwrite replaces an earlier run's output there)"
        )
    entries = list(directory.rglob("*"))
    present = {str(p.relative_to(directory)) for p in entries if p.is_file() or p.is_symlink()}
    folders = {str(p.relative_to(directory)) for p in entries if p.is_dir() and not p.is_symlink()}
    holding = {str(parent) for f in listed for parent in Path(f).parents} - {"."}
    others = sorted((present - listed) | (folders - holding))
    if others:
        raise FileExistsError(
            f"output directory {str(directory)!r} holds files or folders that are not an "
            f"earlier run's output ({others[:3]}{' ...' if len(others) > 3 else ''}): "
            "--overwrite replaces only a directory of run output; choose another --out"
        )


@contextmanager
def staged_output(directory: Path, overwrite: bool) -> Iterator[Path]:
    """A hidden sibling of ``directory`` to write a run's output into
    (:func:`transport.staging.staged_directory`). When the block finishes, the sibling
    replaces ``directory``, checked again with :func:`check_output` (it may have changed
    meanwhile); when it raises, the sibling is removed and ``directory`` is left as it
    was. Pieces of earlier runs that were killed are removed first."""
    with staged_directory(directory) as tmp:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        yield tmp
        check_output(directory, overwrite)


def run_plan(
    plan: dict[str, Any],
    directory: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    figures: bool = True,
    policy: Any = None,
) -> dict[str, Any]:
    """Run a checked plan and write its outputs; returns the run manifest. ``policy`` is
    the environment's disclosure policy, the floor the plan's ``[disclosure]`` may only
    tighten (default: the file ``TRANSPORT_POLICY`` names, else the defaults).

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
    check_output(out, overwrite)
    policy = policy_from_plan(plan, policy)
    a = plan["analysis"]
    base = plan.get("_base")
    names = [a["source"], *a["targets"]]
    cohorts = {n: load_cohort(n, plan["cohorts"][n], base) for n in names}
    source = cohorts[a["source"]]
    targets = {n: cohorts[n] for n in a["targets"]}
    kw = {k: a[k] for k in ANALYSIS_KEYS - {"source", "targets", "methods", "margin"} if k in a}
    for key in ("formula", "outcome_formula"):  # a plan is text from elsewhere: data, not code
        if kw.get(key) is not None:
            kw[key] = closed_text(kw[key], source.covariates, f"plan [analysis] {key}")
    margin = a.get("margin")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for i, method in enumerate(a["methods"], start=1):
        say(
            f"[{i}/{len(a['methods'])}] {method}: {a['source']} -> {', '.join(a['targets'])}", quiet
        )
        t0 = time.perf_counter()
        # a plan's options serve its methods: each is given those it reads
        read = options_read(method, kw.get("outcome_model", "cox"))
        mine = {k: x for k, x in kw.items() if k not in ESTIMATOR_OPTIONS or k in read}
        results[method] = tp.transport(
            source, targets, method=method, margin=margin, progress=bars, **mine
        )
        say(f"      done in {time.perf_counter() - t0:.1f} s", quiet)
    settings = {
        "plan": plan.get("title", "analysis plan"),
        "methods": list(a["methods"]),
        "formula": a.get("formula") or "main effects of every covariate",
        "outcome_model": a.get("outcome_model", "cox"),
        "seed": a.get("seed"),
        "n_boot": a.get("n_boot", 0),
    }
    with staged_output(out, overwrite) as tmp:
        manifest = _write_outputs(
            tmp, plan, results, policy, settings, figures, quiet, time.perf_counter() - started
        )
    say(f"wrote {out / 'report.html'} ({len(manifest['files'])} files)", quiet)
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
    say("writing the report and the tidy results", quiet)
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
    say("releasing each result through the gate", quiet)
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
        "note": "the report and results/ show only what the release gate releases, under "
        "the same policy; the release/ directories, each with its own manifest (and "
        "signature when the environment holds a key), are what is checked out",
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
            k: str(resolve_path(base, v).resolve()) if k in ("path", "summary") else v
            for k, v in spec.items()
        }
        for name, spec in plan["cohorts"].items()
    }
    spec = plan.get("disclosure")
    if isinstance(spec, dict) and set(spec) == {"policy"}:
        out["disclosure"] = {"policy": str(resolve_path(base, spec["policy"]).resolve())}
    return out


def finite(x: Any) -> Any:
    """``x`` with every non-finite float in it (in dicts and lists too) as ``None``, so
    that it can be written as strict JSON (:func:`transport.manifest.json_safe`).

    >>> finite({"ratio": float("inf"), "s": [0.5, float("nan")]})
    {'ratio': None, 's': [0.5, None]}
    """
    return json_safe(x)


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame, JSON-safe: NaN and infinities (a ratio to an S of 0) as null."""
    return [finite(r) for r in frame.to_dicts()] if frame.height else []
