"""Weighted Kaplan–Meier kernel: pure functions on float64 numpy arrays.

One sort (``np.unique`` of the times, which also snaps near-identical times), then
cumulative sums. Every quantity below is O(n) after that sort, including the
infinitesimal-jackknife variance at every time and the variance of the RMST.

Notation (grid index ``k`` runs over the distinct, snapped times ``t_k``):

* ``Y_k = sum_i w_i 1{a_i < t_k <= T_i}`` weighted risk set (``a_i`` = entry, 0 if none),
* ``d_k = sum_i w_i delta_i 1{T_i = t_k}`` weighted events,
* ``S(t) = prod_{t_k <= t} (1 - d_k / Y_k)``,
* ``g_k = d_k / (Y_k (Y_k - d_k))`` and ``G_k = sum_{j <= k} g_j``.

Greenwood: ``Var S(t) = S(t)^2 G(t)`` (on weighted counts for frequency weights).

Infinitesimal jackknife (R ``survfit(..., robust=TRUE)``): the influence of row ``i`` is
``U_i(t) = w_i S(t) D_i(t)``, ``D_i(t) = sum_{t_j <= t} (d_j Y_i(t_j) - dN_i(t_j) Y_j) /
(Y_j (Y_j - d_j))``, and ``Var S(t) = sum_i U_i(t)^2``. For a row still at risk after
``t``, ``D_i(t) = G(t) - G(a_i)``; once it has left at ``T_i``,
``D_i = G(T_i) - G(a_i) - delta_i / (Y(T_i) - d(T_i))`` is constant. Sums of squares over
the risk set are therefore cumulative sums over entries minus cumulative sums over exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["SNAP_TOLERANCE", "KMArrays", "kaplan_meier_arrays", "snap_unique"]

#: Default tolerance for treating two times as equal, as R's ``aeqSurv``.
SNAP_TOLERANCE = float(np.sqrt(np.finfo(np.float64).eps))

Variance = Literal["greenwood", "ij"]


def snap_unique(values: np.ndarray, tol: float = SNAP_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values after snapping near-ties, and each value's index among them.

    Two consecutive distinct values ``y_k < y_{k+1}`` are tied when
    ``y_{k+1} - y_k <= tol`` or ``(y_{k+1} - y_k) / mean(|y|) <= tol`` (the mean over the
    distinct values), the rule of R's ``survival::aeqSurv``. Each chain of tied values is
    replaced by its smallest member. ``tol <= 0`` turns snapping off.

    Returns
    -------
    cuts, index
        ``cuts`` sorted distinct snapped values; ``cuts[index]`` is the snapped input.
    """
    uniq, inv = np.unique(values, return_inverse=True)
    inv = inv.reshape(-1)
    if uniq.size < 2 or tol <= 0:
        return uniq, inv
    dy = np.diff(uniq)
    scale = float(np.mean(np.abs(uniq)))
    tied = dy <= tol
    if scale > 0:
        tied |= dy / scale <= tol
    if not tied.any():
        return uniq, inv
    keep = np.concatenate(([True], ~tied))
    group = np.cumsum(keep) - 1
    return uniq[keep], group[inv]


@dataclass(frozen=True, eq=False)
class KMArrays:
    """Output of :func:`kaplan_meier_arrays` on the full grid of distinct times.

    Per-grid arrays (length ``m``) cover every distinct snapped time, entries included;
    ``reported`` marks the times at which some row with positive weight leaves (event or
    censoring), the times a survival table shows. Per-row arrays keep what the RMST
    variance needs.
    """

    grid: np.ndarray
    reported: np.ndarray
    n_risk: np.ndarray
    n_risk_unweighted: np.ndarray
    n_event: np.ndarray
    n_event_unweighted: np.ndarray
    n_censor: np.ndarray
    n_censor_unweighted: np.ndarray
    survival: np.ndarray
    se: np.ndarray
    g: np.ndarray
    variance: Variance
    # per row
    weights: np.ndarray
    event: np.ndarray
    exit_index: np.ndarray
    entry_index: np.ndarray | None


def _revcumsum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x[::-1])[::-1]


