"""The target's side of model shipping: the bootstrap replicates run in the target's
environment (each shipped source refit, or a parametric draw from the shipped bootstrap
summary, paired with a resample of the target's rows), and the aggregates of the
target's rows the gate needs to rule on the transported curve (the effective number of
patients behind each value: :func:`~transport.policy.effective_contributors`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from transport.exceptions import TransportWarning
from transport.inference import Progress, Seed, resample_counts, run_bootstrap
from transport.policy import effective_contributors
from transport.shipping.bootstrap import ParametricDraws
from transport.survival._average import AveragedCurve
from transport.survival._fixed_grid import FixedGridKM, read_curve

__all__ = [
    "Applied",
    "ShippedRefits",
    "TargetReplicate",
    "median_contributors",
    "row_contributors",
    "target_replicates",
]

#: ``draw(b, generator)``: replicate ``b``'s coefficients and baseline (or shifts), or
#: ``None`` when the source refit failed.
Draw = Callable[[int, np.random.Generator], "tuple[np.ndarray, np.ndarray] | None"]


class Applied(Protocol):
    """What a replicate needs of the shipped model."""

    def knots(self) -> np.ndarray: ...
    def hazards(
        self, X: np.ndarray, coef: np.ndarray | None = None, extra: np.ndarray | None = None
    ) -> np.ndarray | None: ...
    def log_hazard_spread(
        self, X: np.ndarray, coef: np.ndarray | None = None, extra: np.ndarray | None = None
    ) -> float: ...


def median_contributors(curve: AveragedCurve, crossing: AveragedCurve | None = None) -> float:
    """The effective number of target patients behind the median of ``crossing`` (default
    ``curve``): the fewest :func:`~transport.policy.effective_contributors` of ``curve``'s
    patients at the knots the median is read between, the last knot where S is above
    one half and the first where it is at most one half (each patient's cumulative
    hazard is linear between knots, so the root of S(t) = 1/2 is a function of the
    patients' survival at those two knots alone; time 0, where every patient's is 1, is
    known). A median not reached is the statement that S at the last knot is above one
    half: the patients at the last knot are behind it."""
    s = (curve if crossing is None else crossing).at_knots()
    below = np.flatnonzero(s <= 0.5)
    k = s.size - 1 if below.size == 0 else int(below[0])
    knots = [k] if k == 0 or below.size == 0 else [k - 1, k]
    return float(np.min(effective_contributors(np.exp(-curve.H[:, 1:][:, knots]))))


def row_contributors(
    curve: AveragedCurve,
    times: np.ndarray,
    tau: float | None,
    weighted: AveragedCurve | None = None,
) -> np.ndarray:
    """The effective number of target patients behind each summary row: S at each of
    ``times``, the median (:func:`median_contributors`, read where the median of
    ``weighted``, the curve whose value is reported, crosses one half: a replicate's
    resample) and RMST(tau) (each patient's RMST over ``tau``)."""
    out = [
        effective_contributors(np.exp(-curve.hazard_at(times))),
        np.array([median_contributors(curve, weighted)]),
    ]
    if tau is not None:
        out.append(effective_contributors(curve.rmst_rows(tau) / tau))
    return np.concatenate(out)


class ShippedRefits:
    """Replicate ``b`` as the ``b``-th source refit the model carries in the source's
    own process (picklable)."""

    def __init__(self, coef: np.ndarray, extra: np.ndarray) -> None:
        self.coef, self.extra = coef, extra

    def __call__(self, b: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        coef, extra = self.coef[b], self.extra[b]
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(extra))):
            return None
        return coef, extra


class TargetReplicate:
    """Replicate ``b`` in the target's environment (picklable): the model of
    ``draw(b, rng)`` averaged over a resample of the target's rows (drawn first from
    ``rng``), beside the resample's Kaplan–Meier curve. Returns ``[transported (k),
    observed (k), contributors (k), spread, 1]`` (the replicate model's effective
    target patients per row, the median's where the resample's median is read, and the
    spread of its linear predictor over the target's
    rows, for the gate), or ``nan`` when the source refit failed (the last column tells
    a failed replicate from one whose medians are not reached)."""

    def __init__(
        self,
        model: Applied,
        target: Any,
        X: np.ndarray,
        times: np.ndarray,
        tau: float | None,
        draw: Draw,
    ) -> None:
        self.model, self.X, self.n, self.draw = model, X, target.n, draw
        self.knots = model.knots()
        self.km = FixedGridKM(target.time_values, target.event_values)
        self.times, self.tau = times, tau
        self.k = times.size + 1 + (tau is not None)

    def __call__(self, b: int, rng: np.random.Generator) -> np.ndarray:
        ct = resample_counts(rng, self.n)
        theta = self.draw(b, rng)
        H = None if theta is None else self.model.hazards(self.X, *theta)
        if theta is None or H is None:
            return np.full(3 * self.k + 2, np.nan)
        resampled = AveragedCurve(self.knots, H, ct)
        transported = resampled.read(self.times, self.tau)
        observed = read_curve(self.km.grid, self.km.survival(ct), self.times, self.tau)
        rows = row_contributors(AveragedCurve(self.knots, H), self.times, self.tau, resampled)
        spread = self.model.log_hazard_spread(self.X, *theta)
        return np.concatenate((transported, observed, rows, [spread, 1.0]))


#: First spawn key of the target's replicates (the source's refits use the children
#: ``(b,)``): the two resamples stay independent with one seed.
TARGET_STREAM = 0x74617267


def target_replicates(
    model: Any,
    target: Any,
    X: np.ndarray,
    times: np.ndarray,
    tau: float | None,
    seed: Seed,
    n_jobs: int,
    progress: Progress,
) -> np.ndarray:
    """The target's ``model.n_boot`` replicates (:class:`TargetReplicate`; replicate
    ``b`` from ``child_seed(seed, TARGET_STREAM, b)``): the source's refits where the
    model carries them (in the source's own process), else parametric draws from the
    released bootstrap summary (:class:`~transport.shipping.bootstrap.ParametricDraws`)."""
    draw: Draw
    if model.boot_coef is not None:
        draw = ShippedRefits(model.boot_coef, model.boot_extra)
        if model.boot_failed:
            warnings.warn(
                f"{model.boot_failed} of {model.n_boot} shipped bootstrap refits of "
                f"{model.source!r} failed (no finite fit in the resample, e.g. a rare "
                "level left out) and are left out of the intervals; see "
                "summary()['n_boot_failed']",
                TransportWarning,
                stacklevel=3,
            )
    else:
        extra = model.hazard if model.kind == "cox" else model.shift
        draw = ParametricDraws(model.boot_summary, model.coef, extra, model.kind)
    boot = run_bootstrap(
        TargetReplicate(model, target, X, times, tau, draw),
        model.n_boot,
        seed,
        n_jobs=n_jobs,
        progress=progress,
        label=f"shipped {model.kind} model of {model.source} in {target.name}",
        stream=(TARGET_STREAM,),
        indexed=True,
    )
    return boot.values
