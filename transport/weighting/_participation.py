"""The participation model refitted per bootstrap replicate: a logistic model of
P(source | x) on the stacked cohorts, warm-started from the full-data fit and solved on
the distinct covariate rows (DESIGN §7)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit

from transport.design import Design
from transport.exceptions import DataError
from transport.weighting._logistic import fit_logistic

__all__ = ["ParticipationModel"]


class ParticipationModel:
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
