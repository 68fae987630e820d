"""Properties of the weighted Kaplan–Meier estimator, and a brute-force check of the
O(n) infinitesimal-jackknife formulas against their O(n m) definition."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transport as tp
from transport.survival._kernel import kaplan_meier_arrays, rmst_arrays

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def survival_data(draw, *, entry: bool = False, zero_weights: bool = False):
    n = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ties = draw(st.booleans())
    t = rng.exponential(10.0, n)
    if ties:
        t = np.ceil(t)
    event = (rng.uniform(size=n) < draw(st.floats(0.2, 1.0))).astype(float)
    event[rng.integers(n)] = 1.0  # at least one event
    w = rng.uniform(0.1, 3.0, n)
    if zero_weights:
        w[rng.uniform(size=n) < 0.2] = 0.0
        w[np.flatnonzero(event)[0]] = 1.0
    a = None
    if entry:
        a = np.where(rng.uniform(size=n) < 0.5, rng.uniform(0, 1, n) * t, 0.0)
        a = np.minimum(a, t * 0.9)
        if ties:
            a = np.floor(a)
            a = np.where(a >= t, 0.0, a)
    return t, event, w, a


def cohort(t, e, a=None) -> tp.Cohort:
    data = {"t": t, "d": e}
    if a is not None:
        data["a"] = a
    return tp.Cohort(pl.DataFrame(data), time="t", event="d", entry="a" if a is not None else None)


def brute_force_ij(t, e, w, a, grid, tau):
    """Var S(t_k) = sum_i U_i(t_k)^2 and Var RMST = sum_i (int U_i)^2, by definition."""
    a = np.zeros_like(t) if a is None else a
    at_risk = (a[:, None] < grid[None, :]) & (t[:, None] >= grid[None, :])  # n x m
    dN = (t[:, None] == grid[None, :]) & (e[:, None] > 0)
    Y = (w[:, None] * at_risk).sum(0)
    d = (w[:, None] * dN).sum(0)
    S = np.cumprod(np.where(d > 0, 1 - d / np.where(Y > 0, Y, 1), 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        term = (d[None, :] * at_risk - dN * Y[None, :]) / (Y * (Y - d))[None, :]
        term = np.where(d[None, :] > 0, term, 0.0)
        U = w[:, None] * S[None, :] * np.cumsum(term, axis=1)
    right = np.minimum(np.append(grid[1:], np.inf), tau)
    width = np.clip(right - grid, 0, None)
    return S, np.sqrt((U**2).sum(0)), np.sqrt(((U * width[None, :]).sum(1) ** 2).sum())


@SETTINGS
@given(survival_data(entry=True, zero_weights=True))
def test_ij_variance_matches_its_definition(data) -> None:
    t, e, w, a = data
    fit = kaplan_meier_arrays(t, e, w, a, variance="ij")
    keep = fit.survival > 0  # the brute force divides by zero once S = 0
    tau = float(np.quantile(t, 0.7))
    S, se, rmst_se = brute_force_ij(t, e, w, a, fit.grid, tau)
    np.testing.assert_allclose(fit.survival, S, atol=1e-12)
    np.testing.assert_allclose(fit.se[keep], se[keep], atol=1e-10)
    if keep.all():
        assert rmst_arrays(fit, tau)[1] == pytest.approx(rmst_se, abs=1e-9)


@SETTINGS
@given(survival_data(entry=True), st.floats(1e-3, 1e3))
def test_weight_scale_invariance(data, scale) -> None:
    t, e, w, a = data
    c = cohort(t, e, a)
    k1 = tp.kaplan_meier(c, weights=w)
    k2 = tp.kaplan_meier(c, weights=w * scale)
    np.testing.assert_allclose(k2.survival, k1.survival, atol=1e-12)
    np.testing.assert_allclose(k2.se, k1.se, atol=1e-10)
    np.testing.assert_allclose(k2.n_risk, k1.n_risk * scale, rtol=1e-10)
    tau = float(np.max(t))
    r1, r2 = k1.rmst(tau), k2.rmst(tau)
    assert r2.value == pytest.approx(r1.value, abs=1e-10)
    assert r2.se == pytest.approx(r1.se, abs=1e-9)
    m1, m2 = k1.median(), k2.median()
    np.testing.assert_allclose(
        [m2.value, m2.ci_lower, m2.ci_upper], [m1.value, m1.ci_lower, m1.ci_upper], atol=1e-12
    )


@SETTINGS
@given(survival_data(entry=True, zero_weights=True), st.integers(0, 2**31 - 1))
def test_row_permutation_invariance(data, seed) -> None:
    t, e, w, a = data
    p = np.random.default_rng(seed).permutation(t.size)
    k1 = tp.kaplan_meier(cohort(t, e, a), weights=w)
    k2 = tp.kaplan_meier(cohort(t[p], e[p], None if a is None else a[p]), weights=w[p])
    np.testing.assert_array_equal(k1.time, k2.time)
    np.testing.assert_allclose(k2.survival, k1.survival, atol=1e-13)
    np.testing.assert_allclose(k2.se, k1.se, atol=1e-12)
    tau = float(np.median(t))
    assert k2.rmst(tau).se == pytest.approx(k1.rmst(tau).se, abs=1e-12)


@SETTINGS
@given(survival_data(entry=True))
def test_integer_weights_equal_replicated_rows(data) -> None:
    t, e, _, a = data
    freq = np.random.default_rng(t.size).integers(1, 4, t.size).astype(float)
    rep = np.repeat(np.arange(t.size), freq.astype(int))
    weighted = tp.kaplan_meier(cohort(t, e, a), weights=freq, weight_type="frequency")
    replicated = tp.kaplan_meier(cohort(t[rep], e[rep], None if a is None else a[rep]))
    np.testing.assert_array_equal(weighted.time, replicated.time)
    np.testing.assert_allclose(weighted.survival, replicated.survival, atol=1e-12)
    np.testing.assert_allclose(weighted.se, replicated.se, atol=1e-10, equal_nan=True)
    np.testing.assert_allclose(weighted.n_risk, replicated.n_risk, atol=1e-9)
    tau = float(np.max(t))
    assert weighted.rmst(tau).se == pytest.approx(replicated.rmst(tau).se, abs=1e-9)


@SETTINGS
@given(survival_data(entry=True, zero_weights=True))
def test_survival_is_monotone_in_unit_interval(data) -> None:
    t, e, w, a = data
    for conf_type in ("log-log", "log", "plain"):
        km = tp.kaplan_meier(cohort(t, e, a), weights=w, conf_type=conf_type)
        s = km.survival
        assert np.all((s >= 0) & (s <= 1)) and np.all(np.diff(s) <= 0)
        assert np.all(km.se[~np.isnan(km.se)] >= 0)
        lo, up = km.ci_lower, km.ci_upper
        ok = ~np.isnan(lo)
        assert np.all(lo[ok] <= s[ok] + 1e-15) and np.all(up[ok] >= s[ok] - 1e-15)
        assert np.all((lo[ok] >= 0) & (up[ok] <= 1))
        probe = np.linspace(0, t.max() * 1.2, 50)
        assert np.all(np.diff(km.survival_at(probe)) <= 0)


@SETTINGS
@given(survival_data(zero_weights=True))
def test_zero_weight_rows_are_the_same_as_absent_rows(data) -> None:
    t, e, w, _ = data
    keep = w > 0
    k1 = tp.kaplan_meier(cohort(t, e), weights=w)
    k2 = tp.kaplan_meier(cohort(t[keep], e[keep]), weights=w[keep])
    np.testing.assert_array_equal(k1.time, k2.time)
    np.testing.assert_allclose(k1.survival, k2.survival, atol=1e-13)
    np.testing.assert_allclose(k1.se, k2.se, atol=1e-12)
    np.testing.assert_array_equal(k1.n_risk_unweighted, k2.n_risk_unweighted)


@SETTINGS
@given(survival_data())
def test_unit_weights_and_zero_entry_change_nothing(data) -> None:
    t, e, _, _ = data
    plain = tp.kaplan_meier(cohort(t, e))
    ones = tp.kaplan_meier(cohort(t, e), weights=np.ones(t.size), weight_type="frequency")
    entry0 = tp.kaplan_meier(cohort(t, e, np.zeros(t.size)))
    for other in (ones, entry0):
        np.testing.assert_array_equal(other.time, plain.time)
        np.testing.assert_allclose(other.survival, plain.survival, atol=1e-14)
        np.testing.assert_allclose(other.se, plain.se, atol=1e-12, equal_nan=True)


def test_whole_day_and_sorted_paths_agree() -> None:
    """Whole-number times use a counting pass; the same times offset by 0.5 sort."""
    rng = np.random.default_rng(11)
    t = np.round(rng.exponential(200, 5000)) + 1
    e = (rng.uniform(size=t.size) < 0.7).astype(float)
    w = rng.uniform(0.2, 2, t.size)
    a = kaplan_meier_arrays(t, e, w, variance="ij")
    b = kaplan_meier_arrays(t + 0.5, e, w, variance="ij")
    np.testing.assert_array_equal(a.grid + 0.5, b.grid)
    np.testing.assert_allclose(a.survival, b.survival, atol=1e-14)
    np.testing.assert_allclose(a.se, b.se, atol=1e-14)
    assert rmst_arrays(a, 300.0)[1] == pytest.approx(rmst_arrays(b, 300.5)[1], abs=1e-10)


def test_snapping_ties_near_identical_times_and_timefix_false_does_not() -> None:
    t = np.array([1.0, 1.0 + 1e-12, 2.0, 3.0, 3.0 + 5e-9])
    e = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    snapped = tp.kaplan_meier(cohort(t, e))
    assert snapped.time.tolist() == [1.0, 2.0, 3.0]
    assert snapped.n_event.tolist() == [2.0, 0.0, 2.0]
    raw = tp.kaplan_meier(cohort(t, e), timefix=False)
    assert raw.time.size == 5
