"""Built-in scenarios of the methods-validation studies (:class:`~transport.simulate.Study`).

Every scenario draws a source and a target cohort from one small data-generating process
whose truth is known to quadrature precision, and states the formulas the methods use,
so that "correct" and "misspecified" mean exactly what they say.

The process (times in months)
-----------------------------
In a population ``P`` (source or target): ``X1 ~ Normal(x1_mean, x1_sd)``,
``X2 ~ Bernoulli(p_x2)`` and an unmeasured ``U ~ Bernoulli(p_u)``, independent. The
event time is exponential with the same rate in every population (one outcome
mechanism)::

    rate(x1, x2, u) = base_rate * exp(b_x1 x1 + b_x2 x2 + b_x1sq x1^2 + u_x2 u x2)

Censoring: ``min(Uniform(admin_min, admin_max), Exponential(loss_rate exp(loss_x1 x1)))``.

Because the two populations' ``X1`` are normals with different means and SDs and ``X2``
is Bernoulli, the true participation model is logistic in ``x1 + x2 + x1^2`` exactly
(the log density ratio is quadratic in ``x1``), and entropy balancing of the means of
``x1``, ``x2``, ``x1^2`` is its exact dual. With ``u_x2 = 0`` the Cox model with
``x1 + x2 + I(x1**2)`` is the true outcome model. Dropping ``I(x1**2)`` misspecifies a
model. (The idea of tests/test_double_robust.py, with fixed cohort sizes.)

The truth
---------
The estimand is the target population's survival under the common outcome mechanism,
``S_T(t) = E_T[exp(-rate(X, U) t)]``, its median and ``RMST(tau) = E_T[(1 - exp(-rate
tau)) / rate]``: exact finite sums over ``X2`` and ``U`` of integrals over ``X1`` by
composite Gauss–Legendre quadrature (48 panels of 20 points over 12 SDs either side of
the mean). Its error is below 1e-13: it agrees with twice the panels and with adaptive
quadrature (``scipy.integrate.quad``) to that, checked in ``tests/test_study.py`` with
a two-million patient Monte Carlo; the median is found by Brent's method to 1e-12 months.
(Gauss–Hermite, smooth as the integrands are, converges slowly on their double
exponential: 200 points are off by 1e-9.) Where the
unmeasured ``U`` is spread differently (``unmeasured_modifier``) no method that adjusts
for ``X1, X2`` only can recover it: that is the point of that scenario.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy.optimize import brentq

from transport._validate import is_finite_number
from transport.cohort import TIME_UNITS, Cohort

__all__ = ["Population", "Scenario", "scenario", "scenarios"]

#: Participation (and balancing) / outcome design of a correctly specified model.
CORRECT = "x1 + x2 + I(x1**2)"
#: The same without the quadratic term: misspecified.
MISSPECIFIED = "x1 + x2"


@dataclass(frozen=True)
class Population:
    """Covariate distribution and size of one cohort: ``X1 ~ Normal(x1_mean, x1_sd)``,
    ``X2 ~ Bernoulli(p_x2)``, unmeasured ``U ~ Bernoulli(p_u)``; ``n`` patients."""

    n: int
    x1_mean: float = 0.0
    x1_sd: float = 1.0
    p_x2: float = 0.5
    p_u: float = 0.2


@dataclass(frozen=True)
class Scenario:
    """One scenario: how to draw a source and a target cohort, which formulas the methods
    use, and the known truth (:meth:`truth`). See the module docstring for the process.

    ``formula`` is the participation / balancing design of ``iow``, ``entropy`` and
    ``aipw``; ``outcome_formula`` the Cox outcome design of ``gformula`` and ``aipw``;
    ``censoring`` the censoring model of ``aipw`` (``"km"`` or ``"cox"``).
    """

    name: str
    description: str
    source: Population = Population(1000, x1_mean=0.5, x1_sd=1.5, p_x2=0.35)
    target: Population = Population(500)
    base_rate: float = 0.05
    b_x1: float = 0.5
    b_x2: float = -0.5
    b_x1sq: float = 0.5
    u_x2: float = 0.0
    admin_min: float = 6.0
    admin_max: float = 36.0
    loss_rate: float = 0.0
    loss_x1: float = 0.0
    formula: str = CORRECT
    outcome_formula: str = CORRECT
    censoring: Literal["km", "cox"] = "km"

    def _rate(self, x1: np.ndarray, x2: np.ndarray | float, u: np.ndarray | float) -> np.ndarray:
        lp = self.b_x1 * x1 + self.b_x2 * x2 + self.b_x1sq * x1**2 + self.u_x2 * u * x2
        return np.asarray(self.base_rate * np.exp(lp))

    def draw(self, population: Population, rng: np.random.Generator, name: str) -> Cohort:
        """One cohort from ``population`` (times in months)."""
        p, n = population, population.n
        x1 = rng.normal(p.x1_mean, p.x1_sd, n)
        x2 = (rng.uniform(size=n) < p.p_x2).astype(np.float64)
        u = (rng.uniform(size=n) < p.p_u).astype(np.float64)
        t = rng.exponential(1.0 / self._rate(x1, x2, u))
        c = rng.uniform(self.admin_min, self.admin_max, n)
        if self.loss_rate > 0:
            c = np.minimum(c, rng.exponential(1.0 / (self.loss_rate * np.exp(self.loss_x1 * x1))))
        frame = pl.DataFrame(
            {"time": np.minimum(t, c), "event": (t <= c).astype(np.int64), "x1": x1, "x2": x2}
        )
        return Cohort(
            frame,
            time="time",
            event="event",
            covariates=["x1", "x2"],
            name=name,
            time_unit="months",
            covariate_types={"x2": "continuous"},
        )

    def simulate(self, rng: np.random.Generator) -> tuple[Cohort, Cohort]:
        """A source and a target cohort, drawn in that order from ``rng``."""
        return self.draw(self.source, rng, "source"), self.draw(self.target, rng, "target")

    def truth(
        self, times: tuple[float, ...], tau: float | None, time_unit: str = "months"
    ) -> dict[tuple[str, float | None], float]:
        """True S(t) at ``times``, median and RMST(``tau``) of the target population, in
        ``time_unit``: ``{(estimand, time): value}`` with time ``None`` for the median.
        Computed once per scenario and set of times (cached)."""
        return dict(_truth(self, tuple(float(t) for t in times), tau, time_unit))

    def survival(self, t: float, nodes: int = 48) -> float:
        """``S_T(t)`` with ``t`` in months (``nodes``: quadrature panels, of 20 points)."""
        return float(self._expect(lambda r: np.exp(-r * t), nodes))

    def rmst(self, tau: float, nodes: int = 48) -> float:
        """``RMST_T(tau)`` with ``tau`` in months."""
        return float(self._expect(lambda r: -np.expm1(-r * tau) / r, nodes))

    def median(self) -> float:
        """Median of the target population's event time, in months."""
        hi = 12.0
        while self.survival(hi) > 0.5:
            hi *= 2.0
        return float(brentq(lambda m: self.survival(m) - 0.5, 0.0, hi, xtol=1e-12, rtol=1e-15))

    def _expect(self, fn: Callable[[np.ndarray], np.ndarray], nodes: int) -> float:
        z, w = _rule(nodes)
        p = self.target
        x1 = p.x1_mean + p.x1_sd * z
        total = 0.0
        for x2, p2 in ((0.0, 1.0 - p.p_x2), (1.0, p.p_x2)):
            for u, pu in ((0.0, 1.0 - p.p_u), (1.0, p.p_u)):
                if p2 * pu > 0:
                    total += p2 * pu * float(w @ fn(self._rate(x1, x2, u)))
        return total


