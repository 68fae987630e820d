"""Known truth of the synthetic cohorts: exact population curves, medians and RMSTs.

The covariates are discrete (age in whole years), so every population quantity is a
finite sum over the 96,768 covariate patterns ``x`` with their exact probabilities
``P_c(x)`` (:func:`~transport.simulate.dgp.covariate_log_pmf`), of closed-form Weibull
survival functions, mixed over the unmeasured ``U``:

``S(t; X ~ c_x, mechanism c_m) = sum_x P_{c_x}(x) [(1 - pi_m) S(t | x, U=0; c_m) +
pi_m S(t | x, U=1; c_m)]``

* quantity ``"target"`` (pair source s, target t): ``c_x = c_m = t``, the target's own
  curve;
* quantity ``"transported"``: ``c_x = t``, ``c_m = s``: the target's patient mix under the
  source's outcome mechanism (its setting effect and its prevalence of ``U``), what a
  perfect transport method that adjusts for the measured covariates recovers.

Recorded times are whole days, ``D = ceil(T)``, so for integer ``t``
``P(D > t) = S(t)`` exactly, the median of ``D`` is ``ceil(median of T)`` and
``RMST_D(tau) = sum_{j=0}^{tau-1} S(j)``. The sum is computed exactly for ``j < 16`` and
by Euler–Maclaurin beyond (integral by 32-point Gauss–Legendre, end corrections with the
density); ``tests/test_simulate.py`` checks it against the plain sum of every day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import polars as pl

from transport.simulate.arguments import (
    check_countries,
    check_flags,
    check_grid,
    check_instances,
    check_strength,
)
from transport.simulate.dgp import (
    AGE_MAX,
    AGE_MIN,
    COUNTRIES,
    PROFILES,
    REGIMENS,
    CountryProfile,
    OutcomeModel,
    covariate_log_pmf,
    hazard_multipliers,
)

__all__ = ["GRID_DAYS", "TAUS_DAYS", "PopulationCurve", "covariate_patterns", "truth_table"]

#: Landmark times (days): 3, 6, 12, 18, 24, 36, 48 and 60 months, to the nearest day.
GRID_DAYS: tuple[int, ...] = (91, 183, 365, 548, 730, 1096, 1461, 1826)
#: RMST horizons (days): 24 and 60 months.
TAUS_DAYS: tuple[int, ...] = (730, 1826)
_HEAD = 16  # days summed exactly before Euler-Maclaurin takes over
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)


def covariate_patterns() -> dict[str, np.ndarray]:
    """Every covariate pattern, as integer codes (see ``sample_covariates``)."""
    axes = [
        np.arange(AGE_MIN, AGE_MAX + 1),
        [0, 1],
        [0, 1, 2],
        [0, 1],
        [0, 1],
        [0, 1],
        [0, 1, 2],
        [0, 1, 2],
        [0, 1, 2, 3],
    ]
    names = ["age", "female", "smoking", "squamous", "driver", "pdl1", "ecog", "stage", "regimen"]
    grids: tuple[np.ndarray, ...] = np.meshgrid(*axes, indexing="ij")
    return {k: g.reshape(-1).astype(np.int64) for k, g in zip(names, grids, strict=True)}


class PopulationCurve:
    """``P(T > t)`` in a population: a finite mixture of Weibull survival functions.

    Built from covariate-pattern probabilities and an outcome mechanism; evaluates the
    survival function, its density, the median and the RMST of the whole-day time.
    """

    def __init__(
        self,
        pattern_prob: np.ndarray,
        patterns: dict[str, np.ndarray],
        model: OutcomeModel,
        setting: float,
        u_prevalence: float,
        outcome: str,
    ) -> None:
        if min(model.shape.values()) < 1 or model.shape_prog < 1:
            raise ValueError("the truth needs Weibull shapes >= 1 (finite density at 0)")
        keep = pattern_prob > 0
        self.prob = pattern_prob[keep]
        pats = {k: v[keep] for k, v in patterns.items()}
        d0, d1, p0, p1 = hazard_multipliers(pats, model, setting)
        self.shapes = np.asarray([model.shape[r] for r in REGIMENS])
        self.regimen = pats["regimen"]
        self.lam = model.scale_os
        self.pi = u_prevalence
        self.death = (d0, d1)
        self.prog = (p0, p1) if outcome == "pfs" else None
        self.lam_p, self.k_p = model.scale_prog, model.shape_prog

    def _both(self, t: np.ndarray, density: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Population S and (if asked) density at the times ``t`` (a 1-D array)."""
        surv = np.empty(t.size)
        dens = np.full(t.size, np.nan)
        ks = self.shapes[:, None]
        for lo in range(0, t.size, 16):  # patterns x 16 times at a time
            tt = t[lo : lo + 16][None, :]
            # (t / lam) ** k for the four regimen shapes only, then one row per pattern
            a = ((tt / self.lam) ** ks)[self.regimen]
            if density:
                da = ((ks / self.lam) * (tt / self.lam) ** (ks - 1.0))[self.regimen]
            s_sum = np.zeros(tt.size)
            f_sum = np.zeros(tt.size)
            for u, share in ((0, 1.0 - self.pi), (1, self.pi)):
                H = a * self.death[u][:, None]
                if self.prog is not None:
                    H += (tt / self.lam_p) ** self.k_p * self.prog[u][:, None]
                s = np.exp(-H)
                s_sum += share * (self.prob @ s)
                if density:
                    h = da * self.death[u][:, None]
                    if self.prog is not None:
                        db = (self.k_p / self.lam_p) * (tt / self.lam_p) ** (self.k_p - 1.0)
                        h += db * self.prog[u][:, None]
                    f_sum += share * (self.prob @ (h * s))
            surv[lo : lo + 16] = s_sum
            dens[lo : lo + 16] = f_sum
        return surv, dens

    def survival(self, t: float | np.ndarray) -> np.ndarray:
        """``P(T > t)`` at each time (days)."""
        return self._both(np.atleast_1d(np.asarray(t, dtype=np.float64)), density=False)[0]

    def density(self, t: float | np.ndarray) -> np.ndarray:
        """Density of ``T`` at each time (days)."""
        return self._both(np.atleast_1d(np.asarray(t, dtype=np.float64)))[1]

    def median_days(self) -> float:
        """Median of the whole-day time ``ceil(T)``: ``ceil`` of the median of ``T``.

        The median of ``T`` is bracketed on a grid and refined by Newton steps (the
        density is known) to 1e-9 day.
        """
        hi = 365.0
        while self.survival(hi)[0] > 0.5:
            hi *= 2
        grid = np.linspace(0.0, hi, 17)
        s = self.survival(grid)
        k = int(np.argmax(s <= 0.5))
        lo, up = float(grid[k - 1]), float(grid[k])
        t = 0.5 * (lo + up)
        for _ in range(60):
            s_t, f_t = self._both(np.array([t]))
            step = (float(s_t[0]) - 0.5) / float(f_t[0])
            t_new = min(max(t + step, lo), up)
            if abs(t_new - t) < 1e-9:
                t = t_new
                break
            t = t_new
        else:  # pragma: no cover - Newton on a smooth monotone function converges
            raise RuntimeError("median search did not converge")
        return float(np.ceil(t))

    def rmst_days(self, tau: int) -> float:
        """``E[min(ceil(T), tau)] = sum_{j=0}^{tau-1} S(j)`` for a whole number of days."""
        if float(tau) != int(tau) or tau <= 0:
            raise ValueError(f"tau must be a positive whole number of days; got {tau!r}")
        tau = int(tau)
        head = min(tau, _HEAD)
        total = float(self.survival(np.arange(head, dtype=np.float64)).sum())
        if tau <= _HEAD:
            return total
        a, b = float(_HEAD), float(tau)
        x = 0.5 * (b - a) * _NODES + 0.5 * (b + a)
        integral = 0.5 * (b - a) * float(_WEIGHTS @ self.survival(x))
        s_ab, f_ab = self._both(np.array([a, b]))
        # sum_{j=a}^{b-1} f(j) = int_a^b f + (f(a) - f(b)) / 2 + (f'(b) - f'(a)) / 12 - ...
        # with f' = -density
        return total + integral + (s_ab[0] - s_ab[1]) / 2.0 + (f_ab[0] - f_ab[1]) / 12.0


