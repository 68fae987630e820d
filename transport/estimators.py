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

from typing import Any, Literal

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import isotonic_regression
from scipy.special import expit, softmax

from transport.cohort import Cohort
from transport.design import Design
from transport.exceptions import DataError
from transport.methods import METHODS
from transport.summary import TargetSummary
from transport.survival._confint import find_quantile
from transport.survival._cox import fit_cox
from transport.survival._kernel import SNAP_TOLERANCE, snap_unique
from transport.survival.model_curve import step_rmst
from transport.weighting._logistic import fit_logistic
from transport.weighting.entropy import _independent_columns, _moment_columns
from transport.weighting.weights import Weights

__all__ = [
    "METHODS",
    "AIPWEstimator",
    "EntropyEstimator",
    "FixedGridKM",
    "GFormulaEstimator",
    "IOWEstimator",
    "NaiveEstimator",
    "read_curve",
]

OutcomeModel = Literal["cox", "pwexp"]

Curve = tuple[np.ndarray, np.ndarray]


class FixedGridKM:
    """Kaplan–Meier on a grid fixed once: each call with new case weights is O(n + m).

    Rows of weight 0 are absent; S is the product-limit estimate on the weighted counts,
    events before censorings at a tied time, times snapped as R's ``aeqSurv``.

    With ``entry`` (delayed entry, left truncation; ``entry < time``), the grid is that of
    :func:`~transport.kaplan_meier`: exit and entry times snapped together, and a row is at
    risk at grid time ``t_k`` when ``entry < t_k <= time`` on the snapped values. A row
    entering at a time tied with an event is not at risk for that event (R's
    ``Surv(entry, time, event)``).
    """

    def __init__(
        self, time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None
    ) -> None:
        self.entry_index: np.ndarray | None = None
        n = time.size
        # with entry, exit and entry times are snapped jointly, exactly as
        # kaplan_meier_arrays does, so the grid and the risk sets are tp.kaplan_meier's
        values = time if entry is None else np.concatenate((time, entry))
        grid, both = snap_unique(values, SNAP_TOLERANCE)
        idx = both[:n]
        if entry is not None:
            self.entry_index = both[n:]
            clash = self.entry_index >= idx
            if clash.any():
                raise DataError(
                    f"{int(clash.sum())} of {n} rows have entry equal to exit once times "
                    f"closer than {SNAP_TOLERANCE:.3g} (absolutely or relative to the mean "
                    "time) are treated as tied (rule: entry < time after snapping, as R's "
                    "aeqSurv)"
                )
        self.grid = grid
        self.index = idx
        self.event = np.asarray(event, dtype=np.float64)
        self.m = grid.size

    def _at_risk(self, w: np.ndarray, exits: np.ndarray) -> np.ndarray:
        """Weighted risk set at every grid time from the weighted exits per grid time."""
        at_risk = np.cumsum(exits[::-1])[::-1]
        if self.entry_index is not None:
            # rows whose (snapped) entry is at or after t_k are not yet at risk at t_k
            entries = np.bincount(self.entry_index, weights=w, minlength=self.m)
            at_risk -= np.cumsum(entries[::-1])[::-1]
            np.maximum(at_risk, 0.0, out=at_risk)  # float residue of the subtraction
        return at_risk

    def survival(self, w: np.ndarray) -> np.ndarray:
        """S at every grid time for case weights ``w`` (one per row, input order)."""
        d = np.bincount(self.index, weights=w * self.event, minlength=self.m)
        e = np.bincount(self.index, weights=w, minlength=self.m)
        at_risk = self._at_risk(w, e)
        h = np.divide(d, at_risk, out=np.zeros(self.m), where=at_risk > 0)
        return np.cumprod(np.clip(1.0 - h, 0.0, 1.0))

    def censoring_survival(self, w: np.ndarray) -> np.ndarray:
        """G(t) = P(C > t) by the reverse Kaplan–Meier (censorings as events; deaths at a
        tied time leave the risk set first, matching the Kaplan–Meier convention).

        Right-censored data only: its one user, ``aipw``, refuses delayed entry (its
        outcome models need right-censored data)."""
        if self.entry_index is not None:
            raise DataError(
                "the censoring survival G(t) is estimated for right-censored data only "
                "(rule: no entry column for aipw)"
            )
        c = np.bincount(self.index, weights=w * (1.0 - self.event), minlength=self.m)
        e = np.bincount(self.index, weights=w, minlength=self.m)
        d = e - c
        # deaths at t leave before the censorings at t (events first, as in the KM), so
        # the censoring hazard at t is c / (Y - d): then S_KM(t) G(t) = Y(t+) / n exactly
        at_risk = np.cumsum(e[::-1])[::-1] - d
        h = np.divide(c, at_risk, out=np.zeros(self.m), where=at_risk > 0)
        return np.cumprod(np.clip(1.0 - h, 0.0, 1.0))


