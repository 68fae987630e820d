"""Model shipping: the shipped g-formula against transport() and R, the design rebuilt from
its spec, JSON round trips, the release gate's rules for models and their results, the
bootstrap intervals, and bad inputs."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import R_DIR, needs_r, read_levelled

import transport as tp
from transport import disclosure as dc

REF = R_DIR / "shipping_reference"
COVS = list(tp.datasets.COVARIATES)
STEP = 30.4375


def _cohort(name: str, file: str, rows: int | None = None) -> tp.Cohort:
    frame = read_levelled(file)
    if rows is not None:
        frame = frame.head(rows)
    return tp.Cohort(frame, time="os_days", event="os_event", covariates=COVS, name=name)


@pytest.fixture(scope="module")
def src() -> tp.Cohort:
    return _cohort("US", "cox_source.csv")


@pytest.fixture(scope="module")
def tgt() -> tp.Cohort:
    return _cohort("JP", "shipping_target.csv")


@pytest.fixture(scope="module")
def cox(src: tp.Cohort) -> tp.ShippedModel:
    return tp.ShippedModel.fit(src)


def small(n: int, seed: int, *, ecog_counts: tuple[int, ...] | None = None,
          extra: dict | None = None) -> pl.DataFrame:  # fmt: skip
    """``n`` patients with whole-day times, age and ECOG (given level counts)."""
    rng = np.random.default_rng(seed)
    if ecog_counts is None:
        ecog = rng.choice(["0", "1", "2"], n, p=[0.5, 0.3, 0.2])
    else:
        ecog = np.repeat(["0", "1", "2", "3"][: len(ecog_counts)], ecog_counts)
        rng.shuffle(ecog)
    age = np.round(rng.normal(65.0, 9.0, n), 1)
    t = np.ceil(rng.exponential(400.0 * np.exp(-0.02 * (age - 65)), n))
    c = np.ceil(rng.uniform(200.0, 1500.0, n))
    return pl.DataFrame(
        {
            "time": np.minimum(t, c),
            "event": (t <= c).astype(np.int64),
            "age": age,
            "ecog": ecog,
            "pid": [f"PX{seed:03d}{i:06d}" for i in range(n)],
            **(extra or {}),
        }
    )


def small_cohort(frame: pl.DataFrame, name: str = "S", **kw: object) -> tp.Cohort:
    covs = [c for c in frame.columns if c not in ("time", "event", "pid")]
    return tp.Cohort(frame, time="time", event="event", covariates=covs, name=name,
                     identifiers=["pid"], **kw)  # type: ignore[arg-type]  # fmt: skip


# -- the point estimate against transport() and R -----------------------------------------
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_shipped_gformula_equals_transport_at_grid_times(ties: str, src, tgt, tmp_path) -> None:
    model = tp.ShippedModel.fit(src, ties=ties)  # type: ignore[arg-type]
    grid = model.grid[model.grid <= 1500]
    res = tp.transport(src, tgt, method="gformula", times=grid, outcome_model="cox",
                       ties=ties)  # type: ignore[arg-type]  # fmt: skip
    theirs = res.transported.survival_at(grid)
    applied = model.apply(tgt, times=grid).transported.survival_at(grid)
    diff = max(np.max(np.abs(model.marginal_survival(tgt, grid) - theirs)),
               np.max(np.abs(applied - theirs)))  # fmt: skip
    print(f"max |shipped - transport()| at {grid.size} grid times ({ties}): {diff:.3g}")
    assert diff < 1e-10
    # median and RMST read the shipped curve between grid times (constant hazard within
    # a step), transport() its step curve at the event times: close, not equal
    ours = model.apply(tgt, tau=730.5).summary()["transported"].to_numpy()
    steps = tp.transport(src, tgt, method="gformula", tau=730.5, ties=ties)  # type: ignore[arg-type]
    theirs_m = steps.summary()["transported"].to_numpy()  # type: ignore[union-attr]
    print(
        f"median {ours[0]:.3f} vs {theirs_m[0]:.3f}; RMST(730.5) {ours[1]:.3f} vs {theirs_m[1]:.3f}"
    )
    assert abs(ours[0] - theirs_m[0]) < STEP and abs(ours[1] / theirs_m[1] - 1) < 0.005
    # after the gate, the released grid times carry the same values
    dc.release(model, tmp_path / "m")
    released = tp.ShippedModel.from_release(tmp_path / "m")
    kept = released.grid
    assert 10 < kept.size < model.grid.size
    gap = np.max(np.abs(released.marginal_survival(tgt, kept) - res.transported.survival_at(kept)))
    assert gap < 1e-10


CASES = {
    "breslow": {"ties": "breslow"},
    "efron": {},
    "efron_interaction": {"formula": " + ".join(COVS) + " + age:sex"},
    "pwexp_tv": {"model": "pwexp"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_shipped_gformula_matches_r(case: str, src, tgt) -> None:
    model = tp.ShippedModel.fit(src, **CASES[case])  # type: ignore[arg-type]
    ref = pl.read_csv(REF / "gformula.csv").filter(pl.col("case") == case)
    times = ref["time"].to_numpy()
    np.testing.assert_allclose(times, model.grid, rtol=0, atol=1e-12)  # the same grid
    diff = np.max(np.abs(model.marginal_survival(tgt, times) - ref["surv"].to_numpy()))
    print(f"max |shipped - R| at {times.size} grid times ({case}): {diff:.3g}")
    assert diff < 1e-8
    if case == "pwexp_tv":
        cuts = pl.read_csv(R_DIR / "data" / "shipping_breaks.csv")["cut"].to_numpy()
        np.testing.assert_array_equal(model.breaks, cuts)
    fun = pl.read_csv(REF / "functionals.csv").filter(pl.col("case") == case)
    if fun.height:
        off = fun.filter(pl.col("quantity") == "survival")["time"].cast(pl.Float64).to_numpy()
        res = model.apply(tgt, times=off, tau=730.5)
        ours = res.summary()["transported"].to_numpy()
        diff = np.max(np.abs(ours - fun["value"].to_numpy()))
        print(f"max |shipped - R| off the grid, median and RMST ({case}): {diff:.3g}")
        np.testing.assert_allclose(ours, fun["value"].to_numpy(), rtol=1e-9, atol=1e-10)


def test_observed_curve_matches_r(cox, tgt) -> None:
    ref = pl.read_csv(REF / "observed.csv")
    res = cox.apply(tgt, times=ref["time"].to_numpy())
    tab = res.observed.at(ref["time"].to_numpy())
    np.testing.assert_allclose(tab["survival"].to_numpy(), ref["surv"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(tab["se"].to_numpy(), ref["std_err"].to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(tab["n_risk_unweighted"].to_numpy(), ref["n_risk"].to_numpy())
    summ = res.summary()
    np.testing.assert_allclose(summ["observed"].to_numpy()[: ref.height], ref["surv"].to_numpy(),
                               atol=1e-12)  # fmt: skip


@pytest.mark.r
@needs_r("shipping_reference.R")
def test_r_regenerates_the_stored_numbers(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("cox_source.csv", "shipping_target.csv", "shipping_breaks.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    subprocess.run(["Rscript", str(R_DIR / "shipping_reference.R"), str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for name in ("gformula.csv", "functionals.csv", "observed.csv"):
        assert (tmp_path / "shipping_reference" / name).read_bytes() == (REF / name).read_bytes()


def test_curve_functionals_against_quadrature(cox, tgt) -> None:
    """Median and RMST of the shipped curve against scipy's root finder and quadrature on
    the curve itself (constant hazard within each grid step)."""
    from scipy.integrate import quad
    from scipy.optimize import brentq

    res = cox.apply(tgt, times=[45.0], tau=400.0)
    knots = np.concatenate(([0.0], cox.grid))
    H = np.column_stack((np.zeros(tgt.n), -np.log(cox.predict_survival(tgt, cox.grid))))

    def S(t: float) -> float:  # each patient's hazard interpolated between grid times
        k = min(int(np.searchsorted(knots, t, side="right")) - 1, knots.size - 2)
        frac = (t - knots[k]) / (knots[k + 1] - knots[k])
        return float(np.mean(np.exp(-(H[:, k] + frac * (H[:, k + 1] - H[:, k])))))

    cuts = np.concatenate((knots[knots < 400.0], [400.0]))
    rmst = sum(quad(S, a, b, epsabs=1e-12, epsrel=1e-12)[0] for a, b in itertools_pairs(cuts))
    med = brentq(lambda t: S(t) - 0.5, 1.0, 2000.0, xtol=1e-12)
    summ = res.summary()
    assert summ.filter(pl.col("estimand") == "rmst")["transported"][0] == pytest.approx(
        rmst, abs=1e-8
    )
    assert summ.filter(pl.col("estimand") == "median")["transported"][0] == pytest.approx(
        med, abs=1e-7
    )
    # S(45) lies between the grid values at 30.4 and 60.9, log-linear in the hazard
    s1, s2 = cox.marginal_survival(tgt, [STEP, 2 * STEP])
    assert s2 < summ["transported"][0] < s1


def itertools_pairs(x: np.ndarray) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in itertools.pairwise(x)]


# -- the design rebuilt from its spec -----------------------------------------------------
@pytest.mark.parametrize(
    "formula",
    [
        None,
        "age + sex + ecog + age:sex",
        "center(age) + C(regimen, contr.treatment('io')) + center(age):ecog",
        "scale(age) + stage * histology",
        "age + I(age ** 2) + pdl1",
    ],
)
def test_design_from_spec_equals_the_source_design(formula: str | None, src, tgt) -> None:
    design = tp.Design(src, formula)
    spec = json.loads(json.dumps(design.to_dict()))
    rebuilt = tp.Design.from_dict(spec)
    assert rebuilt.columns == design.columns
    assert rebuilt.levels == design.levels
    np.testing.assert_array_equal(rebuilt.matrix(tgt), design.matrix(tgt))
    np.testing.assert_array_equal(rebuilt.matrix(src), design.source_matrix)
    with pytest.raises(tp.DataError, match="rebuilt from a spec"):
        _ = rebuilt.source_matrix


def test_design_from_spec_keeps_the_source_state(src, tgt) -> None:
    """center() is centred on the source's mean, not the placeholder rows' or the target's."""
    design = tp.Design(src, "center(age) + sex")
    rebuilt = tp.Design.from_dict(design.to_dict())
    age = tgt.covariate_frame["age"].to_numpy()
    mean = float(src.covariate_frame["age"].mean())  # type: ignore[arg-type]
    np.testing.assert_allclose(rebuilt.matrix(tgt)[:, 0], age - mean, atol=1e-12)
    assert design.to_dict()["transform_state"]["center(age)"]["center"] == pytest.approx(mean)


