"""Transport estimators: each method as a function of case weights.

Every estimator here is written as ``curve(cs, ct)``: the transported survival curve
when source row ``i`` counts ``cs[i]`` times and target row ``j`` counts ``ct[j]`` times.
The point estimate is the call with every count 1; a bootstrap replicate is the call with
the counts of a resample (:mod:`transport.inference`). Sorting, design matrices and
full-data fits are done once, in the constructor; a replicate only reweights and refits,
warm-started from the full-data fit (DESIGN §7).

Methods (the estimand is always S(t) of the target population under the source's
outcome mechanism, given the measured covariates):

* ``naive``: the source's own Kaplan–Meier curve (no transport).
* ``iow``: Kaplan–Meier of the source weighted by inverse odds of participation
  (Westreich et al. 2017).
* ``entropy``: Kaplan–Meier of the source weighted by entropy balancing to the target's
  covariate moments (Hainmueller 2012; Josey et al. 2021; MAIC).
* ``gformula``: the average over target patients of the source outcome model's
  predicted survival (Dahabreh et al. 2020).
* ``aipw``: the g-formula augmented by participation- and censoring-weighted residuals
  of the source patients; consistent when either the participation model or the outcome
  model is right, given a right censoring model (Dahabreh et al. 2020, extended to
  survival by inverse probability of censoring weighting as in Lee, Yang & Wang 2022).

The three Kaplan–Meier methods accept delayed entry (left truncation): their
:class:`FixedGridKM` takes the entry times and builds the risk sets of
:func:`~transport.kaplan_meier`. ``gformula`` and ``aipw`` need right-censored data.

References
----------
Westreich D, Edwards JK, Lesko CR, Stuart E, Cole SR (2017). Transportability of trial
    results using inverse odds of sampling weights. Am J Epidemiol 186:1010-1014.
Dahabreh IJ, Robertson SE, Steingrimsson JA, Stuart EA, Hernán MA (2020). Extending
    inferences from a randomized trial to a new target population. Stat Med 39:1999-2014.
Lee D, Yang S, Wang X (2022). Doubly robust estimators for generalizing treatment effects
    on survival outcomes from randomized controlled trials to a target population.
    J Causal Inference 10:415-440.
Westling T, van der Laan MJ, Carone M (2020). Correcting an estimator of a multivariate
    monotone function with isotonic regression. Electron J Stat 14:3032-3069.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
from scipy.optimize import isotonic_regression

from transport.cohort import Cohort
from transport.design import Design
from transport.exceptions import DataError
from transport.methods import METHODS
from transport.summary import TargetSummary
from transport.survival._blocks import row_blocks, weighted_mean_rows
from transport.survival._cox import fit_cox
from transport.survival._fixed_grid import FixedGridKM, event_grid, read_curve
from transport.survival.curve import SurvivalCurve, kaplan_meier
from transport.survival.model_curve import ModelCurve
from transport.weighting._balance import independent_columns, moment_columns, solve_dual
from transport.weighting._participation import ParticipationModel, distinct_rows
from transport.weighting.entropy import entropy_balance
from transport.weighting.iow import inverse_odds_weights
from transport.weighting.weights import Weights

__all__ = [
    "ESTIMATORS",
    "METHODS",
    "AIPWEstimator",
    "EntropyEstimator",
    "Estimator",
    "EstimatorType",
    "Fitted",
    "FixedGridKM",
    "GFormulaEstimator",
    "IOWEstimator",
    "NaiveEstimator",
    "Options",
    "read_curve",
]

OutcomeModel = Literal["cox", "pwexp"]

Curve = tuple[np.ndarray, np.ndarray]
Target = Cohort | TargetSummary


@dataclass(frozen=True)
class Options:
    """What the estimators take besides the cohorts, checked once by
    :func:`~transport.transport`: the participation/balancing design, the outcome design
    and model, the balancing moments, the censoring model and the interval level."""

    formula: str | None = None
    outcome_formula: str | None = None
    outcome_model: OutcomeModel = "cox"
    ties: Literal["efron", "breslow"] = "efron"
    moments: Literal[1, 2] = 1
    censoring: Literal["km", "cox"] = "km"
    ci_level: float = 0.95


class Estimator(Protocol):
    """The one protocol every estimator follows: ``curve(cs, ct)``, the transported curve
    (grid, S) when source row ``i`` counts ``cs[i]`` times and target row ``j``
    ``ct[j]`` times (``ct`` ``None`` for a summary target), or ``None`` when a model
    cannot be refitted."""

    method: str

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None: ...


@dataclass(frozen=True)
class Fitted:
    """An estimator fitted on the full data: the estimator a bootstrap replicate calls,
    the transported curve (with its own variance where it has one) and the weights
    behind it (diagnostics; ``None`` for the outcome-model methods without weights)."""

    estimator: Estimator
    transported: SurvivalCurve | ModelCurve
    weights: Weights | None = None


class EstimatorType(Protocol):
    """An estimator class: ``fit(source, target, options)`` on the full data."""

    def fit(self, source: Cohort, target: Target, options: Options) -> Fitted: ...


def _model_curve(
    estimator: Estimator, source: Cohort, target: Cohort, note: str, ct: np.ndarray | None
) -> ModelCurve:
    """The full-data curve of a model-based estimator (every count 1)."""
    full = estimator.curve(np.ones(source.n), ct)
    if full is None:
        raise DataError(f"method {estimator.method!r} could not be fitted on the full data")
    return ModelCurve(
        full[0],
        full[1],
        method=estimator.method,
        name=f"{source.name} -> {target.name}",
        time_unit=source.time_unit,
        note=note,
    )


def mean_survival(
    fit: Any, Xu: np.ndarray, group: np.ndarray, grid: np.ndarray, w: np.ndarray | None
) -> np.ndarray:
    """``sum_i w_i S(grid | x_i) / sum_i w_i`` over rows ``x_i = Xu[group[i]]`` (every
    ``w_i`` 1 when ``w`` is ``None``): each distinct row's curve once, with its rows' total
    weight, in row blocks of bounded memory."""
    total = np.bincount(group, weights=w, minlength=Xu.shape[0])
    return weighted_mean_rows(lambda b: fit.survival(Xu[b], grid), Xu.shape[0], grid.size, total)


def _participation(
    design: Design, target: Cohort, source: str, weights: Weights | None
) -> ParticipationModel:
    """The participation model, reusing the full-data fit of ``weights`` (iow) if given."""
    coef = None if weights is None else list(weights.details["coef"].values())
    return ParticipationModel(design, design.matrix(target), source, target.name, coef)


# -- the estimators -------------------------------------------------------------------------
class NaiveEstimator:
    """The source's own Kaplan–Meier curve, ignoring the target."""

    method = "naive"

    @classmethod
    def fit(cls, source: Cohort, target: Target, options: Options) -> Fitted:
        """The source's Kaplan–Meier curve (Greenwood intervals)."""
        return Fitted(cls(source), kaplan_meier(source, conf_level=options.ci_level))

    def __init__(self, source: Cohort) -> None:
        self.km = FixedGridKM(source.time_values, source.event_values, source.entry_values)

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        return self.km.grid, self.km.survival(cs)


