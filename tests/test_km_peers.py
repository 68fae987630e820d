"""Kaplan–Meier against lifelines and statsmodels (independent implementations)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from lifelines import KaplanMeierFitter
from statsmodels.duration.survfunc import SurvfuncRight

import transport as tp


def data(seed: int, n: int = 400, weights: bool = False):
    rng = np.random.default_rng(seed)
    t = np.ceil(rng.weibull(1.2, n) * 300)
    c = np.ceil(rng.uniform(20, 900, n))
    time_, event = np.minimum(t, c), (t <= c).astype(float)
    w = rng.integers(1, 5, n).astype(float) if weights else None
    cohort = tp.Cohort(pl.DataFrame({"t": time_, "d": event}), time="t", event="d")
    return time_, event, w, cohort


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_lifelines_survival_and_exponential_greenwood_band(seed: int) -> None:
    t, e, _, cohort = data(seed)
    km = tp.kaplan_meier(cohort, conf_type="log-log")
    fit = KaplanMeierFitter().fit(t, e)
    grid = km.time
    np.testing.assert_allclose(
        km.survival, fit.survival_function_at_times(grid).to_numpy(), atol=1e-12
    )
    # lifelines' band is the log-log ("exponential Greenwood") one
    ci = fit.confidence_interval_survival_function_
    lower = ci.iloc[:, 0].reindex(grid).to_numpy()
    upper = ci.iloc[:, 1].reindex(grid).to_numpy()
    ok = km.survival > 0
    np.testing.assert_allclose(km.ci_lower[ok], lower[ok], atol=1e-9)
    np.testing.assert_allclose(km.ci_upper[ok], upper[ok], atol=1e-9)
    assert km.median().value == pytest.approx(fit.median_survival_time_)


@pytest.mark.parametrize("seed", [4, 5])
def test_matches_lifelines_with_weights(seed: int) -> None:
    t, e, w, cohort = data(seed, weights=True)
    km = tp.kaplan_meier(cohort, weights=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = KaplanMeierFitter().fit(t, e, weights=w)
    np.testing.assert_allclose(
        km.survival, fit.survival_function_at_times(km.time).to_numpy(), atol=1e-12
    )


@pytest.mark.parametrize("seed", [6, 7])
def test_matches_statsmodels(seed: int) -> None:
    t, e, w, cohort = data(seed, weights=True)
    # unweighted: S(t) and Greenwood's SE
    km = tp.kaplan_meier(cohort)
    fit = SurvfuncRight(t, e)
    idx = np.searchsorted(fit.surv_times, km.time, side="right") - 1
    np.testing.assert_allclose(km.survival, np.where(idx >= 0, fit.surv_prob[idx], 1.0), atol=1e-12)
    ok = (km.survival > 0) & (idx >= 0)
    np.testing.assert_allclose(km.se[ok], fit.surv_prob_se[idx[ok]], atol=1e-12)
    # frequency weights: S(t), and statsmodels' weighted SE, which is Tsiatis' SE of
    # log S, sqrt(sum d_k / Y_k^2), rebuilt here from our weighted counts
    kw = tp.kaplan_meier(cohort, weights=w, weight_type="frequency")
    fw = SurvfuncRight(t, e, freq_weights=w)
    at_events = kw.n_event > 0
    np.testing.assert_allclose(kw.survival[at_events], fw.surv_prob, atol=1e-12)
    tsiatis = np.sqrt(np.cumsum(kw.n_event[at_events] / kw.n_risk[at_events] ** 2))
    np.testing.assert_allclose(tsiatis, fw.surv_prob_se, rtol=1e-12)