def test_design_from_spec_refuses_what_it_cannot_rebuild(src) -> None:
    spec = tp.Design(src, "age + sex").to_dict()
    with pytest.raises(tp.DataError, match=r"lacks \['levels'\]"):
        tp.Design.from_dict({k: v for k, v in spec.items() if k != "levels"})
    wrong = {**spec, "columns": ["age", "sex[T.other]"]}
    with pytest.raises(tp.DataError, match="not the source's"):
        tp.Design.from_dict(wrong)
    untyped = {**spec, "types": {"age": "continuous"}}
    with pytest.raises(tp.DataError, match=r"covariates \['sex'\]"):
        tp.Design.from_dict(untyped)
    stateless = {**tp.Design(src, "center(age)").to_dict(), "transform_state": {}}
    with pytest.raises(tp.DataError, match="state of transforms"):
        tp.Design.from_dict(stateless)


def test_design_from_spec_whatever_the_placeholder_values(src, tgt) -> None:
    """The spec is evaluated on placeholder rows (ages 1, 2, 3...) only for its structure:
    a transform undefined there, such as log(age - 17), still ships (it once raised
    'cannot be evaluated on its covariates', which transport() never does)."""
    formula = "np.log(age - 17) + ecog"
    design = tp.Design(src, formula)
    rebuilt = tp.Design.from_dict(json.loads(json.dumps(design.to_dict())))
    np.testing.assert_array_equal(rebuilt.matrix(tgt), design.matrix(tgt))
    model = tp.ShippedModel.fit(src, formula)
    theirs = tp.transport(src, tgt, method="gformula", times=[365.25], outcome_formula=formula)
    np.testing.assert_allclose(model.marginal_survival(tgt, [365.25]),
                               theirs.transported.survival_at([365.25]), atol=1e-10)  # fmt: skip