class IOWEstimator:
    """Kaplan–Meier of the source weighted by inverse odds of participation."""

    method = "iow"

    @classmethod
    def fit(cls, source: Cohort, target: Target, options: Options) -> Fitted:
        """Inverse odds weights (:func:`~transport.inverse_odds_weights`) and the
        weighted Kaplan–Meier curve with its robust variance."""
        assert isinstance(target, Cohort)
        weights = inverse_odds_weights(source, target, options.formula)
        curve = kaplan_meier(source, weights, conf_level=options.ci_level)
        return Fitted(cls(source, target, options.formula, weights), curve, weights)

    def __init__(
        self,
        source: Cohort,
        target: Cohort,
        formula: str | None,
        weights: Weights | None = None,
    ) -> None:
        self.design = Design(source, formula) if weights is None else weights.design
        self.participation = _participation(self.design, target, source.name, weights)
        self.outcomes = (source.time_values, source.event_values, source.entry_values)
        self.ns = source.n

    @cached_property
    def km(self) -> FixedGridKM:
        """The source's Kaplan–Meier grid: built on the bootstrap's first replicate."""
        return FixedGridKM(*self.outcomes)

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        assert ct is not None
        beta = self.participation.refit(np.concatenate((cs, ct)))
        if beta is None:
            return None
        return self.km.grid, self.km.survival(cs * self.participation.odds(beta))


