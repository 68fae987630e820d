"""Property tests (hypothesis, derandomised) of the weighting estimators."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import transport as tp

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def make(n: int, rng: np.random.Generator, shift: float, name: str) -> tp.Cohort:
    age = rng.normal(65 + shift, 8, n)
    ecog = np.where(rng.uniform(size=n) < 0.3 + 0.02 * shift, "1", "0")
    ecog[rng.uniform(size=n) < 0.15] = "2+"
    frame = pl.DataFrame({"t": np.ones(n), "d": np.ones(n, dtype=int), "age": age,
                          "ecog": ecog, "x": rng.uniform(0, 1, n)})  # fmt: skip
    return tp.Cohort(frame, time="t", event="d", covariates=["age", "ecog", "x"], name=name)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.floats(-3, 3), st.sampled_from([1, 2]))
def test_entropy_balance_is_exact_and_positive(seed: int, shift: float, moments: int) -> None:
    rng = np.random.default_rng(seed)
    src, tgt = make(400, rng, 0.0, "S"), make(150, rng, shift, "T")
    w = tp.entropy_balance(src, tgt, moments=moments)
    assert np.all(w.values > 0)
    assert w.details["max_standardised_imbalance"] <= 1e-10
    X, Xt = w.design.source_matrix, w.design.matrix(tgt)
    p = w.values / w.values.sum()
    np.testing.assert_allclose(p @ X, Xt.mean(axis=0), atol=1e-8 * np.abs(Xt).max())
    assert 1 <= w.ess <= src.n


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.floats(-3, 3))
def test_inverse_odds_weights_properties(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    src, tgt = make(300, rng, 0.0, "S"), make(200, rng, shift, "T")
    w = tp.inverse_odds_weights(src, tgt)
    assert np.all(w.values > 0)
    # the score equations at the MLE, with p = P(S | x) = 1 / (1 + w):
    # sum over the source of (1 - p) x = sum over the target of p x, intercept included
    X = np.column_stack((np.ones(src.n), w.design.source_matrix))
    Xt = np.column_stack((np.ones(tgt.n), w.design.matrix(tgt)))
    coef = np.asarray(list(w.details["coef"].values()))
    p_s, p_t = 1.0 / (1.0 + np.exp(-(X @ coef))), 1.0 / (1.0 + np.exp(-(Xt @ coef)))
    np.testing.assert_allclose(p_s, 1.0 / (1.0 + w.values), rtol=1e-12)
    np.testing.assert_allclose((1 - p_s) @ X, p_t @ Xt, atol=1e-8 * float(np.abs(Xt).sum()))
    same = tp.inverse_odds_weights(src, src)
    np.testing.assert_allclose(same.values, 1.0, atol=1e-8)
    perm = rng.permutation(src.n)
    frame = src.to_frame()[perm]
    shuffled = tp.Cohort(frame, time="t", event="d", covariates=["age", "ecog", "x"], name="S")
    np.testing.assert_allclose(tp.inverse_odds_weights(shuffled, tgt).values, w.values[perm],
                               rtol=1e-8)  # fmt: skip
