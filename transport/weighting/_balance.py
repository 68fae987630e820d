"""Entropy-balancing kernels: the balance columns (means, optionally squares), a set of
linearly independent ones, and the dual solved from a warm start for bootstrap
replicates (Hainmueller 2012)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import qr
from scipy.special import softmax

__all__ = ["independent_columns", "moment_columns", "solve_dual"]


def moment_columns(
    X: np.ndarray, names: tuple[str, ...], moments: int
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Balance columns: X, and with moments = 2 the squares of non-binary columns.

    Returns the matrix, the labels and the indices of the squared columns.
    """
    if moments == 1:
        return X, list(names), np.zeros(0, dtype=np.intp)
    binary = np.all((X == 0) | (X == 1), axis=0)
    sq = np.flatnonzero(~binary)
    return np.column_stack((X, X[:, sq] ** 2)), [*names, *(f"{names[j]}^2" for j in sq)], sq


def independent_columns(Z: np.ndarray) -> np.ndarray:
    """A maximal set of linearly independent columns (with the constant), by pivoted QR.

    A dependent column (``{age**2}`` beside the squares of ``moments=2``, say) is balanced
    whenever the others are, and would make the dual's Hessian singular.
    """
    centred = Z - Z.mean(axis=0)
    _, r, piv = qr(centred, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0:
        return np.zeros(0, dtype=np.intp)
    rank = int(np.sum(diag > diag[0] * 1e-10))
    return np.sort(piv[:rank])


def solve_dual(Z: np.ndarray, lam0: np.ndarray, q: np.ndarray) -> np.ndarray | None:
    """Entropy-balancing weights ``p`` (summing to 1) relative to base weights ``q`` that
    balance the centred, scaled columns ``Z`` exactly (``p @ Z = 0``): Newton's method on
    the dual ``log sum_i q_i exp(z_i' lam)``, started at ``lam0`` (the full-data solution,
    so a bootstrap replicate takes a few steps), halving each step until the dual does
    not increase. ``None`` when it does not reach ``max |p @ Z| <= 1e-12`` in 100 steps or
    the Hessian is singular."""
    lam = lam0.copy()
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
