"""Cox proportional hazards by Newton–Raphson, Breslow or Efron ties, and its baseline.

Pure functions on numpy arrays. With ``eta = X beta`` (X centred), weights ``w``, distinct
event times ``t_g``, tied events ``D_g`` (``m_g`` rows, weighted count ``d_g``):

* risk-set sums ``S0_g = sum_{T_j >= t_g} w_j e^{eta_j}``, ``S1_g`` likewise with ``x_j``;
* event sums ``E0_g = sum_{D_g} w e^eta``, ``E1_g`` likewise with ``x``;
* Breslow: ``loglik = sum_g [sum_{D_g} w eta - d_g log S0_g]``;
* Efron: ``loglik = sum_g [sum_{D_g} w eta - (d_g / m_g) sum_{r<m_g} log(S0_g - r/m_g E0_g)]``
  (R's ``coxph`` weighting of tied events).

The information matrix needs ``S2_g = sum w e^eta x x'``; it enters only through
``X' diag(w e^eta h) X`` with a per-row cumulative hazard ``h``, so no n x p x p array is
formed. The baseline cumulative hazard is the Breslow estimator, or its Efron analogue
``sum_r (d_g / m_g) / (S0_g - r/m_g E0_g)`` for Efron ties (R's ``survfit.coxph``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from transport.survival._kernel import SNAP_TOLERANCE, group_times

__all__ = ["CoxFit", "fit_cox"]

Ties = Literal["breslow", "efron"]


@dataclass(frozen=True)
class CoxFit:
    """Result of :func:`fit_cox`: coefficients (for uncentred covariates), their
    covariance, the log partial likelihood, the centre used, and the baseline cumulative
    hazard ``hazard`` at the distinct event ``times`` for covariates equal to ``center``."""

    coef: np.ndarray
    cov: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    center: np.ndarray
    times: np.ndarray
    hazard: np.ndarray
    ties: str

    def survival(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Predicted ``S(t | x) = exp(-H0(t) exp((x - center)' beta))``: rows x times."""
        idx = np.searchsorted(self.times, np.asarray(times, dtype=np.float64), side="right") - 1
        H = np.where(idx >= 0, self.hazard[np.maximum(idx, 0)], 0.0)
        risk = np.exp((X - self.center) @ self.coef)
        return np.exp(-np.outer(risk, H))


class _Groups:
    """Rows sorted by time; event groups at distinct event times."""

    def __init__(self, time: np.ndarray, event: np.ndarray, w: np.ndarray) -> None:
        grid, idx, order = group_times(time, SNAP_TOLERANCE)
        if order is None:
            order = np.argsort(idx, kind="stable")
            idx = idx[order]
        self.order = order
        self.idx = idx  # grid index of each sorted row (non-decreasing)
        self.m = grid.size
        self.grid = grid
        self.event = event[order]
        self.w = w[order]
        ev_rows = self.event > 0
        self.ev_idx = idx[ev_rows]
        self.count = np.bincount(self.ev_idx, minlength=self.m)  # m_g (rows)
        self.d = np.bincount(self.ev_idx, weights=self.w[ev_rows], minlength=self.m)
        self.ev_rows = ev_rows
        self.has = self.count > 0


def _group_sum(a: np.ndarray, idx: np.ndarray, m: int) -> np.ndarray:
    """Sum of ``a`` (rows, or rows x p) by group, for a non-decreasing group index
    ``idx``: one ``np.add.reduceat`` pass instead of the slow ``np.add.at``."""
    out = np.zeros((m, *a.shape[1:]))
    if idx.size:
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
        out[idx[starts]] = np.add.reduceat(a, starts, axis=0)
    return out


def _revcum(a: np.ndarray, idx: np.ndarray, m: int) -> np.ndarray:
    """Sum of a over rows with grid index >= g, for every g (a: rows or rows x p)."""
    return np.cumsum(_group_sum(a, idx, m)[::-1], axis=0)[::-1]


