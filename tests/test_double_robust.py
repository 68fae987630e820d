"""Double robustness of ``aipw`` and the behaviour of every method under misspecification.

A superpopulation with X1 ~ N(0, 1) and X2 ~ Bernoulli(0.5) splits into the source with
probability ``expit(-0.6 x1 + 0.5 x2 - 0.6 x1^2)`` and the target otherwise; in the source
the event time is exponential with rate ``0.1 exp(0.5 x1 - 0.5 x2 + 0.6 x1^2)`` and
censoring is uniform on (0, 25), independent of X. The transported truth
``S_T(t) = E[(1 - p(X)) exp(-lambda(X) t)] / E[1 - p(X)]`` is computed by Gauss–Hermite
quadrature (exact to ~1e-12). Dropping ``x1^2`` misspecifies a model: the participation
model for ``iow`` / ``aipw``, the outcome model for ``gformula`` / ``aipw``.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from scipy.special import expit

import transport as tp

T_EVAL = 4.0
GOOD = "x1 + x2 + I(x1**2)"
BAD = "x1 + x2"
# name: (method, participation formula, outcome formula, correct?)
CONFIGS = {
    "iow": ("iow", GOOD, None, True),
    "iow, participation wrong": ("iow", BAD, None, False),
    "gformula": ("gformula", None, GOOD, True),
    "gformula, outcome wrong": ("gformula", None, BAD, False),
    "aipw": ("aipw", GOOD, GOOD, True),
    "aipw, participation wrong": ("aipw", BAD, GOOD, True),
    "aipw, outcome wrong": ("aipw", GOOD, BAD, True),
    "aipw, both wrong": ("aipw", BAD, BAD, False),
}


def draw(seed: int, n_super: int = 3000) -> tuple[tp.Cohort, tp.Cohort]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n_super)
    x2 = rng.binomial(1, 0.5, n_super).astype(float)
    in_source = rng.uniform(size=n_super) < expit(-0.6 * x1 + 0.5 * x2 - 0.6 * x1**2)
    rate = 0.1 * np.exp(0.5 * x1 - 0.5 * x2 + 0.6 * x1**2)
    t = rng.exponential(1.0 / rate)
    c = rng.uniform(0.0, 25.0, n_super)
    df = pl.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "x1": x1, "x2": x2})

    def cohort(mask: np.ndarray, name: str) -> tp.Cohort:
        return tp.Cohort(
            df.filter(pl.Series(mask)),
            time="time",
            event="event",
            covariates=["x1", "x2"],
            name=name,
            covariate_types={"x2": "continuous"},
        )

    return cohort(in_source, "source"), cohort(~in_source, "target")


def truth(t: float) -> float:
    z, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    num = den = 0.0
    for x2 in (0.0, 1.0):
        q = 1.0 - expit(-0.6 * z + 0.5 * x2 - 0.6 * z**2)
        num += 0.5 * np.sum(w * q * np.exp(-0.1 * np.exp(0.5 * z - 0.5 * x2 + 0.6 * z**2) * t))
        den += 0.5 * np.sum(w * q)
    return float(num / den)


def estimates(seed: int, configs: dict = CONFIGS) -> dict[str, float]:
    source, target = draw(seed)
    out = {}
    for name, (method, f, of, _) in configs.items():
        with warnings.catch_warnings():
            # the design has deliberately weak overlap in the tails of x1
            warnings.simplefilter("ignore", tp.PositivityWarning)
            res = tp.transport(
                source, target, method=method, times=[T_EVAL], formula=f, outcome_formula=of
            )
        out[name] = float(res.transported.survival_at(T_EVAL)[0])
    return out


def test_truth_by_quadrature_matches_a_large_sample() -> None:
    rng = np.random.default_rng(1)
    n = 2_000_000
    x1, x2 = rng.normal(size=n), rng.binomial(1, 0.5, n)
    q = 1.0 - expit(-0.6 * x1 + 0.5 * x2 - 0.6 * x1**2)
    s = np.exp(-0.1 * np.exp(0.5 * x1 - 0.5 * x2 + 0.6 * x1**2) * T_EVAL)
    assert truth(T_EVAL) == pytest.approx(np.sum(q * s) / np.sum(q), abs=2e-3)


def test_aipw_is_consistent_when_either_model_is_right() -> None:
    """12 seeded replicates (the slow study has 300): correct configurations lie within
    3 Monte Carlo SEs of the truth; a misspecified single-robust method and aipw with
    both models wrong are off by more than 0.05 (over 10 MCSEs)."""
    reps = [estimates(1000 + r) for r in range(12)]
    s = truth(T_EVAL)
    for name, (_, _, _, correct) in CONFIGS.items():
        v = np.array([r[name] for r in reps])
        bias, mcse = v.mean() - s, v.std(ddof=1) / np.sqrt(v.size)
        if correct:
            assert abs(bias) < 3 * mcse + 1e-3, (name, bias, mcse)
        else:
            assert abs(bias) > 0.05 and abs(bias) > 10 * mcse, (name, bias, mcse)


@pytest.mark.slow
def test_double_robustness_study() -> None:
    """300 replicates: bias within 2 MCSE for every correct configuration, except the two
    whose bias correction rests on the participation weights alone, iow and aipw with
    the outcome model wrong: the weights are extreme in the tails of x1 (weak overlap by
    design), and their finite-sample bias (iow 0.005, 3 MCSE, in a review run; aipw with
    the outcome model wrong +0.0037, MCSE 0.0013, in the full run of 2026-11-22) is held
    to 0.01, a tenth of what a misspecified single model gives (+0.12)."""
    reps = [estimates(5000 + r) for r in range(300)]
    s = truth(T_EVAL)
    lines = []
    for name, (_, _, _, correct) in CONFIGS.items():
        v = np.array([r[name] for r in reps])
        bias, mcse = v.mean() - s, v.std(ddof=1) / np.sqrt(v.size)
        lines.append(f"{name:28s} bias {bias:+.4f} (MCSE {mcse:.4f}) SD {v.std(ddof=1):.4f}")
        if correct:
            weights_alone = name in ("iow", "aipw, outcome wrong")
            assert abs(bias) < (0.01 if weights_alone else 2 * mcse), (name, bias, mcse)
        else:
            assert abs(bias) > 10 * mcse, (name, bias, mcse)
    print("\n".join(lines))
