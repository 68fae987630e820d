"""Methods-validation study runner: scenarios x methods x replicates, with known truth.

    study = Study(scenario="correct", methods=["naive", "iow", "entropy", "gformula", "aipw"],
                  n_reps=200, seed=1, times=[12.0], tau=24.0)
    out = study.run(backend="processes", n_jobs=2)
    out.replicates          # one row per scenario, method, estimand, time and replicate
    out.metrics()           # bias, coverage, ... with Monte Carlo SEs

Reproducibility: replicate ``r`` of the ``s``-th scenario draws its cohorts from
``default_rng(SeedSequence(seed, spawn_key=(s, r, 0)))`` and bootstraps (``n_boot > 0``)
with ``SeedSequence(seed, spawn_key=(s, r, 1))``, the same for every method (common random
numbers). Its numbers therefore depend on ``(seed, s, r)`` and the study's settings only:
they are bit-identical for any ``n_jobs``, any backend and any order of execution, and
replicates finished in an earlier (interrupted) run can be reused (``checkpoint``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from transport._validate import (
    check_choice,
    check_ci_level,
    check_n_boot,
    check_n_jobs,
    check_tau,
    check_times,
    is_integer,
)
from transport.cohort import TIME_UNITS
from transport.exceptions import DataError
from transport.inference import Progress, child_seed, reporter
from transport.methods import METHODS, options_read
from transport.simulate.metrics import performance
from transport.simulate.scenarios import Scenario, scenario, scenarios
from transport.staging import os_errors_named

__all__ = ["METHODS", "Study", "StudyResult"]

Backend = Literal["processes", "dask"]
_FORMAT = 1

SCHEMA: dict[str, Any] = {
    "scenario": pl.String,
    "method": pl.String,
    "estimand": pl.String,
    "time": pl.Float64,
    "rep": pl.Int64,
    "estimate": pl.Float64,
    "se": pl.Float64,
    "ci_lower": pl.Float64,
    "ci_upper": pl.Float64,
    "ci_method": pl.String,
    "error": pl.String,
    "warning": pl.String,
}


@dataclass(frozen=True)
class _Spec:
    """What a worker needs to compute a replicate (small and picklable)."""

    scenarios: tuple[Scenario, ...]
    methods: tuple[str, ...]
    seed: int
    times: tuple[float, ...]
    tau: float | None
    time_unit: str
    n_boot: int
    ci_level: float

    def estimands(self) -> list[tuple[str, float | None]]:
        out: list[tuple[str, float | None]] = [("survival", t) for t in self.times]
        out.append(("median", None))
        if self.tau is not None:
            out.append(("rmst", self.tau))
        return out


def _replicate(spec: _Spec, s: int, r: int) -> pl.DataFrame:
    """Replicate ``r`` of scenario ``s``: draw the cohorts, run every method.

    A method that raises is recorded with null estimates and its error; warnings are
    recorded (their categories and first lines), not shown.
    """
    from transport.analysis import transport

    sc = spec.scenarios[s]
    rng = np.random.default_rng(child_seed(spec.seed, s, r, 0))
    source, target = sc.simulate(rng)
    if spec.time_unit != "months":
        source, target = source.in_unit(spec.time_unit), target.in_unit(spec.time_unit)  # type: ignore[arg-type]
    boot_seed = child_seed(spec.seed, s, r, 1)
    rows: list[dict[str, Any]] = []
    estimands = spec.estimands()
    for method in spec.methods:
        base = {"scenario": sc.name, "method": method, "rep": r}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = transport(
                    source,
                    target,
                    method=method,  # type: ignore[arg-type]
                    times=list(spec.times),
                    tau=spec.tau,
                    **_options_of(sc, method),
                    n_boot=spec.n_boot,
                    seed=boot_seed,
                    ci_level=spec.ci_level,
                )
                summary = res.summary()
                error = None
            except Exception as exc:  # recorded, not raised: one failure is a result
                summary, error = None, f"{type(exc).__name__}: {exc}"
        warning = "; ".join(
            sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
        )
        mine: list[dict[str, Any]] = []
        if summary is None:
            for estimand, time in estimands:
                mine.append({**base, "estimand": estimand, "time": time, "error": error})
        else:
            for row in summary.iter_rows(named=True):
                _unbounded_median(row)
                mine.append(
                    {
                        **base,
                        "estimand": row["estimand"],
                        "time": row["time"],
                        "estimate": row["transported"],
                        "se": row["transported_se"],
                        "ci_lower": row["transported_ci_lower"],
                        "ci_upper": row["transported_ci_upper"],
                        "ci_method": row["ci_method"],
                    }
                )
        for row in mine:
            row["warning"] = warning or None
        rows.extend(mine)
    return pl.DataFrame(rows, schema=SCHEMA)


def _options_of(sc: Scenario, method: str) -> dict[str, Any]:
    """The scenario's estimator options that ``method`` reads (a scenario serves every
    method: its outcome formula is not the weighting methods')."""
    given = {
        "formula": sc.formula,
        "outcome_formula": sc.outcome_formula,
        "censoring": sc.censoring,
    }
    read = options_read(method)
    return {k: x for k, x in given.items() if k in read}


