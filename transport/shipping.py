"""Model shipping (DESIGN §5): fit the outcome model in the source's environment, release
it through the gate, and run the g-formula inside the target's environment, so that no
patient row crosses a border in either direction; only aggregates come back.

Estimand (Dahabreh et al. 2020): the target population's survival under the source's
outcome mechanism, ``S_T(t) = E_T[S_source(t | X)]``, estimated by the g-formula
``(1 / n_T) sum_{i in target} S_source(t | x_i)``, with its median and RMST(tau); compared
with the target's own Kaplan–Meier curve (the transportability test: differences, ratios,
equivalence against a margin fixed in advance).

Two steps, two environments:

1. **Source** — :meth:`ShippedModel.fit` fits a Cox model (Breslow or Efron baseline;
   Breslow 1972) or a piecewise exponential model on the source cohort and keeps what the
   target needs: the design spec (formula, covariate types, the source's levels, the state
   of stateful transforms: :meth:`~transport.Design.from_dict` rebuilds the encoding
   without the source rows), coefficients, their covariance, and

   * Cox: the baseline cumulative hazard ``H0(t)`` at the covariate means ``center``, on
     the policy's fixed grid (:meth:`~transport.disclosure.Policy.grid`: multiples of
     ``km_grid_step``), never at event times;
   * piecewise exponential: interior cut points **snapped to the grid** (the default cut
     points are event-time quantiles, which would reveal event times) and merged until
     every interval holds ``min_km_step`` events and starts with ``min_cell`` patients at
     risk, then the model is refitted on them;

   and optionally ``n_boot`` bootstrap refits on resamples of the source (replicate ``b``
   draws from child ``b`` of ``numpy.random.SeedSequence(seed)``), each kept as its
   coefficients and baseline on the grid.

   ``tp.disclosure.release(model, directory, policy)`` checks and writes it (rules below);
   :meth:`ShippedModel.from_release` reads the released directory back.

2. **Target** — :meth:`ShippedModel.apply` rebuilds the design on the target's rows,
   predicts every patient's ``S(t | x_i)`` and averages them: the transported curve on the
   released grid. Between grid times the Cox baseline is read with a constant hazard
   within each released step (``H0`` linear between grid times), so that S(t), the median
   and RMST(tau) are defined at any time up to the last released grid time; at the grid
   times themselves the curve is exactly the Cox g-formula of
   :func:`~transport.transport` (``method="gformula"``). The piecewise exponential model's
   curve is exact at any time. The target's observed Kaplan–Meier curve and the
   comparison come with it in a :class:`ShippedResult`, itself releasable.

Inference (which one a number came from is in ``ci_method``): with shipped replicates,
replicate ``b`` pairs the ``b``-th source refit with a resample of the target drawn inside
the target's environment (from ``SeedSequence(seed, spawn_key=(TARGET_STREAM, b))``
with the ``seed`` given to :meth:`apply`: a stream apart from the source's children
``(b,)``, so that the same seed in both environments does not draw target row ``i`` as
often as source row ``i``), and reads the transported and observed estimands from them:
the nonparametric bootstrap that :func:`~transport.transport` runs when it sees both
cohorts (source and target resampled separately, every model refitted), so the intervals
carry both the source model's uncertainty and the target's sampling. Without replicates
the transported estimates have no interval (as ``transport(method="gformula")`` without
``n_boot``).

Release rules for a model (rule names as in :mod:`transport.disclosure`):
``forbidden_column`` (a covariate, design column or level named as an identifier,
practice, physician or free text); ``min_cell`` (a source of fewer than ``min_cell``
patients; a categorical level, a value of a two-valued covariate (a 0/1 flag typed
continuous: centred, scaled or shifted, all its rows are nonzero, yet its mean gives its
count), or a design column's nonzero rows (by each combination of those levels and values
of its covariates) or their complement, resting on fewer than ``min_cell`` source
patients: merge levels before fitting; a stateful transform whose state holds
individual values, such as spline boundary knots at the minimum and maximum);
``min_residual_df`` (events minus parameters below
``min_residual_df``); ``km_grid`` and ``min_km_step`` (the baseline is released only at
grid times where the events and exits since the last released time are none or at least
``min_km_step``, merging the others into the next, as :func:`~transport.disclosure.coarsen_km`
does, and stops where the source's risk set falls below ``min_cell``; every piecewise
exponential interval needs ``min_km_step`` events). Released counts are rounded to
``round_to``. A result (:class:`ShippedResult`) is released with its S(t) rows only where
the target has ``min_cell`` patients at risk, its S(t) and RMST rows only where the
target's events and exits since the previous released time (from 0 for the first) are
none or at least ``min_km_step`` (as :class:`~transport.TransportResult`), its medians
rounded outwards to the grid (their equivalence p-value withheld), the
transported curve at the model's released grid times,
and the target's observed curve as the actuarial estimate of
:func:`~transport.disclosure.coarsen_km`; it must come from a released model.

Known limits (read before releasing a model): the released grid, its counts, the
design and the covariate means depend on the source's times only through their grid
step (the default pwexp cut points almost so: an event-time quantile is snapped to the
nearest grid time, so which half of its step it lies in can matter), but the fitted
numbers do not. The Cox partial likelihood's risk sets
and its Breslow or Efron baseline (at every released grid time, through the coefficients
too), and the piecewise exponential model's exposures and last representative time, use
exact times: moving one patient's death from day 400 to day 410 (one step) changes the
coefficients (by up to 1e-3 among 300 patients), and whoever holds both releases and
every other row can refit over the step's days and find 410
(``test_moving_an_event_time_within_a_step`` does).
This is the price of the shipped model being the Cox g-formula of
:func:`~transport.transport` and R's ``coxph`` at the grid times (a model fitted to
grid-grouped times would be another estimator); it is the differencing the gate already
accepts for exact S(t) and RMST: release a model once per analysis from a fixed cohort.
The covariate means (``center``, a ``center()`` or ``scale()`` state) are exact, so with
the rounded ``n`` they give the exact ``n`` and every level's count, each of which passed
the cell rule (as a summary's exact shares do). The bootstrap refits are released as
they are (coefficients, and baselines at the released grid times), each fitted on a
resample in which a level may rest on fewer than ``min_cell`` distinct patients, with
their seed's entropy. A covariate typed continuous with three or more distinct values is
not a cell (a rare value of ECOG coded 0-3 as a number is not checked: declare it
categorical). The transported curve of a result is an exact average over the target.

References
----------
Dahabreh IJ, Robertson SE, Steingrimsson JA, Stuart EA, Hernán MA (2020). Extending
    inferences from a randomized trial to a new target population. Stat Med 39:1999-2014.
Breslow NE (1972). Discussion of Professor Cox's paper. JRSS B 34:216-217.
Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from formulaic.errors import FactorEvaluationError
from scipy.optimize import brentq

from transport._validate import (
    check_alpha,
    check_ci_level,
    check_margins,
    check_n_boot,
    check_tau,
    check_times,
)
from transport.assess import tost
from transport.cohort import Cohort
from transport.design import Design
from transport.estimators import FixedGridKM, read_curve
from transport.exceptions import DataError, TransportWarning
from transport.inference import IntervalKind, interval, resample_counts, run_bootstrap
from transport.manifest import verify
from transport.policy import Policy
from transport.result import _wald, _wald_log_ratio
from transport.survival._cox import fit_cox
from transport.survival._pwexp import (
    check_breaks,
    default_breaks,
    exposure_matrix,
    fit_pwexp,
)
from transport.survival.curve import SurvivalCurve, kaplan_meier
from transport.survival.model_curve import ModelCurve
from transport.survival.models import CoxModel, PiecewiseExponentialModel

__all__ = ["MODEL_FILE", "SCHEMA", "ShippedModel", "ShippedResult", "json_array", "json_floats"]

SCHEMA = "transport.ShippedModel"
MODEL_FILE = "shipped_model.json"
ModelKind = Literal["cox", "pwexp"]
#: First spawn key of the target's resamples in :meth:`ShippedModel.apply` (the source's
#: refits use the children ``(b,)``): the two resamples stay independent with one seed.
TARGET_STREAM = 0x74617267


# -- arrays <-> JSON ---------------------------------------------------------------------
def json_floats(x: Any) -> Any:
    """Numbers as floats (non-finite as ``None``), recursively."""
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return json_floats(x.tolist())
    if isinstance(x, list | tuple):
        return [json_floats(v) for v in x]
    if isinstance(x, bool):
        return x
    if isinstance(x, int | float | np.number):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def json_array(x: Any, ndim: int = 1) -> np.ndarray:
    """A JSON list (``None`` as ``nan``) as a float array of ``ndim`` dimensions."""
    a = np.array(x, dtype=object)
    a = np.where(a == None, np.nan, a).astype(np.float64)  # noqa: E711 (elementwise)
    if a.size == 0:
        a = a.reshape((0,) * ndim)
    if a.ndim != ndim:
        raise DataError(f"shipped model array has {a.ndim} dimensions, not {ndim}")
    return a


# -- the grid ----------------------------------------------------------------------------
def _grid_counts(time: np.ndarray, event: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Patients at risk at the start of each grid step ``(g_{k-1}, g_k]`` and the events
    and censorings within it (unweighted)."""
    k = np.minimum(np.searchsorted(grid, time, side="left"), grid.size - 1)
    ev = event > 0
    n_event = np.bincount(k[ev], minlength=grid.size).astype(np.float64)
    n_censor = np.bincount(k[~ev], minlength=grid.size).astype(np.float64)
    exits = n_event + n_censor
    n_risk = time.size - np.concatenate(([0.0], np.cumsum(exits)[:-1]))
    return {"n_risk": n_risk, "n_event": n_event, "n_censor": n_censor}


