"""The participation model refitted per bootstrap replicate: a logistic model of
P(source | x) on the stacked cohorts, warm-started from the full-data fit and solved on
the distinct covariate rows (DESIGN §7)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit

from transport.design import Design
from transport.exceptions import DataError
from transport.weighting._logistic import fit_logistic

__all__ = ["ParticipationModel", "distinct_rows"]


class ParticipationModel:
    """Logistic model of P(source | x) on the stacked cohorts, refitted per replicate.

    Replicates work on the distinct covariate rows (:func:`distinct_rows`), with the resample's
    counts of source and target rows per distinct row as binomial data: the same
    likelihood, far fewer rows when covariates are categorical or rounded (DESIGN §7).
    """

    def __init__(
        self, design: Design, Xt: np.ndarray, source: str, target: str, coef: Any = None
    ) -> None:
        """``coef``: the full-data fit when already known (from
        :func:`~transport.inverse_odds_weights`, on the same design), else fitted here."""
        self._Xs, self._Xt = design.source_matrix, Xt
        self.ns, self.nt = self._Xs.shape[0], Xt.shape[0]
        if coef is None:
            fit = fit_logistic(self.X, self.y)
            if not fit.converged:
                raise DataError(
                    f"the participation model of {source!r} vs {target!r} did not converge "
                    f"in {fit.n_iter} Newton steps (rule: a finite maximum-likelihood "
                    "estimate; see inverse_odds_weights for the separation diagnosis)"
                )
            coef = fit.coef
        self.coef = np.asarray(coef, dtype=np.float64)

    @cached_property
    def X(self) -> np.ndarray:
        """The stacked design, source rows then target rows, intercept first (built when
        a fit or the bootstrap needs it)."""
        return np.column_stack((np.ones(self.ns + self.nt), np.vstack((self._Xs, self._Xt))))

    @property
    def y(self) -> np.ndarray:
        """1 for a source row, 0 for a target row."""
        return np.concatenate((np.ones(self.ns), np.zeros(self.nt)))

    @cached_property
    def _distinct(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct rows, each stacked row's index among them, and the full-data fit's
        probabilities on them: only the bootstrap's refits need them, so a call without
        one never computes them."""
        Xu, group = distinct_rows(self.X)
        return Xu, group, expit(Xu @ self.coef)

    @property
    def Xu(self) -> np.ndarray:
        """The distinct rows of the stacked design (intercept first)."""
        return self._distinct[0]

    @property
    def group(self) -> np.ndarray:
        """Each stacked row's index among :attr:`Xu`."""
        return self._distinct[1]

    @property
    def u(self) -> int:
        """The number of distinct rows."""
        return int(self._distinct[0].shape[0])

    def refit(self, c: np.ndarray) -> np.ndarray | None:
        """Coefficients for case weights ``c`` (stacked source then target): one Newton
        step from the full-data fit, then chord steps reusing that information matrix
        (each O(u p) on the u distinct rows) until the step is below 1e-10 relative; the
        information is refreshed whenever a chord step fails to halve the previous one,
        and a full Newton fit from the full-data estimate is the fallback. ``None`` when
        that fails too (separation in the resample, say)."""
        if bool(np.all(c == 1.0)):
            return self.coef  # the full data: the fit it was given or made
        Xu, g, mu = self._distinct
        ones = np.bincount(g[: self.ns], weights=c[: self.ns], minlength=self.u)
        total = ones + np.bincount(g[self.ns :], weights=c[self.ns :], minlength=self.u)
        X = Xu
        beta = self.coef.copy()
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
        if "_distinct" not in self.__dict__:  # no refit yet: one product, no distinct rows
            Xs = np.column_stack((np.ones(self.ns), self._Xs))
            return np.asarray(np.exp(-(Xs @ beta)))
        return np.asarray(np.exp(-(self.Xu @ beta))[self.group[: self.ns]])


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``X`` (in order of first appearance) and each row's index
    among them: rows grouped by a hash of their values, O(rows x columns), instead of
    ``np.unique(X, axis=0)``'s lexicographic sort of float rows. Two rows of one group
    are checked to be equal; on a hash collision the sort is the fallback."""
    n = X.shape[0]
    if n == 0:
        return X.copy(), np.zeros(0, dtype=np.intp)
    codes, _ = pd.factorize(_row_hashes(X))
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.concatenate(([True], seen[1:] > seen[:-1])))
    Xu = np.ascontiguousarray(X[first])
    if not np.array_equal(Xu[codes], X):  # two different rows with one hash
        Xu, inverse = np.unique(X, axis=0, return_inverse=True)
        return np.ascontiguousarray(Xu), inverse.ravel()
    return Xu, codes.astype(np.intp)


#: Odd 64-bit multipliers of the row hash, one per column (fixed: the grouping, and so
#: every replicate's arithmetic, is the same in every run).
_MULTIPLIERS = np.random.default_rng(20261206).integers(1, 2**63, size=4096, dtype=np.uint64) | 1


def _row_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bits: sum of each column's bits times its multiplier,
    wrapping, then mixed. Equal rows hash alike; two different rows alike only by a
    collision, which :func:`distinct_rows` detects."""
    h = np.zeros(X.shape[0], dtype=np.uint64)
    for j in range(X.shape[1]):
        column = np.ascontiguousarray(X[:, j], dtype=np.float64) + 0.0  # -0.0 as 0.0
        h += column.view(np.uint64) * _MULTIPLIERS[j % _MULTIPLIERS.size]
        h ^= h >> np.uint64(31)
    return h