def read_curve(
    time: np.ndarray, surv: np.ndarray, times: np.ndarray, tau: float | None
) -> np.ndarray:
    """S at ``times``, the median and (with ``tau``) RMST(tau) of a step curve, in that
    order; the median is ``nan`` when the curve stays above 0.5."""
    k = np.searchsorted(time, times, side="right") - 1
    s = np.where(k >= 0, surv[np.maximum(k, 0)], 1.0)
    extra = [find_quantile(time, surv, 0.5)]
    if tau is not None:
        extra.append(step_rmst(time, surv, tau))
    return np.concatenate((s, np.asarray(extra)))


# -- participation model: full fit, then warm-started Newton refits ------------------------
class _Participation:
    """Logistic model of P(source | x) on the stacked cohorts, refitted per replicate.

    Replicates work on the distinct covariate rows (``np.unique``), with the resample's
    counts of source and target rows per distinct row as binomial data: the same
    likelihood, far fewer rows when covariates are categorical or rounded (DESIGN §7).
    """

    def __init__(
        self, design: Design, Xt: np.ndarray, source: str, target: str, coef: Any = None
    ) -> None:
        """``coef``: the full-data fit when already known (from
        :func:`~transport.inverse_odds_weights`, on the same design), else fitted here."""
        Xs = design.source_matrix
        self.ns, self.nt = Xs.shape[0], Xt.shape[0]
        X = np.column_stack((np.ones(self.ns + self.nt), np.vstack((Xs, Xt))))
        y = np.concatenate((np.ones(self.ns), np.zeros(self.nt)))
        if coef is None:
            fit = fit_logistic(X, y)
            if not fit.converged:
                raise DataError(
                    f"the participation model of {source!r} vs {target!r} did not converge "
                    f"in {fit.n_iter} Newton steps (rule: a finite maximum-likelihood "
                    "estimate; see inverse_odds_weights for the separation diagnosis)"
                )
            coef = fit.coef
        self.coef = np.asarray(coef, dtype=np.float64)
        self.X, self.y = X, y  # kept for checks against a plain fit
        Xu, group = np.unique(X, axis=0, return_inverse=True)
        self.Xu = np.ascontiguousarray(Xu)
        self.group = group.ravel()
        self.u = Xu.shape[0]
        self.mu0 = expit(self.Xu @ self.coef)

    def refit(self, c: np.ndarray) -> np.ndarray | None:
        """Coefficients for case weights ``c`` (stacked source then target): one Newton
        step from the full-data fit, then chord steps reusing that information matrix
        (each O(u p) on the u distinct rows) until the step is below 1e-10 relative; the
        information is refreshed whenever a chord step fails to halve the previous one,
        and a full Newton fit from the full-data estimate is the fallback. ``None`` when
        that fails too (separation in the resample, say)."""
        g = self.group
        ones = np.bincount(g[: self.ns], weights=c[: self.ns], minlength=self.u)
        total = ones + np.bincount(g[self.ns :], weights=c[self.ns :], minlength=self.u)
        X = self.Xu
        beta = self.coef.copy()
        mu = self.mu0
        factor = None
        last = np.inf
        for _ in range(60):
            if factor is None:
                info = X.T @ (X * (total * mu * (1.0 - mu))[:, None])
                try:
                    factor = cho_factor(info)
                except np.linalg.LinAlgError:
                    break
            step = cho_solve(factor, X.T @ (ones - total * mu))
            beta = beta + step
            if not np.all(np.isfinite(beta)):
                break
            size = float(np.max(np.abs(step) / (1.0 + np.abs(beta))))
            if size < 1e-10:
                return beta
            if size > 0.5 * last:  # slow: refresh the information (a Newton step)
                factor = None
            last = size
            mu = expit(X @ beta)
        share = np.divide(ones, total, out=np.zeros(self.u), where=total > 0)
        fit = fit_logistic(X, share, total, start=self.coef)
        return fit.coef if fit.converged and np.max(np.abs(fit.eta[total > 0])) <= 30 else None

    def odds(self, beta: np.ndarray) -> np.ndarray:
        """P(target | x) / P(source | x) for each source row."""
        return np.asarray(np.exp(-(self.Xu @ beta))[self.group[: self.ns]])


