"""Piecewise exponential (Poisson) survival model with time-varying coefficients.

Pure functions on numpy arrays. Interior cut points ``0 < c_1 < ... < c_{K-1}`` make K
intervals ``I_k = (c_{k-1}, c_k]`` (``c_0 = 0``, the last one open, ``c_K = inf``). The
hazard of a patient with design row ``x`` is constant within each interval:

``log h_k(x) = alpha_k + x' beta + s_k x' gamma``,  ``s_k = log m_k - center``,

with ``gamma`` only when ``time_varying``: the log hazard ratio of ``x`` is
``beta + gamma (log t - center)``, linear in log time (the time-varying coefficients of
Cox's 1972 paper, made piecewise constant). The representative time ``m_k`` of a finite
interval is its midpoint; that of the open last interval is the mean time at risk in it,
``c_{K-1} + sum_i w_i (T_i - c_{K-1})^2 / (2 sum_i w_i (T_i - c_{K-1})^+)``. ``center`` is
the exposure-weighted mean of ``log m_k`` (for conditioning; ``beta`` is then the log
hazard ratio at ``t = exp(center)``).

Patient ``i`` contributes exposure ``E_ik = |(0, T_i] ∩ I_k|`` and event
``d_ik = delta_i 1{T_i in I_k}`` to each interval; the likelihood of the survival data is,
up to a constant, the Poisson likelihood of the ``d_ik`` with means
``mu_ik = E_ik h_k(x_i)`` (Holford 1980; Laird & Olivier 1981; Friedman 1982), i.e. a
Poisson GLM with offset ``log E_ik`` on person-interval rows. The fit here never forms those
rows: with ``M_ik = w_i mu_ik`` (n x K) the score and the information are

* ``alpha_k``: ``d_k - sum_i M_ik``; ``beta``: ``X' (w delta - M 1)``; ``gamma``:
  ``X' (w delta s_{k(i)} - M s)``;
* information blocks ``diag(M' 1)``, ``M' X``, ``diag(s) M' X``, ``X' diag(M 1) X``,
  ``X' diag(M s) X``, ``X' diag(M s^2) X``,

so one Newton step costs O(n K + n p^2). The log-likelihood reported is that of the
Poisson GLM, ``sum_ik w_i (d_ik log mu_ik - mu_ik)`` (``log d! = 0``), as statsmodels and
R's ``glm`` report it.

Predicted survival is exact at any ``t``:
``S(t | x) = exp(-sum_k h_k(x) |(0, t] ∩ I_k|)``.

References: Holford TR (1980). The analysis of rates and of survivorship using log-linear
models. Biometrics 36:299-305. Laird N, Olivier D (1981). Covariance analysis of censored
survival data using log-linear analysis techniques. JASA 76:231-240. Friedman M (1982).
Piecewise exponential models for survival data with covariates. Ann Statist 10:101-113.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

__all__ = [
    "PWExpFit",
    "check_breaks",
    "default_breaks",
    "exposure_matrix",
    "fit_pwexp",
    "interval_index",
    "interval_totals",
    "pwexp_robust_cov",
    "representative_times",
]

#: Number of intervals of the default breaks.
N_INTERVALS = 10


def _edges(breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of the K intervals of these interior cut points."""
    lo = np.concatenate(([0.0], breaks))
    hi = np.concatenate((breaks, [np.inf]))
    return lo, hi


