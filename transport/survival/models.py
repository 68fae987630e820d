"""Outcome models fitted in the source and applied to a target's patients (g-formula).

:class:`CoxModel`: Cox proportional hazards with a Breslow (or Efron) baseline, fitted on
a source :class:`~transport.Cohort` through a :class:`~transport.Design`; it predicts
each target patient's survival curve and their average, the g-formula estimate of the
target population's survival under the source's outcome mechanism:

``S_target(t) = (1 / n_target) sum_{i in target} S_source(t | x_i)``.

Reference: Dahabreh IJ, Robertson SE, Steingrimsson JA, Stuart EA, Hernán MA (2020).
Extending inferences from a randomized trial to a new target population. Statistics in
Medicine 39:1999-2014.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from transport.cohort import Cohort
from transport.design import Design
from transport.exceptions import DataError
from transport.survival._cox import CoxFit, fit_cox, robust_cov
from transport.survival.curve import validate_weights

__all__ = ["CoxModel"]


class CoxModel:
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
            raise TypeError(f"The 'cohort' parameter of CoxModel must be a Cohort. "
                            f"Got {type(cohort).__name__} instead.")  # fmt: skip
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
        self.fit: CoxFit = fit_cox(cohort.time_values, cohort.event_values,
                                   self.design.source_matrix, w, ties=ties)  # fmt: skip
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

    def __repr__(self) -> str:
        return (
            f"CoxModel({self.source!r}: {len(self.design.columns)} columns, "
            f"{self.fit.ties} ties, log partial likelihood {self.fit.loglik:.6g})"
        )
