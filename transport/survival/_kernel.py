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

from transport.exceptions import DataError

__all__ = [
    "SNAP_TOLERANCE",
    "KMArrays",
    "group_times",
    "kaplan_meier_arrays",
    "rmst_arrays",
    "snap_unique",
    "unweighted_counts",
]

#: Default tolerance for treating two times as equal, as R's ``aeqSurv``.
SNAP_TOLERANCE = float(np.sqrt(np.finfo(np.float64).eps))

Variance = Literal["greenwood", "ij"]


def _snap_keep(uniq: np.ndarray, tol: float) -> np.ndarray | None:
    """Mask of the distinct sorted values that start a new snapped value, or None.

    Two consecutive distinct values ``y_k < y_{k+1}`` are tied when
    ``y_{k+1} - y_k <= tol`` or ``(y_{k+1} - y_k) / mean(|y|) <= tol`` (the mean over the
    distinct values), the rule of R's ``survival::aeqSurv``; a chain of tied values
    becomes its smallest member. ``None`` when nothing is tied.
    """
    if uniq.size < 2 or tol <= 0:
        return None
    dy = np.diff(uniq)
    # dy <= tol or dy / scale <= tol, in one comparison
    scale = float(np.mean(uniq) if uniq[0] >= 0 else np.mean(np.abs(uniq)))
    tied = dy <= tol * max(1.0, scale)
    if not tied.any():
        return None
    return np.concatenate(([True], ~tied))


# Whole-number times spanning at most this many values (or 4 n) are grouped by counting.
_COUNTING_SPAN = 1 << 20


