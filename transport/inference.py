"""Bootstrap engine: resample source and target separately, refit, read the curves.

Seeding, the one scheme of the package (:func:`child_seeds`): replicate ``b`` draws its
resamples from its own generator, ``numpy.random.default_rng(child)`` with ``child`` the
``SeedSequence`` of the seed's entropy and spawn key ``(*seed.spawn_key, *stream, b)``
(``stream`` empty for the bootstrap of :func:`~transport.transport`, which makes these
the children ``SeedSequence(seed).spawn(n_boot)`` would give), so its numbers depend only
on the seed, the stream and ``b``: the same for any number of workers, in any order.
Independent streams from one seed (a shipped model's target resamples beside its source
refits; a study's cohorts beside its bootstraps) differ in ``stream``.
A resample is represented by counts (how often each row was drawn), used as case
weights by the estimators of :mod:`transport.estimators`; the data are sorted once and a
replicate reweights and refits (DESIGN §7).

Intervals: percentile (the ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates)
and normal (estimate -/+ z times the replicates' standard deviation) (Efron & Tibshirani
1993, ch. 13).

Reference: Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from transport._validate import check_n_jobs, check_progress
from transport.exceptions import DataError

__all__ = [
    "BootstrapDraws",
    "Progress",
    "Seed",
    "child_seed",
    "child_seeds",
    "interval",
    "reporter",
    "resample_counts",
    "run_bootstrap",
    "seed_sequence",
]

#: Most worker processes a bootstrap starts, whatever ``n_jobs`` asks for.
MAX_WORKERS = max(64, os.cpu_count() or 1)

Progress = bool | Callable[[int, int], None] | None
IntervalKind = Literal["percentile", "normal"]
Seed = int | np.random.SeedSequence | None


def seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """``seed`` as a ``SeedSequence`` (an int or ``None`` seeds a new one)."""
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def child_seed(seed: Seed, *key: int) -> np.random.SeedSequence:
    """The child of ``seed`` at spawn key ``(*seed.spawn_key, *key)``, without advancing
    ``seed`` (``SeedSequence.spawn`` would)."""
    ss = seed_sequence(seed)
    return np.random.SeedSequence(
        ss.entropy, spawn_key=(*ss.spawn_key, *key), pool_size=ss.pool_size
    )


def child_seeds(seed: Seed, n: int, stream: tuple[int, ...] = ()) -> list[np.random.SeedSequence]:
    """The ``n`` children ``child_seed(seed, *stream, b)``, ``b = 0 .. n - 1``: one per
    replicate, the package's only seeding scheme."""
    ss = seed_sequence(seed)
    return [child_seed(ss, *stream, b) for b in range(n)]


def resample_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How many times each of ``n`` rows appears in a resample of size ``n`` (float64)."""
    return np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)


@dataclass(frozen=True)
class BootstrapDraws:
    """Replicates of a vector of estimates: ``values`` is ``n_boot`` x ``k``; a failed
    replicate (a model that could not be refitted) is a row of ``nan``; ``failed`` counts
    them. ``entropy`` is the seed's entropy, enough to reproduce the run. (A replicate
    function whose successful rows can be all ``nan`` adds a last column that is 1 when
    it succeeded.)"""

    values: np.ndarray
    failed: int
    entropy: int | tuple[int, ...]

    @property
    def n_boot(self) -> int:
        """Number of replicates drawn (failed ones included)."""
        return int(self.values.shape[0])


def _chunks(n: int, size: int) -> list[range]:
    return [range(lo, min(lo + size, n)) for lo in range(0, n, size)]


#: What a replicate may raise when its resample has no finite fit (a singular
#: information matrix, separation, a level or a whole design column left out): a failed
#: replicate, counted, never the end of the bootstrap. Anything else is a bug and raises.
SOFT_FAILURES: tuple[type[BaseException], ...] = (
    np.linalg.LinAlgError,
    ArithmeticError,
    ValueError,
    DataError,
)


def _one(fn: Callable[..., np.ndarray], args: tuple[Any, ...]) -> np.ndarray | str:
    """``fn(*args)``, or the reason it failed softly (:data:`SOFT_FAILURES`)."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(fn(*args), dtype=np.float64)
    except SOFT_FAILURES as exc:
        return f"{type(exc).__name__}: {exc}"


def _run_chunk(
    fn: Callable[..., np.ndarray],
    index: range,
    seeds: list[np.random.SeedSequence],
    indexed: bool,
) -> list[np.ndarray | str]:
    rngs = [np.random.default_rng(s) for s in seeds]
    if indexed:
        return [_one(fn, (b, rng)) for b, rng in zip(index, rngs, strict=True)]
    return [_one(fn, (rng,)) for rng in rngs]