def _population(
    target: CountryProfile,
    mechanism: CountryProfile,
    model: OutcomeModel,
    outcome: str,
    patterns: dict[str, np.ndarray],
    setting_effect: bool,
) -> PopulationCurve:
    prob = np.exp(covariate_log_pmf(target, patterns))
    if abs(prob.sum() - 1.0) > 1e-9:
        raise RuntimeError(f"covariate pattern probabilities sum to {prob.sum()!r}, not 1")
    setting = mechanism.setting_loghr if setting_effect else 0.0
    return PopulationCurve(prob, patterns, model, setting, mechanism.u_prevalence, outcome)


def truth_table(
    *,
    countries: tuple[str, ...] = COUNTRIES,
    profiles: dict[str, CountryProfile] | None = None,
    outcome_model: OutcomeModel | None = None,
    setting_effect: bool = True,
    unmeasured_strength: float | None = None,
    grid_days: tuple[int, ...] = GRID_DAYS,
    taus_days: tuple[int, ...] = TAUS_DAYS,
) -> pl.DataFrame:
    """True S(t), median and RMST for every ordered pair of countries and both outcomes.

    Columns ``source``, ``target``, ``outcome`` (``"os"``, ``"pfs"``), ``quantity``
    (``"transported"``, ``"target"``), ``estimand`` (``"survival"``, ``"median"``,
    ``"rmst"``), ``time`` (t for survival, tau for RMST, null for the median),
    ``time_unit`` (``"days"``) and ``value`` (days for median and RMST). Pairs with
    ``source == target`` are included (both quantities then coincide).
    """
    where = "truth_table"
    profiles = PROFILES if profiles is None else profiles
    if not isinstance(profiles, Mapping) or not all(
        isinstance(x, CountryProfile) for x in profiles.values()
    ):
        raise TypeError(f"The 'profiles' parameter of {where} must map names to CountryProfiles.")
    countries = check_countries(countries, list(profiles), where)
    check_instances(where, outcome_model=(outcome_model, OutcomeModel))
    check_flags(where, setting_effect=setting_effect)
    grid_days = check_grid(grid_days, "grid_days", where)
    taus_days = check_grid(taus_days, "taus_days", where)
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if unmeasured_strength is not None:
        model = replace(model, u_immuno=check_strength(unmeasured_strength, where))
    patterns = covariate_patterns()
    rows: list[tuple] = []
    cache: dict[tuple[str, str, str], dict[tuple[str, int | None], float]] = {}
    for outcome in ("os", "pfs"):
        for tgt in countries:
            for mech in countries:
                pop = _population(
                    profiles[tgt], profiles[mech], model, outcome, patterns, setting_effect
                )
                vals: dict[tuple[str, int | None], float] = {}
                for t, s_t in zip(
                    grid_days, pop.survival(np.asarray(grid_days, float)), strict=True
                ):
                    vals[("survival", t)] = float(s_t)
                vals[("median", None)] = pop.median_days()
                for tau in taus_days:
                    vals[("rmst", tau)] = pop.rmst_days(tau)
                cache[(outcome, tgt, mech)] = vals
        for src in countries:
            for tgt in countries:
                for quantity, mech in (("transported", src), ("target", tgt)):
                    for (estimand, time), value in cache[(outcome, tgt, mech)].items():
                        rows.append((src, tgt, outcome, quantity, estimand, time, value))
    return (
        pl.DataFrame(
            rows,
            schema={
                "source": pl.String,
                "target": pl.String,
                "outcome": pl.String,
                "quantity": pl.String,
                "estimand": pl.String,
                "time": pl.Float64,
                "value": pl.Float64,
            },
            orient="row",
        )
        .with_columns(pl.lit("days").alias("time_unit"))
        .select("source", "target", "outcome", "quantity", "estimand", "time", "time_unit", "value")
    )