def kaplan_meier_arrays(
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None = None,
    entry: np.ndarray | None = None,
    *,
    variance: Variance = "greenwood",
    tol: float = SNAP_TOLERANCE,
) -> KMArrays:
    """Weighted product-limit estimate with its standard error, on numpy arrays.

    Parameters
    ----------
    time, event
        Exit times (finite, >= 0) and event indicators (0/1), float64, same length.
    weights
        Non-negative finite weights, or ``None`` for all ones.
    entry
        Delayed-entry times with ``entry < time``, or ``None``.
    variance
        ``"greenwood"`` (on the weighted counts: exact for frequency weights) or ``"ij"``
        (infinitesimal jackknife, for sampling weights; R's ``robust=TRUE``).
    tol
        Snapping tolerance for near-identical times (R's ``aeqSurv``).

    Notes
    -----
    Events at a time come before censorings at that time: a row censored at ``t_k`` is in
    the risk set at ``t_k``. The caller validates inputs; this function trusts them.
    """
    n = time.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    ev = np.asarray(event, dtype=np.float64)
    if entry is None:
        grid, exit_idx = snap_unique(time, tol)
        entry_idx = None
    else:
        grid, idx = snap_unique(np.concatenate((time, entry)), tol)
        exit_idx, entry_idx = idx[:n], idx[n:]
        if np.any(entry_idx >= exit_idx):
            raise ValueError("entry and exit snap to the same time for some rows")
    m = grid.size
    pos = (w > 0).astype(np.float64)

    n_event = np.bincount(exit_idx, weights=w * ev, minlength=m)
    n_exit = np.bincount(exit_idx, weights=w, minlength=m)
    c_event = np.bincount(exit_idx, weights=pos * ev, minlength=m)
    c_exit = np.bincount(exit_idx, weights=pos, minlength=m)
    n_risk = _revcumsum(n_exit)
    c_risk = _revcumsum(c_exit)
    if entry_idx is not None:
        n_risk = n_risk - _revcumsum(np.bincount(entry_idx, weights=w, minlength=m))
        c_risk = c_risk - _revcumsum(np.bincount(entry_idx, weights=pos, minlength=m))
        # Guard float residue of the subtraction: a risk set is never negative.
        n_risk = np.where(n_risk < 0, 0.0, n_risk)

    has_event = n_event > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(has_event, 1.0 - n_event / np.where(has_event, n_risk, 1.0), 1.0)
    # Every positive-weight row at risk has the event (an exact count comparison, free of
    # the rounding in weighted sums): the curve drops to exactly zero and stays there.
    dead = np.flatnonzero(has_event & (c_event >= c_risk))
    factor = np.clip(factor, 0.0, 1.0)
    if dead.size:
        factor[dead[0] :] = 0.0
    surv = np.cumprod(factor)
    alive = surv > 0

    denom = n_risk * (n_risk - n_event)
    g = np.zeros(m)
    ok = has_event & alive
    g[ok] = n_event[ok] / denom[ok]

    if variance == "greenwood":
        var = surv**2 * np.cumsum(g)
    else:
        var = _ij_variance(surv, g, n_risk, n_event, w, ev, exit_idx, entry_idx, alive)
    se = np.sqrt(np.maximum(var, 0.0))
    # Once S = 0: the IJ variance is exactly 0 (every influence is multiplied by S = 0);
    # Greenwood's is undefined (0 * inf), as in R, and reported as nan.
    se[~alive] = 0.0 if variance == "ij" else np.nan

    reported = c_exit > 0
    return KMArrays(
        grid=grid,
        reported=reported,
        n_risk=n_risk,
        n_risk_unweighted=c_risk,
        n_event=n_event,
        n_event_unweighted=c_event,
        n_censor=n_exit - n_event,
        n_censor_unweighted=c_exit - c_event,
        survival=surv,
        se=se,
        g=g,
        variance=variance,
        weights=w,
        event=ev,
        exit_index=exit_idx,
        entry_index=entry_idx,
    )


