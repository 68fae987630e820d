"""Logistic regression by Newton–IRLS, and a linear-programming check for separation.

Pure functions on numpy arrays. The participation model of inverse odds weighting is
fitted here; statsmodels' GLM and R's ``glm`` are the references in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import linprog
from scipy.special import expit, log_expit

__all__ = ["LogisticFit", "fit_logistic", "separating_columns"]


@dataclass(frozen=True)
class LogisticFit:
    """Maximum-likelihood logistic regression.

    ``coef`` (intercept first when the design has one), ``cov`` (inverse observed
    information), ``eta`` (linear predictor), ``n_iter``, ``converged`` and the
    ``loglik`` at the estimate.
    """

    coef: np.ndarray
    cov: np.ndarray
    eta: np.ndarray
    n_iter: int
    converged: bool
    loglik: float


def _loglik(eta: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * (y * log_expit(eta) + (1.0 - y) * log_expit(-eta))))


def fit_logistic(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    start: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> LogisticFit:
    """Newton–Raphson (IRLS) for ``logit P(y = 1 | x) = x' beta``, with step halving.

    Converges when the largest Newton step, relative to ``1 + |beta|``, is below ``tol``
    (much tighter than R's default deviance criterion, so that the coefficients are the
    MLE to ~1e-10, not to the 1e-8 of a default ``glm``).
    """
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    beta = np.zeros(p) if start is None else np.asarray(start, dtype=np.float64).copy()
    eta = X @ beta
    ll = _loglik(eta, y, w)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        mu = expit(eta)
        score = X.T @ (w * (y - mu))
        info = (X * (w * mu * (1.0 - mu))[:, None]).T @ X
        try:
            step = cho_solve(cho_factor(info), score)
        except np.linalg.LinAlgError:
            break
        factor = 1.0
        while True:
            new = beta + factor * step
            eta_new = X @ new
            ll_new = _loglik(eta_new, y, w)
            if ll_new >= ll - 1e-12 * abs(ll) or factor < 1e-8:
                break
            factor /= 2.0
        beta, eta, ll = new, eta_new, ll_new
        if np.max(np.abs(factor * step) / (1.0 + np.abs(beta))) < tol:
            converged = True
            break
    mu = expit(eta)
    info = (X * (w * mu * (1.0 - mu))[:, None]).T @ X
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((p, p), np.nan)
    return LogisticFit(beta, cov, eta, it, converged, ll)


def separating_columns(X: np.ndarray, y: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of the design columns of a sparsest (quasi-)separating direction, or empty.

    A separating direction is ``b`` with ``x_i' b >= 0`` when ``y_i = 1`` and ``<= 0`` when
    ``y_i = 0``, not zero on every row; it exists exactly when the maximum-likelihood
    estimate does not (Albert & Anderson 1984; Konis 2007). One linear program checks
    existence (maximise the total separation with ``|b_j| <= 1``); a second finds the
    direction with the least L1 norm outside column 0 (the intercept) that separates by at
    least 1 in total, so that the columns named are those that do the separating.
    """
    n, p = X.shape
    s = np.where(y > 0, 1.0, -1.0)
    scale = np.maximum(np.abs(X).max(axis=0), 1e-12)
    A = s[:, None] * X / scale  # want A b >= 0
    first = linprog(
        -A.sum(axis=0), A_ub=-A, b_ub=np.zeros(n), bounds=[(-1.0, 1.0)] * p, method="highs"
    )
    if first.status != 0 or -first.fun <= tol * n:
        return np.zeros(0, dtype=np.intp)
    # b = b_plus - b_minus, minimise sum over non-intercept columns of b_plus + b_minus
    cost = np.ones(2 * p)
    cost[0] = cost[p] = 0.0
    A_ub = np.vstack((np.hstack((-A, A)), -np.hstack((A.sum(axis=0), -A.sum(axis=0)))[None, :]))
    b_ub = np.concatenate((np.zeros(n), [-1.0]))
    second = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=[(0.0, None)] * (2 * p), method="highs")
    b = first.x if second.status != 0 else second.x[:p] - second.x[p:]
    big = np.abs(b) > 1e-7 * max(float(np.abs(b).max()), 1e-300)
    return np.flatnonzero(big)