def _participation(
    design: Design, target: Cohort, source: str, weights: Weights | None
) -> _Participation:
    """The participation model, reusing the full-data fit of ``weights`` (iow) if given."""
    coef = None if weights is None else list(weights.details["coef"].values())
    return _Participation(design, design.matrix(target), source, target.name, coef)


# -- the estimators -------------------------------------------------------------------------
class NaiveEstimator:
    """The source's own Kaplan–Meier curve, ignoring the target."""

    method = "naive"

    def __init__(self, source: Cohort) -> None:
        self.km = FixedGridKM(source.time_values, source.event_values, source.entry_values)

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        return self.km.grid, self.km.survival(cs)


class IOWEstimator:
    """Kaplan–Meier of the source weighted by inverse odds of participation."""

    method = "iow"

    def __init__(
        self,
        source: Cohort,
        target: Cohort,
        formula: str | None,
        weights: Weights | None = None,
    ) -> None:
        self.design = Design(source, formula) if weights is None else weights.design
        self.participation = _participation(self.design, target, source.name, weights)
        self.km = FixedGridKM(source.time_values, source.event_values, source.entry_values)
        self.ns = source.n

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

    def __init__(
        self,
        source: Cohort,
        target: Cohort | TargetSummary,
        formula: str | None,
        moments: Literal[1, 2],
        lam: dict[str, float],
    ) -> None:
        self.design = Design(source, formula)
        Xs = self.design.source_matrix
        C, labels, sq = _moment_columns(Xs, self.design.columns, moments)
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
        self.keep = _independent_columns((C - self.m) / self.scale)
        self.C = C[:, self.keep]
        self.scale = self.scale[self.keep]
        self.lam = np.array([lam[labels[j]] for j in self.keep]) * self.scale
        self.km = FixedGridKM(source.time_values, source.event_values, source.entry_values)

    def _solve(self, q: np.ndarray, m: np.ndarray) -> np.ndarray | None:
        Z = (self.C - m[self.keep]) / self.scale
        lam = self.lam.copy()
        logq = np.log(np.where(q > 0, q, 1.0))
        logq[q <= 0] = -np.inf

        def dual(lam: np.ndarray) -> float:
            a = logq + Z @ lam
            top = float(np.max(a))
            return top + float(np.log(np.sum(np.exp(a - top))))

        for _ in range(100):
            p = softmax(logq + Z @ lam)
            g = p @ Z
            if np.max(np.abs(g)) <= 1e-12:
                return p
            H = (Z * p[:, None]).T @ Z - np.outer(g, g)
            try:
                step = np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                return None
            f0, t = dual(lam), 1.0
            while dual(lam - t * step) > f0 + 1e-14 * abs(f0) and t > 1e-10:
                t /= 2.0
            lam = lam - t * step
        return None

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        if ct is not None and self.target_C is not None:
            m = (ct @ self.target_C) / ct.sum()
        else:
            m = self.m
        p = self._solve(cs, m)
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
        self.start: np.ndarray | None = None
        full = self.fit(np.ones(source.n))
        if full is None:
            raise DataError(
                f"the {model} outcome model of {source.name!r} did not converge (rule: a "
                "finite maximum-likelihood estimate; a covariate may predict the outcome "
                "perfectly)"
            )
        self.start = full.coef

    def fit(self, w: np.ndarray) -> Any:
        """The model for case weights ``w``; rows of weight 0 are left out (absent, as in
        a resample), or ``None`` when it does not converge."""
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