def _row_constants(
    g: np.ndarray,
    n_risk: np.ndarray,
    n_event: np.ndarray,
    ev: np.ndarray,
    exit_idx: np.ndarray,
    entry_idx: np.ndarray | None,
    alive: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``G`` on the grid, ``G(a_i)`` and the post-exit constant ``c_i`` of every row.

    Rows that leave when the curve is already zero get ``c_i = 0``: their influence is
    multiplied by ``S = 0`` everywhere it matters.
    """
    G = np.cumsum(g)
    Ga = np.zeros(exit_idx.size) if entry_idx is None else G[entry_idx]
    left = n_risk - n_event
    jump = np.zeros_like(g)
    live = alive & (left > 0)
    jump[live] = 1.0 / left[live]
    c = G[exit_idx] - Ga - ev * jump[exit_idx]
    c = np.where(alive[exit_idx], c, 0.0)
    return G, Ga, c


def _ij_variance(
    surv: np.ndarray,
    g: np.ndarray,
    n_risk: np.ndarray,
    n_event: np.ndarray,
    w: np.ndarray,
    ev: np.ndarray,
    exit_idx: np.ndarray,
    entry_idx: np.ndarray | None,
    alive: np.ndarray,
) -> np.ndarray:
    m = g.size
    G, Ga, c = _row_constants(g, n_risk, n_event, ev, exit_idx, entry_idx, alive)
    w2 = w * w
    done = np.cumsum(np.bincount(exit_idx, weights=w2 * c * c, minlength=m))

    def risk_sum(x: np.ndarray) -> np.ndarray:
        """sum over rows with a_i < t_k < T_i of x_i, for every k."""
        out_exit = np.cumsum(np.bincount(exit_idx, weights=x, minlength=m))
        if entry_idx is None:
            return float(x.sum()) - out_exit
        # entered strictly before t_k: entry index <= k - 1
        entered = np.cumsum(np.bincount(entry_idx, weights=x, minlength=m))
        entered = np.concatenate(([0.0], entered[:-1]))
        return entered - out_exit

    A = risk_sum(w2)
    if entry_idx is None:
        at_risk = G * G * A
    else:
        B = risk_sum(w2 * Ga)
        C = risk_sum(w2 * Ga * Ga)
        at_risk = G * G * A - 2.0 * G * B + C
    var = surv * surv * (done + np.maximum(at_risk, 0.0))
    return np.where(alive, var, 0.0)


def rmst_arrays(fit: KMArrays, tau: float) -> tuple[float, float]:
    """Restricted mean survival time to ``tau`` and its standard error.

    ``RMST(tau) = int_0^tau S(t) dt`` under the step curve. Greenwood variance (survRM2,
    R ``print.survfit(rmean=)``): ``sum_{t_k <= tau} (int_{t_k}^tau S)^2 g_k``. IJ variance:
    ``sum_i (int_0^tau U_i(t) dt)^2``, evaluated per row from cumulative integrals.
    """
    grid, surv = fit.grid, fit.survival
    # Interval k is [t_k, t_{k+1}) truncated at tau; S = 1 on [0, t_0).
    right = np.append(grid[1:], np.inf)
    delta = np.clip(np.minimum(right, tau) - grid, 0.0, None)
    head = min(float(grid[0]), tau) if grid[0] > 0 else 0.0
    area_k = surv * delta
    value = head + float(area_k.sum())
    if fit.variance == "greenwood":
        tail = _revcumsum(area_k)  # int_{t_k}^{tau} S
        var = float(np.sum(tail**2 * fit.g))
        return value, float(np.sqrt(var))
    G, Ga, c = _row_constants(
        fit.g,
        fit.n_risk,
        fit.n_event,
        fit.event,
        fit.exit_index,
        fit.entry_index,
        fit.survival > 0,
    )
    P = np.cumsum(area_k)
    R = np.cumsum(np.where(area_k > 0, area_k * G, 0.0))
    total = P[-1]
    e = fit.exit_index
    # Sums over a_i < k < e_i (cumulative arrays at e_i - 1 and a_i; index -1 means 0).
    P_e = np.where(e > 0, P[np.maximum(e - 1, 0)], 0.0)
    R_e = np.where(e > 0, R[np.maximum(e - 1, 0)], 0.0)
    if fit.entry_index is None:
        P_a = np.zeros_like(P_e)
        R_a = np.zeros_like(R_e)
    else:
        P_a = P[fit.entry_index]
        R_a = R[fit.entry_index]
    after = total - P_e
    within = (R_e - R_a) - Ga * (P_e - P_a)
    infl = fit.weights * (within + np.where(after > 0, c * after, 0.0))
    return value, float(np.sqrt(np.sum(infl * infl)))