def group_times(
    values: np.ndarray, tol: float = SNAP_TOLERANCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Distinct snapped values and the index of each input value among them.

    Snapping follows R's ``aeqSurv`` (see :func:`_snap_keep`); ``tol <= 0`` turns it off.
    Whole-number values in a modest range (days, say) are grouped by one counting pass
    with no comparison sort; ``order`` is then ``None`` and ``index`` follows the input
    order. Other values are sorted once; ``index`` then follows ``values[order]`` (it is
    non-decreasing), so that every later pass over rows reads memory in sequence.

    Returns
    -------
    cuts, index, order
        ``cuts`` sorted distinct snapped values; ``cuts[index]`` is the snapped value of
        ``values`` (or of ``values[order]`` when ``order`` is not ``None``).
    """
    n = values.size
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo + 1.0
    # Distinct whole numbers are >= 1 apart; they are never snapped while
    # max|y| < 1 / tol, so the counting path needs no snapping step.
    if (
        span <= max(4 * n, _COUNTING_SPAN)
        and max(abs(lo), abs(hi)) * max(tol, 0.0) < 0.5
        and np.array_equal(values[:64], np.floor(values[:64]))
        and np.array_equal(values, np.floor(values))
    ):
        offset = (values - lo).astype(np.intp)
        present = np.bincount(offset, minlength=int(span)) > 0
        remap = np.cumsum(present) - 1
        return lo + np.flatnonzero(present).astype(np.float64), remap[offset], None
    # Non-negative float64 values order exactly as their bit patterns read as int64
    # (-0.0 reads as the smallest int64 and is tied with +0.0 below); that sort is faster.
    order = np.argsort(values.view(np.int64) if lo >= 0 else values)
    ordered = values[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    uniq = ordered[starts]
    keep = _snap_keep(uniq, tol)
    if keep is not None:
        new[starts[~keep]] = False
        uniq = uniq[keep]
    index = np.cumsum(new, dtype=np.intp)
    index -= 1
    return uniq, index, order


def snap_unique(values: np.ndarray, tol: float = SNAP_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Distinct snapped values and each input value's index among them, in input order."""
    cuts, index, order = group_times(values, tol)
    if order is None:
        return cuts, index
    out = np.empty(values.size, dtype=np.intp)
    out[order] = index
    return cuts, out


@dataclass(frozen=True, eq=False)
class KMArrays:
    """Output of :func:`kaplan_meier_arrays` on the full grid of distinct times.

    Per-grid arrays (length ``m``) cover every distinct snapped time, entries included.
    The times a survival table shows are those at which some row with positive weight
    leaves (event or censoring): every grid time when ``all_reported``. Counts of rows
    with positive weight come from :func:`unweighted_counts`. ``G`` is the cumulative Greenwood
    sum; ``S > 0`` exactly on ``grid[:stop]``. Weighted arrays (and ``weights``) are on a
    scale where the largest weight is 1 for the IJ variance: multiply ``n_risk``,
    ``n_event`` and ``n_exit`` by ``weight_scale`` for the caller's scale. Per-row arrays
    (in the order of ``exit_index``, which may be sorted rather than the input order)
    keep what the IJ variance of the RMST needs.
    """

    grid: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_exit: np.ndarray
    survival: np.ndarray
    se: np.ndarray
    G: np.ndarray
    stop: int
    variance: Variance
    all_reported: bool
    weight_scale: float
    # per row
    weights: np.ndarray
    event: np.ndarray
    exit_index: np.ndarray
    entry_index: np.ndarray | None
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


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
    # The IJ variance and S are invariant to the scale of the weights: compute with
    # weights scaled to a maximum of 1 so that extreme scales cannot overflow, and report
    # weighted counts on the caller's scale (``weight_scale``).
    scale = 1.0
    if weights is not None and variance == "ij":
        scale = float(w.max())
        w = w / scale
    grid, exit_idx, entry_idx, w, ev = _time_grid(time, entry, w, ev, tol)
    m = grid.size
    n_risk, n_event, n_exit = _weighted_counts(w, ev, exit_idx, entry_idx, m)
    has_event = n_event > 0

    # Counts of rows with positive weight: the same arrays without weights; deferred
    # (see unweighted_counts) without delayed entry, where only the last time matters.
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    if weights is None:
        counts = (n_risk, n_event, n_exit)
    elif entry_idx is not None:
        counts = _count_rows(w, ev, exit_idx, entry_idx, m)
    stop = _stop_index(counts, has_event, w, ev, exit_idx, m)  # S > 0 exactly on grid[:stop]

    left = n_risk - n_event  # weighted rows still at risk just after t_k
    surv, G = _product_limit(n_risk, n_event, left, has_event, stop)
    if variance == "greenwood":
        var = G * surv
        var *= surv
    else:
        var = _ij_variance(surv, G, left, stop, w, ev, exit_idx, entry_idx)
    se = np.sqrt(var, out=var)
    # Once S = 0: the IJ variance is exactly 0 (every influence is multiplied by S = 0);
    # Greenwood's is undefined (0 * inf), as in R, and reported as nan.
    se[stop:] = 0.0 if variance == "ij" else np.nan

    return KMArrays(
        grid=grid,
        n_risk=n_risk,
        n_event=n_event,
        n_exit=n_exit,
        survival=surv,
        se=se,
        G=G,
        stop=stop,
        variance=variance,
        all_reported=entry_idx is None and (weights is None or float(w.min()) > 0),
        weight_scale=scale,
        weights=w,
        event=ev,
        exit_index=exit_idx,
        entry_index=entry_idx,
        counts=counts,
    )


def _time_grid(
    time: np.ndarray, entry: np.ndarray | None, w: np.ndarray, ev: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """``(grid, exit_idx, entry_idx, w, ev)``: distinct snapped times and each row's place.

    Without delayed entry, rows are taken in sorted order when a sort happened: the
    per-row arrays kept for the variance and the RMST (``w``, ``ev`` and the indices) then
    follow that order (sums do not care). With delayed entry they keep the input order.
    """
    if entry is None:
        grid, exit_idx, order = group_times(time, tol)
        if order is not None:
            w, ev = w[order], ev[order]
        return grid, exit_idx, None, w, ev
    n = time.size
    grid, idx = snap_unique(np.concatenate((time, entry)), tol)
    exit_idx, entry_idx = idx[:n], idx[n:]
    clash = entry_idx >= exit_idx
    if clash.any():
        raise DataError(
            f"{int(clash.sum())} of {n} rows have entry equal to exit once times closer "
            f"than {tol:.3g} (absolutely or relative to the mean time) are treated as "
            "tied (rule: entry < time after snapping, as R's aeqSurv)"
        )
    return grid, exit_idx, entry_idx, w, ev


def _weighted_counts(
    w: np.ndarray, ev: np.ndarray, exit_idx: np.ndarray, entry_idx: np.ndarray | None, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ``(Y_k, d_k, exits_k)`` per grid time: at risk, events, rows leaving."""
    n_event = np.bincount(exit_idx, weights=w * ev, minlength=m)
    n_exit = np.bincount(exit_idx, weights=w, minlength=m)
    n_risk = _revcumsum(n_exit)
    if entry_idx is not None:
        n_risk -= _revcumsum(np.bincount(entry_idx, weights=w, minlength=m))
        # Guard float residue of the subtraction: a risk set is never negative.
        np.maximum(n_risk, 0.0, out=n_risk)
    return n_risk, n_event, n_exit


def _stop_index(
    counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    has_event: np.ndarray,
    w: np.ndarray,
    ev: np.ndarray,
    exit_idx: np.ndarray,
    m: int,
) -> int:
    """First grid index at which S drops to exactly 0, or ``m``.

    That happens at ``t_k`` when every positive-weight row at risk has the event there
    (an exact count comparison, free of the rounding in weighted sums).
    """
    if counts is not None:
        c_risk, c_event, _ = counts
        dead_at = np.flatnonzero(has_event & (c_event >= c_risk))
        return int(dead_at[0]) if dead_at.size else m
    # Without delayed entry that can only happen at the last time a positive-weight
    # row leaves, when all such rows leaving then have the event.
    positive = w > 0
    last = int(exit_idx[positive].max()) if float(w.min()) <= 0 else m - 1
    leaving = (exit_idx == last) & positive
    return last if bool(np.all(ev[leaving] > 0)) else m


def _product_limit(
    n_risk: np.ndarray, n_event: np.ndarray, left: np.ndarray, has_event: np.ndarray, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(S, G)`` on the grid, both frozen once S = 0 (from ``stop`` on)."""
    m = n_risk.size
    if float(n_risk.min()) > 0 and bool(np.all(left[:stop] > 0)):
        # the usual case: every grid time has someone at risk, nobody empties the risk
        # set before S = 0, so plain divisions are safe
        hazard = n_event / n_risk
        with np.errstate(divide="ignore", invalid="ignore"):
            G = hazard / left  # inf only from ``stop`` on, zeroed below
    else:
        hazard = np.divide(n_event, n_risk, out=np.zeros(m), where=has_event)
        G = np.divide(hazard, left, out=np.zeros(m), where=has_event & (left > 0))
    # G_k = sum_{j <= k} d_j / (Y_j (Y_j - d_j)), frozen once S = 0
    G[stop:] = 0.0
    np.cumsum(G, out=G)
    np.subtract(1.0, hazard, out=hazard)
    np.clip(hazard, 0.0, 1.0, out=hazard)
    hazard[stop:] = 0.0
    return np.cumprod(hazard, out=hazard), G


def _count_rows(
    w: np.ndarray, ev: np.ndarray, exit_idx: np.ndarray, entry_idx: np.ndarray | None, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with positive weight at risk, having the event and leaving, per grid time."""
    pos = _positive(w)
    c_exit = np.bincount(exit_idx, weights=pos, minlength=m)
    c_risk = _revcumsum(c_exit)
    if entry_idx is not None:
        c_risk -= _revcumsum(np.bincount(entry_idx, weights=pos, minlength=m))
    pos *= ev
    c_event = np.bincount(exit_idx, weights=pos, minlength=m)
    return c_risk, c_event, c_exit


def unweighted_counts(fit: KMArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n_risk, n_event, n_exit)`` counting rows with positive weight, per grid time."""
    if fit.counts is not None:
        return fit.counts
    return _count_rows(fit.weights, fit.event, fit.exit_index, fit.entry_index, fit.grid.size)


def _positive(w: np.ndarray) -> np.ndarray:
    """1.0 for rows with positive weight, 0.0 otherwise."""
    return (w > 0).astype(np.float64)


def _row_constants(
    G: np.ndarray,
    left: np.ndarray,
    stop: int,
    ev: np.ndarray,
    exit_idx: np.ndarray,
    entry_idx: np.ndarray | None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """``G(a_i)`` (``None`` without delayed entry) and the post-exit constant ``c_i``.

    ``c_i = G(T_i) - G(a_i) - delta_i / (Y(T_i) - d(T_i))``. Rows that leave when the
    curve is already zero (grid index >= ``stop``) get ``c_i = 0``: their influence is
    multiplied by ``S = 0`` everywhere it matters.
    """
    live = left > 0
    live[stop:] = False
    jump = np.divide(1.0, left, out=np.zeros(left.size), where=live)
    c = G[exit_idx]
    c -= ev * jump[exit_idx]
    Ga = None
    if entry_idx is not None:
        Ga = G[entry_idx]
        c -= Ga
    if stop < G.size:
        c[exit_idx >= stop] = 0.0
    return Ga, c


def _ij_variance(
    surv: np.ndarray,
    G: np.ndarray,
    left: np.ndarray,
    stop: int,
    w: np.ndarray,
    ev: np.ndarray,
    exit_idx: np.ndarray,
    entry_idx: np.ndarray | None,
) -> np.ndarray:
    m = G.size
    Ga, c = _row_constants(G, left, stop, ev, exit_idx, entry_idx)
    w2 = w * w
    c *= c
    c *= w2
    var = np.cumsum(np.bincount(exit_idx, weights=c, minlength=m))  # rows that have left

    def risk_sum(x: np.ndarray) -> np.ndarray:
        """sum over rows with a_i < t_k < T_i of x_i, for every k."""
        out_exit = np.cumsum(np.bincount(exit_idx, weights=x, minlength=m))
        if entry_idx is None:
            return np.subtract(float(x.sum()), out_exit, out=out_exit)
        # entered strictly before t_k: entry index <= k - 1
        entered = np.cumsum(np.bincount(entry_idx, weights=x, minlength=m))
        entered = np.concatenate(([0.0], entered[:-1]))
        return entered - out_exit

    at_risk = risk_sum(w2)
    at_risk *= G
    at_risk *= G
    if Ga is not None:
        at_risk -= 2.0 * G * risk_sum(w2 * Ga)
        at_risk += risk_sum(w2 * Ga * Ga)
        np.maximum(at_risk, 0.0, out=at_risk)
    var += at_risk
    var *= surv
    var *= surv
    return var


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
        g = np.diff(fit.G, prepend=0.0)
        var = float(np.sum(tail**2 * g))
        return value, float(np.sqrt(var))
    G = fit.G
    Ga, c = _row_constants(
        G, fit.n_risk - fit.n_event, fit.stop, fit.event, fit.exit_index, fit.entry_index
    )
    P = np.cumsum(area_k)
    R = np.cumsum(area_k * G)
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
    within = R_e - R_a
    if Ga is not None:
        within -= Ga * (P_e - P_a)
    within += c * after
    infl = fit.weights * within
    return value, float(np.sqrt(np.sum(infl * infl)))