class EntropyEstimator:
    """Kaplan–Meier of the source weighted by entropy balancing; each replicate solves the
    dual with the resample's counts as base weights and the resampled target's moments
    (a summary target's moments are fixed)."""

    method = "entropy"

    @classmethod
    def fit(cls, source: Cohort, target: Target, options: Options) -> Fitted:
        """Entropy-balancing weights (:func:`~transport.entropy_balance`) and the
        weighted Kaplan–Meier curve with its robust variance."""
        weights = entropy_balance(source, target, options.moments, options.formula)
        lam = weights.details["lambda"]
        est = cls(source, target, options.formula, options.moments, lam, weights.design)
        return Fitted(est, kaplan_meier(source, weights, conf_level=options.ci_level), weights)

    def __init__(
        self,
        source: Cohort,
        target: Cohort | TargetSummary,
        formula: str | None,
        moments: Literal[1, 2],
        lam: dict[str, float],
        design: Design | None = None,
    ) -> None:
        # what only the bootstrap reads is built on its first replicate (_prepare)
        self.design = Design(source, formula) if design is None else design
        self._given = (source, target, moments, lam)
        self._ready = False

    def __getstate__(self) -> dict[str, Any]:
        """Sent to a bootstrap worker: prepared once here, the cohorts left behind."""
        self._prepare()
        return {k: v for k, v in self.__dict__.items() if k != "_given"}

    def _prepare(self) -> None:
        if self._ready:
            return
        source, target, moments, lam = self._given
        Xs = self.design.source_matrix
        C, labels, sq = moment_columns(Xs, self.design.columns, moments)
        if isinstance(target, TargetSummary):
            t_mean, t_sd = target.moments_for(self.design)
            t_sq = t_sd**2 * (target.n - 1) / target.n + t_mean**2
            self.target_C: np.ndarray | None = None
            self.m = np.concatenate((t_mean, t_sq[sq])) if moments == 2 else t_mean
        else:
            Xt = self.design.matrix(target)
            self.target_C = np.column_stack((Xt, Xt[:, sq] ** 2)) if moments == 2 else Xt
            self.m = self.target_C.mean(axis=0)
        scale = C.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        self.keep = independent_columns((C - self.m) / self.scale)
        self.C = C[:, self.keep]
        self.scale = self.scale[self.keep]
        self.lam = np.array([lam[labels[j]] for j in self.keep]) * self.scale
        self.km = FixedGridKM(source.time_values, source.event_values, source.entry_values)
        self._ready = True

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        self._prepare()
        if ct is not None and self.target_C is not None:
            m = (ct @ self.target_C) / ct.sum()
        else:
            m = self.m
        p = solve_dual((self.C - m[self.keep]) / self.scale, self.lam, cs)
        if p is None:
            return None
        return self.km.grid, self.km.survival(p)