def test_a_state_that_does_not_survive_json_is_a_clear_error(src) -> None:
    """poly()'s state has integer keys, which JSON turns into strings: the design cannot be
    rebuilt, and fit() says so as a DataError naming the transform rather than letting
    formulaic's KeyError out."""
    with pytest.raises(tp.DataError, match=r"poly\(age, 2\).*rule: "):
        tp.ShippedModel.fit(src, "poly(age, 2) + ecog")


def test_unseen_target_level_is_an_error_naming_column_level_and_rows(cox, tgt) -> None:
    frame = tgt.to_frame().with_columns(pl.col("ecog").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("4"))
        .otherwise(pl.col("ecog"))
        .alias("ecog")
    )
    odd = tp.Cohort(frame, time="os_days", event="os_event", covariates=COVS, name="JP")
    with pytest.raises(
        tp.DataError, match=r"covariate 'ecog' of cohort 'JP' has 1 level\(s\) that the source"
    ):
        cox.apply(odd, times=[365.25])
    shipped = tp.ShippedModel.from_dict(json.loads(json.dumps(cox.to_dict())))
    with pytest.raises(tp.DataError, match=r"never saw: 1 not named"):
        shipped.apply(odd)


# -- JSON ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cox", "pwexp"])
def test_json_round_trip(kind: str, tmp_path: Path) -> None:
    cohort = _cohort("US", "cox_source.csv", rows=500)
    model = tp.ShippedModel.fit(cohort, "age + ecog + stage", model=kind, n_boot=5, seed=11)  # type: ignore[arg-type]
    path = tmp_path / "model.json"
    model.to_json(path)
    back = tp.ShippedModel.from_json(path)
    assert back.to_dict() == model.to_dict()
    target = _cohort("JP", "shipping_target.csv")
    times = back.grid[:20]
    np.testing.assert_array_equal(back.marginal_survival(target, times),
                                  model.marginal_survival(target, times))  # fmt: skip
    a = model.apply(target, times=[182.625], tau=365.25, seed=3).summary()
    b = back.apply(target, times=[182.625], tau=365.25, seed=3).summary()
    assert a.equals(b)
    data = json.loads(path.read_text())
    assert isinstance(data["coef"][0], float) and isinstance(data["n"], float)
    assert isinstance(data["grid_counts"]["n_event"][0], float)
    text = path.read_text()
    assert '"os_days"' not in text  # no outcome columns, no rows
    assert len(data["bootstrap"]["coef"]) == 5


def test_bootstrap_refits_are_seeded(src) -> None:
    cohort = _cohort("US", "cox_source.csv", rows=300)
    a = tp.ShippedModel.fit(cohort, "age + ecog", n_boot=4, seed=5)
    b = tp.ShippedModel.fit(cohort, "age + ecog", n_boot=4, seed=5)
    c = tp.ShippedModel.fit(cohort, "age + ecog", n_boot=4, seed=6)
    assert a.boot_coef is not None and b.boot_coef is not None and c.boot_coef is not None
    np.testing.assert_array_equal(a.boot_coef, b.boot_coef)
    assert not np.allclose(a.boot_coef, c.boot_coef)
    # replicate 0 is the Cox fit on the resample drawn from child 0 of SeedSequence(5)
    from transport.inference import resample_counts
    from transport.survival._cox import fit_cox

    child = np.random.SeedSequence(5, spawn_key=(0,))
    cs = resample_counts(np.random.default_rng(child), cohort.n)
    X = tp.Design(cohort, "age + ecog").source_matrix
    fit = fit_cox(cohort.time_values, cohort.event_values, X, cs)
    np.testing.assert_allclose(a.boot_coef[0], fit.coef, rtol=1e-12)


def test_target_resamples_run_on_the_common_engine(tgt) -> None:
    """apply() runs its replicates on run_bootstrap: the same numbers for any n_jobs,
    progress reported, and replicate b's target resample drawn from the seed's child
    (TARGET_STREAM, b), as documented."""
    from transport.inference import resample_counts
    from transport.shipping import TARGET_STREAM

    cohort = _cohort("US", "cox_source.csv", rows=300)
    model = tp.ShippedModel.fit(cohort, "age + ecog", n_boot=6, seed=5)
    seen: list[tuple[int, int]] = []
    one = model.apply(
        tgt, times=[365.25], tau=730.5, seed=8, progress=lambda d, n: seen.append((d, n))
    )
    two = model.apply(tgt, times=[365.25], tau=730.5, seed=8, n_jobs=2)
    assert one.draws is not None and two.draws is not None
    np.testing.assert_array_equal(one.draws, two.draws)
    assert one.summary().equals(two.summary())
    assert seen and seen[-1] == (6, 6)
    ct = resample_counts(
        np.random.default_rng(np.random.SeedSequence(8, spawn_key=(TARGET_STREAM, 2))), tgt.n
    )
    km = tp.kaplan_meier(tgt, weights=ct, weight_type="frequency")
    k = one.k
    assert one.draws[2, k] == pytest.approx(km.survival_at([365.25])[0], abs=1e-12)


