"""The source's side of model shipping: the outcome model fitted and reduced to what
travels (the baseline on the policy's grid, piecewise exponential cut points snapped to
it, the cell counts the gate checks), and the bootstrap refits on resamples of the
source."""

from __future__ import annotations

import json
import math
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from formulaic.errors import FactorEvaluationError

from transport.cohort import Cohort
from transport.design import Design, closed_text
from transport.exceptions import DataError
from transport.inference import Seed, resample_counts, run_bootstrap
from transport.policy import Policy, rounded_at_least
from transport.summary import concentration
from transport.survival._cox import fit_cox
from transport.survival._pwexp import check_breaks, default_breaks, fit_pwexp
from transport.survival.models import CoxModel, PiecewiseExponentialModel

__all__ = [
    "ModelFields",
    "SourceReplicate",
    "fit_fields",
    "grid_breaks",
    "grid_counts",
    "interval_counts_at",
    "on_grid",
    "source_bootstrap",
    "source_cells",
]


class ModelFields(Protocol):
    """What a bootstrap refit needs of the full-data model."""

    @property
    def kind(self) -> str: ...
    @property
    def ties(self) -> str: ...
    @property
    def grid(self) -> np.ndarray: ...
    @property
    def center(self) -> np.ndarray | None: ...
    @property
    def breaks(self) -> np.ndarray | None: ...
    @property
    def shift(self) -> np.ndarray | None: ...
    @property
    def time_varying(self) -> bool: ...
    @property
    def coef(self) -> np.ndarray: ...