class _OutcomeFit:
    """The source outcome model as arrays, refitted with case weights."""

    def __init__(
        self,
        source: Cohort,
        formula: str | None,
        model: OutcomeModel,
        ties: Literal["efron", "breslow"],
    ) -> None:
        if source.entry is not None:
            raise DataError(
                f"cohort {source.name!r} has delayed entry (column {source.entry!r}); outcome "
                "models here need right-censored data only (rule: no entry column)"
            )
        if model not in ("cox", "pwexp"):
            raise ValueError(
                f"The 'outcome_model' parameter must be 'cox' or 'pwexp'. Got {model!r}."
            )
        self.design = Design(source, formula)
        self.model = model
        self.ties = ties
        self.time = source.time_values
        self.event = source.event_values
        self.name = source.name
        if model == "pwexp":
            from transport.survival._pwexp import default_breaks

            self.breaks = default_breaks(self.time, self.event)
            if self.breaks.size == 0:  # the time-varying model needs two intervals
                raise DataError(
                    f"time column {source.time!r} of cohort {source.name!r} gives no cut "
                    f"point between its {int(self.event.sum())} event times (rule: the "
                    "piecewise exponential outcome model needs two intervals, each with "
                    "events; use outcome_model='cox')"
                )
        self.start: np.ndarray | None = None
        self.full: Any = None
        full = self.fit(np.ones(source.n))
        if full is None:
            raise DataError(
                f"the {model} outcome model of {source.name!r} did not converge (rule: a "
                "finite maximum-likelihood estimate; a covariate may predict the outcome "
                "perfectly)"
            )
        self.start = full.coef
        self.full = full

    def fit(self, w: np.ndarray) -> Any:
        """The model for case weights ``w``; rows of weight 0 are left out (absent, as in
        a resample), or ``None`` when it does not converge. The full data's (every weight
        1) is fitted once."""
        if self.full is not None and bool(np.all(w == 1.0)):
            return self.full
        X, time, event = self.design.source_matrix, self.time, self.event
        if float(w.min()) <= 0:
            keep = w > 0
            X, time, event, w = X[keep], time[keep], event[keep], w[keep]
        fit: Any
        if self.model == "cox":
            fit = fit_cox(time, event, X, w, ties=self.ties)
        else:
            from transport.survival._pwexp import fit_pwexp

            fit = fit_pwexp(time, event, X, self.breaks, w, start=self.start)
        return fit if fit.converged else None


class GFormulaEstimator:
    """Average over the target's patients of the source outcome model's S(t | x)."""

    method = "gformula"

    @classmethod
    def fit(cls, source: Cohort, target: Target, options: Options) -> Fitted:
        """The outcome model fitted on the source, averaged over the target."""
        assert isinstance(target, Cohort)
        m = options.outcome_model
        est = cls(source, target, options.outcome_formula, m, options.ties)
        note = f"average of {m} model predictions over the target"
        return Fitted(est, _model_curve(est, source, target, note, None))

    def __init__(
        self,
        source: Cohort,
        target: Cohort,
        formula: str | None,
        model: OutcomeModel,
        ties: Literal["efron", "breslow"],
    ) -> None:
        self.outcome = _OutcomeFit(source, formula, model, ties)
        # patients alike in the design have one curve: it is computed once, with their count
        self.Xt, self.t_group = distinct_rows(self.outcome.design.matrix(target))

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        fit = self.outcome.fit(cs)
        if fit is None:
            return None
        grid = event_grid(self.outcome.time, self.outcome.event, cs)
        return grid, mean_survival(fit, self.Xt, self.t_group, grid, ct)


