"""``ModelCurve``: a survival curve estimated from models (g-formula, doubly robust).

Unlike a Kaplan–Meier :class:`~transport.SurvivalCurve`, a model-based population curve
has no risk sets and no closed-form pointwise standard error here: its intervals come
from the bootstrap (:func:`transport.transport` with ``n_boot > 0``). It is a
right-continuous step function on a grid of times, with the same reading rules as the
Kaplan–Meier curve, so that S(t), quantiles and the RMST mean the same thing for every
method.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from transport._validate import check_axes, check_tau, check_times, is_finite_number, real
from transport.estimate import Estimate
from transport.exceptions import ExtrapolationWarning
from transport.survival._confint import find_quantile
from transport.survival._fixed_grid import step_rmst

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["ModelCurve", "step_rmst"]


class ModelCurve:
    """A population survival curve from outcome models: a step function on a grid.

    Attributes
    ----------
    time, survival
        The grid (increasing) and S(t) there; S = 1 before the first time and the last
        value is carried forward after the last.
    method
        How the curve was estimated (``"gformula"``, ``"aipw"``).
    name, time_unit
        Label and unit.
    note
        How the curve was built (model, corrections applied).
    """

    def __init__(
        self,
        time: np.ndarray,
        survival: np.ndarray,
        *,
        method: str,
        name: str,
        time_unit: str,
        note: str = "",
    ) -> None:
        t = np.ascontiguousarray(time, dtype=np.float64)
        s = np.ascontiguousarray(survival, dtype=np.float64)
        if t.ndim != 1 or s.shape != t.shape or t.size == 0:
            raise ValueError("time and survival must be one-dimensional and of equal length")
        if np.any(np.diff(t) <= 0):
            raise ValueError("time must be strictly increasing")
        t.setflags(write=False)
        s.setflags(write=False)
        self.time = t
        self.survival = s
        self.method = method
        self.name = name
        self.time_unit = time_unit
        self.note = note
        self.weighted = False
        self.variance = "none (bootstrap intervals only)"

    def survival_at(self, times: Any) -> np.ndarray:
        """S(t) at each time in ``times`` (1 before the first grid time)."""
        t = check_times(times, "ModelCurve.survival_at")
        k = np.searchsorted(self.time, t, side="right") - 1
        return np.asarray(np.where(k >= 0, self.survival[np.maximum(k, 0)], 1.0))

    def se_at(self, times: Any) -> np.ndarray:
        """No closed-form standard error: ``nan`` at every time (use the bootstrap)."""
        return np.full(check_times(times, "ModelCurve.se_at").shape, np.nan)

    def at(self, times: Any) -> pl.DataFrame:
        """S(t) at ``times``: columns ``time``, ``survival``, ``se``, ``ci_lower``,
        ``ci_upper`` (the last three null: intervals come from the bootstrap)."""
        t = check_times(times, "ModelCurve.at")
        nan = np.full(t.shape, np.nan)
        return pl.DataFrame(
            {
                "time": t,
                "survival": self.survival_at(t),
                "se": nan,
                "ci_lower": nan,
                "ci_upper": nan,
            }
        ).fill_nan(None)

    def quantile(self, p: float) -> Estimate:
        """First time with S(t) <= 1 - p (the Kaplan–Meier reading rule); no interval."""
        if not (is_finite_number(p) and 0 < real(p) < 1):
            raise ValueError(
                f"The 'p' parameter of ModelCurve.quantile must be in (0, 1). Got {p!r:.40}."
            )
        value = find_quantile(self.time, self.survival, float(p))
        note = "interval from the bootstrap only"
        if math.isnan(value):
            note = f"not reached: S(t) stays above {1 - p:g}; " + note
        nan = float("nan")
        return Estimate(value, nan, nan, nan, note=note, ci_method="none")

    def median(self) -> Estimate:
        """Median survival time: :meth:`quantile` at 0.5."""
        return self.quantile(0.5)

    def rmst(self, tau: float) -> Estimate:
        """``RMST(tau) = int_0^tau S(t) dt`` under the step curve; no interval.

        Warns :class:`ExtrapolationWarning` when ``tau`` is past the last grid time."""
        checked = check_tau(tau, "ModelCurve.rmst")
        if checked is None:
            raise ValueError("The 'tau' parameter of ModelCurve.rmst must be a number. Got None.")
        tau = checked
        note = "interval from the bootstrap only"
        if tau > self.time[-1] and self.survival[-1] > 0:
            note = "tau beyond the last time; last value carried forward; " + note
            warnings.warn(
                f"RMST at tau = {tau:g} {self.time_unit} reaches past the last time "
                f"{float(self.time[-1]):g} of curve {self.name!r}; the curve is carried "
                "forward. Choose tau within follow-up.",
                ExtrapolationWarning,
                stacklevel=2,
            )
        nan = float("nan")
        return Estimate(
            step_rmst(self.time, self.survival, tau), nan, nan, nan, note=note, ci_method="none"
        )

    def to_frame(self) -> pl.DataFrame:
        """The curve: ``time`` and ``survival``."""
        return pl.DataFrame({"time": self.time, "survival": self.survival})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description of the curve."""
        return {
            "name": self.name,
            "method": self.method,
            "time_unit": self.time_unit,
            "note": self.note,
            "table": {"time": self.time.tolist(), "survival": self.survival.tolist()},
        }

    def plot(
        self,
        ax: Axes | None = None,
        *,
        risk_times: Sequence[float] | None = None,
        ci: bool = False,
        label: str | None = None,
        color: str | None = None,
        risk_table: bool = False,
    ) -> Axes:
        """Step curve (no band, no risk table: a model curve has neither)."""
        import matplotlib.pyplot as plt

        check_axes(ax)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        ax.step(
            np.concatenate(([0.0], self.time)),
            np.concatenate(([1.0], self.survival)),
            where="post",
            label=label or self.name,
            color=color,
        )
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"time ({self.time_unit})")
        ax.set_ylabel("survival")
        return ax

    def __repr__(self) -> str:
        med = self.median().value
        med_txt = "not reached" if math.isnan(med) else f"{med:.4g}"
        return (
            f"ModelCurve({self.name!r}, {self.method}: {self.time.size} times, median "
            f"{med_txt} {self.time_unit})"
        )