@functools.lru_cache(maxsize=8)
def _rule(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal expectation by composite 20-point Gauss–Legendre on ``panels``
    equal panels of [-12, 12] (the mass outside is 4e-33): nodes and weights."""
    g, gw = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(-12.0, 12.0, panels + 1)
    half = np.diff(edges) / 2.0
    mid = (edges[:-1] + edges[1:]) / 2.0
    z = (mid[:, None] + half[:, None] * g[None, :]).ravel()
    w = (half[:, None] * gw[None, :]).ravel() * np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)
    return z, w


@functools.lru_cache(maxsize=64)
def _truth(
    sc: Scenario, times: tuple[float, ...], tau: float | None, time_unit: str
) -> tuple[tuple[tuple[str, float | None], float], ...]:
    factor = TIME_UNITS[time_unit] / TIME_UNITS["months"]  # study unit -> months
    out: list[tuple[tuple[str, float | None], float]] = [
        (("survival", t), sc.survival(t * factor)) for t in times
    ]
    out.append((("median", None), sc.median() / factor))
    if tau is not None:
        out.append((("rmst", float(tau)), sc.rmst(tau * factor) / factor))
    return tuple(out)


def _correct(**_: Any) -> Scenario:
    return Scenario(
        "correct",
        "Every model correctly specified, good overlap (source X1 wider than the target's): "
        "iow, entropy, gformula and aipw unbiased; naive biased by the patient mix.",
    )


def _participation_misspecified(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="participation_misspecified",
        description="The participation / balancing design omits x1^2: iow and entropy "
        "biased; gformula unaffected; aipw unbiased (its outcome model is right).",
        formula=MISSPECIFIED,
    )


def _outcome_misspecified(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="outcome_misspecified",
        description="The outcome design omits x1^2: gformula biased; iow and entropy "
        "unaffected; aipw unbiased (its participation model is right).",
        outcome_formula=MISSPECIFIED,
    )


def _both_misspecified(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="both_misspecified",
        description="Both designs omit x1^2: every method biased, aipw included.",
        formula=MISSPECIFIED,
        outcome_formula=MISSPECIFIED,
    )


def _weak_overlap(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="weak_overlap",
        description="Correct models, but the source's X1 (mean 1, SD 0.75) is narrower "
        "than and shifted from the target's: the inverse odds weights are extreme (their "
        "variance is barely finite), so weighting estimators are noisy and their "
        "intervals may undercover; gformula extrapolates its correct model.",
        source=Population(1000, x1_mean=1.0, x1_sd=0.75, p_x2=0.35),
    )


def _unmeasured_modifier(strength: float = 1.0, **_: Any) -> Scenario:
    name = "unmeasured_modifier" if strength == 1.0 else f"unmeasured_modifier({strength:g})"
    return replace(
        _correct(),
        name=name,
        description="An unmeasured U modifies the effect of x2 (log hazard ratio "
        f"{strength:g} for U = 1 when x2 = 1) and is commoner in the source (50%) than in "
        "the target (10%): no method adjusting for x1, x2 recovers the target's survival; "
        "the bias grows with the strength.",
        source=Population(1000, x1_mean=0.5, x1_sd=1.5, p_x2=0.35, p_u=0.5),
        target=Population(500, p_u=0.1),
        u_x2=float(strength),
    )


def _small_target(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="small_target",
        description="As 'correct' with a target of 200 patients: estimation error of the "
        "target's covariate distribution enters every method's variance.",
        target=Population(200),
    )


def _informative_censoring(**_: Any) -> Scenario:
    return replace(
        _correct(),
        name="informative_censoring",
        description="Loss to follow-up depends on X1 (rate 0.04 exp(0.8 x1), administrative "
        "censoring at 36 months): censoring is independent of the event time given X only, "
        "so the Kaplan-Meier based naive, iow and entropy are biased; gformula and aipw "
        "(with a Cox censoring model on the outcome design) are not.",
        admin_min=36.0,
        admin_max=36.0,
        loss_rate=0.04,
        loss_x1=0.8,
        censoring="cox",
    )


_BUILTIN: dict[str, Callable[..., Scenario]] = {
    "correct": _correct,
    "participation_misspecified": _participation_misspecified,
    "outcome_misspecified": _outcome_misspecified,
    "both_misspecified": _both_misspecified,
    "weak_overlap": _weak_overlap,
    "unmeasured_modifier": _unmeasured_modifier,
    "small_target": _small_target,
    "informative_censoring": _informative_censoring,
}


def scenarios() -> list[str]:
    """Names of the built-in scenarios (see :func:`scenario` for their options)."""
    return list(_BUILTIN)


def scenario(name: str, **options: Any) -> Scenario:
    """A built-in scenario by name. Option: ``strength`` of ``"unmeasured_modifier"``
    (the log hazard ratio of U when x2 = 1; default 1.0; 0 switches it off), e.g.
    ``scenario("unmeasured_modifier", strength=0.5)`` (named
    ``"unmeasured_modifier(0.5)"``)."""
    if not isinstance(name, str) or name not in _BUILTIN:
        raise ValueError(
            f"Unknown scenario {name!r}: the scenario must be one of {scenarios()} "
            "(or a Scenario object)."
        )
    allowed = {"strength"} if name == "unmeasured_modifier" else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"Scenario {name!r} takes no option(s) {unknown} "
            f"(its options: {sorted(allowed) or 'none'})."
        )
    if "strength" in options:
        s = options["strength"]
        if not is_finite_number(s):  # 10**400 too: no float holds it
            raise ValueError(f"The 'strength' option must be a finite number. Got {s!r:.60}.")
    return _BUILTIN[name](**options)
