"""The g-formula's average of model survival curves over a cohort, at any time: each
patient's cumulative hazard linear between knots (constant hazard within a step), so
that S(t), the median (a root of a continuous decreasing function) and RMST (closed
form per step) are defined everywhere up to the last knot; and the cumulative hazards of
a shipped Cox or piecewise exponential model at those knots."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from transport.survival._pwexp import exposure_matrix

__all__ = ["AveragedCurve", "cox_hazards", "pwexp_hazards"]


def cox_hazards(X: np.ndarray, coef: np.ndarray, center: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """``H(g_k | x_i) = H0(g_k) exp((x_i - center)' beta)``: rows x grid times, the
    arithmetic of :meth:`CoxFit.survival`."""
    risk = np.exp((X - center) @ coef)
    return np.asarray(np.outer(risk, h0), dtype=np.float64)


def pwexp_hazards(
    X: np.ndarray,
    coef: np.ndarray,
    shift: np.ndarray,
    breaks: np.ndarray,
    time_varying: bool,
    knots: np.ndarray,
) -> np.ndarray:
    """``H(t | x_i) = sum_k h_k(x_i) |(0, t] ∩ I_k|`` at the knots: rows x knots."""
    K = breaks.size + 1
    p = X.shape[1]
    alpha, beta = coef[:K], coef[K : K + p]
    gamma = coef[K + p :] if time_varying else np.zeros(p)
    log_h = alpha[None, :] + (X @ beta)[:, None] + np.outer(X @ gamma, shift)
    return np.asarray(np.exp(log_h) @ exposure_matrix(knots, breaks).T, dtype=np.float64)


def _phi(x: np.ndarray) -> np.ndarray:
    """``(1 - exp(-x)) / x`` (1 at 0), for the integral of ``exp(-x t)`` over a step."""
    safe = np.where(x > 1e-10, x, 1.0)
    return np.where(x > 1e-10, -np.expm1(-safe) / safe, 1.0 - x / 2.0)


class AveragedCurve:
    """The average over patients (weights ``w``) of ``exp(-H_i(t))`` with every ``H_i``
    linear between the knots: S at any time up to the last knot, the median (a root of
    a continuous decreasing function) and RMST (closed form per step)."""

    def __init__(self, knots: np.ndarray, H: np.ndarray, w: np.ndarray | None = None) -> None:
        self.t0 = np.concatenate(([0.0], knots))
        self.H = np.column_stack((np.zeros(H.shape[0]), H))
        self.w = np.ones(H.shape[0]) if w is None else w
        self.wsum = float(self.w.sum())
        with np.errstate(invalid="ignore"):
            self.slope = np.diff(self.H, axis=1) / np.diff(self.t0)[None, :]

    def at_knots(self) -> np.ndarray:
        """S at every knot (without the 0 in front)."""
        return np.asarray((self.w @ np.exp(-self.H[:, 1:])) / self.wsum, dtype=np.float64)

    def hazard_at(self, times: np.ndarray) -> np.ndarray:
        """``H_i(t)``: rows x times (exactly the knot values at the knots)."""
        last = self.t0.size - 1
        k = np.minimum(np.searchsorted(self.t0, times, side="right") - 1, last)
        inner = np.minimum(k, last - 1)
        H = self.H[:, k] + (times - self.t0[k])[None, :] * self.slope[:, inner]
        return np.asarray(np.where((k == last)[None, :], self.H[:, k], H), dtype=np.float64)

    def survival(self, times: np.ndarray) -> np.ndarray:
        """The average ``S(t)`` at ``times``."""
        return np.asarray((self.w @ np.exp(-self.hazard_at(times))) / self.wsum, np.float64)

    def rmst(self, tau: float) -> float:
        total = 0.0
        for k in range(self.t0.size - 1):
            lo = self.t0[k]
            if lo >= tau:
                break
            dt = min(self.t0[k + 1], tau) - lo
            part = np.exp(-self.H[:, k]) * dt * _phi(self.slope[:, k] * dt)
            total += float(self.w @ part) / self.wsum
        return total

    def rmst_rows(self, tau: float) -> np.ndarray:
        """Each patient's RMST(tau) (the rows whose weighted average :meth:`rmst` is)."""
        total = np.zeros(self.H.shape[0])
        for k in range(self.t0.size - 1):
            lo = self.t0[k]
            if lo >= tau:
                break
            dt = min(self.t0[k + 1], tau) - lo
            total += np.exp(-self.H[:, k]) * dt * _phi(self.slope[:, k] * dt)
        return total

    def median(self) -> float:
        s = np.concatenate(([1.0], self.at_knots()))
        below = np.flatnonzero(s <= 0.5)
        if below.size == 0:
            return math.nan
        k = int(below[0])
        a, b = float(self.t0[k - 1]), float(self.t0[k])
        if s[k] == 0.5:
            return b
        return float(
            brentq(
                lambda t: self.survival(np.array([t]))[0] - 0.5, a, b, xtol=1e-10 * b, rtol=1e-14
            )
        )

    def read(self, times: np.ndarray, tau: float | None) -> np.ndarray:
        """S at ``times``, the median and (with ``tau``) RMST(tau), in the order of
        :func:`~transport.survival._fixed_grid.read_curve`."""
        extra = [self.median()] + ([self.rmst(tau)] if tau is not None else [])
        return np.concatenate((self.survival(times), extra))