# -- inference -------------------------------------------------------------------------------
def test_bootstrap_se_is_that_of_transports_bootstrap() -> None:
    """Source refits shipped and target resampled in its own environment give the spread
    of transport()'s bootstrap, which resamples both cohorts in one place (B = 150 each,
    seeded; Monte Carlo error of an SE about 6%)."""
    source = _cohort("US", "cox_source.csv", rows=700)
    target = _cohort("JP", "shipping_target.csv")
    times = [6 * STEP, 12 * STEP]
    formula = "age + ecog + stage + regimen"
    model = tp.ShippedModel.fit(source, formula, n_boot=150, seed=1)
    ours = model.apply(target, times=times, tau=365.25, seed=2).summary()
    theirs = tp.transport(source, target, method="gformula", times=times, tau=365.25,
                          outcome_formula=formula, n_boot=150, seed=3).summary()  # fmt: skip
    np.testing.assert_allclose(ours["transported"][:2].to_numpy(),
                               theirs["transported"][:2].to_numpy(), atol=1e-12)  # fmt: skip
    for col in ("transported_se", "difference_se"):
        ratio = ours[col].to_numpy()[[0, 1, 3]] / theirs[col].to_numpy()[[0, 1, 3]]
        print(f"{col}: shipped / transport() bootstrap SE = {np.round(ratio, 3)}")
        assert np.all((ratio > 0.75) & (ratio < 1.33))
    for row in ours.iter_rows(named=True):
        assert row["transported_ci_lower"] < row["transported"] < row["transported_ci_upper"]
        assert row["ci_method"].startswith("bootstrap-percentile (150 shipped source refits")
    # the source model's share: with every shipped refit replaced by the full-data fit,
    # only the target's sampling is left, and the SE shrinks
    data = model.to_dict()
    data["bootstrap"]["coef"] = [data["coef"]] * 150
    data["bootstrap"]["hazard"] = [data["cox"]["hazard"]] * 150
    fixed = tp.ShippedModel.from_dict(data).apply(target, times=times, tau=365.25, seed=2)
    target_only = fixed.summary()["transported_se"].to_numpy()[[0, 1, 3]]
    full = ours["transported_se"].to_numpy()[[0, 1, 3]]
    print(f"target-only / full SE = {np.round(target_only / full, 3)}")
    assert np.all(target_only < 0.9 * full)


def test_the_same_seed_in_both_environments_keeps_the_resamples_apart() -> None:
    """Source refits and target resamples must be independent, as transport()'s are. With
    the same seed given to fit() and apply(), replicate b once drew the target's rows from
    the very generator the source's resample b came from: with cohorts of one size both
    sorted by time, source row i and target row i were drawn equally often, the
    transported and observed replicates moved together (correlation 0.63 instead of
    0.15) and the difference's SE came out a third too small."""
    source = _cohort("US", "cox_source.csv", rows=400)
    target = _cohort("JP", "shipping_target.csv")
    source = tp.Cohort(source.to_frame().sort("os_days"), time="os_days", event="os_event",
                       covariates=COVS, name="US")  # fmt: skip
    target = tp.Cohort(target.to_frame().sort("os_days"), time="os_days", event="os_event",
                       covariates=COVS, name="JP")  # fmt: skip
    assert source.n == target.n
    model = tp.ShippedModel.fit(source, "age + ecog", n_boot=200, seed=3)
    res = model.apply(target, times=[12 * STEP], seed=3)
    assert res.draws is not None
    from transport.inference import resample_counts

    km = tp.kaplan_meier(target)
    cs = resample_counts(np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0,))), 400)
    coupled = tp.kaplan_meier(target, weights=cs, weight_type="frequency")
    assert res.draws[0, 2] != pytest.approx(coupled.survival_at([12 * STEP])[0], abs=1e-12)
    assert res.draws[0, 2] != pytest.approx(km.survival_at([12 * STEP])[0], abs=1e-12)
    corr = np.corrcoef(res.draws[:, 0], res.draws[:, 2])[0, 1]
    print(f"correlation of transported and observed S(365) replicates: {corr:.2f}")
    assert corr < 0.4


def test_a_median_not_reached_is_not_a_failed_refit() -> None:
    """A replicate whose curve never reaches 0.5 has a median beyond its follow-up (a
    percentile limit falling on it is not estimable), not a failed refit: asked for the
    median alone, the interval and the failure count are those of the median row when
    S(t) is asked for too. (All of a replicate's estimands being nan once meant a failed
    refit, so such replicates were dropped and the upper limit came out finite.)"""
    rng = np.random.default_rng(3)
    n = 400
    t = np.ceil(rng.exponential(900.0, n))
    frame = pl.DataFrame({"time": np.minimum(t, 600.0), "event": (t <= 600.0).astype(np.int64),
                          "age": rng.normal(65.0, 9.0, n)})  # fmt: skip
    cohort = tp.Cohort(frame, time="time", event="event", covariates=["age"], name="late")
    model = tp.ShippedModel.fit(cohort, n_boot=200, seed=1)
    assert model.boot_failed == 0
    alone = model.apply(cohort, seed=2)
    assert alone.draws is not None and 0 < np.isnan(alone.draws[:, 0]).sum() < 200
    with_s = model.apply(cohort, times=[100.0], seed=2)
    a = alone.summary().row(0, named=True)
    b = with_s.summary().filter(pl.col("estimand") == "median").row(0, named=True)
    assert a["n_boot_failed"] == 0 and "failed" not in a["ci_method"]
    for col in ("transported", "transported_ci_lower", "transported_ci_upper",
                "observed_ci_lower", "observed_ci_upper", "difference_ci_upper"):  # fmt: skip
        assert a[col] == b[col], col
    assert a["transported_ci_upper"] is None  # over 2.5% of replicates never reach 0.5


def test_failed_refits_are_counted_and_left_out() -> None:
    """A rare level lost (or left without events) in a resample gives no finite Cox fit:
    the refit is a row of nan, counted, warned about and left out of the intervals."""
    rng = np.random.default_rng(12)
    n = 200
    frame = pl.DataFrame({"t": np.ceil(rng.exponential(300.0, n)), "d": rng.integers(0, 2, n),
                          "x": np.r_[["a"] * 197, ["b"] * 3]})  # fmt: skip
    cohort = tp.Cohort(frame, time="t", event="d", covariates=["x"], name="rare")
    model = tp.ShippedModel.fit(cohort, n_boot=40, seed=1)
    assert 0 < model.boot_failed < 40
    with pytest.warns(tp.TransportWarning, match=rf"{model.boot_failed} of 40 shipped bootstrap"):
        res = model.apply(cohort, times=[100.0], seed=2)
    summ = res.summary()
    assert summ["n_boot_failed"][0] == model.boot_failed
    assert summ["transported_se"][0] > 0


def test_without_refits_the_transported_interval_is_absent(cox, tgt) -> None:
    res = cox.apply(tgt, times=[365.25], tau=730.5, margin=0.1)
    summ = res.summary()
    assert summ["transported_se"].null_count() == 3
    assert set(summ["ci_method"]) == {"none (ship the model with n_boot)"}
    assert summ["observed_ci_lower"][0] is not None  # Greenwood
    assert summ["verdict"][0] == "inconclusive"
    eq = res.equivalence(0.2)
    assert eq["margin"][0] == 0.2