def _pieces(
    G: _Groups, X: np.ndarray, beta: np.ndarray, ties: Ties
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log partial likelihood, score, information and the (group, r) terms."""
    eta = X @ beta
    r = G.w * np.exp(eta)
    S0 = _revcum(r, G.idx, G.m)
    S1 = _revcum(r[:, None] * X, G.idx, G.m)
    ev = G.ev_rows
    E0 = np.bincount(G.ev_idx, weights=r[ev], minlength=G.m)
    E1 = _group_sum(r[ev][:, None] * X[ev], G.ev_idx, G.m)
    wx = _group_sum(G.w[ev][:, None] * X[ev], G.ev_idx, G.m)
    weta = float(np.sum(G.w[ev] * eta[ev]))
    g = np.flatnonzero(G.has)
    if ties == "breslow" or np.all(G.count[g] == 1):
        # one term per event group with r = 0
        gg = g
        frac: np.ndarray = np.zeros(g.size)
        share: np.ndarray = G.d[g]
    else:
        gg = np.repeat(g, G.count[g])
        starts = np.cumsum(G.count[g]) - G.count[g]
        rr = np.arange(gg.size) - np.repeat(starts, G.count[g])
        frac = rr.astype(np.float64) / G.count[gg]
        share = G.d[gg] / G.count[gg]
    den = S0[gg] - frac * E0[gg]
    num = S1[gg] - frac[:, None] * E1[gg]
    loglik = weta - float(np.sum(share * np.log(den)))
    score = wx.sum(axis=0) - (share / den) @ num
    # S2 terms as X' diag(.) X: rows at risk at each (g, r) term, minus the tied part
    per_group = np.bincount(gg, weights=share / den, minlength=G.m)
    h_row = np.cumsum(per_group)[G.idx]  # sum over terms with t_g <= T_i
    tied = np.bincount(gg, weights=share * frac / den, minlength=G.m)
    c = r * (h_row - np.where(ev, tied[G.idx], 0.0))
    u = num / den[:, None]
    info = (X * c[:, None]).T @ X - (u * share[:, None]).T @ u
    return loglik, score, info, gg, den, share


def fit_cox(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    ties: Ties = "efron",
    tol: float = 1e-12,
    max_iter: int = 50,
) -> CoxFit:
    """Maximise the Cox partial likelihood by Newton–Raphson with step halving.

    Converges when the largest Newton step, relative to ``1 + |beta|``, is below ``tol``.
    Returns coefficients on the scale of ``X``, their covariance (inverse information),
    and the baseline cumulative hazard at the column means of ``X``.
    """
    if weights is not None and float(np.min(weights)) <= 0:
        # rows of weight 0 are absent (a resample, say): they would only add empty
        # risk sets and event groups
        keep = np.asarray(weights) > 0
        time, event, X, weights = time[keep], event[keep], X[keep], weights[keep]
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    G = _Groups(np.asarray(time, np.float64), np.asarray(event, np.float64), w)
    center = (w @ X) / w.sum()
    Xs = (X - center)[G.order]
    beta = np.zeros(p)
    pieces = _pieces(G, Xs, beta, ties)
    ll, score, info = pieces[0], pieces[1], pieces[2]
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        step = np.linalg.solve(info, score)
        t = 1.0
        while True:
            new = beta + t * step
            trial = _pieces(G, Xs, new, ties)
            if trial[0] >= ll - 1e-12 * abs(ll) or t < 1e-8:
                break
            t /= 2.0
        beta, pieces = new, trial
        ll, score, info = pieces[0], pieces[1], pieces[2]
        if np.max(np.abs(t * step) / (1.0 + np.abs(beta))) < tol:
            converged = True
            break
    _, _, info, gg, den, share = pieces  # at the final beta: no extra pass
    cov = np.linalg.inv(info)
    dH = np.bincount(gg, weights=share / den, minlength=G.m)
    keep = G.has
    return CoxFit(beta, cov, ll, it, converged, center, G.grid[keep], np.cumsum(dH)[keep], ties)


def robust_cov(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray,
    fit: CoxFit,
) -> np.ndarray:
    """Robust (sandwich) covariance of a weighted Cox fit: ``V I (sum_i w_i^2 U_i U_i') V``
    with ``V`` the inverse information and ``U_i`` each row's score residual (Lin & Wei
    1989), as R's ``coxph`` reports for weighted fits.

    Score residual, with ``a_{g,r} = (S1_g - r/m E1_g) / (S0_g - r/m E0_g)`` and the Efron
    share ``c_{g,r} = (d_g / m_g) / (S0_g - r/m E0_g)`` (one term, r = 0, for Breslow):
    ``U_i = delta_i (x_i - mean_r a_{g(i),r}) - e^{eta_i} sum_{t_g <= T_i} sum_r f_{i,g,r}
    c_{g,r} (x_i - a_{g,r})`` where ``f = 1 - r/m`` for the tied events of ``g`` itself and
    1 otherwise.
    """
    w = np.asarray(weights, dtype=np.float64)
    if float(w.min()) <= 0:  # absent rows, as in fit_cox
        keep = w > 0
        time, event, X, w = time[keep], event[keep], X[keep], w[keep]
    G = _Groups(np.asarray(time, np.float64), np.asarray(event, np.float64), w)
    Xs = (X - fit.center)[G.order]
    _, _, _, gg, den, share = _pieces(G, Xs, fit.coef, fit.ties)  # type: ignore[arg-type]
    eta = Xs @ fit.coef
    r = G.w * np.exp(eta)
    ev = G.ev_rows
    S1 = _revcum(r[:, None] * Xs, G.idx, G.m)
    E1 = _group_sum(r[ev][:, None] * Xs[ev], G.ev_idx, G.m)
    m_of = G.count[gg].astype(np.float64)
    starts = np.zeros(G.m, dtype=np.intp)
    first = np.flatnonzero(np.r_[True, gg[1:] != gg[:-1]])
    starts[gg[first]] = first
    frac = (np.arange(gg.size) - starts[gg]) / m_of if fit.ties == "efron" else np.zeros(gg.size)
    a = (S1[gg] - frac[:, None] * E1[gg]) / den[:, None]
    c = share / den
    C = np.cumsum(np.bincount(gg, weights=c, minlength=G.m))
    Vs = np.cumsum(_group_sum(c[:, None] * a, gg, G.m), axis=0)
    T = np.bincount(gg, weights=frac * c, minlength=G.m)
    TV = _group_sum((frac * c)[:, None] * a, gg, G.m)
    abar = _group_sum(a, gg, G.m)
    abar /= np.maximum(np.bincount(gg, minlength=G.m), 1)[:, None]  # mean over the r terms
    e = np.exp(eta)
    risk = e[:, None] * (Xs * C[G.idx][:, None] - Vs[G.idx])
    own = np.where(ev, 1.0, 0.0)
    risk -= (own * e)[:, None] * (Xs * T[G.idx][:, None] - TV[G.idx])
    U = own[:, None] * (Xs - abar[G.idx]) - risk
    D = (G.w[:, None] * U) @ fit.cov
    return D.T @ D
