"""An independent implementation of the model as data/synthetic/README.md states it.

Nothing here imports the simulator: the constants are typed from the README, the
covariate patterns enumerated and their probabilities written afresh. The shipped truth
must agree with it, so an error in the code shared by the sampler and the truth (the
outcome model, the covariate distribution) cannot hide behind their mutual agreement.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from scipy.special import expit
from scipy.stats import norm

import transport as tp

# -- README, "Covariates, drawn in this order" ------------------------------------------
AGE = {"US": (68, 9), "UK": (70, 9), "DE": (71.5, 8.5), "JP": (69.5, 8.5)}
FEMALE = {"US": 0.49, "UK": 0.47, "DE": 0.36, "JP": 0.31}
SMOKE = {"US": (-1.9, 0.6, -0.6, -0.2), "UK": (-2.1, 0.6, -0.5, -0.2),
         "DE": (-2.0, 0.6, -0.2, -0.2), "JP": (-1.6, 2.2, -0.4, -0.5)}  # fmt: skip
SQ = {"US": -2.3, "UK": -2.0, "DE": -1.8, "JP": -2.2}
DRIVER = {"US": -2.9, "UK": -3.0, "DE": -2.9, "JP": -1.7}
PDL1 = {"US": -0.85, "UK": -0.85, "DE": -0.85, "JP": -0.95}
ECOG = {"US": (0.1, -1.9), "UK": (0.4, -1.1), "DE": (0.0, -1.9), "JP": (-0.6, -2.4)}
STAGE = {"US": (0.14, 0.16, 0.70), "UK": (0.10, 0.15, 0.75), "DE": (0.12, 0.18, 0.70),
         "JP": (0.18, 0.17, 0.65)}  # fmt: skip
REGIMEN = {"US": (-1.2, 0.9, -4.0), "UK": (-1.5, 0.2, -4.0), "DE": (-1.3, 0.8, -4.0),
           "JP": (-1.6, 0.3, -3.7)}  # fmt: skip
# -- README, "Unmeasured effect modifier" and "Outcomes" ---------------------------------
PI = {"US": 0.25, "UK": 0.25, "DE": 0.25, "JP": 0.10}
SETTING = {"US": 0.0, "UK": 0.10, "DE": 0.0, "JP": -0.15}
SHAPE = {"chemo": 1.25, "io": 1.0, "chemo-io": 1.05, "targeted": 1.35}
REGIMENS = ("chemo", "io", "chemo-io", "targeted")


def patterns():
    """Every pattern as named arrays: age, female, smoking (never/former/current = 0/1/2),
    squamous, driver, pdl1, ecog (0/1/2 for 0/1/2+), stage (I-II/III/IV = 0/1/2), regimen."""
    levels = [range(35, 91), (0, 1), (0, 1, 2), (0, 1), (0, 1), (0, 1), (0, 1, 2), (0, 1, 2),
              (0, 1, 2, 3)]  # fmt: skip
    rows = np.array(list(itertools.product(*levels)))
    names = ["age", "female", "smoking", "squamous", "driver", "pdl1", "ecog", "stage", "regimen"]
    return {k: rows[:, i] for i, k in enumerate(names)}


def probability(c: str, x) -> np.ndarray:
    mu, sd = AGE[c]
    ages = np.arange(35, 91)
    cdf_hi = norm.cdf(ages + 0.5, mu, sd)
    cdf_lo = norm.cdf(ages - 0.5, mu, sd)
    cdf_hi[-1], cdf_lo[0] = 1.0, 0.0  # tails go to 35 and 90
    p = (cdf_hi - cdf_lo)[x["age"] - 35]
    f = x["female"]
    p = p * np.where(f == 1, FEMALE[c], 1 - FEMALE[c])
    a_n, b_n, a_c, b_c = SMOKE[c]
    odds = np.column_stack((np.exp(a_n + b_n * f), np.ones(f.size), np.exp(a_c + b_c * f)))
    p = p * (odds / odds.sum(1, keepdims=True))[np.arange(f.size), x["smoking"]]
    ever, current, never = x["smoking"] > 0, x["smoking"] == 2, x["smoking"] == 0

    def bern(prob, v):
        return np.where(v == 1, prob, 1 - prob)

    p = p * bern(expit(SQ[c] + 1.3 * ever + 0.3 * current - 0.3 * f), x["squamous"])
    p = p * bern(expit(DRIVER[c] + 2.0 * never + 0.5 * f - 2.5 * x["squamous"]), x["driver"])
    p = p * bern(expit(PDL1[c] - 1.0 * x["driver"] + 0.2 * current), x["pdl1"])
    g1, g2 = ECOG[c]
    ge1, ge2 = expit(g1 + 0.03 * (x["age"] - 65)), expit(g2 + 0.03 * (x["age"] - 65))
    p = p * np.choose(x["ecog"], [1 - ge1, ge1 - ge2, ge2])
    p = p * np.asarray(STAGE[c])[x["stage"]]
    r_io, r_cio, r_tgt = REGIMEN[c]
    e2, d, q = (x["ecog"] == 2), x["driver"], x["pdl1"]
    odds = np.column_stack((np.ones(d.size), np.exp(r_io + 1.6 * q + 0.6 * e2 - 2.5 * d),
                            np.exp(r_cio + 0.3 * q - 1.0 * e2 - 2.5 * d),
                            np.exp(r_tgt + 6.0 * d)))  # fmt: skip
    return p * (odds / odds.sum(1, keepdims=True))[np.arange(d.size), x["regimen"]]


def lp(x) -> np.ndarray:
    reg = np.asarray(REGIMENS)[x["regimen"]]
    io, cio, tgt = reg == "io", reg == "chemo-io", reg == "targeted"
    e, st, d, q = x["ecog"], x["stage"], x["driver"], x["pdl1"]
    return (0.015 * (x["age"] - 65) - 0.15 * x["female"] + 0.30 * (e == 1) + 0.85 * (e == 2)
            - 0.30 * (st == 0) - 0.10 * (st == 1) + 0.10 * x["squamous"]
            + 0.10 * (x["smoking"] == 2) - 0.25 * d - 0.10 * q - 0.25 * io - 0.35 * cio
            - 0.10 * tgt - 0.45 * io * q - 0.15 * cio * q - 0.80 * tgt * d
            + 0.40 * tgt * (1 - d) + 0.25 * (io | cio) * (e == 2)
            + 0.30 * (io | cio) * d)  # fmt: skip


def population_survival(t: np.ndarray, target: str, mechanism: str, outcome: str):
    """S(t) = sum_x P_target(x) sum_u P_mechanism(U = u) S(t | x, u; mechanism)."""
    x = patterns()
    p = probability(target, x)
    k = np.asarray([SHAPE[r] for r in REGIMENS])[x["regimen"]]
    immuno = (x["regimen"] == 1) | (x["regimen"] == 2)
    out = np.zeros(t.size)
    for u, share in ((0, 1 - PI[mechanism]), (1, PI[mechanism])):
        v = 0.10 * u + 0.50 * u * immuno
        death = np.exp(lp(x) + SETTING[mechanism] + v)
        prog = np.exp(0.8 * (lp(x) + v) + SETTING[mechanism])
        for j, tj in enumerate(t):
            H = (tj / 400) ** k * death
            if outcome == "pfs":
                H = H + (tj / 330) ** 1.15 * prog
            out[j] += share * (p @ np.exp(-H))
    return out


def shipped(source, target, quantity, outcome, estimand):
    t = tp.datasets.load_truth().filter(
        (pl.col("source") == source) & (pl.col("target") == target)
        & (pl.col("quantity") == quantity) & (pl.col("outcome") == outcome)
        & (pl.col("estimand") == estimand)
    ).sort("time")  # fmt: skip
    return t["time"].to_numpy(), t["value"].to_numpy()


def test_pattern_probabilities_agree() -> None:
    from transport.simulate.dgp import PROFILES, covariate_log_pmf

    x = patterns()
    for c in ("US", "UK", "DE", "JP"):
        ours = probability(c, x)
        assert ours.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(
            np.exp(covariate_log_pmf(PROFILES[c], x)), ours, rtol=1e-10, atol=1e-18
        )


@pytest.mark.parametrize("outcome", ["os", "pfs"])
@pytest.mark.parametrize(("source", "target"), [("US", "JP"), ("UK", "DE"), ("JP", "UK")])
def test_shipped_truth_agrees_with_the_readme_model(source: str, target: str, outcome: str):
    for quantity, mechanism in (("transported", source), ("target", target)):
        times, values = shipped(source, target, quantity, outcome, "survival")
        ours = population_survival(times, target, mechanism, outcome)
        np.testing.assert_allclose(values, ours, rtol=0, atol=1e-12)
        # median of whole days: the first day with S <= 1/2
        _, med = shipped(source, target, quantity, outcome, "median")
        days = np.arange(med[0] - 3, med[0] + 3)
        s = population_survival(days, target, mechanism, outcome)
        assert days[np.argmax(s <= 0.5)] == med[0]
    # RMST of whole days by summing S(j) over every day up to tau = 730
    taus, rmst = shipped(source, target, "transported", outcome, "rmst")
    assert taus[0] == 730
    daily = population_survival(np.arange(730.0), target, source, outcome).sum()
    assert rmst[0] == pytest.approx(daily, abs=1e-6)


def test_censoring_distribution_is_as_stated() -> None:
    """P(C > t) = P(A > t) exp(-0.00015 t), A ~ Uniform(90, 2190): from the reverse KM."""
    frame = tp.simulate.simulate_cohort("US", 200_000, seed=8)
    reverse = frame.with_columns((1 - pl.col("os_event")).alias("censored"))
    km = tp.kaplan_meier(tp.Cohort(reverse, time="os_days", event="censored"))
    t = np.array([60.0, 200.0, 400.0, 700.0, 1000.0])
    expected = np.clip((2190 - t) / (2190 - 90), 0, 1) * np.exp(-0.00015 * t)
    at = km.at(t)
    z = (at["survival"].to_numpy() - expected) / np.maximum(at["se"].to_numpy(), 1e-12)
    assert at["survival"][0] == pytest.approx(np.exp(-0.00015 * 60), abs=0.002)
    assert np.all(np.abs(z) < 4.5), z
