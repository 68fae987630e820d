"""Outcome models fitted in the source and applied to a target's patients (g-formula).

:class:`CoxModel`: Cox proportional hazards with a Breslow (or Efron) baseline, fitted on
a source :class:`~transport.Cohort` through a :class:`~transport.Design`; it predicts
each target patient's survival curve and their average, the g-formula estimate of the
target population's survival under the source's outcome mechanism:

``S_target(t) = (1 / n_target) sum_{i in target} S_source(t | x_i)``.

:class:`PiecewiseExponentialModel`: a piecewise exponential (Poisson) model whose log
hazard ratios may change linearly in log time, for outcomes whose hazards are not
proportional; same interface.

Reference: Dahabreh IJ, Robertson SE, Steingrimsson JA, Stuart EA, Hernán MA (2020).
Extending inferences from a randomized trial to a new target population. Statistics in
Medicine 39:1999-2014.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from transport._validate import validate_weights
from transport.cohort import Cohort
from transport.design import Design
from transport.exceptions import DataError
from transport.survival._cox import CoxFit, fit_cox, robust_cov
from transport.survival._pwexp import (
    N_INTERVALS,
    PWExpFit,
    check_breaks,
    default_breaks,
    fit_pwexp,
    interval_totals,
    pwexp_robust_cov,
)

__all__ = ["CoxModel", "PiecewiseExponentialModel"]


class _Predicting:
    """Prediction shared by the outcome models: each has ``design``, ``fit`` (with
    ``survival(X, times)``) and ``time_unit``."""

    design: Design
    fit: Any
    time_unit: str

    def predict_survival(self, cohort: Cohort, times: Any) -> np.ndarray:
        """Each patient's predicted ``S(t | x)``: an array of patients x times."""
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if cohort.time_unit != self.time_unit:
            raise DataError(
                f"cohort {cohort.name!r} measures time in {cohort.time_unit} but the model in "
                f"{self.time_unit} (rule: same unit; use Cohort.in_unit)"
            )
        return self.fit.survival(self.design.matrix(cohort), t)

    def marginal_survival(self, cohort: Cohort, times: Any, weights: Any = None) -> np.ndarray:
        """The g-formula curve: the (weighted) average of the patients' predicted survival.

        ``weights`` (one per row of ``cohort``, e.g. bootstrap counts) default to equal.
        """
        pred = self.predict_survival(cohort, times)
        if weights is None:
            return pred.mean(axis=0)
        w = validate_weights(weights, cohort.n)
        return np.asarray((w @ pred) / w.sum(), dtype=np.float64)