# -- the gate: models ------------------------------------------------------------------------
def test_release_writes_a_manifest_and_no_patient_values(tmp_path: Path) -> None:
    frame = small(400, 1)
    cohort = small_cohort(frame)
    model = tp.ShippedModel.fit(cohort, n_boot=3, seed=2)
    out = tmp_path / "model"
    manifest = dc.release(model, out)
    assert manifest["object"] == "ShippedModel"
    assert {f["file"] for f in manifest["files"]} == {
        "shipped_model.json",
        "shipped_model_coef.csv",
    }
    dc.verify(out)
    text = "\n".join(p.read_text() for p in out.iterdir() if p.name != "manifest.json")
    assert "PX001" not in text and "pid" not in text
    data = json.loads((out / "shipped_model.json").read_text())
    grid = np.asarray(data["grid"])
    np.testing.assert_allclose(grid / STEP, np.round(grid / STEP), atol=1e-9)  # on the grid
    for key in ("n_risk", "n_event", "n_censor"):
        assert all(x % 5 == 0 for x in data["grid_counts"][key])  # rounded
    assert data["n"] % 5 == 0 and data["level_counts"] is None and data["released"]
    exits = np.asarray(data["grid_counts"]["n_event"]) + np.asarray(data["grid_counts"]["n_censor"])
    assert np.all((exits == 0) | (exits >= 10))
    back = tp.ShippedModel.from_release(out)
    assert back.released and back.n_boot == 3
    target = small_cohort(small(150, 2), name="T")
    # the centre is released on a lattice, the baseline moved to it: the same predictions
    gap = back.marginal_survival(target, back.grid) - model.marginal_survival(target, back.grid)
    assert np.max(np.abs(gap)) < 1e-10
    assert not np.array_equal(back.center, model.center)
    # the bootstrap travels as its summary at the released grid times, never as refits
    assert back.boot_coef is None and back.boot_extra is None and back.boot_entropy is None
    assert back.boot_summary is not None
    width = back.coef.size + back.grid.size
    assert back.boot_summary.cov.shape == (width, width)
    assert set(data["bootstrap"]) == {"n_boot", "failed", "level", "cov", "se", "lower", "upper"}
    # a released model cannot be released again (its cell counts are gone)
    with pytest.raises(tp.DisclosureError, match=r"released before.*rule: min_cell"):
        dc.release(back, tmp_path / "again")
    # nor with a policy whose grid differs from the one it was fitted on
    with pytest.raises(tp.DisclosureError, match="rule: km_grid"):
        dc.release(model, tmp_path / "weekly", dc.Policy(km_grid_step=7.0))


def test_released_baseline_merges_thin_steps_and_stops_at_min_cell(tmp_path: Path) -> None:
    cohort = small_cohort(small(120, 3))
    model = tp.ShippedModel.fit(cohort, "age")
    policy = dc.Policy(min_km_step=15, min_cell=20)
    manifest = dc.release(model, tmp_path / "m", policy)
    back = tp.ShippedModel.from_release(tmp_path / "m")
    rules = {s["rule"] for s in manifest["suppressed"]}
    assert {"min_km_step", "min_cell"} <= rules
    assert back.grid.size < model.grid.size
    counts = model.grid_counts
    idx = np.searchsorted(model.grid, back.grid)
    exits = np.diff(np.concatenate(([0.0], np.cumsum(counts["n_event"] + counts["n_censor"])[idx])))
    assert np.all((exits == 0) | (exits >= 15))
    assert np.all(counts["n_risk"][np.concatenate(([0], idx[:-1] + 1))] >= 20)
    with pytest.raises(tp.DataError, match=r"ends at .* \(rule: times within"):
        back.apply(cohort, times=[float(model.grid[-1])])


def test_min_residual_df_fires_on_a_small_model_and_passes_a_safe_one(tmp_path: Path) -> None:
    frame = small(60, 4, extra={"stage": np.repeat(["I", "II", "III", "IV"], 15),
                                "sex": np.tile(["f", "m"], 30)})  # fmt: skip
    cohort = small_cohort(frame)
    events = int(cohort.event_values.sum())
    big = tp.ShippedModel.fit(cohort, "age + ecog + stage + sex")  # 7 parameters
    policy = dc.Policy(min_residual_df=events - 6)
    with pytest.raises(tp.DisclosureError, match=r"7 parameters.*rule: min_residual_df"):
        dc.release(big, tmp_path / "big", policy)
    safe = tp.ShippedModel.fit(cohort, "age")
    dc.release(safe, tmp_path / "safe", policy)  # events - 1 >= events - 6
    assert (tmp_path / "safe" / "manifest.json").exists()
    assert not (tmp_path / "big").exists() or not any((tmp_path / "big").iterdir())


def test_small_levels_are_refused_with_advice_to_merge(tmp_path: Path) -> None:
    cohort = small_cohort(small(300, 5, ecog_counts=(150, 144, 6)))
    model = tp.ShippedModel.fit(cohort)
    small_level = r"covariate 'ecog'.*has 1 level\(s\) with fewer than 10.*rule: min_cell.*merge"
    with pytest.raises(tp.DisclosureError, match=small_level):
        dc.release(model, tmp_path / "m")
    # the reference level counts too: it is recovered as the rest of the total
    ref_small = small_cohort(small(300, 6, ecog_counts=(7, 150, 143)))
    with pytest.raises(tp.DisclosureError, match=r"has 1 level\(s\).*rule: min_cell"):
        dc.release(tp.ShippedModel.fit(ref_small), tmp_path / "r")
    # an interaction column resting on few patients
    frame = small(300, 7).with_columns(
        pl.Series("flag", np.r_[np.ones(12), np.zeros(288)].astype(np.int64).astype(str))
    )
    inter = tp.ShippedModel.fit(small_cohort(frame), "age + ecog + flag + ecog:flag")
    with pytest.raises(
        tp.DisclosureError, match=r"design column 'ecog\[T\.\d\]:flag\[T\.1\]'.*min_cell"
    ):
        dc.release(inter, tmp_path / "i")