def _unbounded_median(row: dict[str, Any]) -> None:
    """A median's upper limit that the curve's upper band never reaches (``nan``, R's
    convention) means the interval is unbounded above: +inf, so that coverage counts it
    (it covers every truth above its lower limit)."""
    lo, hi = row["transported_ci_lower"], row["transported_ci_upper"]
    finite_lo = lo is not None and math.isfinite(lo)
    if row["estimand"] == "median" and finite_lo and (hi is None or math.isnan(hi)):
        row["transported_ci_upper"] = math.inf


def _run_chunk(spec: _Spec, items: list[tuple[int, int]]) -> list[tuple[int, int, pl.DataFrame]]:
    return [(s, r, _replicate(spec, s, r)) for s, r in items]


#: Most replicates per scenario: a study's Monte Carlo error falls as 1/sqrt(n_reps),
#: and past ten million it is far below any difference a study reports.
MAX_REPS = 10_000_000


class Study:
    """A simulation study: every method on ``n_reps`` replicates of every scenario.

    Parameters
    ----------
    scenario
        A built-in scenario name (:func:`~transport.simulate.scenarios`), a
        :class:`~transport.simulate.scenarios.Scenario` (e.g. from
        ``scenario("unmeasured_modifier", strength=0.5)``), or a list of them.
    methods
        Any of ``"naive"``, ``"iow"``, ``"entropy"``, ``"gformula"``, ``"aipw"``; each
        uses the scenario's formulas (``formula`` for participation / balancing,
        ``outcome_formula`` for the Cox outcome model) and ``transport()``'s defaults
        otherwise.
    n_reps
        Replicates per scenario (a positive integer).
    seed
        Seed of the whole study (a non-negative integer); see the module docstring.
    times, tau, time_unit
        Landmark times for S(t) and the RMST horizon (``None``: no RMST), in
        ``time_unit`` (default months, the scenarios' own unit). The median is always
        estimated.
    n_boot
        Bootstrap replicates per estimate (0: influence-function intervals where they
        exist, null for ``gformula`` and ``aipw``).
    ci_level
        Nominal coverage of the intervals.
    """

    def __init__(
        self,
        scenario: str | Scenario | Sequence[str | Scenario] = "correct",
        methods: Sequence[str] = METHODS,
        n_reps: int = 200,
        seed: int = 1,
        times: Iterable[float] = (12.0,),
        tau: float | None = 24.0,
        time_unit: str = "months",
        n_boot: int = 0,
        ci_level: float = 0.95,
    ) -> None:
        if isinstance(scenario, str | Scenario):
            items: list[Any] = [scenario]
        elif isinstance(scenario, Sequence):
            items = list(scenario)
        else:
            items = [scenario]  # refused by _resolve, naming it
        if not items:
            raise ValueError("The 'scenario' parameter must name at least one scenario.")
        resolved = tuple(_resolve(x) for x in items)
        names = [sc.name for sc in resolved]
        if len(set(names)) != len(names):
            raise ValueError(f"The scenarios of a study must have distinct names; got {names}.")
        if isinstance(methods, str):
            methods = [methods]
        if not isinstance(methods, Sequence):
            raise ValueError(
                f"The 'methods' parameter must be a method or a list of them, of "
                f"{list(METHODS)}. Got {methods!r}."
            )
        methods = list(methods)
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise ValueError(
                f"Unknown method(s) {bad}: every method must be one of {list(METHODS)}."
                if bad
                else "The 'methods' parameter must name at least one method."
            )
        if len(set(methods)) != len(methods):
            raise ValueError(f"The 'methods' parameter lists a method twice: {methods}.")
        if not is_integer(n_reps) or not 1 <= n_reps <= MAX_REPS:
            raise ValueError(
                f"The 'n_reps' parameter must be an integer from 1 to {MAX_REPS:,}. "
                f"Got {n_reps!r:.60}."
            )
        if not is_integer(seed) or seed < 0:
            raise ValueError(f"The 'seed' parameter must be an integer >= 0. Got {seed!r}.")
        check_choice(time_unit, "time_unit", tuple(TIME_UNITS))
        t = tuple(float(x) for x in check_times(times, positive=True))
        tau = check_tau(tau)
        check_n_boot(n_boot)
        check_ci_level(ci_level)
        self.n_reps = int(n_reps)
        self._spec = _Spec(
            scenarios=resolved,
            methods=tuple(methods),
            seed=int(seed),
            times=t,
            tau=None if tau is None else float(tau),
            time_unit=time_unit,
            n_boot=int(n_boot),
            ci_level=float(ci_level),
        )

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        """The study's scenarios, in order (a scenario's index is part of its seeds)."""
        return self._spec.scenarios

    @property
    def methods(self) -> tuple[str, ...]:
        return self._spec.methods

    def config(self) -> dict[str, Any]:
        """JSON-safe description of everything the replicates depend on (not ``n_reps``:
        replicate ``r`` is the same in a study of any length)."""
        spec = self._spec
        return {
            "format": _FORMAT,
            "scenarios": [asdict(sc) for sc in spec.scenarios],
            "methods": list(spec.methods),
            "seed": spec.seed,
            "times": list(spec.times),
            "tau": spec.tau,
            "time_unit": spec.time_unit,
            "n_boot": spec.n_boot,
            "ci_level": spec.ci_level,
        }

    def truth(self) -> pl.DataFrame:
        """The true value of every estimand: scenario, estimand, time, truth."""
        spec = self._spec
        rows = [
            (sc.name, estimand, time, value)
            for sc in spec.scenarios
            for (estimand, time), value in sc.truth(spec.times, spec.tau, spec.time_unit).items()
        ]
        return pl.DataFrame(
            rows,
            schema={
                "scenario": pl.String,
                "estimand": pl.String,
                "time": pl.Float64,
                "truth": pl.Float64,
            },
            orient="row",
        )

    def run(
        self,
        backend: Backend = "processes",
        n_jobs: int = 1,
        client: Any = None,
        progress: Progress = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> StudyResult:
        """Run every replicate and return a :class:`StudyResult`.

        ``backend="processes"``: ``n_jobs`` worker processes (joblib's loky; 1 runs in
        this process; -1 every core). ``backend="dask"``: the replicates are mapped over
        ``client`` (a ``dask.distributed.Client``; without one a local cluster of
        ``n_jobs`` worker processes is started and closed). ``progress``: ``True`` prints
        a counter, a callable receives ``(done, total)``. ``checkpoint``: a directory;
        each finished replicate is written there as Parquet, next to ``study.json``
        describing the study, and a rerun computes only the replicates not there yet (a
        study with another configuration is refused). Results are identical in every
        case.
        """
        if backend not in ("processes", "dask"):
            raise ValueError(
                f"The 'backend' parameter must be 'processes' or 'dask'. Got {backend!r}."
            )
        check_n_jobs(n_jobs)
        if client is not None and backend != "dask":
            raise ValueError("A 'client' is used with backend='dask' only.")
        spec = self._spec
        wanted = [(s, r) for s in range(len(spec.scenarios)) for r in range(self.n_reps)]
        store = _Checkpoint(Path(checkpoint), self.config()) if checkpoint is not None else None
        done: dict[tuple[int, int], pl.DataFrame] = store.load(wanted) if store else {}
        todo = [k for k in wanted if k not in done]
        report = reporter(progress, len(wanted), "study")
        if done:
            report(len(done))
        runner = _run_dask if backend == "dask" else _run_processes
        for s, r, frame in runner(spec, todo, n_jobs, client):
            done[(s, r)] = frame
            if store is not None:
                store.write(s, r, frame)
            report(len(done))
        frames = [done[k] for k in wanted]
        replicates = pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)
        replicates = replicates.join(
            self.truth(), on=["scenario", "estimand", "time"], how="left", nulls_equal=True
        ).select(*[c for c in SCHEMA if c not in ("error", "warning")], "truth", "error", "warning")
        return StudyResult(replicates, self.config(), self.n_reps)

    def __repr__(self) -> str:
        names = [sc.name for sc in self._spec.scenarios]
        return f"Study(scenario={names}, methods={list(self.methods)}, n_reps={self.n_reps})"