def check_breaks(breaks: np.ndarray) -> np.ndarray:
    """Interior cut points as a float64 array: 1-D, finite, positive, strictly increasing."""
    try:
        b = np.atleast_1d(np.asarray(breaks, dtype=np.float64))
    except (OverflowError, ValueError, TypeError):  # 10**400, text
        raise ValueError(f"breaks must be finite numbers; got {breaks!r:.60}") from None
    if b.ndim != 1:
        raise ValueError(f"breaks must be one-dimensional; got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"breaks must be finite interior cut points; got {b.tolist()}")
    if b.size and (b[0] <= 0.0 or np.any(np.diff(b) <= 0.0)):
        raise ValueError(f"breaks must be positive and strictly increasing; got {b.tolist()}")
    return b


def exposure_matrix(time: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """``E_ik = |(0, T_i] ∩ (c_{k-1}, c_k]|``: rows x intervals (times may be any ``t``)."""
    lo, hi = _edges(breaks)
    t = np.asarray(time, dtype=np.float64)
    return np.maximum(np.minimum(t[:, None], hi[None, :]) - lo[None, :], 0.0)


def interval_index(time: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    """Index k of the interval ``(c_{k-1}, c_k]`` holding each time (0 for ``t = 0``)."""
    return np.searchsorted(breaks, np.asarray(time, dtype=np.float64), side="left")


def interval_totals(
    time: np.ndarray, event: np.ndarray, breaks: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per interval: weighted events, weighted exposure, and rows with an event in it."""
    b = check_breaks(breaks)
    t = np.asarray(time, dtype=np.float64)
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
    ev = (np.asarray(event, dtype=np.float64) > 0) & (w > 0)
    k = interval_index(t[ev], b)
    K = b.size + 1
    events = np.bincount(k, weights=w[ev], minlength=K)
    rows = np.bincount(k, minlength=K)
    exposure = w @ exposure_matrix(t, b)
    return events, exposure, rows


def default_breaks(
    time: np.ndarray,
    event: np.ndarray,
    n_intervals: int = N_INTERVALS,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Interior cut points at the (weighted) quantiles ``j / K`` of the event times.

    Each cut is an event time (inverse of the weighted empirical distribution of the event
    times), duplicates are dropped, and cuts at or after the last event time are dropped,
    so every interval, the open last one included, holds at least one event: there may be
    fewer than ``n_intervals`` intervals with heavily tied times.
    """
    if int(n_intervals) != n_intervals or n_intervals < 1:
        raise ValueError(f"n_intervals must be a positive integer; got {n_intervals!r}")
    t = np.asarray(time, dtype=np.float64)
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
    ev = (np.asarray(event, dtype=np.float64) > 0) & (w > 0)
    if not ev.any():
        raise ValueError("default_breaks needs at least one event with positive weight")
    order = np.argsort(t[ev], kind="stable")
    te, we = t[ev][order], w[ev][order]
    cum = np.cumsum(we) / we.sum()
    probs = np.arange(1, int(n_intervals)) / int(n_intervals)
    idx = np.minimum(np.searchsorted(cum, probs * (1.0 - 1e-12), side="left"), te.size - 1)
    cuts = np.unique(te[idx])
    return cuts[(cuts > 0.0) & (cuts < te[-1])]


def representative_times(
    time: np.ndarray, breaks: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """``m_k`` (midpoints; the mean time at risk in the open last interval) and
    ``center``, the exposure-weighted mean of ``log m_k``."""
    b = check_breaks(breaks)
    t = np.asarray(time, dtype=np.float64)
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
    lo, hi = _edges(b)
    last = lo[-1]
    over = np.maximum(t - last, 0.0)
    total = float(w @ over)
    if total <= 0.0:
        raise ValueError(f"no exposure after the last cut point {last!r}")
    mid = np.concatenate(((lo[:-1] + hi[:-1]) / 2.0, [last + float(w @ over**2) / (2.0 * total)]))
    exposure = w @ exposure_matrix(t, b)
    center = float(exposure @ np.log(mid) / exposure.sum())
    return mid, center


@dataclass(frozen=True)
class PWExpFit:
    """Result of :func:`fit_pwexp`.

    ``coef`` is ``(alpha_1..alpha_K, beta, gamma)`` for the uncentred design (``gamma``
    empty unless ``time_varying``), ``cov`` the inverse information, ``loglik`` the Poisson
    GLM log-likelihood, ``breaks`` the interior cut points, ``mid`` the representative
    times ``m_k``, ``center`` the centring constant of ``log m_k``, and ``events`` /
    ``exposure`` the weighted totals per interval.
    """

    coef: np.ndarray
    cov: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    breaks: np.ndarray
    mid: np.ndarray
    center: float
    time_varying: bool
    events: np.ndarray
    exposure: np.ndarray

    @property
    def n_intervals(self) -> int:
        return int(self.breaks.size + 1)

    @property
    def edges(self) -> np.ndarray:
        """``0, c_1, ..., c_{K-1}, inf``."""
        return np.concatenate(([0.0], self.breaks, [np.inf]))

    @property
    def shift(self) -> np.ndarray:
        """``s_k = log m_k - center``."""
        return np.log(self.mid) - self.center

    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        K = self.n_intervals
        p = (self.coef.size - K) // (2 if self.time_varying else 1)
        alpha, beta = self.coef[:K], self.coef[K : K + p]
        gamma = self.coef[K + p :] if self.time_varying else np.zeros(p)
        return alpha, beta, gamma

    def log_hazard(self, X: np.ndarray) -> np.ndarray:
        """``log h_k(x)``: rows x intervals."""
        alpha, beta, gamma = self._split()
        X = np.asarray(X, dtype=np.float64)
        return alpha[None, :] + (X @ beta)[:, None] + np.outer(X @ gamma, self.shift)

    def cumulative_hazard(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """``H(t | x) = sum_k h_k(x) |(0, t] ∩ I_k|``: rows x times."""
        overlap = exposure_matrix(np.atleast_1d(np.asarray(times, np.float64)), self.breaks)
        return np.asarray(np.exp(self.log_hazard(X)) @ overlap.T, dtype=np.float64)

    def survival(self, X: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Predicted ``S(t | x) = exp(-H(t | x))``: rows x times."""
        return np.exp(-self.cumulative_hazard(X, times))


class _Problem:
    """The data of a fit on rows with positive weight, X centred: everything that does
    not depend on the coefficients."""

    def __init__(
        self,
        time: np.ndarray,
        event: np.ndarray,
        X: np.ndarray,
        w: np.ndarray,
        breaks: np.ndarray,
        s: np.ndarray,
        time_varying: bool,
    ) -> None:
        keep = w > 0
        self.w = w[keep]
        t = time[keep]
        ev = event[keep] > 0
        self.xbar = (self.w @ X[keep]) / self.w.sum()
        self.X = X[keep] - self.xbar
        self.E = exposure_matrix(t, breaks)
        K = breaks.size + 1
        k_ev = interval_index(t[ev], breaks)
        self.s = s
        self.K, self.p = K, X.shape[1]
        self.tv = time_varying
        wd = np.where(ev, self.w, 0.0)
        self.d = np.bincount(k_ev, weights=self.w[ev], minlength=K)
        self.wd = wd
        self.wds = np.zeros(t.size)
        self.wds[ev] = self.w[ev] * s[k_ev]
        # constant part of the log-likelihood: sum w d log E (events have E > 0)
        self.ll0 = float(np.sum(self.w[ev] * np.log(self.E[ev, k_ev])))
        # interval of each row's own time (used only where wd > 0)
        self.rows = np.arange(t.size)
        self.k_row = np.zeros(t.size, dtype=np.intp)
        self.k_row[ev] = k_ev

    @property
    def n_par(self) -> int:
        return self.K + self.p * (2 if self.tv else 1)

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        K, p = self.K, self.p
        g = theta[K + p :] if self.tv else np.zeros(p)
        return theta[:K], theta[K : K + p], g

    def eta(self, theta: np.ndarray) -> np.ndarray:
        a, b, g = self.split(theta)
        out = a[None, :] + (self.X @ b)[:, None]
        if self.tv:
            out += np.outer(self.X @ g, self.s)
        return out

    def loglik(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-likelihood and ``M = w mu`` (rows x intervals) at ``theta``."""
        eta = self.eta(theta)
        with np.errstate(over="ignore", invalid="ignore"):  # a wild trial step: ll not finite
            M = self.w[:, None] * self.E * np.exp(eta)
        ll = self.ll0 + float(self.wd @ eta[self.rows, self.k_row]) - float(M.sum())
        return ll, M

    def score_info(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        K, p, X, s = self.K, self.p, self.X, self.s
        m_row = M.sum(axis=1)
        col = M.sum(axis=0)
        MX = M.T @ X  # K x p
        P = self.n_par
        score = np.empty(P)
        info = np.empty((P, P))
        score[:K] = self.d - col
        score[K : K + p] = X.T @ (self.wd - m_row)
        info[:K, :K] = np.diag(col)
        info[:K, K : K + p] = MX
        info[K : K + p, K : K + p] = (X * m_row[:, None]).T @ X
        if self.tv:
            ms = M @ s
            score[K + p :] = X.T @ (self.wds - ms)
            info[:K, K + p :] = s[:, None] * MX
            info[K : K + p, K + p :] = (X * ms[:, None]).T @ X
            info[K + p :, K + p :] = (X * (M @ s**2)[:, None]).T @ X
        iu = np.triu_indices(P, 1)
        info[iu[1], iu[0]] = info[iu]
        return score, info

    def to_centred(self, coef: np.ndarray) -> np.ndarray:
        """Coefficients of the uncentred design -> those of the centred one."""
        theta = np.asarray(coef, dtype=np.float64).copy()
        _, b, g = self.split(theta)
        theta[: self.K] += self.xbar @ b + self.s * (self.xbar @ g)
        return theta

    def jacobian(self) -> np.ndarray:
        """``A`` with ``coef = A theta`` (centred -> uncentred)."""
        K, p = self.K, self.p
        A = np.eye(self.n_par)
        A[:K, K : K + p] = -self.xbar[None, :]
        if self.tv:
            A[:K, K + p :] = -np.outer(self.s, self.xbar)
        return A


def fit_pwexp(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray,
    breaks: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    time_varying: bool = True,
    start: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> PWExpFit:
    """Maximum-likelihood piecewise exponential model by Newton–Raphson (Poisson IRLS).

    ``X`` is the design without an intercept (the ``alpha_k`` play its part), ``breaks``
    the interior cut points (e.g. :func:`default_breaks`), ``weights`` non-negative case
    weights (rows of weight 0 are absent). ``start``, coefficients of a previous fit with
    the same breaks and columns (``PWExpFit.coef``), warm-starts the iterations, e.g. in
    bootstrap replicates; the default start is the covariate-free MLE
    ``alpha_k = log(events_k / exposure_k)``.

    Newton steps with step halving, on a centred design; converges when the largest step,
    relative to ``1 + |theta|``, is below ``tol`` (as :func:`fit_logistic`). Returns
    ``converged=False`` rather than raising when there is no finite MLE: an interval
    without (weighted) events or exposure (then every number is NaN and ``n_iter`` 0), or
    no convergence in ``max_iter`` steps (a NaN covariance if the information is singular).

    Raises
    ------
    ValueError
        Bad breaks; one interval with ``time_varying`` (``gamma`` is then not identified);
        an event at time 0; a ``start`` of the wrong size.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != t.size:
        raise ValueError(f"X must be rows x columns with {t.size} rows; got shape {X.shape}")
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
    b = check_breaks(breaks)
    if time_varying and b.size == 0:
        raise ValueError("time-varying coefficients need at least two intervals (one cut point)")
    if np.any((t <= 0) & (e > 0) & (w > 0)):
        raise ValueError("events at time 0 have no exposure (rule: event times > 0)")
    events, exposure, _ = interval_totals(t, e, b, w)
    P = b.size + 1 + X.shape[1] * (2 if time_varying else 1)
    if start is not None and np.size(start) != P:
        raise ValueError(f"start has {np.size(start)} values; the model has {P}")
    if np.any((events <= 0) | (exposure <= 0)):  # no finite MLE (e.g. a bootstrap sample)
        nan = np.full(P, np.nan)
        return PWExpFit(
            nan,
            np.full((P, P), np.nan),
            np.nan,
            0,
            False,
            b,
            np.full(b.size + 1, np.nan),
            np.nan,
            time_varying,
            events,
            exposure,
        )
    mid, center = representative_times(t, b, w)
    s = np.log(mid) - center
    pr = _Problem(t, e, X, w, b, s, time_varying)
    if start is None:
        theta = np.zeros(pr.n_par)
        theta[: pr.K] = np.log(events / exposure)
    else:
        theta = pr.to_centred(np.ravel(start))
    ll, M = pr.loglik(theta)
    if not np.isfinite(ll):  # a wild start: fall back to the default one
        theta = np.zeros(pr.n_par)
        theta[: pr.K] = np.log(events / exposure)
        ll, M = pr.loglik(theta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007
        score, info = pr.score_info(M)
        try:
            step = cho_solve(cho_factor(info), score)
        except np.linalg.LinAlgError:
            break
        factor = 1.0
        while True:
            new = theta + factor * step
            ll_new, M_new = pr.loglik(new)
            if (np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll)) or factor < 1e-8:
                break
            factor /= 2.0
        theta, ll, M = new, ll_new, M_new
        if np.max(np.abs(factor * step) / (1.0 + np.abs(theta))) < tol:
            converged = True
            break
    _, info = pr.score_info(M)
    A = pr.jacobian()
    try:
        cov = A @ np.linalg.inv(info) @ A.T
    except np.linalg.LinAlgError:
        cov = np.full((pr.n_par, pr.n_par), np.nan)
    coef = A @ theta
    return PWExpFit(coef, cov, ll, it, converged, b, mid, center, time_varying, events, exposure)


def pwexp_robust_cov(
    time: np.ndarray, event: np.ndarray, X: np.ndarray, weights: np.ndarray, fit: PWExpFit
) -> np.ndarray:
    """Robust (sandwich) covariance ``V (sum_i w_i^2 U_i U_i') V`` of a weighted fit, with
    ``V`` the inverse information and ``U_i`` patient ``i``'s score summed over its
    intervals (clustered by patient): ``U_i = sum_k (d_ik - mu_ik) z_ik``,
    ``z_ik = (e_k, x_i, s_k x_i)``. No ``n / (n - 1)`` factor (R's ``sandwich::vcovCL``
    with ``type = "HC0", cadjust = FALSE``; ``coxph``'s convention)."""
    t = np.asarray(time, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    ev = np.asarray(event, dtype=np.float64) > 0
    s = fit.shift
    mu = exposure_matrix(t, fit.breaks) * np.exp(fit.log_hazard(X))
    D = np.zeros_like(mu)
    k = interval_index(t[ev], fit.breaks)
    D[np.flatnonzero(ev), k] = 1.0
    R = D - mu
    parts = [R, X * R.sum(axis=1)[:, None]]
    if fit.time_varying:
        parts.append(X * (R @ s)[:, None])
    U = np.hstack(parts) * w[:, None]
    B = U @ fit.cov
    return np.asarray(B.T @ B, dtype=np.float64)