@pytest.mark.parametrize(
    "formula",
    ["age + center(hiv)", "age + scale(hiv)", "age + I(hiv - 0.5)", "age + I(2 * hiv - 1)"],
)
def test_a_rare_flag_is_refused_however_it_is_shifted(formula: str, tmp_path: Path) -> None:
    """A 0/1 flag typed continuous (an integer column) held by 3 of 300 patients: as
    ``hiv`` its design column is nonzero for 3 and the cell rule refuses it; centred,
    scaled or shifted, every row is nonzero, yet the shipped state or column mean (0.01)
    still gives the 3 patients, and the coefficient rests on them alone."""
    frame = small(300, 7).with_columns(pl.Series("hiv", np.r_[np.ones(3), np.zeros(297)]))
    cohort = small_cohort(frame)
    with pytest.raises(tp.DisclosureError, match=r"rule: min_cell"):
        dc.release(tp.ShippedModel.fit(cohort, "age + hiv"), tmp_path / "plain")
    with pytest.raises(tp.DisclosureError, match=r"'hiv'.*fewer than 10 source.*rule: min_cell"):
        dc.release(tp.ShippedModel.fit(cohort, formula), tmp_path / "shifted")
    common = small(300, 7).with_columns(pl.Series("hiv", np.r_[np.ones(40), np.zeros(260)]))
    dc.release(tp.ShippedModel.fit(small_cohort(common), formula), tmp_path / "safe")


@pytest.mark.parametrize("term", ["hiv", "center(hiv)", "I(hiv - 0.5)"])
def test_a_small_cell_of_a_flag_within_a_level_is_refused(term: str, tmp_path: Path) -> None:
    """40 patients have the flag, 8 of them ECOG 2. The interaction column of the plain
    flag is nonzero for those 8; of the centred or shifted flag it is nonzero for all 64
    ECOG 2 patients, but its mean gives the 8 back (-0.00178 = (8 - 64 * 40/300) / 300
    centred), so the cell rule counts the patients behind each value of the flag within
    the column's nonzero rows."""
    rng = np.random.default_rng(0)
    frame = small(300, 7).with_columns(
        pl.Series("hiv", rng.permutation(np.r_[np.ones(40), np.zeros(260)]))
    )
    ecog2 = frame["ecog"].to_numpy() == "2"
    assert int(np.sum(ecog2 & (frame["hiv"].to_numpy() == 1))) == 8
    model = tp.ShippedModel.fit(small_cohort(frame), f"age + ecog + {term} + {term}:ecog")
    with pytest.raises(tp.DisclosureError, match=r"design column .*:ecog\[T\.2\].*rule: min_cell"):
        dc.release(model, tmp_path / "m")


def test_forbidden_names_and_disclosive_transforms_are_refused(tmp_path: Path) -> None:
    frame = small(300, 8, extra={"gp_code": np.tile(["A", "B", "C"], 100)})
    model = tp.ShippedModel.fit(small_cohort(frame), "age + gp_code")
    with pytest.raises(tp.DisclosureError, match=r"'gp_code'.*rule: forbidden_column"):
        dc.release(model, tmp_path / "gp")
    spline = tp.ShippedModel.fit(small_cohort(small(300, 9)), "bs(age, df=3) + ecog")
    with pytest.raises(tp.DisclosureError, match=r"bs\(age, df=3\).*individual.*rule: min_cell"):
        dc.release(spline, tmp_path / "bs")
    centred = tp.ShippedModel.fit(small_cohort(small(300, 9)), "center(age) + ecog")
    dc.release(centred, tmp_path / "c")  # a mean is an aggregate


def test_pwexp_breaks_are_on_the_grid_and_hold_enough_events(tmp_path: Path, src) -> None:
    model = tp.ShippedModel.fit(src, model="pwexp", breaks=12)
    assert model.breaks is not None and model.interval_counts is not None
    np.testing.assert_allclose(model.breaks / STEP, np.round(model.breaks / STEP), atol=1e-12)
    assert np.all(model.interval_counts["n_event"] >= 10)
    assert np.all(model.interval_counts["n_risk"] >= 10)
    from transport.survival.models import PiecewiseExponentialModel

    raw = PiecewiseExponentialModel(src, breaks=12).breaks
    assert not np.allclose(raw / STEP, np.round(raw / STEP))  # quantiles are event times
    manifest = dc.release(model, tmp_path / "pw")
    data = json.loads((tmp_path / "pw" / "shipped_model.json").read_text())
    assert data["pwexp"]["breaks"] == model.breaks.tolist()
    assert all(x % 5 == 0 for x in data["pwexp"]["interval_counts"]["n_risk"])
    # the events of each interval are released exact: the model's information holds
    # them (rounded, the covariance would undo the rounding)
    events = data["pwexp"]["interval_counts"]["n_event"]
    assert events == model.interval_counts["n_event"].tolist()
    info = np.diag(np.linalg.inv(np.asarray(data["cov"])))[: len(events)]
    np.testing.assert_allclose(info, events, rtol=1e-6)
    assert data["n_events"] == sum(events) == model.n_events
    assert manifest["object"] == "ShippedModel"