def _event_grid(time: np.ndarray, event: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Distinct event times of the rows with positive weight: where a model-based curve
    is read (the Cox model's marginal curve steps only there)."""
    return np.unique(time[(event > 0) & (w > 0)])


class GFormulaEstimator:
    """Average over the target's patients of the source outcome model's S(t | x)."""

    method = "gformula"

    def __init__(
        self,
        source: Cohort,
        target: Cohort,
        formula: str | None,
        model: OutcomeModel,
        ties: Literal["efron", "breslow"],
    ) -> None:
        self.outcome = _OutcomeFit(source, formula, model, ties)
        self.Xt = self.outcome.design.matrix(target)

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        fit = self.outcome.fit(cs)
        if fit is None:
            return None
        grid = _event_grid(self.outcome.time, self.outcome.event, cs)
        pred = fit.survival(self.Xt, grid)
        s = pred.mean(axis=0) if ct is None else (ct @ pred) / ct.sum()
        return grid, np.asarray(s)


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
        self.Xt_out = self.outcome.design.matrix(target)
        pdesign = Design(source, formula) if weights is None else weights.design
        self.participation = _participation(pdesign, target, source.name, weights)
        self.censoring = censoring
        self.km = FixedGridKM(source.time_values, source.event_values)
        self.time = source.time_values
        self.event = source.event_values
        distinct = np.unique(self.time)
        gap = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
        self.death_shifted = np.where(self.event > 0, self.time - 0.5 * gap, self.time)

    def _censoring_matrix(self, cs: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
        """G(t | x_i) for source rows x grid times (one column vector for KM)."""
        if self.censoring == "km":
            G = self.km.censoring_survival(cs)
            k = np.searchsorted(self.km.grid, grid, side="right") - 1
            return np.where(k >= 0, G[np.maximum(k, 0)], 1.0)[None, :]
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
        return np.asarray(fit.survival(self.Xs_out, grid))

    def curve(self, cs: np.ndarray, ct: np.ndarray | None) -> Curve | None:
        assert ct is not None
        beta = self.participation.refit(np.concatenate((cs, ct)))
        fit = self.outcome.fit(cs)
        if beta is None or fit is None:
            return None
        a = cs * self.participation.odds(beta)  # participation-weighted source rows
        grid = _event_grid(self.time, self.event, cs)
        G = self._censoring_matrix(cs, grid)
        if G is None:
            return None
        psi = np.empty(grid.size)
        block = 256
        for lo in range(0, grid.size, block):
            g = grid[lo : lo + block]
            m_t = fit.survival(self.Xt_out, g)
            m_s = fit.survival(self.Xs_out, g)
            Gb = G[:, lo : lo + block]
            alive = self.time[:, None] > g[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                ipcw = np.where(alive, 1.0 / Gb, 0.0)
            if not np.all(np.isfinite(ipcw)):
                return None
            psi[lo : lo + block] = (ct @ m_t) / ct.sum() + (a @ (ipcw - m_s)) / a.sum()
        psi = np.clip(psi, 0.0, 1.0)
        psi = isotonic_regression(psi, increasing=False).x
        return grid, np.asarray(psi)