def _stack(rows: list[np.ndarray | str], label: str) -> np.ndarray:
    """The replicates as rows, a failed one (its reason) as a row of ``nan``."""
    done = [r for r in rows if not isinstance(r, str)]
    if not done:
        reason = next((r for r in rows if isinstance(r, str)), "no replicates")
        raise DataError(
            f"every one of the {len(rows)} replicates of the {label} failed (the first: "
            f"{reason}); the estimate has no bootstrap interval: use fewer covariates or "
            "n_boot = 0"
        )
    width = done[0].size
    return np.vstack([np.full(width, np.nan) if isinstance(r, str) else r for r in rows])


def run_bootstrap(
    fn: Callable[..., np.ndarray],
    n_boot: int,
    seed: Seed,
    *,
    n_jobs: int = 1,
    progress: Progress = None,
    label: str = "bootstrap",
    stream: tuple[int, ...] = (),
    indexed: bool = False,
) -> BootstrapDraws:
    """Run ``fn`` (a picklable callable from a generator to a vector) ``n_boot`` times,
    replicate ``b`` with the generator of ``child_seeds(seed, n_boot, stream)[b]``
    (``indexed``: ``fn(b, generator)``, for replicates paired with precomputed ones, as a
    shipped model's source refits).

    ``n_jobs`` worker processes (joblib's loky backend; ``-1`` for every core) share the
    replicates in chunks; the result is identical for any ``n_jobs``. ``progress``:
    ``True`` prints a counter to standard error, a callable receives ``(done, total)``.
    """
    check_n_jobs(n_jobs)
    ss = seed_sequence(seed)
    children = child_seeds(ss, n_boot, stream)
    report = reporter(progress, n_boot, label)
    # more processes than cores, or than replicates, only cost their start (the
    # result is the same for any n_jobs): n_jobs=10**6 starts at most MAX_WORKERS
    workers = min(n_jobs, MAX_WORKERS) if n_jobs > 0 else max(1, _cpu_count())
    size = max(1, min(25, math.ceil(n_boot / (4 * workers))))
    chunks = _chunks(n_boot, size)
    workers = max(1, min(workers, len(chunks)))
    results: list[np.ndarray | str] = []
    done = 0
    if workers == 1:
        outputs: Iterator[list[np.ndarray | str]] = (
            _run_chunk(fn, c, [children[i] for i in c], indexed) for c in chunks
        )
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator")
        outputs = parallel(
            delayed(_run_chunk)(fn, c, [children[i] for i in c], indexed) for c in chunks
        )
    for out in outputs:
        results.extend(out)
        done += len(out)
        report(done)
    values = _stack(results, label) if results else np.zeros((0, 0))
    failed = int(np.sum(np.all(np.isnan(values), axis=1))) if values.size else 0
    return BootstrapDraws(values, failed, ss.entropy)  # type: ignore[arg-type]


def _cpu_count() -> int:
    from joblib import cpu_count

    return int(cpu_count())


def reporter(progress: Progress, total: int, label: str) -> Callable[[int], None]:
    """A callback ``report(done)``: nothing for ``progress`` ``None`` or ``False``, the
    caller's ``progress(done, total)``, or (``True``) a counter on standard error."""
    check_progress(progress)
    if progress is None or progress is False:
        return lambda done: None
    if callable(progress):
        return lambda done: progress(done, total)

    def show(done: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r{label}: {done}/{total} replicates", end=end, file=sys.stderr, flush=True)

    return show


def interval(
    replicates: np.ndarray,
    estimate: np.ndarray,
    kind: IntervalKind,
    level: float,
    *,
    nan_as_inf: bool = True,
    ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard errors and lower and upper limits from replicates (``n_boot`` x ``k``).

    Failed replicates are left out: those marked ``False`` in ``ok`` or, without it,
    rows of ``nan`` (pass ``ok`` when a successful replicate can be all ``nan``, as a
    median that no replicate reaches). Within a column, a ``nan`` from a
    successful replicate (a median not reached) is treated as larger than every finite
    value, so a percentile limit falling on it is ``nan`` (not estimable) rather than
    biased; with ``nan_as_inf=False`` (differences, whose sign such a replicate leaves
    unknown) any such ``nan`` makes both limits ``nan``. The normal interval and the SE
    need every replicate finite.
    """
    if ok is None:
        ok = ~np.all(np.isnan(replicates), axis=1)
    r = replicates[np.asarray(ok, dtype=bool)]
    k = r.shape[1] if r.ndim == 2 else 0
    se = np.full(k, np.nan)
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    if r.shape[0] < 2:
        return se, lo, hi
    finite = np.all(np.isfinite(r), axis=0)
    se[finite] = r[:, finite].std(axis=0, ddof=1)
    alpha = 1.0 - level
    if kind == "normal":
        z = float(norm.ppf(1.0 - alpha / 2.0))
        lo, hi = estimate - z * se, estimate + z * se
    else:
        filled = np.where(np.isnan(r), np.inf if nan_as_inf else np.nan, r)
        with np.errstate(invalid="ignore"):
            q = np.quantile(filled, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        lo = np.where(np.isfinite(q[0]), q[0], np.nan)
        hi = np.where(np.isfinite(q[1]), q[1], np.nan)
    return se, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