class CoxModel(_Predicting):
    """Cox proportional hazards model of the source's outcome.

    Parameters
    ----------
    cohort
        The source cohort (without delayed entry).
    formula
        Right-hand side over the covariates (:class:`~transport.Design`); default main
        effects.
    ties
        ``"efron"`` (default, as R's ``coxph``) or ``"breslow"``.
    weights
        Optional case weights, one per row.

    Attributes
    ----------
    design, fit
        The design fitted on the source and the :class:`CoxFit` (coefficients for the
        design columns, inverse-information covariance, baseline cumulative hazard).
    """

    def __init__(
        self,
        cohort: Cohort,
        formula: str | None = None,
        *,
        ties: Literal["efron", "breslow"] = "efron",
        weights: Any = None,
    ) -> None:
        if not isinstance(cohort, Cohort):
            raise TypeError(
                f"The 'cohort' parameter of CoxModel must be a Cohort. "
                f"Got {type(cohort).__name__} instead."
            )
        if ties not in ("efron", "breslow"):
            raise ValueError(f"The 'ties' parameter must be 'efron' or 'breslow'. Got {ties!r}.")
        if cohort.entry is not None:
            raise DataError(
                f"cohort {cohort.name!r} has delayed entry (column {cohort.entry!r}); the Cox "
                "model here is fitted to right-censored data only (rule: no entry column)"
            )
        if not cohort.event_values.any():
            raise DataError(
                f"event column {cohort.event!r} has no events in {cohort.n} rows (rule: at "
                "least one event to fit an outcome model)"
            )
        w = None if weights is None else validate_weights(weights, cohort.n)
        self.design = Design(cohort, formula)
        self.fit: CoxFit = fit_cox(
            cohort.time_values, cohort.event_values, self.design.source_matrix, w, ties=ties
        )
        if not self.fit.converged:
            raise DataError(
                f"the Cox model of {cohort.name!r} did not converge in {self.fit.n_iter} "
                "Newton steps (rule: a finite maximum partial-likelihood estimate; a covariate "
                "may predict the outcome perfectly)"
            )
        self.source = cohort.name
        self.time_unit = cohort.time_unit
        #: covariance of the coefficients: robust (sandwich, Lin & Wei 1989) with weights,
        #: inverse information without, as R's coxph reports
        self.cov: np.ndarray = (
            self.fit.cov
            if w is None
            else robust_cov(
                cohort.time_values, cohort.event_values, self.design.source_matrix, w, self.fit
            )
        )

    @property
    def coef(self) -> dict[str, float]:
        """Log hazard ratios by design column."""
        return dict(zip(self.design.columns, self.fit.coef.tolist(), strict=True))

    @property
    def se(self) -> dict[str, float]:
        """Standard errors of the log hazard ratios (robust when weighted)."""
        return dict(zip(self.design.columns, np.sqrt(np.diag(self.cov)).tolist(), strict=True))

    def __repr__(self) -> str:
        return (
            f"CoxModel({self.source!r}: {len(self.design.columns)} columns, "
            f"{self.fit.ties} ties, log partial likelihood {self.fit.loglik:.6g})"
        )


def _number(x: float) -> str:
    """Shortest text of a cut point: ``120`` for 120.0, ``3.25`` for 3.25."""
    return "inf" if np.isinf(x) else str(np.format_float_positional(x, trim="-"))


