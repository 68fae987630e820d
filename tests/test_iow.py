"""Inverse odds weights: against R's glm (stored in tests/r/iow_reference) and
statsmodels, properties, and the bad inputs of DESIGN section 8 that concern weighting."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from conftest import R_DIR, needs_r, r_name, read_levelled

import transport as tp
from transport import DataError, PositivityWarning

REF = R_DIR / "iow_reference"
FORMULAS = {
    "main": None,
    "interactions": "age + sex + ecog + pdl1 + egfr_alk + regimen + age:sex + ecog:pdl1",
}


def cohort(name: str, label: str) -> tp.Cohort:
    frame = read_levelled(f"iow_{name}.csv").with_columns(
        pl.lit(1.0).alias("t"), pl.lit(1).alias("d")
    )
    return tp.Cohort(frame, time="t", event="d", covariates=list(tp.datasets.COVARIATES),
                     name=label)  # fmt: skip


@pytest.fixture(scope="module")
def cohorts() -> tuple[tp.Cohort, tp.Cohort]:
    return cohort("source", "US"), cohort("target", "JP")


@pytest.mark.parametrize("case", list(FORMULAS))
def test_coefficients_weights_and_balance_match_r(case: str, cohorts) -> None:
    src, tgt = cohorts
    w = tp.inverse_odds_weights(src, tgt, formula=FORMULAS[case])
    coef = pl.read_csv(REF / "coef.csv").filter(pl.col("case") == case)
    ours = {("(Intercept)" if k == "(intercept)" else r_name(k)): v
            for k, v in w.details["coef"].items()}  # fmt: skip
    ours_se = {("(Intercept)" if k == "(intercept)" else r_name(k)): v
               for k, v in w.details["coef_se"].items()}  # fmt: skip
    assert set(ours) == set(coef["term"])
    for term, est, se in coef.select("term", "estimate", "se").iter_rows():
        assert ours[term] == pytest.approx(est, abs=1e-8), term
        assert ours_se[term] == pytest.approx(se, rel=1e-8), term
    ref_w = pl.read_csv(REF / "weights.csv").filter(pl.col("case") == case)["weight"].to_numpy()
    np.testing.assert_allclose(w.values, ref_w, rtol=1e-8)
    bal = pl.read_csv(REF / "balance.csv").filter(pl.col("case") == case)
    assert w.ess == pytest.approx(bal["ess"][0], rel=1e-8)
    ours_bal = w.balance().with_columns(pl.col("covariate").map_elements(r_name, pl.String))
    assert ours_bal["covariate"].to_list() == bal["term"].to_list()
    for a, b in (("mean_source", "mean_source"), ("mean_source_weighted", "mean_weighted"),
                 ("mean_target", "mean_target"), ("smd_before", "smd_before"),
                 ("smd_after", "smd_after")):  # fmt: skip
        np.testing.assert_allclose(ours_bal[a].to_numpy(), bal[b].to_numpy(), atol=1e-8)
    pooled = w.balance(sd="pooled")["smd_after"].to_numpy()
    np.testing.assert_allclose(pooled, bal["smd_after_pooled"].to_numpy(), atol=1e-8)


def test_matches_statsmodels_glm(cohorts) -> None:
    src, tgt = cohorts
    w = tp.inverse_odds_weights(src, tgt)
    X = np.vstack((w.design.source_matrix, w.design.matrix(tgt)))
    y = np.r_[np.ones(src.n), np.zeros(tgt.n)]
    Xc = sm.add_constant(X)
    fit = sm.GLM(y, Xc, family=sm.families.Binomial()).fit(tol=1e-14)
    np.testing.assert_allclose(list(w.details["coef"].values()), fit.params, atol=1e-10)
    np.testing.assert_allclose(w.values, np.exp(-(Xc @ fit.params)[: src.n]), rtol=1e-9)


def test_normalisation_changes_scale_only(cohorts) -> None:
    src, tgt = cohorts
    raw = tp.inverse_odds_weights(src, tgt)
    mean1 = tp.inverse_odds_weights(src, tgt, normalize="mean")
    total = tp.inverse_odds_weights(src, tgt, normalize="target_n")
    assert mean1.values.mean() == pytest.approx(1.0)
    assert total.values.sum() == pytest.approx(tgt.n)
    np.testing.assert_allclose(mean1.values / raw.values, mean1.values[0] / raw.values[0])
    assert raw.ess == pytest.approx(total.ess)
    s = raw.summary()
    assert s["max_over_mean"] == pytest.approx(raw.values.max() / raw.values.mean())
    assert 0 < s["top1_share"] < 1 and s["min"] <= s["median"] <= s["max"]


def test_identical_target_gives_equal_weights(cohorts) -> None:
    src, _ = cohorts
    w = tp.inverse_odds_weights(src, src)
    np.testing.assert_allclose(w.values, 1.0, atol=1e-9)
    assert w.ess == pytest.approx(src.n)
    assert np.all(np.abs(w.balance()["smd_after"].to_numpy()) < 1e-12)


def test_row_permutation_invariance(cohorts) -> None:
    src, tgt = cohorts
    frame = src.to_frame()
    perm = np.random.default_rng(3).permutation(src.n)
    shuffled = tp.Cohort(frame[perm], time="t", event="d",
                         covariates=list(tp.datasets.COVARIATES), name="US")  # fmt: skip
    a = tp.inverse_odds_weights(src, tgt).values
    b = tp.inverse_odds_weights(shuffled, tgt).values
    np.testing.assert_allclose(b, a[perm], rtol=1e-10)


def test_weights_transport_the_synthetic_us_cohort_to_its_truth() -> None:
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    w = tp.inverse_odds_weights(us, jp)
    km = tp.kaplan_meier(us, weights=w)
    truth = tp.datasets.load_truth().filter(
        (pl.col("source") == "US") & (pl.col("target") == "JP") & (pl.col("outcome") == "os")
        & (pl.col("quantity") == "transported") & (pl.col("estimand") == "survival")
    )  # fmt: skip
    at = km.at(truth["time"].to_numpy())
    z = (at["survival"].to_numpy() - truth["value"].to_numpy()) / at["se"].to_numpy()
    assert np.all(np.abs(z) < 3.5), z
    assert w.scores()["cohort"].unique().sort().to_list() == ["JP", "US"]


# -- bad inputs (DESIGN section 8) -----------------------------------------------------------


def small(rows: dict, name: str) -> tp.Cohort:
    n = len(next(iter(rows.values())))
    frame = pl.DataFrame({**rows, "t": np.ones(n), "d": np.ones(n, dtype=int)})
    return tp.Cohort(frame, time="t", event="d", covariates=list(rows), name=name)


def test_separation_names_the_covariates() -> None:
    rng = np.random.default_rng(1)
    a = small({"age": rng.normal(60, 5, 200), "stage": rng.choice(["I", "II"], 200)}, "A")
    b = small({"age": rng.normal(75, 5, 100), "stage": rng.choice(["I", "II"], 100)}, "B")
    b = small({"age": np.asarray(b.covariate_frame["age"]) + 40.0,
               "stage": b.covariate_frame["stage"].cast(pl.String).to_list()}, "B")  # fmt: skip
    with pytest.raises(DataError, match=r"separation in the participation model of 'A' vs "
                                        r"'B': covariates \['age'\]"):  # fmt: skip
        tp.inverse_odds_weights(a, b)


def test_poor_overlap_warns_with_the_share() -> None:
    rng = np.random.default_rng(2)
    a = small({"age": rng.normal(60, 5, 2000)}, "A")
    b = small({"age": rng.normal(70, 5, 2000)}, "B")
    with pytest.warns(PositivityWarning, match=r"poor overlap between 'A' and 'B': [\d.]+% of "
                                               r"patients"):  # fmt: skip
        tp.inverse_odds_weights(a, b)
    close = small({"age": rng.normal(60.5, 5, 2000)}, "C")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tp.inverse_odds_weights(a, close)


def test_unseen_level_missing_covariate_and_zero_variance() -> None:
    a = small({"age": [50.0, 60, 70, 80], "ecog": ["0", "1", "0", "1"]}, "A")
    b = small({"age": [55.0, 65, 75], "ecog": ["0", "2+", "2+"]}, "B")
    with pytest.raises(DataError, match=r"covariate 'ecog' of cohort 'B' has 1 level\(s\) "
                                        r"that the source 'A' never saw: 1 not named"):  # fmt: skip
        tp.inverse_odds_weights(a, b)
    c = small({"age": [55.0, 65, 75]}, "C")
    with pytest.raises(DataError, match=r"covariates \['ecog'\] of the design .* are not "
                                        r"covariates of cohort 'C'"):  # fmt: skip
        tp.inverse_odds_weights(a, c)
    flat = small({"age": [50.0, 50, 50], "ecog": ["0", "1", "0"]}, "F")
    with pytest.raises(DataError, match=r"covariate 'age' has zero variance in cohort 'F'"):
        tp.inverse_odds_weights(flat, c)
    one = small({"age": [50.0, 60, 70], "ecog": ["1", "1", "1"]}, "O")
    with pytest.raises(DataError, match=r"'ecog' has zero variance .* single level '1'"):
        tp.inverse_odds_weights(one, b)
    with pytest.raises(TypeError, match="entropy_balance"):
        tp.inverse_odds_weights(a, {"n": 3})


def test_collinear_design_names_the_columns() -> None:
    a = small({"x": [1.0, 2, 3, 4, 5], "z": [2.0, 4, 6, 8, 10]}, "A")
    with pytest.raises(DataError, match=r"design columns \['(x|z)'\] are collinear"):
        tp.Design(a)


@pytest.mark.r
@needs_r("iow_reference.R")
def test_r_regenerates_the_stored_numbers(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("iow_source.csv", "iow_target.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    subprocess.run(["Rscript", str(R_DIR / "iow_reference.R"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for name in ("coef.csv", "weights.csv", "balance.csv"):
        assert (tmp_path / "iow_reference" / name).read_bytes() == (REF / name).read_bytes()


def test_truncation_and_trimming_report_what_they_touched(cohorts) -> None:
    src, tgt = cohorts
    raw = tp.inverse_odds_weights(src, tgt)
    cut = tp.inverse_odds_weights(src, tgt, truncate=(0.05, 0.95))
    info = cut.details["truncation"]
    a, b = np.quantile(raw.values, [0.05, 0.95])
    assert info["bounds"] == pytest.approx((a, b))
    changed = (raw.values < a) | (raw.values > b)
    assert info["rows"] == int(changed.sum())
    assert info["weight_share"] == pytest.approx(raw.values[changed].sum() / raw.values.sum())
    np.testing.assert_allclose(cut.values, np.clip(raw.values, a, b))
    assert cut.ess > raw.ess
    s = raw.details["scores_source"]
    t = raw.details["scores_target"]
    lo, hi = np.quantile(s, [0.05, 0.95])
    trimmed = tp.inverse_odds_weights(src, tgt, trim=(lo, hi))
    info = trimmed.details["trimming"]
    out = (s < lo) | (s > hi)
    assert info["source_rows"] == int(out.sum())
    assert info["target_rows"] == int(((t < lo) | (t > hi)).sum())
    assert np.all(trimmed.values[out] == 0) and np.all(trimmed.values[~out] > 0)
    with pytest.raises(ValueError, match="'truncate'"):
        tp.inverse_odds_weights(src, tgt, truncate=(0.9, 0.1))


def test_diagnostic_plots_return_axes(cohorts) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src, tgt = cohorts
    w = tp.inverse_odds_weights(src, tgt)
    ax = w.plot_balance()
    assert len(ax.get_yticklabels()) == len(w.design.columns)
    assert w.plot_weights().get_xscale() == "log"
    assert len(w.plot_overlap().patches) == 80  # two histograms of 40 bins
    e = tp.entropy_balance(src, tgt)
    e.plot_balance()
    with pytest.raises(ValueError, match="not available for method 'entropy'"):
        e.plot_overlap()
    plt.close("all")


def test_matches_zepid_iosw(cohorts) -> None:
    """zEpid's transport weights, IPSW(generalize=False, stabilized=False): (1 - p) / p."""
    import pandas as pd
    from zepid.causal.generalize import IPSW

    src, tgt = cohorts
    frames = []
    for c, s in ((src, 1), (tgt, 0)):
        f = c.covariate_frame
        frames.append(pd.DataFrame({
            **{v: f[v].to_numpy() for v in ("age",)},
            **{v: f[v].cast(pl.String).to_numpy() for v in tp.datasets.LEVELS},
            "S": s, "A": 1, "Y": 0.0,
        }))  # fmt: skip
    df = pd.concat(frames, ignore_index=True)
    model = "age + " + " + ".join(f"C({v})" for v in tp.datasets.LEVELS)
    ipsw = IPSW(df, exposure="A", outcome="Y", selection="S", generalize=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ipsw.sampling_model(model, stabilized=False, print_results=False)
    theirs = np.asarray(ipsw.ipsw, dtype=float)[: src.n]
    ours = tp.inverse_odds_weights(src, tgt).values
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
