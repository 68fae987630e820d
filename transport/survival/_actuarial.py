"""The weighted actuarial (life-table) estimate on fixed intervals, with its
infinitesimal-jackknife variance: how a reweighted curve is released on a grid.

On intervals ``(e_{l-1}, e_l]`` (``e_0 = 0``), with each row's weight ``w_i``, exit time
``T_i`` and event indicator ``delta_i``: ``Y_l`` the weight still at risk after
``e_{l-1}``, ``d_l`` and ``c_l`` the weight of the events and censorings in the interval,
``Y'_l = Y_l - c_l / 2`` (a censored row is at risk for half its interval on average) and
``h_l = d_l / Y'_l``. The estimate is ``S(e_j) = prod_{l <= j} (1 - h_l)`` (Cutler &
Ederer 1958); with unit weights it is the classical life table.

Its variance is the robust (infinitesimal-jackknife) one that DESIGN §4 uses for the
weighted Kaplan–Meier estimate: ``U_i(j) = w_i dS(e_j)/dw_i`` and ``Var S(e_j) = sum_i
U_i(j)^2``, invariant to the scale of the weights. With ``k_i`` the interval a row exits
in,

``d log S(e_j) / dw_i = sum_{l <= min(j, k_i)} h_l / (Y'_l (1 - h_l))
- 1{k_i <= j} [delta_i / Y'_k + (1 - delta_i) h_k / (2 Y'_k)] / (1 - h_k)``.

Rows sharing ``(k_i, delta_i)`` share that derivative, so the variance is a sum over
``2 (J + 1)`` groups of their summed squared weights: O(n) after one ``searchsorted``.

R's ``survival::survfit`` gives the same numbers (``robust = TRUE``, clustered on the
patient) on a construction of the data in which every event moves to the end of its
interval and every censored row splits into two halves of half its weight, one leaving
at the start of its interval and one at its end (``tests/r/actuarial_reference.R``).

Reference: Cutler SJ, Ederer F (1958). Maximum utilization of the life table method in
analyzing survival. Journal of Chronic Diseases 8:699-712.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_actuarial"]


def weighted_actuarial(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``S`` and its infinitesimal-jackknife SE at each of ``edges`` (increasing, > 0).

    Rows exiting after the last edge are at risk throughout. ``se`` is ``nan`` where
    ``S`` is 0.
    """
    t = np.asarray(time, dtype=np.float64)
    ev = np.asarray(event, dtype=np.float64) > 0
    w = np.asarray(weights, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    m = e.size
    if m == 0:
        return np.empty(0), np.empty(0)
    k = np.searchsorted(e, t, side="left")  # interval (e[k-1], e[k]]; m = beyond the last
    w2 = w * w
    dw = np.bincount(k[ev], weights=w[ev], minlength=m + 1)[:m]
    cw = np.bincount(k[~ev], weights=w[~ev], minlength=m + 1)[:m]
    exits = np.bincount(k, weights=w, minlength=m + 1)
    at_risk = np.cumsum(exits[::-1])[::-1][:m]  # weight with k_i >= l
    y_eff = at_risk - cw / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(dw > 0, dw / y_eff, 0.0)
        surv = np.cumprod(1.0 - h)
        a = np.where(dw > 0, h / (y_eff * (1.0 - h)), 0.0)  # the at-risk term of step l
        b_event = 1.0 / (y_eff * (1.0 - h))
        b_censor = np.where(dw > 0, h / (2.0 * y_eff * (1.0 - h)), 0.0)
    cum_a = np.cumsum(a)
    # groups: exit interval k (0..m) x event; derivative of log S(e_j) for j = 0..m-1
    ks = np.arange(m + 1)
    j = np.arange(m)
    reach = np.minimum(ks[:, None], j[None, :])  # last step both at risk and reported
    base = cum_a[reach]  # sum_{l <= min(j, k)} a_l
    exited = ks[:, None] <= j[None, :]
    kk = np.minimum(ks, m - 1)
    g_event = base - np.where(exited, b_event[kk][:, None], 0.0)
    g_censor = base - np.where(exited, b_censor[kk][:, None], 0.0)
    w2_event = np.bincount(k[ev], weights=w2[ev], minlength=m + 1)
    w2_censor = np.bincount(k[~ev], weights=w2[~ev], minlength=m + 1)
    with np.errstate(invalid="ignore"):
        var_log = w2_event @ np.where(w2_event[:, None] > 0, g_event, 0.0) ** 2
        var_log = var_log + w2_censor @ np.where(w2_censor[:, None] > 0, g_censor, 0.0) ** 2
    se = np.where(surv > 0, surv * np.sqrt(var_log), np.nan)
    return surv, se