def grid_counts(time: np.ndarray, event: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Patients at risk at the start of each grid step ``(g_{k-1}, g_k]`` and the events
    and censorings within it (unweighted)."""
    k = np.minimum(np.searchsorted(grid, time, side="left"), grid.size - 1)
    ev = event > 0
    n_event = np.bincount(k[ev], minlength=grid.size).astype(np.float64)
    n_censor = np.bincount(k[~ev], minlength=grid.size).astype(np.float64)
    exits = n_event + n_censor
    n_risk = time.size - np.concatenate(([0.0], np.cumsum(exits)[:-1]))
    return {"n_risk": n_risk, "n_event": n_event, "n_censor": n_censor}


def on_grid(times: np.ndarray, hazard: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A step cumulative hazard (at ``times``) read at the grid times."""
    idx = np.searchsorted(times, grid, side="right") - 1
    return np.where(idx >= 0, hazard[np.maximum(idx, 0)], 0.0)


def grid_breaks(
    time: np.ndarray,
    event: np.ndarray,
    breaks: Any,
    step: float,
    policy: Policy,
) -> np.ndarray:
    """Cut points on the grid: ``breaks`` (or event-time quantiles) snapped to the nearest
    grid time, then merged forward until every interval holds ``min_km_step`` events and
    starts with ``min_cell`` patients at risk (the open last one too; decided on the
    rounded risk set, :func:`~transport.policy.rounded_at_least`, so that a plan varying
    ``min_cell`` learns no exact risk set)."""
    if breaks is None or (isinstance(breaks, int | np.integer) and not isinstance(breaks, bool)):
        n_int = 10 if breaks is None else int(breaks)
        if n_int < 1:
            raise ValueError(
                f"The 'breaks' parameter, a number of intervals, must be at least 1. "
                f"Got {breaks!r}."
            )
        cuts = default_breaks(time, event, n_int)
    else:
        try:
            cuts = check_breaks(breaks)
        except (TypeError, ValueError, OverflowError) as exc:
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
        at_risk = float(np.sum(time > c))
        if after < policy.min_km_step or not rounded_at_least(at_risk, policy.min_cell, policy):
            break
        if inside >= policy.min_km_step:
            keep.append(float(c))
            last = float(c)
    return np.asarray(keep, dtype=np.float64)


def interval_counts_at(time: np.ndarray, event: np.ndarray, breaks: np.ndarray) -> dict[str, Any]:
    """Patients at risk at the start of each interval and the events in it."""
    lo = np.concatenate(([0.0], breaks))
    k = np.searchsorted(breaks, time[event > 0], side="left")
    return {
        "n_risk": np.asarray([float(np.sum(time > c)) if c > 0 else float(time.size) for c in lo]),
        "n_event": np.bincount(k, minlength=lo.size).astype(np.float64),
    }


def source_cells(
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


class SourceReplicate:
    """One bootstrap refit of the source model on a resample (picklable): its coefficients
    and its baseline on the grid (Cox, re-centred at the full-data ``center``) or its
    representative-time shifts (piecewise exponential)."""

    def __init__(
        self, model: ModelFields, time: np.ndarray, event: np.ndarray, X: np.ndarray
    ) -> None:
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
            fit = fit_cox(
                self.time[keep],
                self.event[keep],
                self.X[keep],
                cs[keep],
                ties=self.ties,  # type: ignore[arg-type]
            )
            if not fit.converged:
                return np.full(self.width, np.nan)
            assert self.center is not None
            h0 = on_grid(fit.times, fit.hazard, self.grid)
            h0 = h0 * math.exp(float((self.center - fit.center) @ fit.coef))
            return np.concatenate((fit.coef, h0))
        assert self.breaks is not None
        pw = fit_pwexp(
            self.time,
            self.event,
            self.X,
            self.breaks,
            cs,
            time_varying=self.time_varying,
            start=self.coef,
        )
        if not pw.converged:
            return np.full(self.width, np.nan)
        return np.concatenate((pw.coef, pw.shift))


def _check_model_options(model: str, ties: Any, breaks: Any, time_varying: Any) -> None:
    """Refuse an option ``model`` would ignore (``ties`` of a piecewise exponential model,
    ``breaks`` of a Cox model): the user's choice would not be the model shipped."""
    if model == "cox":
        idle = [
            k
            for k, unset in (("breaks", breaks is None), ("time_varying", time_varying is True))
            if not unset
        ]
    else:
        idle = [] if isinstance(ties, str) and ties == "efron" else ["ties"]
    if idle:
        raise ValueError(
            f"The {', '.join(repr(k) for k in idle)} parameter(s) of ShippedModel.fit are not "
            f"read by model {model!r} (rule: 'ties' is the Cox model's, 'breaks' and "
            "'time_varying' the piecewise exponential model's); leave them out"
        )


def fit_fields(
    source: Cohort,
    formula: str | None,
    model: Literal["cox", "pwexp"],
    ties: Literal["efron", "breslow"],
    breaks: Any,
    time_varying: bool,
    policy: Policy,
) -> tuple[dict[str, Any], np.ndarray]:
    """The fields of a :class:`~transport.ShippedModel` fitted on ``source`` (its
    constructor's keywords) and the source's design matrix (for the bootstrap refits)."""
    _check_model_options(model, ties, breaks, time_varying)
    if formula is not None:  # the model's design travels: its formula must be data there
        formula = closed_text(formula, source.covariates, "formula of a shipped model")
    time, event = source.time_values, source.event_values
    step = policy.grid_step_in(source.time_unit)
    grid = policy.grid(float(time.max()), source.time_unit)
    kw: dict[str, Any] = {}
    fitted: CoxModel | PiecewiseExponentialModel
    if model == "cox":
        fitted = CoxModel(source, formula, ties=ties)
        kw.update(
            hazard=on_grid(fitted.fit.times, fitted.fit.hazard, grid),
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
        cuts = grid_breaks(time, event, breaks, step, policy)
        fitted = PiecewiseExponentialModel(source, formula, breaks=cuts, time_varying=time_varying)
        kw.update(
            breaks=fitted.fit.breaks,
            shift=fitted.fit.shift,
            time_varying=fitted.time_varying,
            interval_counts=interval_counts_at(time, event, fitted.fit.breaks),
        )
        names = fitted.names
    design = fitted.design
    spec = _portable_spec(design, source)
    X = design.source_matrix
    level_counts, column_counts = source_cells(source, design, X)
    fields = dict(
        kind=model,
        source=source.name,
        time_unit=source.time_unit,
        design=spec,
        names=tuple(names),
        coef=fitted.fit.coef,
        cov=fitted.cov,
        grid=grid,
        grid_step=step,
        grid_counts=grid_counts(time, event, grid),
        n=float(source.n),
        n_events=float(np.sum(event > 0)),
        level_counts=level_counts,
        column_counts=column_counts,
        column_binary=np.all((X == 0) | (X == 1), axis=0),
        column_concentration=concentration(X),
        column_scale=X.std(axis=0),
        policy=policy.name,
        **kw,
    )
    return fields, X


def _portable_spec(design: Design, source: Cohort) -> dict[str, Any]:
    """The design's spec, checked to rebuild the source's own matrix from JSON alone."""
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
    return spec


def source_bootstrap(
    model: ModelFields, source: Cohort, X: np.ndarray, n_boot: int, seed: Seed, n_jobs: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """``n_boot`` refits on resamples of the source (replicate ``b`` from child ``b`` of
    the seed): their coefficients, their baselines or shifts, and the seed's entropy."""
    rep = SourceReplicate(model, source.time_values, source.event_values, X)
    draws = run_bootstrap(
        rep, n_boot, seed, n_jobs=n_jobs, label=f"shipped {model.kind} model of {source.name}"
    )
    P = model.coef.size
    return draws.values[:, :P], draws.values[:, P:], str(draws.entropy)