@pytest.mark.parametrize("kind", ["cox", "pwexp"])
def test_moving_an_event_time_within_a_step(kind: str, tmp_path: Path) -> None:
    """The known limit the module states, pinned. Two sources differing only by one
    patient's death at day 400 or 410 (one grid step): the released grid, its counts,
    the design, the covariate means and the cut points are identical, as for a released
    curve; the fitted numbers are not (the partial likelihood's risk sets and the
    exposures use exact times), so whoever holds both releases and every other row can
    refit over the step's days and find 410."""
    base = small(300, 14)

    def source(day: float) -> tp.Cohort:
        extra = base[:1].with_columns(
            pl.lit(day).alias("time"), pl.lit(1).cast(pl.Int64).alias("event"),
            pl.lit("PXnew").alias("pid"),
        )  # fmt: skip
        return small_cohort(pl.concat([base, extra]))

    assert math.floor(400 / STEP) == math.floor(410 / STEP)
    released = []
    for day in (400.0, 410.0):
        d = tmp_path / f"d{day:g}"
        dc.release(tp.ShippedModel.fit(source(day), model=kind), d)  # type: ignore[arg-type]
        released.append(json.loads((d / "shipped_model.json").read_text()))
    a, b = released
    same = ("design", "grid", "grid_counts", "n", "n_events", "names")
    assert all(a[key] == b[key] for key in same)
    if kind == "cox":
        assert a["cox"]["center"] == b["cox"]["center"]
        assert a["cox"]["hazard"] != b["cox"]["hazard"]
    else:
        assert a["pwexp"]["breaks"] == b["pwexp"]["breaks"]
        assert a["pwexp"]["interval_counts"] == b["pwexp"]["interval_counts"]
    assert a["coef"] != b["coef"]
    # the differencing attack: refit with every other row over the step's days
    lo, hi = math.floor(400 / STEP) * STEP, math.ceil(400 / STEP) * STEP
    days = np.arange(math.ceil(lo), math.floor(hi) + 1.0)
    gaps = [np.max(np.abs(tp.ShippedModel.fit(source(d), model=kind).coef - b["coef"]))  # type: ignore[arg-type]
            for d in days]  # fmt: skip
    assert days[int(np.argmin(gaps))] == 410.0 and np.sort(gaps)[0] < 1e-9 < np.sort(gaps)[1]


# -- the gate: results -----------------------------------------------------------------------
def test_release_of_a_result(tmp_path: Path, src, tgt) -> None:
    model = tp.ShippedModel.fit(src, "age + ecog + stage", n_boot=20, seed=4)
    with pytest.raises(tp.DisclosureError, match=r"not released.*rule: km_grid"):
        dc.release(model.apply(tgt, times=[365.25]), tmp_path / "raw")
    dc.release(model, tmp_path / "model")
    shipped = tp.ShippedModel.from_release(tmp_path / "model")
    late = float(shipped.grid[-1])
    assert tp.kaplan_meier(tgt).at([late])["n_risk_unweighted"][0] < 10
    res = shipped.apply(tgt, times=[365.25, late, 3.0], tau=730.5, seed=5)
    assert 0 < int(np.sum(tgt.time_values <= 3.0)) < 10  # a few exits before day 3
    manifest = dc.release(res, tmp_path / "res")
    assert manifest["object"] == "ShippedResult"
    assert {f["file"] for f in manifest["files"]} == {
        "shipped_summary.csv", "shipped_curves.csv", "shipped_result.json"}  # fmt: skip
    summ = pl.read_csv(tmp_path / "res" / "shipped_summary.csv")
    # the transported S(t) is the target's expected survivors, rounded as counts are (to 5)
    # over the released n (400)
    delta = 5 / 400
    assert summ["transported"][0] == pytest.approx(res.summary()["transported"][0], abs=delta / 2)
    assert summ["transported"][0] / delta == pytest.approx(round(summ["transported"][0] / delta))
    assert summ["transported"][1] is None  # few target patients left at risk
    assert summ["transported"][2] is None and summ["difference"][2] is None  # few exits
    assert summ.filter(pl.col("estimand") == "rmst")["transported"][0] is not None
    med = summ.filter(pl.col("estimand") == "median")
    for col in ("transported", "observed", "transported_ci_lower", "transported_ci_upper"):
        assert med[col][0] / STEP == pytest.approx(round(med[col][0] / STEP), abs=1e-9)
    rules = {s["rule"] for s in manifest["suppressed"]}
    assert {"min_cell", "min_km_step", "time_grid"} <= rules
    tiny = tp.Cohort(tgt.to_frame().head(8), time="os_days", event="os_event", covariates=COVS,
                     name="tiny")  # fmt: skip
    with pytest.raises(tp.DisclosureError, match=r"fewer than 10 patients.*min_cell"):
        dc.release(shipped.apply(tiny), tmp_path / "tiny")


def test_released_result_times_need_exits_between_them(tmp_path: Path, src, tgt) -> None:
    """As the gate now asks of a TransportResult: S(t) and RMST rows at two times a day
    apart, with one target death between them, would give that death away (the observed
    S(t) falls by 1 / n_risk); the later one is withheld, and so is a median's
    equivalence p-value (a function of the exact difference)."""
    model = tp.ShippedModel.fit(src, "age + ecog + stage")
    dc.release(model, tmp_path / "model")
    shipped = tp.ShippedModel.from_release(tmp_path / "model")
    time, event = tgt.time_values, tgt.event_values
    # a day with exactly one target exit (a death), well inside follow-up
    days = np.unique(time[(event > 0) & (time > 200) & (time < 500)])
    one = [d for d in days if np.sum(time == d) == 1 and np.sum((time > d - 1) & (time <= d)) == 1]
    t = float(one[0])
    res = shipped.apply(tgt, times=[t - 1.0, t], tau=t, margin={"survival": 0.1, "median": 60.0})
    ours = res.summary()
    assert ours["observed"][0] - ours["observed"][1] > 0  # the death shows in the exact rows
    dc.release(res, tmp_path / "res")
    summ = pl.read_csv(tmp_path / "res" / "shipped_summary.csv")
    assert summ["observed"][0] is not None
    assert summ["observed"][1] is None and summ["transported"][1] is None
    assert summ.filter(pl.col("estimand") == "rmst")["observed"][0] is None
    assert summ.filter(pl.col("estimand") == "median")["equivalence_p"][0] is None