class AIPWEstimator:
    """Doubly robust (augmented inverse probability weighted) estimator of S(t) in the
    target population.

    With ``R = 1`` in the source, participation odds ``w(x) = P(R=0|x)/P(R=1|x)``, the
    outcome model's ``m(t, x) = S_source(t | x)`` and the censoring survival ``G(t | x)``:

    ``psi(t) = mean_{target} m(t, X) + sum_{source} w_i (1{T_i > t} / G(t | X_i) - m(t, X_i))
    / sum_{source} w_i``.

    The first term is the g-formula; the second corrects it with the weighted residuals
    of the source, so that ``psi`` is consistent when either the participation model or
    the outcome model is correctly specified (and the censoring model is right). The
    pointwise estimate can leave [0, 1] or increase; it is clipped to [0, 1] and then
    projected onto non-increasing curves by isotonic regression over the grid, which
    never moves it away from a monotone truth (Westling et al. 2020).
    """

    method = "aipw"

    @classmethod
    def fit(cls, source: Cohort, target: Target, options: Options) -> Fitted:
        """The participation model as :func:`~transport.inverse_odds_weights` fits it
        (the same checks, separation named by covariate, and its weights for
        diagnostics), the outcome and censoring models, and the corrected curve."""
        assert isinstance(target, Cohort)
        o = options
        weights = inverse_odds_weights(source, target, o.formula)
        est = cls(
            source,
            target,
            o.formula,
            o.outcome_formula,
            o.outcome_model,
            o.ties,
            o.censoring,
            weights,
        )
        note = (
            f"augmented IPW: {o.outcome_model} outcome model, logistic participation model, "
            f"{o.censoring} censoring model; clipped to [0, 1] and made monotone"
        )
        return Fitted(est, _model_curve(est, source, target, note, np.ones(target.n)), weights)

    def __init__(
        self,
        source: Cohort,
        target: Cohort,
        formula: str | None,
        outcome_formula: str | None,
        model: OutcomeModel,
        ties: Literal["efron", "breslow"],
        censoring: Literal["km", "cox"],
        weights: Weights | None = None,
    ) -> None:
        if censoring not in ("km", "cox"):
            raise ValueError(f"The 'censoring' parameter must be 'km' or 'cox'. Got {censoring!r}.")
        self.outcome = _OutcomeFit(source, outcome_formula, model, ties)
        self.Xs_out = self.outcome.design.source_matrix
        # the outcome model's curves, once per distinct row of each cohort
        self.Xt_u, self.t_group = distinct_rows(self.outcome.design.matrix(target))
        self.Xs_u, self.s_group = distinct_rows(self.Xs_out)
        pdesign = Design(source, formula) if weights is None else weights.design
        self.participation = _participation(pdesign, target, source.name, weights)
        self.censoring = censoring
        self.km = FixedGridKM(source.time_values, source.event_values)
        self.time = source.time_values
        self.event = source.event_values
        distinct = np.unique(self.time)
        gap = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
        self.death_shifted = np.where(self.event > 0, self.time - 0.5 * gap, self.time)
        self._by_time = np.argsort(self.time, kind="stable")

    def _ipcw_sums(self, cs: np.ndarray, a: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
        """``sum_i a_i 1{T_i > t} / G(t | x_i)`` over the source rows at each grid time, or
        ``None`` where a row at risk has ``G = 0`` (no estimate there). With KM censoring
        ``G`` is one curve; with Cox censoring it is computed in row blocks (no rows x
        times matrix)."""
        order = self._by_time
        if self.censoring == "km":
            G = self.km.censoring_survival(cs)
            k = np.searchsorted(self.km.grid, grid, side="right") - 1
            Gt = np.where(k >= 0, G[np.maximum(k, 0)], 1.0)
            # rows with T_i > t: those after the searchsorted position in time order
            at = np.searchsorted(self.time[order], grid, side="right")
            alive_a = np.concatenate((np.cumsum(a[order][::-1])[::-1], [0.0]))[at]
            if np.any((at < self.time.size) & ~(Gt > 0)):
                return None
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(at < self.time.size, alive_a / Gt, 0.0)
        keep = cs > 0
        # deaths tied with censorings leave first: move them half-way back to the previous
        # distinct time, which changes no other order
        fit = fit_cox(
            self.death_shifted[keep],
            1.0 - self.event[keep],
            self.Xs_out[keep],
            cs[keep],
            ties="breslow",
        )
        if not fit.converged:
            return None
        total = np.zeros(grid.size)
        for b in row_blocks(self.time.size, grid.size):
            alive = self.time[b, None] > grid[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                ipcw = np.where(alive, 1.0 / fit.survival(self.Xs_out[b], grid), 0.0)
            if not np.all(np.isfinite(ipcw)):
                return None
            total += a[b] @ ipcw
        return total

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        assert ct is not None
        beta = self.participation.refit(np.concatenate((cs, ct)))
        fit = self.outcome.fit(cs)
        if beta is None or fit is None:
            return None
        a = cs * self.participation.odds(beta)  # participation-weighted source rows
        grid = event_grid(self.time, self.event, cs)
        ipcw = self._ipcw_sums(cs, a, grid)
        if ipcw is None:
            return None
        m_t = mean_survival(fit, self.Xt_u, self.t_group, grid, ct)
        m_s = mean_survival(fit, self.Xs_u, self.s_group, grid, a)
        psi = np.clip(m_t + ipcw / a.sum() - m_s, 0.0, 1.0)
        psi = isotonic_regression(psi, increasing=False).x
        return grid, np.asarray(psi)


#: The estimator of each method (:data:`~transport.methods.METHODS`), one fit protocol.
ESTIMATORS: dict[str, EstimatorType] = {
    "naive": NaiveEstimator,
    "iow": IOWEstimator,
    "entropy": EntropyEstimator,
    "gformula": GFormulaEstimator,
    "aipw": AIPWEstimator,
}
assert tuple(ESTIMATORS) == METHODS