def _resolve(x: str | Scenario) -> Scenario:
    if isinstance(x, Scenario):
        return x
    if isinstance(x, str):
        return scenario(x)
    raise ValueError(
        f"Unknown scenario {x!r}: a scenario must be a name in {scenarios()} or a Scenario."
    )


def _chunks(items: list[tuple[int, int]], workers: int) -> list[list[tuple[int, int]]]:
    size = max(1, min(10, math.ceil(len(items) / (4 * workers)))) if items else 1
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run_processes(
    spec: _Spec, todo: list[tuple[int, int]], n_jobs: int, client: Any
) -> Iterator[tuple[int, int, pl.DataFrame]]:
    if n_jobs == 1:
        for s, r in todo:
            yield s, r, _replicate(spec, s, r)
        return
    from joblib import Parallel, cpu_count, delayed

    workers = n_jobs if n_jobs > 0 else max(1, int(cpu_count()))
    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    for out in parallel(delayed(_run_chunk)(spec, c) for c in _chunks(todo, workers)):
        yield from out


def _run_dask(
    spec: _Spec, todo: list[tuple[int, int]], n_jobs: int, client: Any
) -> Iterator[tuple[int, int, pl.DataFrame]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError(
            "backend='dask' needs dask.distributed, which is not installed: "
            "pip install 'transport[dask]' (or use backend='processes')"
        ) from exc
    if not todo:
        return
    own = client is None
    cluster = None
    if own:
        workers = n_jobs if n_jobs > 0 else None
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunks = _chunks(todo, n_workers)
        futures = client.map(_run_chunk, [spec] * len(chunks), chunks, pure=False)
        for _, out in as_completed(futures, with_results=True):
            yield from out
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


_RECOMPUTE = "remove that file and the study recomputes the replicate it held"
_NO_CONFIG = "its replicates can no longer be matched to a study: use another checkpoint directory"


class _Checkpoint:
    """A directory of finished replicates (``s{scenario}-r{rep}.parquet``) and the
    ``study.json`` they belong to."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.directory = directory
        self.config = config
        if directory.exists() and not directory.is_dir():
            raise DataError(f"checkpoint {str(directory)!r} is a file, not a directory")
        with os_errors_named(directory, "checkpoint directory"):
            directory.mkdir(parents=True, exist_ok=True)
        meta = directory / "study.json"
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise DataError(self._damaged(meta, exc, _NO_CONFIG)) from None
            if not isinstance(old, dict):
                raise DataError(self._damaged(meta, "not a JSON object", _NO_CONFIG))
            differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            if differ:
                detail = "; ".join(
                    f"{k}: checkpoint {old.get(k)!r}, this study {config.get(k)!r}" for k in differ
                )
                raise ValueError(
                    f"checkpoint directory {str(directory)!r} holds replicates of another "
                    f"study ({', '.join(differ)} differ: {detail}) (rule: a study resumes "
                    "only with the configuration it started with; use another directory)"
                )
        else:
            tmp = meta.with_suffix(".json.tmp")  # whole or not at all: a killed run
            with os_errors_named(meta, "checkpoint file"):  # leaves no half a config
                tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
                os.replace(tmp, meta)

    def path(self, s: int, r: int) -> Path:
        return self.directory / f"s{s:03d}-r{r:06d}.parquet"

    def load(self, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], pl.DataFrame]:
        out = {}
        for s, r in wanted:
            p = self.path(s, r)
            if p.exists():
                try:
                    frame = pl.read_parquet(p)
                except (OSError, pl.exceptions.PolarsError) as exc:
                    raise DataError(self._damaged(p, exc, _RECOMPUTE)) from None
                self._check_replicate(p, frame, r)
                out[(s, r)] = frame
        return out

    def _check_replicate(self, path: Path, frame: pl.DataFrame, r: int) -> None:
        """A replicate file holds that replicate of this study's methods, in the layout
        the study writes (a file copied from another study would merge its rows)."""
        if dict(frame.schema) != SCHEMA:
            raise DataError(self._damaged(path, "not the layout of a replicate", _RECOMPUTE))
        methods = set(self.config.get("methods", []))
        if (frame["rep"] != r).any() or not set(frame["method"].unique().to_list()) <= methods:
            why = f"rows of another replicate or method than replicate {r} of {sorted(methods)}"
            raise DataError(self._damaged(path, why, _RECOMPUTE))

    @staticmethod
    def _damaged(path: Path, why: object, fix: str) -> str:
        text = " ".join(str(why).split())[:200]
        return (
            f"checkpoint file {str(path)!r} cannot be read ({text}) (rule: a checkpoint "
            f"holds only files a study wrote whole); {fix}"
        )

    def write(self, s: int, r: int, frame: pl.DataFrame) -> None:
        p = self.path(s, r)
        tmp = p.with_suffix(".parquet.tmp")
        with os_errors_named(p, "checkpoint file"):
            frame.write_parquet(tmp)
            os.replace(tmp, p)  # a replicate file is there whole or not at all


class StudyResult:
    """The outcome of :meth:`Study.run`.

    ``replicates``: one row per scenario, method, estimand, time and replicate, with
    columns scenario, method, estimand, time, rep, estimate, se, ci_lower, ci_upper,
    ci_method, truth, error (null unless the method failed in that replicate) and
    warning (the warnings it raised, if any).
    """

    def __init__(self, replicates: pl.DataFrame, config: dict[str, Any], n_reps: int) -> None:
        self.replicates = replicates
        self.config = config
        self.n_reps = n_reps

    def metrics(self, **kw: Any) -> pl.DataFrame:
        """Performance per scenario, method, estimand and time, with Monte Carlo SEs
        (:func:`transport.simulate.metrics.performance`; ``level`` defaults to the
        study's ``ci_level``; other keywords are passed on)."""
        kw.setdefault("level", self.config["ci_level"])
        return performance(self.replicates, **kw)

    def failures(self) -> pl.DataFrame:
        """The replicates in which a method failed: scenario, method, rep, error."""
        return (
            self.replicates.filter(pl.col("error").is_not_null())
            .select("scenario", "method", "rep", "error")
            .unique(maintain_order=True)
        )

    def __repr__(self) -> str:
        n_fail = self.failures().height
        rows = self.replicates.height
        return f"StudyResult({rows} rows, {self.n_reps} replicates, {n_fail} failed)"