# -- bad inputs ------------------------------------------------------------------------------
def test_bad_inputs_give_clear_errors(cox, src, tgt) -> None:
    with pytest.raises(tp.DataError, match=r"times \[5000.0\] lie outside .* ends at"):
        cox.apply(tgt, times=[5000.0])
    with pytest.raises(tp.DataError, match=r"tau \[9000.0\]"):
        cox.apply(tgt, tau=9000.0)
    frame = tgt.to_frame().with_columns((pl.col("os_days") / 2).alias("entry"))
    delayed = tp.Cohort(frame, time="os_days", event="os_event", entry="entry", covariates=COVS,
                        name="JPd")  # fmt: skip
    with pytest.raises(tp.DataError, match=r"delayed entry \(column 'entry'; 400 rows\)"):
        cox.apply(delayed)
    less = tp.Cohort(tgt.to_frame().drop("regimen"), time="os_days", event="os_event",
                     covariates=[c for c in COVS if c != "regimen"], name="JP")  # fmt: skip
    with pytest.raises(tp.DataError, match=r"covariates \['regimen'\].*not covariates of cohort"):
        cox.apply(less)
    with pytest.raises(TypeError, match="'target' parameter of apply must be a Cohort"):
        cox.apply(tgt.to_frame())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'n_boot'.*at least 2"):
        tp.ShippedModel.fit(src, n_boot=1)
    with pytest.raises(ValueError, match="'model' parameter must be 'cox' or 'pwexp'"):
        tp.ShippedModel.fit(src, model="weibull")  # type: ignore[arg-type]
    with pytest.raises(tp.DataError, match="not a shipped model"):
        tp.ShippedModel.from_dict({"schema": "something else"})
    data = cox.to_dict()
    data["coef"] = data["coef"][:-1]
    with pytest.raises(tp.DataError, match="inconsistent: 13 coefficients, 14 names"):
        tp.ShippedModel.from_dict(data)
    broken = {k: v for k, v in cox.to_dict().items() if k != "grid"}
    with pytest.raises(tp.DataError, match="lacks field 'grid'"):
        tp.ShippedModel.from_dict(broken)


def test_target_in_another_time_unit_is_converted(cox, tgt) -> None:
    months = tgt.in_unit("months")
    a = cox.apply(tgt, times=[365.25], tau=730.5).summary()
    b = cox.apply(months, times=[365.25], tau=730.5).summary()
    np.testing.assert_allclose(a["transported"].to_numpy(), b["transported"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(a["observed"].to_numpy(), b["observed"].to_numpy(), rtol=1e-9)
    assert math.isfinite(a["difference"][0])


# -- the target's checks of what it applies -------------------------------------------------
def test_max_log_hazard_ratio_is_validated_and_bounds_every_prediction(cox, tgt) -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="max_log_hazard_ratio"):
            dc.Policy(max_log_hazard_ratio=bad)  # type: ignore[arg-type]
    assert dc.Policy().max_log_hazard_ratio == 10.0
    assert dc.Policy.from_dict({"max_log_hazard_ratio": 4}).to_dict()["max_log_hazard_ratio"] == 4
    spread = cox.log_hazard_spread(cox.design.matrix(tgt))
    assert 2.0 < spread < 4.0  # the US model of main effects over JP's rows
    tight = dc.Policy(max_log_hazard_ratio=spread / 2)  # smaller tightens
    for call in (cox.marginal_survival, cox.predict_survival):
        with pytest.raises(tp.DisclosureError, match=r"wider than .* \(rule: model_bounds"):
            call(tgt, [365.25], policy=tight)
    with pytest.raises(tp.DisclosureError, match="rule: model_bounds"):
        cox.apply(tgt, times=[365.25], policy=tight)
    res = cox.apply(tgt, times=[365.25])
    assert res.log_hazard_spread == pytest.approx(spread)


def test_effective_contributors_count_the_patients_behind_a_mean() -> None:
    from transport.policy import effective_contributors

    rng = np.random.default_rng(4)
    p = rng.uniform(0.2, 0.9, 500)
    assert effective_contributors(p)[0] > 100  # patients who differ, many of them
    for m in (1, 3, 9, 25):  # m patients apart from 500 - m who share one value: about m
        two = np.r_[np.full(500 - m, 0.95), np.full(m, 0.01)]
        # the spread's count: sum d^2 / max d^2 (no row over 1/m of it), below Kish's
        assert effective_contributors(two)[0] == pytest.approx(m / (1 - m / 500), rel=1e-3)
    # one patient who alone dies among patients who all live, or the reverse
    assert effective_contributors(np.r_[np.ones(499), 0.0])[0] == pytest.approx(1.0, abs=0.01)
    assert effective_contributors(np.r_[np.zeros(499), 1.0])[0] == pytest.approx(1.0, abs=0.01)
    assert effective_contributors(np.full(500, 0.7))[0] == 0.0  # all equal: the baseline


def test_a_released_model_gives_intervals_from_its_bootstrap_summary(tmp_path: Path, tgt) -> None:
    """The released model carries the refits' summary, not the refits; the target's
    replicates draw from it (same numbers for any n_jobs); a forged covariance that
    would draw extreme models is refused (model_bounds) where it is applied."""
    source = _cohort("US", "cox_source.csv", rows=500)
    model = tp.ShippedModel.fit(source, "age + ecog", n_boot=60, seed=9)
    dc.release(model, tmp_path / "model")
    data = json.loads((tmp_path / "model" / "shipped_model.json").read_text())
    assert "seed_entropy" not in data["bootstrap"] and data["bootstrap"]["n_boot"] == 60
    coef = pl.read_csv(tmp_path / "model" / "shipped_model_coef.csv")
    assert {"bootstrap_se", "bootstrap_lower", "bootstrap_upper"} <= set(coef.columns)
    back = tp.ShippedModel.from_release(tmp_path / "model")
    assert back.boot_kind == "parametric" and back.n_boot == 60 and back.boot_coef is None
    one = back.apply(tgt, times=[365.25], tau=730.5, seed=8)
    two = back.apply(tgt, times=[365.25], tau=730.5, seed=8, n_jobs=2)
    assert one.draws is not None and two.draws is not None
    np.testing.assert_array_equal(one.draws, two.draws)
    assert one.summary()["ci_method"][0].startswith(
        "bootstrap-percentile (60 parametric draws from the shipped bootstrap covariance"
    )
    data["bootstrap"]["cov"] = (np.asarray(data["bootstrap"]["cov"]) * 1e4).tolist()
    forged = tp.ShippedModel.from_dict(data)
    with pytest.raises(tp.DisclosureError, match="rule: model_bounds"):
        forged.apply(tgt, times=[365.25], seed=8)
    data["bootstrap"] = {"coef": [data["coef"]] * 3, "hazard": [data["cox"]["hazard"]] * 3}
    with pytest.raises(tp.DataError, match=r"per-replicate refits \(rule: bootstrap_summary"):
        tp.ShippedModel.from_dict(data)
