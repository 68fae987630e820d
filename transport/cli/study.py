"""``transport simulate``: reading a study file (TOML) and running the methods-validation
study it describes, into a directory of metrics, replicates, report, the study as run and
a manifest, written the way :mod:`transport.cli.run` writes a plan's output."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from transport import manifest as manifests
from transport.cli.plan import (
    PLAN_MAX_BOOT,
    PlanError,
    dump_toml,
    read_toml,
    reject_unknown,
    resolve_path,
)
from transport.cli.run import check_output, finite, say, staged_output
from transport.manifest import RUN_SCHEMA

__all__ = ["load_study", "run_study"]

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
#: Most replicates a study file may ask for (a file may come from elsewhere).
STUDY_MAX_REPS = 1_000_000


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a study file (TOML): ``title``; ``[study]`` with ``scenarios``,
    ``methods``, ``n_reps``, ``seed``, ``times``, ``tau``, ``time_unit``, ``n_boot``,
    ``ci_level`` (the arguments of :class:`transport.simulate.Study`); ``[run]`` with
    ``backend`` ("processes" or "dask"), ``n_jobs``, ``checkpoint`` (a directory, so an
    interrupted study resumes) and ``scheduler`` (the address of an existing Dask
    scheduler); ``[output]`` with ``directory``."""
    path = Path(path)
    plan = read_toml(path, "study file")
    reject_unknown(plan, {"title", "study", "run", "output"}, "the study file")
    for table in ("run", "output"):
        if not isinstance(plan.get(table, {}), dict):
            raise PlanError(f"the study file's [{table}] must be a table")
    for key in ("checkpoint", "scheduler"):
        value = plan.get("run", {}).get(key)
        if value is not None and not isinstance(value, str):
            raise PlanError(f"[run] {key!r} must be a string; got {value!r:.60}")
    directory = plan.get("output", {}).get("directory")
    if directory is not None and not isinstance(directory, str):
        raise PlanError(f"[output] 'directory' must be a string; got {directory!r:.60}")
    study = plan.get("study")
    if not isinstance(study, dict):
        raise PlanError("the study file has no [study] table")
    reject_unknown(study, _STUDY_KEYS, "[study]")
    for key, most in (("n_reps", STUDY_MAX_REPS), ("n_boot", PLAN_MAX_BOOT)):
        value = study.get(key, 0)
        if isinstance(value, int) and not isinstance(value, bool) and value > most:
            raise PlanError(
                f"[study] {key!r} asks for {value}, more than {most} (rule: a study file "
                "asks for bounded work; run such a study from Python)"
            )
    reject_unknown(plan.get("run", {}), _RUN_KEYS, "[run]")
    reject_unknown(plan.get("output", {}), {"directory"}, "[output]")
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
    check_output(out, overwrite)
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
        checkpoint = resolve_path(plan.get("_base"), checkpoint)
    started = time.perf_counter()
    try:
        result = study.run(
            client=client, checkpoint=checkpoint, progress=progress and sys.stderr.isatty(), **run
        )
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - started
    say(
        f"{result.replicates.height} rows from {study.n_reps} replicates in {seconds:.1f} s",
        not progress,
    )
    with staged_output(out, overwrite) as tmp:
        metrics = result.metrics()
        metrics.write_csv(tmp / "metrics.csv", float_precision=None)
        result.replicates.write_parquet(tmp / "replicates.parquet")
        write_study_report(result, tmp / "report.html", title=plan.get("title"))
        saved = {k: v for k, v in plan.items() if k not in ("_base", "output")}
        if checkpoint is not None:
            saved["run"] = {**saved.get("run", {}), "checkpoint": str(Path(checkpoint).resolve())}
        (tmp / "study.toml").write_text(_dump_study(saved))
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
        manifests.write(tmp, finite(manifest))
    return manifest


def _dump_study(plan: dict[str, Any]) -> str:
    return dump_toml(
        plan,
        "# transport simulation study: run with `transport simulate <this file> --out DIR`",
        ("study", "run"),
    )