def _on_grid(times: np.ndarray, hazard: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A step cumulative hazard (at ``times``) read at the grid times."""
    idx = np.searchsorted(times, grid, side="right") - 1
    return np.where(idx >= 0, hazard[np.maximum(idx, 0)], 0.0)


def _grid_breaks(
    time: np.ndarray,
    event: np.ndarray,
    breaks: Any,
    step: float,
    policy: Policy,
) -> np.ndarray:
    """Cut points on the grid: ``breaks`` (or event-time quantiles) snapped to the nearest
    grid time, then merged forward until every interval holds ``min_km_step`` events and
    starts with ``min_cell`` patients at risk (the open last one too)."""
    if breaks is None or (isinstance(breaks, int | np.integer) and not isinstance(breaks, bool)):
        n_int = 10 if breaks is None else int(breaks)
        if n_int < 1:
            raise ValueError(f"The 'breaks' parameter, a number of intervals, must be at least "
                             f"1. Got {breaks!r}.")  # fmt: skip
        cuts = default_breaks(time, event, n_int)
    else:
        try:
            cuts = check_breaks(np.asarray(breaks, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The 'breaks' parameter must be None, a number of intervals or increasing "
                f"positive cut points ({exc})."
            ) from None
    snapped = np.unique(np.round(cuts / step) * step)
    snapped = snapped[snapped > 0]
    ev_time = np.sort(time[event > 0])
    keep: list[float] = []
    last = 0.0
    for c in snapped:
        inside = np.searchsorted(ev_time, c, side="right") - np.searchsorted(
            ev_time, last, side="right"
        )
        after = ev_time.size - np.searchsorted(ev_time, c, side="right")
        at_risk = int(np.sum(time > c))
        if after < policy.min_km_step or at_risk < policy.min_cell:
            break
        if inside >= policy.min_km_step:
            keep.append(float(c))
            last = float(c)
    return np.asarray(keep, dtype=np.float64)


def _interval_counts(time: np.ndarray, event: np.ndarray, breaks: np.ndarray) -> dict[str, Any]:
    """Patients at risk at the start of each interval and the events in it."""
    lo = np.concatenate(([0.0], breaks))
    k = np.searchsorted(breaks, time[event > 0], side="left")
    return {
        "n_risk": np.asarray([float(np.sum(time > c)) if c > 0 else float(time.size) for c in lo]),
        "n_event": np.bincount(k, minlength=lo.size).astype(np.float64),
    }


# -- cumulative hazards, and the curve functionals --------------------------------------
def _cox_hazards(X: np.ndarray, coef: np.ndarray, center: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """``H(g_k | x_i) = H0(g_k) exp((x_i - center)' beta)``: rows x grid times, the
    arithmetic of :meth:`CoxFit.survival`."""
    risk = np.exp((X - center) @ coef)
    return np.asarray(np.outer(risk, h0), dtype=np.float64)


def _pwexp_hazards(
    X: np.ndarray,
    coef: np.ndarray,
    shift: np.ndarray,
    breaks: np.ndarray,
    time_varying: bool,
    knots: np.ndarray,
) -> np.ndarray:
    """``H(t | x_i) = sum_k h_k(x_i) |(0, t] ∩ I_k|`` at the knots: rows x knots."""
    K = breaks.size + 1
    p = X.shape[1]
    alpha, beta = coef[:K], coef[K : K + p]
    gamma = coef[K + p :] if time_varying else np.zeros(p)
    log_h = alpha[None, :] + (X @ beta)[:, None] + np.outer(X @ gamma, shift)
    return np.asarray(np.exp(log_h) @ exposure_matrix(knots, breaks).T, dtype=np.float64)


def _phi(x: np.ndarray) -> np.ndarray:
    """``(1 - exp(-x)) / x`` (1 at 0), for the integral of ``exp(-x t)`` over a step."""
    safe = np.where(x > 1e-10, x, 1.0)
    return np.where(x > 1e-10, -np.expm1(-safe) / safe, 1.0 - x / 2.0)


class _Curve:
    """The average over patients (weights ``w``) of ``exp(-H_i(t))`` with every ``H_i``
    linear between the knots: S at any time up to the last knot, the median (a root of
    a continuous decreasing function) and RMST (closed form per step)."""

    def __init__(self, knots: np.ndarray, H: np.ndarray, w: np.ndarray | None = None) -> None:
        self.t0 = np.concatenate(([0.0], knots))
        self.H = np.column_stack((np.zeros(H.shape[0]), H))
        self.w = np.ones(H.shape[0]) if w is None else w
        self.wsum = float(self.w.sum())
        with np.errstate(invalid="ignore"):
            self.slope = np.diff(self.H, axis=1) / np.diff(self.t0)[None, :]

    def at_knots(self) -> np.ndarray:
        """S at every knot (without the 0 in front)."""
        return np.asarray((self.w @ np.exp(-self.H[:, 1:])) / self.wsum, dtype=np.float64)

    def hazard_at(self, times: np.ndarray) -> np.ndarray:
        """``H_i(t)``: rows x times (exactly the knot values at the knots)."""
        last = self.t0.size - 1
        k = np.minimum(np.searchsorted(self.t0, times, side="right") - 1, last)
        inner = np.minimum(k, last - 1)
        H = self.H[:, k] + (times - self.t0[k])[None, :] * self.slope[:, inner]
        return np.asarray(np.where((k == last)[None, :], self.H[:, k], H), dtype=np.float64)

    def survival(self, times: np.ndarray) -> np.ndarray:
        """The average ``S(t)`` at ``times``."""
        return np.asarray((self.w @ np.exp(-self.hazard_at(times))) / self.wsum, np.float64)

    def rmst(self, tau: float) -> float:
        total = 0.0
        for k in range(self.t0.size - 1):
            lo = self.t0[k]
            if lo >= tau:
                break
            dt = min(self.t0[k + 1], tau) - lo
            part = np.exp(-self.H[:, k]) * dt * _phi(self.slope[:, k] * dt)
            total += float(self.w @ part) / self.wsum
        return total

    def median(self) -> float:
        s = np.concatenate(([1.0], self.at_knots()))
        below = np.flatnonzero(s <= 0.5)
        if below.size == 0:
            return math.nan
        k = int(below[0])
        a, b = float(self.t0[k - 1]), float(self.t0[k])
        if s[k] == 0.5:
            return b
        return float(
            brentq(
                lambda t: self.survival(np.array([t]))[0] - 0.5, a, b, xtol=1e-10 * b, rtol=1e-14
            )
        )

    def read(self, times: np.ndarray, tau: float | None) -> np.ndarray:
        """S at ``times``, the median and (with ``tau``) RMST(tau), as :func:`read_curve`."""
        extra = [self.median()] + ([self.rmst(tau)] if tau is not None else [])
        return np.concatenate((self.survival(times), extra))


# -- bootstrap refits in the source --------------------------------------------------------
class _SourceReplicate:
    """One bootstrap refit of the source model on a resample (picklable): its coefficients
    and its baseline on the grid (Cox, re-centred at the full-data ``center``) or its
    representative-time shifts (piecewise exponential)."""

    def __init__(self, model: ShippedModel, time: np.ndarray, event: np.ndarray,
                 X: np.ndarray) -> None:  # fmt: skip
        self.kind = model.kind
        self.ties = model.ties
        self.time, self.event, self.X = time, event, X
        self.grid = model.grid
        self.center = model.center
        self.breaks = model.breaks
        self.time_varying = model.time_varying
        self.coef = model.coef
        extra = self.grid.size if model.shift is None else model.shift.size
        self.width = model.coef.size + extra

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        cs = resample_counts(rng, self.time.size)
        try:
            with np.errstate(all="ignore"):  # a resample without a finite fit: a failed row
                out = self._refit(cs)
        except (np.linalg.LinAlgError, ValueError):
            return np.full(self.width, np.nan)
        return out if np.all(np.isfinite(out)) else np.full(self.width, np.nan)

    def _refit(self, cs: np.ndarray) -> np.ndarray:
        if self.kind == "cox":
            keep = cs > 0
            fit = fit_cox(self.time[keep], self.event[keep], self.X[keep], cs[keep],
                          ties=self.ties)  # type: ignore[arg-type]  # fmt: skip
            if not fit.converged:
                return np.full(self.width, np.nan)
            assert self.center is not None
            h0 = _on_grid(fit.times, fit.hazard, self.grid)
            h0 = h0 * math.exp(float((self.center - fit.center) @ fit.coef))
            return np.concatenate((fit.coef, h0))
        assert self.breaks is not None
        pw = fit_pwexp(self.time, self.event, self.X, self.breaks, cs,
                       time_varying=self.time_varying, start=self.coef)  # fmt: skip
        if not pw.converged:
            return np.full(self.width, np.nan)
        return np.concatenate((pw.coef, pw.shift))


class ShippedModel:
    """A source outcome model made to travel: everything the g-formula needs in the target's
    environment, and nothing at the level of a patient.

    Build it in the source's environment with :meth:`fit`; release it with
    ``tp.disclosure.release(model, directory, policy)``; in the target's environment read it
    with :meth:`from_release` (or :meth:`from_json`) and call :meth:`apply`. The module
    docstring gives the estimand, the inference and the release rules.

    Attributes
    ----------
    kind
        ``"cox"`` or ``"pwexp"``.
    source, time_unit
        The source cohort's name and time unit (times given to :meth:`apply` are in it).
    design
        The :class:`~transport.Design` rebuilt from the shipped spec (no source rows).
    names, coef, cov
        Coefficient names, estimates and covariance (inverse information).
    grid, grid_step
        The times the curve is given at (the policy's fixed grid; after release, its
        released part) and the grid spacing.
    hazard, center, ties
        Cox: baseline cumulative hazard at ``grid`` for covariates equal to ``center``
        (Breslow, or its Efron analogue, as R's ``survfit.coxph``), and the ties method.
    breaks, shift, time_varying
        Piecewise exponential: interior cut points (on the grid), ``log m_k - center`` of
        each interval, and whether the log hazard ratios change with log time.
    n, n_events, n_params
        Patients, events and coefficients of the fit (counts rounded once released).
    n_boot, boot_failed
        Bootstrap refits shipped and how many of them failed.
    released
        Whether this model passed the gate (its counts are then rounded and the
        per-level counts the gate needs are gone, so it cannot be released again).

    Examples
    --------
    >>> import transport as tp
    >>> us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    >>> model = tp.ShippedModel.fit(us)  # in the source's environment
    >>> model.grid[:3]  # the baseline is kept on the policy's monthly grid
    array([30.4375, 60.875 , 91.3125])
    >>> res = model.apply(jp, times=[365.25], tau=730.5)  # in the target's environment
    >>> res.summary()["transported"].round(3).to_list()
    [0.457, 322.57, 372.19]
    """

    def __init__(
        self,
        *,
        kind: ModelKind,
        source: str,
        time_unit: str,
        design: Mapping[str, Any],
        names: tuple[str, ...],
        coef: np.ndarray,
        cov: np.ndarray,
        grid: np.ndarray,
        grid_step: float,
        grid_counts: Mapping[str, np.ndarray],
        n: float,
        n_events: float,
        hazard: np.ndarray | None = None,
        center: np.ndarray | None = None,
        ties: str = "efron",
        breaks: np.ndarray | None = None,
        shift: np.ndarray | None = None,
        time_varying: bool = False,
        interval_counts: Mapping[str, np.ndarray] | None = None,
        level_counts: Mapping[str, Mapping[str, float]] | None = None,
        column_counts: np.ndarray | None = None,
        column_binary: np.ndarray | None = None,
        boot_coef: np.ndarray | None = None,
        boot_extra: np.ndarray | None = None,
        boot_entropy: str | None = None,
        released: bool = False,
        policy: str = "default",
    ) -> None:
        if kind not in ("cox", "pwexp"):
            raise ValueError(
                f"The 'kind' of a shipped model must be 'cox' or 'pwexp'. Got {kind!r}."
            )
        self.kind: ModelKind = kind
        self.source = source
        self.name = source
        self.time_unit = time_unit
        self.design_spec = dict(design)
        self.design = Design.from_dict(design)
        self.names = tuple(names)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.grid = np.asarray(grid, dtype=np.float64)
        self.grid_step = float(grid_step)
        self.grid_counts = {k: np.asarray(v, dtype=np.float64) for k, v in grid_counts.items()}
        self.n = float(n)
        self.n_events = float(n_events)
        self.hazard = None if hazard is None else np.asarray(hazard, dtype=np.float64)
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.ties = ties
        self.breaks = None if breaks is None else np.asarray(breaks, dtype=np.float64)
        self.shift = None if shift is None else np.asarray(shift, dtype=np.float64)
        self.time_varying = bool(time_varying)
        self.interval_counts = (
            None
            if interval_counts is None
            else {k: np.asarray(v, dtype=np.float64) for k, v in interval_counts.items()}
        )
        self.level_counts = (
            None
            if level_counts is None
            else {
                str(v): {str(k): float(c) for k, c in lv.items()} for v, lv in level_counts.items()
            }
        )
        self.column_counts = (
            None if column_counts is None else np.asarray(column_counts, np.float64)
        )
        self.column_binary = None if column_binary is None else np.asarray(column_binary, bool)
        self.boot_coef = None if boot_coef is None else np.asarray(boot_coef, dtype=np.float64)
        self.boot_extra = None if boot_extra is None else np.asarray(boot_extra, dtype=np.float64)
        self.boot_entropy = boot_entropy
        self.released = bool(released)
        self.policy = policy
        self._check()

    def _check(self) -> None:
        """Shapes agree (a file edited by hand, say, is refused with the field named)."""
        p, P, K = len(self.design.columns), self.coef.size, self.grid.size
        problems = []
        if len(self.names) != P or self.cov.shape != (P, P):
            problems.append(
                f"{P} coefficients, {len(self.names)} names, covariance {self.cov.shape}"
            )
        if K == 0 or np.any(np.diff(self.grid) <= 0) or self.grid[0] <= 0:
            problems.append("grid is not increasing positive times")
        for key, v in self.grid_counts.items():
            if v.shape != (K,):
                problems.append(f"grid_counts[{key!r}] has {v.size} values for {K} grid times")
        if self.kind == "cox":
            if self.hazard is None or self.hazard.shape != (K,):
                problems.append("a Cox model needs one baseline hazard per grid time")
            if self.center is None or self.center.shape != (p,) or p != P:
                problems.append(f"a Cox model needs {p} coefficients and centres")
        else:
            if self.breaks is None or self.shift is None:
                problems.append("a piecewise exponential model needs breaks and shifts")
            else:
                n_int = self.breaks.size + 1
                if self.shift.shape != (n_int,) or n_int + p * (2 if self.time_varying else 1) != P:
                    problems.append(f"{n_int} intervals, {p} columns, {P} coefficients disagree")
        if self.boot_coef is not None:
            B = self.boot_coef.shape[0]
            width = K if self.kind == "cox" else (self.shift.size if self.shift is not None else 0)
            if (
                self.boot_coef.shape != (B, P)
                or self.boot_extra is None
                or self.boot_extra.shape != (B, width)
            ):
                problems.append("bootstrap replicates do not match the model's shape")
        if problems:
            raise DataError(
                f"shipped model of {self.source!r} is inconsistent: " + "; ".join(problems)
            )

    # -- building it in the source ---------------------------------------------------------
    @classmethod
    def fit(
        cls,
        source: Cohort,
        formula: str | None = None,
        *,
        model: ModelKind = "cox",
        ties: Literal["efron", "breslow"] = "efron",
        breaks: Any = None,
        time_varying: bool = True,
        n_boot: int = 0,
        seed: int | np.random.SeedSequence | None = None,
        n_jobs: int = 1,
        policy: Policy | None = None,
    ) -> ShippedModel:
        """Fit the outcome model in the source's environment and keep what travels.

        Parameters
        ----------
        source
            The source :class:`~transport.Cohort` (right-censored; no delayed entry).
        formula
            Right-hand side of the outcome design (default main effects).
        model, ties
            ``"cox"`` (with ``ties`` "efron", as R's ``coxph``, or "breslow") or
            ``"pwexp"`` (piecewise exponential, :class:`PiecewiseExponentialModel`).
        breaks, time_varying
            ``pwexp`` only: ``None`` (10 intervals at event-time quantiles), a number of
            intervals, or cut points; **snapped to the policy's grid** and merged until
            every interval has ``min_km_step`` events and starts with ``min_cell``
            patients at risk, so that no cut point is an event time; the model is fitted
            on the snapped cut points. ``time_varying`` as in the model.
        n_boot, seed, n_jobs
            Bootstrap refits on resamples of the source, shipped so that the target can
            give intervals carrying the source model's uncertainty (0: none; otherwise at
            least 2). Replicate ``b`` uses child ``b`` of ``SeedSequence(seed)``; the same
            for any ``n_jobs``.
        policy
            The :class:`~transport.disclosure.Policy` whose grid the baseline is kept on
            (release with the same policy).

        Raises
        ------
        DataError
            The model cannot be fitted (see :class:`CoxModel`), or its design cannot be
            rebuilt from its spec.
        """
        policy = Policy() if policy is None else policy
        if not isinstance(source, Cohort):
            raise TypeError(f"The 'source' parameter of ShippedModel.fit must be a Cohort. "
                            f"Got {type(source).__name__} instead.")  # fmt: skip
        if not isinstance(policy, Policy):
            raise TypeError(f"The 'policy' parameter must be a transport.disclosure.Policy. "
                            f"Got {type(policy).__name__} instead.")  # fmt: skip
        if model not in ("cox", "pwexp"):
            raise ValueError(f"The 'model' parameter must be 'cox' or 'pwexp'. Got {model!r}.")
        check_n_boot(n_boot)
        if source.entry is not None:
            raise DataError(
                f"cohort {source.name!r} has delayed entry (column {source.entry!r}; "
                f"{source.n} rows) (rule: a shipped outcome model is fitted to "
                "right-censored data only)"
            )
        time, event = source.time_values, source.event_values
        step = policy.grid_step_in(source.time_unit)
        grid = policy.grid(float(time.max()), source.time_unit)
        kw: dict[str, Any] = {}
        fitted: CoxModel | PiecewiseExponentialModel
        if model == "cox":
            fitted = CoxModel(source, formula, ties=ties)
            kw.update(
                hazard=_on_grid(fitted.fit.times, fitted.fit.hazard, grid),
                center=fitted.fit.center,
                ties=ties,
            )
            names = fitted.design.columns
        else:
            if not event.any():
                raise DataError(
                    f"event column {source.event!r} has no events in {source.n} rows (rule: "
                    "at least one event to fit an outcome model)"
                )
            cuts = _grid_breaks(time, event, breaks, step, policy)
            fitted = PiecewiseExponentialModel(
                source, formula, breaks=cuts, time_varying=time_varying
            )
            kw.update(
                breaks=fitted.fit.breaks,
                shift=fitted.fit.shift,
                time_varying=fitted.time_varying,
                interval_counts=_interval_counts(time, event, fitted.fit.breaks),
            )
            names = fitted.names
        design = fitted.design
        spec = design.to_dict()
        rebuilt = Design.from_dict(json.loads(json.dumps(spec)))
        try:
            again = rebuilt.matrix(source)
        except FactorEvaluationError as exc:  # a transform's state did not survive JSON
            raise DataError(
                f"the design {design.formula!r} rebuilt from its spec cannot be evaluated on "
                f"{source.name!r}: the state of {list(design.stateful)} does not survive JSON "
                f"({exc}) (rule: a shipped design carries the state of its stateful "
                "transforms, as center() and scale() do)"
            ) from None
        if not np.array_equal(again, design.source_matrix):
            raise DataError(
                f"the design {design.formula!r} rebuilt from its spec does not reproduce the "
                f"source's design matrix of {source.name!r} (rule: a shipped design follows "
                "from the formula, the covariate types, the levels and the transform state)"
            )
        X = design.source_matrix
        level_counts, column_counts = _cells(source, design, X)
        out = cls(
            kind=model,
            source=source.name,
            time_unit=source.time_unit,
            design=spec,
            names=tuple(names),
            coef=fitted.fit.coef,
            cov=fitted.cov,
            grid=grid,
            grid_step=step,
            grid_counts=_grid_counts(time, event, grid),
            n=float(source.n),
            n_events=float(np.sum(event > 0)),
            level_counts=level_counts,
            column_counts=column_counts,
            column_binary=np.all((X == 0) | (X == 1), axis=0),
            policy=policy.name,
            **kw,
        )
        if n_boot:
            rep = _SourceReplicate(out, time, event, X)
            draws = run_bootstrap(rep, int(n_boot), seed, n_jobs=n_jobs,
                                  label=f"shipped {model} model of {source.name}")  # fmt: skip
            P = out.coef.size
            out.boot_coef = draws.values[:, :P]
            out.boot_extra = draws.values[:, P:]
            out.boot_entropy = str(draws.entropy)
        return out

    # -- properties ----------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of coefficients (the residual degrees of freedom are events minus it)."""
        return int(self.coef.size)

    @property
    def n_boot(self) -> int:
        """Bootstrap refits shipped (failed ones included)."""
        return 0 if self.boot_coef is None else int(self.boot_coef.shape[0])

    @property
    def boot_failed(self) -> int:
        """Bootstrap refits that did not converge (rows of ``nan``)."""
        if self.boot_coef is None:
            return 0
        return int(np.sum(~np.all(np.isfinite(self.boot_coef), axis=1)))

    @property
    def estimand(self) -> str:
        return (
            "S_T(t) = mean over target patients of S_source(t | x_i), the g-formula "
            "(Dahabreh et al. 2020)"
        )

    # -- predicting ------------------------------------------------------------------------
    def _knots(self) -> np.ndarray:
        if self.kind == "cox" or self.breaks is None:
            return self.grid
        inner = self.breaks[self.breaks < self.grid[-1]]
        return np.union1d(self.grid, inner)

    def _hazards(self, X: np.ndarray, b: int | None = None) -> np.ndarray | None:
        """Cumulative hazards of the rows of ``X`` at :meth:`_knots` with the full-data
        fit (``b=None``) or bootstrap refit ``b`` (``None`` if it failed)."""
        coef = self.coef if b is None else self.boot_coef[b]  # type: ignore[index]
        extra = None if b is None else self.boot_extra[b]  # type: ignore[index]
        if not np.all(np.isfinite(coef)) or (extra is not None and not np.all(np.isfinite(extra))):
            return None
        if self.kind == "cox":
            assert self.center is not None and self.hazard is not None
            return _cox_hazards(X, coef, self.center, self.hazard if extra is None else extra)
        assert self.breaks is not None and self.shift is not None
        shift = self.shift if extra is None else extra
        return _pwexp_hazards(X, coef, shift, self.breaks, self.time_varying, self._knots())

    def _matrix(self, cohort: Cohort) -> np.ndarray:
        if not isinstance(cohort, Cohort):
            raise TypeError(f"The 'target' parameter must be a Cohort. "
                            f"Got {type(cohort).__name__} instead.")  # fmt: skip
        return self.design.matrix(cohort)

    def _check_times(self, times: np.ndarray, what: str) -> None:
        last = float(self.grid[-1])
        bad = times[(times > last * (1 + 1e-12)) | (times < 0) | ~np.isfinite(times)]
        if bad.size:
            raise DataError(
                f"{what} {bad.tolist()} lie outside the shipped curve of {self.source!r}, which "
                f"ends at {last:g} {self.time_unit} (rule: times within (0, {last:g}]: the "
                "baseline stops where the source's risk set or its steps allowed)"
            )

    def predict_survival(self, cohort: Cohort, times: Any) -> np.ndarray:
        """Each patient's ``S(t | x_i)`` from the shipped model: patients x times (the
        Cox baseline read with a constant hazard between grid times)."""
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        cohort = _in_unit(cohort, self.time_unit)
        self._check_times(t, "times")
        H = self._hazards(self._matrix(cohort))
        assert H is not None
        return np.exp(-_Curve(self._knots(), H).hazard_at(t))

    def marginal_survival(self, cohort: Cohort, times: Any) -> np.ndarray:
        """The g-formula: the average of :meth:`predict_survival` over ``cohort``."""
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        cohort = _in_unit(cohort, self.time_unit)
        self._check_times(t, "times")
        H = self._hazards(self._matrix(cohort))
        assert H is not None
        return _Curve(self._knots(), H).survival(t)

    # -- applying it in the target ---------------------------------------------------------
    def apply(
        self,
        target: Cohort,
        *,
        times: Any = None,
        tau: float | None = None,
        margin: float | Mapping[str, float] | None = None,
        seed: int | np.random.SeedSequence | None = None,
        ci_level: float = 0.95,
    ) -> ShippedResult:
        """Run the g-formula on the target's rows, inside the target's environment.

        Estimand: ``S_T(t) = (1 / n_T) sum_i S_source(t | x_i)`` over the target's
        patients (Dahabreh et al. 2020), with its median and RMST(tau), against the
        target's own Kaplan–Meier curve.

        Parameters
        ----------
        target
            The target :class:`~transport.Cohort` (converted to the model's time unit if
            needed; right-censored).
        times, tau
            Times for S(t) and the RMST horizon, in the model's time unit, at most the
            last time of the shipped curve (:attr:`grid`).
        margin
            Equivalence margin(s), as in :func:`~transport.transport`.
        seed
            Seeds the target's resamples, one per shipped source refit: replicate ``b``
            uses ``SeedSequence(seed, spawn_key=(TARGET_STREAM, b))``, never a child
            the source's refits used, so that the two resamples are independent even
            with the seed given to :meth:`fit`.
        ci_level
            Nominal coverage of the intervals.

        Raises
        ------
        DataError
            A covariate of the design is missing, of another type or has a level the
            source never saw (named with its rows); the target has delayed entry; a time
            lies past the shipped curve.
        """
        if not isinstance(target, Cohort):
            raise TypeError(f"The 'target' parameter of apply must be a Cohort. "
                            f"Got {type(target).__name__} instead.")  # fmt: skip
        if target.entry is not None:
            raise DataError(
                f"cohort {target.name!r} has delayed entry (column {target.entry!r}; "
                f"{target.n} rows) (rule: the shipped g-formula needs right-censored data)"
            )
        check_ci_level(ci_level)
        t = check_times(times, "ShippedModel.apply")
        self._check_times(t, "times")
        tau_ = check_tau(tau, "ShippedModel.apply")
        if tau_ is not None:
            self._check_times(np.array([tau_]), "tau")
        estimands: list[tuple[str, float | None]] = [("survival", float(x)) for x in t]
        estimands.append(("median", None))
        if tau_ is not None:
            estimands.append(("rmst", tau_))
        margins = check_margins(margin, [e for e, _ in estimands])
        target = _in_unit(target, self.time_unit)
        X = self._matrix(target)
        H = self._hazards(X)
        assert H is not None
        knots = self._knots()
        curve = _Curve(knots, H)
        on_grid = curve.at_knots()[np.isin(knots, self.grid)]
        transported = ModelCurve(
            self.grid,
            on_grid,
            method="gformula",
            name=f"{self.source} -> {target.name}",
            time_unit=self.time_unit,
            note=f"average over the target of the shipped {self.kind} model's predictions",
        )
        values = curve.read(t, tau_)
        observed = kaplan_meier(target, conf_level=float(ci_level))
        draws = failed_rows = None
        if self.boot_failed:
            warnings.warn(
                f"{self.boot_failed} of {self.n_boot} shipped bootstrap refits of "
                f"{self.source!r} failed (no finite fit in the resample, e.g. a rare level "
                "left out) and are left out of the intervals; see "
                "summary()['n_boot_failed']",
                TransportWarning,
                stacklevel=2,
            )
        if self.n_boot:
            km = FixedGridKM(target.time_values, target.event_values)
            ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
            k = len(estimands)
            draws = np.full((self.n_boot, 2 * k), np.nan)
            failed_rows = np.zeros(self.n_boot, dtype=bool)
            for b in range(self.n_boot):
                key = (*ss.spawn_key, TARGET_STREAM, b)
                child = np.random.SeedSequence(ss.entropy, spawn_key=key, pool_size=ss.pool_size)
                ct = resample_counts(np.random.default_rng(child), target.n)
                Hb = self._hazards(X, b)
                if Hb is None:
                    failed_rows[b] = True
                    continue
                draws[b, :k] = _Curve(knots, Hb, ct).read(t, tau_)
                draws[b, k:] = read_curve(km.grid, km.survival(ct), t, tau_)
        return ShippedResult(
            model=self,
            target=target.name,
            n_target=target.n,
            times=t,
            tau=tau_,
            estimands=estimands,
            transported=transported,
            transported_values=values,
            observed=observed,
            draws=draws,
            failed_rows=failed_rows,
            ci_level=float(ci_level),
            margins=margins,
        )

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: every field, numbers as floats, no patient-level values."""
        boot = None
        if self.boot_coef is not None:
            boot = {
                "coef": json_floats(self.boot_coef),
                "hazard" if self.kind == "cox" else "shift": json_floats(self.boot_extra),
                "seed_entropy": self.boot_entropy,
            }
        return {
            "schema": SCHEMA,
            "version": 1,
            "kind": self.kind,
            "estimand": self.estimand,
            "source": self.source,
            "time_unit": self.time_unit,
            "design": self.design_spec,
            "names": list(self.names),
            "coef": json_floats(self.coef),
            "cov": json_floats(self.cov),
            "grid_step": self.grid_step,
            "grid": json_floats(self.grid),
            "grid_counts": {k: json_floats(v) for k, v in self.grid_counts.items()},
            "n": self.n,
            "n_events": self.n_events,
            "cox": None
            if self.kind != "cox"
            else {
                "ties": self.ties,
                "center": json_floats(self.center),
                "hazard": json_floats(self.hazard),
            },
            "pwexp": None
            if self.kind != "pwexp"
            else {
                "breaks": json_floats(self.breaks),
                "shift": json_floats(self.shift),
                "time_varying": self.time_varying,
                "interval_counts": None
                if self.interval_counts is None
                else {k: json_floats(v) for k, v in self.interval_counts.items()},
            },
            "level_counts": self.level_counts,
            "column_counts": json_floats(self.column_counts),
            "column_binary": None if self.column_binary is None else self.column_binary.tolist(),
            "bootstrap": boot,
            "released": self.released,
            "policy": self.policy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippedModel:
        """The model from :meth:`to_dict` (a released one included)."""
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
            raise DataError(
                f"not a shipped model (rule: a JSON object with schema {SCHEMA!r}, written by "
                "ShippedModel.to_json or released by tp.disclosure.release)"
            )
        try:
            kind = data["kind"]
            kw: dict[str, Any] = {}
            if kind == "cox":
                cox = data["cox"]
                kw.update(
                    ties=cox["ties"],
                    center=json_array(cox["center"]),
                    hazard=json_array(cox["hazard"]),
                )
            elif kind == "pwexp":
                pw = data["pwexp"]
                ic = pw.get("interval_counts")
                kw.update(
                    breaks=json_array(pw["breaks"]),
                    shift=json_array(pw["shift"]),
                    time_varying=bool(pw["time_varying"]),
                    interval_counts=None
                    if ic is None
                    else {k: json_array(v) for k, v in ic.items()},
                )
            boot = data.get("bootstrap")
            if boot is not None:
                kw.update(
                    boot_coef=json_array(boot["coef"], 2),
                    boot_extra=json_array(boot["hazard" if kind == "cox" else "shift"], 2),
                    boot_entropy=boot.get("seed_entropy"),
                )
            cc = data.get("column_counts")
            return cls(
                kind=kind,
                source=str(data["source"]),
                time_unit=str(data["time_unit"]),
                design=data["design"],
                names=tuple(data["names"]),
                coef=json_array(data["coef"]),
                cov=json_array(data["cov"], 2),
                grid=json_array(data["grid"]),
                grid_step=float(data["grid_step"]),
                grid_counts={k: json_array(v) for k, v in data["grid_counts"].items()},
                n=float(data["n"]),
                n_events=float(data["n_events"]),
                level_counts=data.get("level_counts"),
                column_counts=None if cc is None else json_array(cc),
                column_binary=data.get("column_binary"),
                released=bool(data.get("released", False)),
                policy=str(data.get("policy", "default")),
                **kw,
            )
        except (KeyError, TypeError) as exc:
            raise DataError(
                f"shipped model lacks or mistypes field {exc} (rule: the fields written by "
                "ShippedModel.to_dict)"
            ) from None

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (in the source's environment; export goes through
        ``tp.disclosure.release``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        Path(path).write_text(text + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> ShippedModel:
        """Read a model written by :meth:`to_json` or released by the gate."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_release(cls, directory: str | Path) -> ShippedModel:
        """Read a released model: the directory is checked against its manifest first
        (:func:`~transport.disclosure.verify`)."""
        directory = Path(directory)
        manifest = verify(directory)
        if manifest.get("object") != "ShippedModel":
            raise DataError(
                f"release {str(directory)!r} holds a {manifest.get('object')!r}, not a ShippedModel"
            )
        return cls.from_json(directory / MODEL_FILE)

    def __repr__(self) -> str:
        boot = f", {self.n_boot} bootstrap refits" if self.n_boot else ""
        state = "released" if self.released else "not released"
        return (
            f"ShippedModel({self.source!r}: {self.kind}, {len(self.design.columns)} columns, "
            f"grid of {self.grid.size} times to {self.grid[-1]:g} {self.time_unit}{boot}; "
            f"{state})"
        )


def _cells(
    source: Cohort, design: Design, X: np.ndarray
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """What the cell rule checks at release: the source patients at each level of a
    categorical covariate and at each value of a two-valued one (a 0/1 flag typed
    continuous, whose count ``center()``, ``scale()`` or ``I(flag - 0.5)`` would otherwise
    hide from a count of nonzero rows), and for each design column the fewest patients
    among its nonzero rows that share one combination of those levels and values of its
    covariates (for a 0/1 column of levels, its nonzero rows; for a centred flag's
    interaction with a level, the flag's patients within the level, which its mean
    gives back)."""
    frame = source.covariate_frame
    codes: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, float]] = {}
    for v in design.covariates:
        if v in design.levels:
            values = frame[v].cast(pl.String).to_numpy()
            names = np.asarray(design.levels[v], dtype=object)
        else:
            values = frame[v].to_numpy()
            names = np.unique(values)
            if names.size != 2:
                continue
        code = np.full(values.size, -1, dtype=np.int64)
        for i, name in enumerate(names):
            code[values == name] = i
        codes[v] = code
        counts[v] = {str(name): float(np.sum(code == i)) for i, name in enumerate(names.tolist())}
    cells = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        nonzero = X[:, j] != 0
        key = np.zeros(int(nonzero.sum()), dtype=np.int64)
        for v in design.covariates_of([j]):
            if v in codes:
                key = key * (len(counts[v]) + 1) + codes[v][nonzero] + 1
        sizes = np.unique(key, return_counts=True)[1]
        cells[j] = float(sizes.min()) if sizes.size else 0.0
    return counts, cells


def _in_unit(cohort: Cohort, unit: str) -> Cohort:
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected a Cohort; got {type(cohort).__name__}")
    return cohort if cohort.time_unit == unit else cohort.in_unit(unit)  # type: ignore[arg-type]


# -- the result in the target --------------------------------------------------------------
class ShippedResult:
    """The shipped model's g-formula in the target, the target's observed curve, and their
    comparison (returned by :meth:`ShippedModel.apply`; releasable through the gate).

    Attributes
    ----------
    source, target, model_kind, time_unit
        Names, the model and the time unit.
    transported
        :class:`~transport.survival.model_curve.ModelCurve` of the g-formula on the
        shipped grid.
    observed
        The target's Kaplan–Meier :class:`~transport.SurvivalCurve`.
    times, tau, estimands, ci_level
        Settings and the rows of :meth:`summary`.
    draws
        ``n_boot`` x ``2k`` bootstrap replicates (transported, then observed estimands),
        or ``None``.
    """

    method = "gformula"

    def __init__(
        self,
        *,
        model: ShippedModel,
        target: str,
        n_target: int,
        times: np.ndarray,
        tau: float | None,
        estimands: list[tuple[str, float | None]],
        transported: ModelCurve,
        transported_values: np.ndarray,
        observed: SurvivalCurve,
        draws: np.ndarray | None,
        failed_rows: np.ndarray | None,
        ci_level: float,
        margins: np.ndarray,
    ) -> None:
        self.source = model.source
        self.name = model.source
        self.target = target
        self.model_kind = model.kind
        self.model_released = model.released
        self.n_source = model.n
        self.n_target = n_target
        self.n_boot = model.n_boot
        self.grid_step = model.grid_step
        self.time_unit = model.time_unit
        self.covariates = model.design.covariates
        self.times = times
        self.tau = tau
        self.estimands = estimands
        self.transported = transported
        self._tr = np.asarray(transported_values, dtype=np.float64)
        self.observed = observed
        self.draws = draws
        self._failed_rows = failed_rows
        self.ci_level = ci_level
        self._margins = margins

    @property
    def k(self) -> int:
        return len(self.estimands)

    @property
    def failed(self) -> int:
        """Replicates without an estimate (a source refit that failed); a replicate whose
        median is not reached (``nan``) has not failed."""
        if self._failed_rows is None:
            return 0
        return int(np.sum(self._failed_rows))

    def _interval(
        self, r: np.ndarray, est: np.ndarray, kind: IntervalKind, level: float, **kw: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`~transport.inference.interval` over the replicates whose refit
        succeeded: it drops a row that is all ``nan`` as failed, so a column of zeros rides
        along to keep a successful replicate whose only estimand (a median) is ``nan``."""
        assert self._failed_rows is not None
        r = r[~self._failed_rows]
        se, lo, hi = interval(np.column_stack((r, np.zeros(r.shape[0]))), np.append(est, 0.0),
                              kind, level, **kw)  # fmt: skip
        return se[:-1], lo[:-1], hi[:-1]

    def _observed(self) -> dict[str, np.ndarray]:
        k, n_t = self.k, self.times.size
        value, se, lo, hi = (np.full(k, np.nan) for _ in range(4))
        if n_t:
            tab = self.observed.at(self.times).fill_null(np.nan)
            value[:n_t] = tab["survival"].to_numpy()
            se[:n_t] = tab["se"].to_numpy()
            lo[:n_t] = tab["ci_lower"].to_numpy()
            hi[:n_t] = tab["ci_upper"].to_numpy()
        ests = [self.observed.median()]
        if self.tau is not None:
            ests.append(self.observed.rmst(self.tau))
        for j, e in enumerate(ests, start=n_t):
            value[j], se[j], lo[j], hi[j] = e.value, e.se, e.ci_lower, e.ci_upper
        return {"value": value, "se": se, "lower": lo, "upper": hi}

    def _columns(self, kind: IntervalKind, level: float) -> dict[str, Any]:
        k = self.k
        tr = self._tr
        ob = self._observed()
        diff = tr - ob["value"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = tr / ob["value"]
        stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.draws is not None:
            r_t, r_o = self.draws[:, :k], self.draws[:, k:]
            stats["transported"] = self._interval(r_t, tr, kind, level)
            stats["observed"] = self._interval(r_o, ob["value"], kind, level)
            stats["difference"] = self._interval(r_t - r_o, diff, kind, level, nan_as_inf=False)
            with np.errstate(divide="ignore", invalid="ignore"):  # as result._boot_ratio
                reps = r_t / r_o
                if kind == "percentile":
                    stats["ratio"] = self._interval(reps, ratio, kind, level, nan_as_inf=False)
                else:  # on the log scale, exponentiated; its SE is that of the log ratio
                    se_log, lo, hi = self._interval(np.log(reps), np.log(ratio), kind, level,
                                                    nan_as_inf=False)  # fmt: skip
                    stats["ratio"] = (se_log, np.exp(lo), np.exp(hi))
            failed = f"; {self.failed} replicates failed" if self.failed else ""
            methods = [
                f"bootstrap-{kind} ({self.n_boot} shipped source refits x target resamples{failed})"
            ] * k
        else:
            nan = np.full(k, np.nan)
            stats["transported"] = (nan, nan, nan)
            stats["observed"] = (ob["se"], ob["lower"], ob["upper"])
            stats["difference"] = _wald(diff, nan, ob["se"], level)
            stats["ratio"] = _wald_log_ratio(tr, ob["value"], nan, ob["se"], level)
            methods = ["none (ship the model with n_boot)"] * k
        values = {"transported": tr, "observed": ob["value"], "difference": diff, "ratio": ratio}
        out: dict[str, Any] = {}
        for name in ("transported", "observed", "difference", "ratio"):
            se, lo, hi = stats[name]
            out[name] = values[name]
            if name != "ratio":
                out[f"{name}_se"] = se
            out[f"{name}_ci_lower"] = lo
            out[f"{name}_ci_upper"] = hi
        out["ci_method"] = methods
        out["conf_level"] = [level] * k
        out["n_boot"] = [self.n_boot] * k
        out["n_boot_failed"] = [self.failed] * k
        return out

    def summary(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """One row per estimand (``survival`` at each time, ``median``, ``rmst`` at tau):
        transported (the shipped g-formula), observed (the target's Kaplan–Meier),
        difference (transported - observed) and ratio, each with its interval, and
        ``ci_method``: the bootstrap pairing shipped source refits with target resamples
        (source model uncertainty and target sampling), or ``none`` without shipped
        refits (then the observed interval is Greenwood's). With a margin, the
        equivalence columns of :meth:`equivalence`."""
        cols = self._columns(interval_kind, self.ci_level)
        frame = pl.DataFrame(
            {
                "source": [self.source] * self.k,
                "target": [self.target] * self.k,
                "method": [f"gformula (shipped {self.model_kind})"] * self.k,
                "estimand": [e for e, _ in self.estimands],
                "time": [t for _, t in self.estimands],
                **cols,
            },
            schema_overrides={"time": pl.Float64},
        )
        if not np.all(np.isnan(self._margins)):
            eq = self.equivalence(interval_kind=interval_kind)
            frame = frame.with_columns(eq["margin"], eq["equivalence_p"], eq["verdict"])
        return frame.fill_nan(None)

    def equivalence(
        self,
        margin: float | Mapping[str, float] | None = None,
        *,
        alpha: float = 0.05,
        interval_kind: IntervalKind = "percentile",
    ) -> pl.DataFrame:
        """Two one-sided tests of ``|transported - observed| < margin`` (as
        :meth:`TransportResult.equivalence`)."""
        m = (
            self._margins
            if margin is None
            else check_margins(margin, [e for e, _ in self.estimands])
        )
        if np.all(np.isnan(m)):
            raise ValueError("no equivalence margin: pass margin= here or to apply()")
        check_alpha(alpha)
        cols = self._columns(interval_kind, 1.0 - 2.0 * alpha)
        p, verdicts = tost(cols["difference"], cols["difference_se"],
                           cols["difference_ci_lower"], cols["difference_ci_upper"], m)  # fmt: skip
        verdicts = np.where(np.isnan(m), np.asarray(None, dtype=object), verdicts)
        return pl.DataFrame(
            {
                "estimand": [e for e, _ in self.estimands],
                "time": [t for _, t in self.estimands],
                "difference": cols["difference"],
                "lower": cols["difference_ci_lower"],
                "upper": cols["difference_ci_upper"],
                "margin": m,
                "equivalence_p": p,
                "verdict": verdicts.tolist(),
            },
            schema_overrides={"time": pl.Float64, "verdict": pl.String},
        ).fill_nan(None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: settings, the summary table and the curves (in the target's
        environment; export goes through ``tp.disclosure.release``)."""
        return {
            "source": self.source,
            "target": self.target,
            "model": self.model_kind,
            "time_unit": self.time_unit,
            "times": self.times.tolist(),
            "tau": self.tau,
            "ci_level": self.ci_level,
            "summary": self.summary().to_dicts(),
            "transported": self.transported.to_dict(),
            "observed": self.observed.to_dict(),
        }

    def __repr__(self) -> str:
        boot = f", {self.n_boot} bootstrap replicates" if self.n_boot else ""
        return (
            f"ShippedResult({self.source!r} -> {self.target!r}, shipped {self.model_kind}, "
            f"{self.k} estimands{boot})"
        )