class PiecewiseExponentialModel(_Predicting):
    """Piecewise exponential (Poisson) model of the source's outcome, without proportional
    hazards: log hazard ``alpha_k + x' beta + (log m_k - center) x' gamma`` in interval
    ``k`` (Holford 1980; Laird & Olivier 1981; Friedman 1982).

    The baseline hazard is constant on each interval ``(c_{k-1}, c_k]`` and each design
    column's log hazard ratio is ``beta + gamma (log t - center)``: linear in log time,
    evaluated at a representative time ``m_k`` of each interval (the midpoint; for the
    open last interval the mean time at risk in it). ``beta`` is the log hazard ratio at
    ``t = exp(center)``, the exposure-weighted geometric mean of the ``m_k``. The fit is a
    Poisson GLM on person-interval data (offset log exposure), maximised by Newton's
    method without forming those rows (:func:`~transport.survival._pwexp.fit_pwexp`).
    Predicted survival
    ``S(t | x) = exp(-sum_k h_k(x) |(0, t] ∩ (c_{k-1}, c_k]|)`` is exact at any ``t``.

    Parameters
    ----------
    cohort
        The source cohort (without delayed entry).
    formula
        Right-hand side over the covariates (:class:`~transport.Design`); default main
        effects.
    breaks
        ``None`` (10 intervals), a number of intervals (cut at the weighted quantiles
        ``j / K`` of the event times, so every interval holds events; tied times may give
        fewer), or an increasing array of interior cut points in the cohort's time unit
        (the last interval is open). Pass ``model.breaks`` to refit on resampled data
        with the same intervals.
    time_varying
        Whether the log hazard ratios change with log time (``gamma``); ``False`` gives
        proportional hazards with a piecewise constant baseline.
    weights
        Optional non-negative case weights, one per row (rows of weight 0 are absent).
    start
        Coefficients (``model.fit.coef``) of an earlier fit with the same breaks and
        design, to warm-start the Newton iterations (bootstrap replicates).

    Attributes
    ----------
    design, fit, cov
        The design fitted on the source, the :class:`PWExpFit`, and the covariance of the
        coefficients: inverse information, or robust (sandwich, clustered by patient)
        with weights, as :class:`CoxModel`.
    names
        Coefficient names: ``"interval(0,38]"``... (``alpha_k``, the log baseline hazard
        per time unit), the design columns (``beta``), ``"log(t):<column>"`` (``gamma``).

    Raises
    ------
    DataError
        Delayed entry; no events; an event at time 0; an interval without events or
        without exposure; time-varying coefficients with one interval; no convergence.

    Examples
    --------
    >>> import transport as tp
    >>> from transport.survival.models import PiecewiseExponentialModel
    >>> us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    >>> model = PiecewiseExponentialModel(us)
    >>> model.names[0], model.names[9], model.names[-1]
    ('interval(0,38]', 'interval(709,inf)', 'log(t):regimen[T.targeted]')
    >>> model.marginal_survival(jp, [365.0]).round(3)
    array([0.464])
    """

    def __init__(
        self,
        cohort: Cohort,
        formula: str | None = None,
        *,
        breaks: Any = None,
        time_varying: bool = True,
        weights: Any = None,
        start: Any = None,
    ) -> None:
        if not isinstance(cohort, Cohort):
            raise TypeError(
                f"The 'cohort' parameter of PiecewiseExponentialModel must be a "
                f"Cohort. Got {type(cohort).__name__} instead."
            )
        if not isinstance(time_varying, bool | np.bool_):
            raise TypeError(f"The 'time_varying' parameter must be a bool. Got {time_varying!r}.")
        if cohort.entry is not None:
            raise DataError(
                f"cohort {cohort.name!r} has delayed entry (column {cohort.entry!r}); the "
                "piecewise exponential model here is fitted to right-censored data only "
                "(rule: no entry column)"
            )
        time, event = cohort.time_values, cohort.event_values
        if not event.any():
            raise DataError(
                f"event column {cohort.event!r} has no events in {cohort.n} rows (rule: at "
                "least one event to fit an outcome model)"
            )
        w = None if weights is None else validate_weights(weights, cohort.n)
        at_zero = (event > 0) & (time <= 0) & (True if w is None else w > 0)
        if at_zero.any():
            raise DataError(
                f"time column {cohort.time!r} has {int(at_zero.sum())} of {cohort.n} rows with "
                "an event at time 0 (rule: events at positive times; an interval model has no "
                "exposure before time 0)"
            )
        cuts = self._breaks(breaks, time, event, w, cohort)
        K = cuts.size + 1
        labels = self._intervals(cuts, time, event, w, cohort, bool(time_varying))
        self.design = Design(cohort, formula)
        X = self.design.source_matrix
        init = None if start is None else np.asarray(start, dtype=np.float64).ravel()
        n_par = K + X.shape[1] * (2 if time_varying else 1)
        if init is not None and init.size != n_par:
            raise ValueError(
                f"The 'start' parameter has {init.size} values; the model has {n_par} "
                f"coefficients ({K} intervals, {X.shape[1]} design columns"
                + (", time-varying)" if time_varying else ")")
            )
        self.fit: PWExpFit = fit_pwexp(
            time, event, X, cuts, w, time_varying=bool(time_varying), start=init
        )
        if not self.fit.converged:
            raise DataError(
                f"the piecewise exponential model of {cohort.name!r} did not converge in "
                f"{self.fit.n_iter} Newton steps (rule: a finite maximum-likelihood estimate; "
                "a covariate may predict the outcome perfectly within an interval, or an "
                "interval may hold too few events: choose fewer breaks)"
            )
        self.source = cohort.name
        self.time_unit = cohort.time_unit
        self.time_varying = bool(time_varying)
        self.names: tuple[str, ...] = (
            *(f"interval{lab}" for lab in labels),
            *self.design.columns,
            *((f"log(t):{c}" for c in self.design.columns) if time_varying else ()),
        )
        #: covariance of the coefficients: robust (sandwich, clustered by patient) with
        #: weights, inverse information without
        self.cov: np.ndarray = (
            self.fit.cov if w is None else pwexp_robust_cov(time, event, X, w, self.fit)
        )

    @staticmethod
    def _intervals(
        cuts: np.ndarray,
        time: np.ndarray,
        event: np.ndarray,
        w: np.ndarray | None,
        cohort: Cohort,
        time_varying: bool,
    ) -> list[str]:
        """The intervals' labels, each checked to have events and exposure."""
        K = cuts.size + 1
        edges = np.concatenate(([0.0], cuts, [np.inf]))
        labels = [
            f"({_number(edges[k])},{_number(edges[k + 1])}" + ("]" if k < K - 1 else ")")
            for k in range(K)
        ]
        if time_varying and K < 2:
            raise DataError(
                f"breaks give one interval for {cohort.name!r} (rule: time-varying "
                "coefficients need at least two intervals; pass time_varying=False or more "
                "breaks)"
            )
        events, exposure, rows = interval_totals(time, event, cuts, w)
        for k in range(K):
            if events[k] <= 0 or exposure[k] <= 0:
                what = "no exposure (no row reaches it)" if exposure[k] <= 0 else "no events"
                raise DataError(
                    f"interval {labels[k]} of time column {cohort.time!r} has {what} "
                    f"({int(rows[k])} of {cohort.n} rows with an event in it, exposure "
                    f"{float(exposure[k]):.6g} {cohort.time_unit}) (rule: every interval "
                    "has events and exposure; choose fewer or other breaks)"
                )
        return labels

    @staticmethod
    def _breaks(
        breaks: Any, time: np.ndarray, event: np.ndarray, w: np.ndarray | None, cohort: Cohort
    ) -> np.ndarray:
        """Interior cut points from the ``breaks`` argument."""
        if breaks is None:
            return default_breaks(time, event, N_INTERVALS, w)
        if isinstance(breaks, bool | np.bool_):
            raise TypeError(
                f"The 'breaks' parameter must be None, an int or cut points. Got {breaks!r}."
            )
        if isinstance(breaks, int | np.integer):
            if breaks < 1:
                raise ValueError(
                    f"The 'breaks' parameter, a number of intervals, must be at "
                    f"least 1. Got {breaks!r}."
                )
            return default_breaks(time, event, int(breaks), w)
        try:
            return check_breaks(np.asarray(breaks, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The 'breaks' parameter must be increasing positive interior cut points in "
                f"{cohort.time_unit} ({exc})."
            ) from None

    @property
    def breaks(self) -> np.ndarray:
        """The interior cut points (the intervals are ``(c_{k-1}, c_k]``, the last open)."""
        return self.fit.breaks.copy()

    @property
    def coef(self) -> dict[str, float]:
        """Log baseline hazards per interval, log hazard ratios at ``exp(center)`` and
        their slopes in log time, by name (:attr:`names`)."""
        return dict(zip(self.names, self.fit.coef.tolist(), strict=True))

    @property
    def se(self) -> dict[str, float]:
        """Standard errors of the coefficients (robust when weighted)."""
        return dict(zip(self.names, np.sqrt(np.diag(self.cov)).tolist(), strict=True))

    def __repr__(self) -> str:
        kind = "time-varying" if self.time_varying else "proportional"
        return (
            f"PiecewiseExponentialModel({self.source!r}: {self.fit.n_intervals} intervals, "
            f"{len(self.design.columns)} columns, {kind} hazard ratios, log-likelihood "
            f"{self.fit.loglik:.6g})"
        )
