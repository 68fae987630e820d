"""The methods-validation study runner (transport.simulate.Study) and its scenarios.

Small seeded studies (a few replicates of small cohorts): reproducibility across worker
counts and backends, checkpoint / resume, recorded failures, input errors, and the
scenarios' truths against independent Monte Carlo. The full studies are slow-marked
elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.integrate import quad
from scipy.stats import norm

import transport as tp
import transport.simulate.study as study_mod
from transport.simulate import Scenario, Study, StudyResult, scenario, scenarios
from transport.simulate.scenarios import Population
from transport.simulate.study import _unbounded_median

ALL = ["naive", "iow", "entropy", "gformula", "aipw"]


def small(name: str = "correct", **kw: object) -> Scenario:
    """A built-in scenario with cohorts of 300 and 150 (fast)."""
    sc = scenario(name, **kw)
    return replace(sc, source=replace(sc.source, n=300), target=replace(sc.target, n=150))


def test_scenario_names() -> None:
    assert scenarios() == [
        "correct",
        "participation_misspecified",
        "outcome_misspecified",
        "both_misspecified",
        "weak_overlap",
        "unmeasured_modifier",
        "small_target",
        "informative_censoring",
    ]
    for name in scenarios():
        sc = scenario(name)
        assert sc.name == name and len(sc.description) > 40
    assert scenario("small_target").target.n == 200
    assert scenario("unmeasured_modifier", strength=0.5).name == "unmeasured_modifier(0.5)"
    assert scenario("participation_misspecified").formula == "x1 + x2"
    assert scenario("outcome_misspecified").outcome_formula == "x1 + x2"


def test_design_call_and_result_table() -> None:
    """The DESIGN §3 call, with few replicates run; the tidy replicates table."""
    study = tp.simulate.Study(
        scenario="correct",
        methods=["naive", "iow", "entropy", "gformula", "aipw"],
        n_reps=200,
        seed=1,
        times=[12.0],
        tau=24.0,
    )
    assert study.n_reps == 200 and study.methods == tuple(ALL)
    out = Study(scenario=small(), methods=ALL, n_reps=2, seed=1, times=[12.0], tau=24.0).run(
        backend="processes", n_jobs=1
    )
    assert isinstance(out, StudyResult)
    r = out.replicates
    assert r.columns == [
        "scenario", "method", "estimand", "time", "rep", "estimate", "se", "ci_lower",
        "ci_upper", "ci_method", "truth", "error", "warning",
    ]  # fmt: skip
    assert r.height == 2 * 5 * 3  # reps x methods x (S(12), median, RMST(24))
    assert r["error"].null_count() == r.height
    assert r["truth"].null_count() == 0 and r["estimate"].null_count() == 0
    # influence-function intervals where they exist (weighting), none for the models
    iow = r.filter((pl.col("method") == "iow") & (pl.col("estimand") == "survival"))
    assert (iow["ci_lower"] < iow["estimate"]).all() and (iow["estimate"] < iow["ci_upper"]).all()
    assert r.filter(pl.col("method") == "gformula")["se"].null_count() == 6
    m = out.metrics()
    assert m.height == 5 * 3 and set(m["method"]) == set(ALL)
    assert (m["n_reps"] == 2).all()


def test_same_seed_identical_for_any_number_of_workers() -> None:
    kw = dict(methods=["naive", "iow", "gformula"], n_reps=4, times=[6.0, 12.0], tau=24.0)
    scen = [small(), small("outcome_misspecified")]
    one = Study(scenario=scen, seed=3, **kw).run(n_jobs=1).replicates  # type: ignore[arg-type]
    two = Study(scenario=scen, seed=3, **kw).run(n_jobs=2).replicates  # type: ignore[arg-type]
    assert_frame_equal(one, two)
    other = Study(scenario=scen, seed=4, **kw).run(n_jobs=1).replicates  # type: ignore[arg-type]
    assert not np.array_equal(one["estimate"].to_numpy(), other["estimate"].to_numpy())
    # a replicate depends on (seed, scenario index, rep) only, not on n_reps
    short = Study(scenario=scen, seed=3, **{**kw, "n_reps": 2}).run().replicates  # type: ignore[arg-type]
    assert_frame_equal(short, one.filter(pl.col("rep") < 2))


def test_dask_backend_equals_processes() -> None:
    distributed = pytest.importorskip("distributed")
    study = Study(scenario=small(), methods=["naive", "iow"], n_reps=3, seed=5)
    local = study.run().replicates
    with (
        distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = study.run(backend="dask", client=client).replicates
    assert_frame_equal(local, remote)


def test_dask_local_cluster_of_processes_on_loopback_equals_local() -> None:
    """As on a real cluster: worker processes talking over TCP on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    study = Study(scenario=small(), methods=["naive", "iow"], n_reps=2, seed=11)
    local = study.run().replicates
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert all(a.startswith("tcp://127.0.0.1") for a in client.scheduler_info()["workers"])
        remote = study.run(backend="dask", client=client).replicates
    assert_frame_equal(local, remote)


def test_a_median_upper_limit_not_reached_is_unbounded() -> None:
    row = {"estimand": "median", "transported_ci_lower": 20.0, "transported_ci_upper": None}
    _unbounded_median(row)
    assert row["transported_ci_upper"] == math.inf
    for lo in (None, float("nan")):  # no lower limit either: no interval
        row = {"estimand": "median", "transported_ci_lower": lo, "transported_ci_upper": None}
        _unbounded_median(row)
        assert row["transported_ci_upper"] is None
    row = {"estimand": "survival", "transported_ci_lower": 0.2, "transported_ci_upper": None}
    _unbounded_median(row)
    assert row["transported_ci_upper"] is None


def test_bootstrap_intervals() -> None:
    out = Study(scenario=small(), methods=["gformula"], n_reps=1, n_boot=20, seed=2).run()
    r = out.replicates
    assert r["ci_method"].str.starts_with("bootstrap").all()
    surv = r.filter(pl.col("estimand") == "survival").row(0, named=True)
    assert surv["se"] > 0 and surv["ci_lower"] < surv["estimate"] < surv["ci_upper"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scenario": "corect"}, r"Unknown scenario 'corect'.*one of \['correct'"),
        ({"scenario": ["correct", "correct"]}, "distinct names"),
        ({"scenario": 3}, "Unknown scenario 3"),
        ({"methods": ["iow", "ipw"]}, r"Unknown method\(s\) \['ipw'\].*one of \['naive'"),
        ({"methods": []}, "at least one method"),
        ({"n_reps": 0}, r"'n_reps' parameter must be an integer from 1 to 10,000,000\. Got 0"),
        ({"n_reps": 2.5}, r"'n_reps' .* Got 2\.5"),
        ({"n_reps": True}, r"'n_reps' .* Got True"),
        ({"seed": -1}, r"'seed' .* >= 0\. Got -1"),
        ({"times": [0.0]}, "'times' parameter must be positive"),
        ({"tau": -1.0}, "'tau' parameter must be positive"),
        ({"n_boot": 1}, r"'n_boot' .* Got 1"),
        ({"time_unit": "fortnights"}, "'time_unit' parameter must be 'days'"),
    ],
)
def test_bad_arguments_are_named(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Study(**kw)


def test_bad_run_arguments_and_options() -> None:
    study = Study(n_reps=1)
    with pytest.raises(ValueError, match="'backend' parameter must be 'processes' or 'dask'"):
        study.run(backend="threads")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'n_jobs' .* Got 0"):
        study.run(n_jobs=0)
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['strength'\]"):
        scenario("correct", strength=1.0)
    with pytest.raises(ValueError, match="'strength' option must be a finite number"):
        scenario("unmeasured_modifier", strength=float("nan"))


def test_a_failing_method_is_recorded_not_raised() -> None:
    broken = replace(small(), name="broken", formula="x1 + nowhere")
    out = Study(scenario=broken, methods=["naive", "iow", "gformula"], n_reps=2).run()
    r = out.replicates
    failed = r.filter(pl.col("method") == "iow")
    assert failed["estimate"].null_count() == failed.height == 6
    assert failed["error"].str.contains("nowhere").all()
    assert failed["truth"].null_count() == 0
    ok = r.filter(pl.col("method") != "iow")
    assert ok["error"].null_count() == ok.height and ok["estimate"].null_count() == 0
    assert out.failures().height == 2
    assert out.metrics().filter(pl.col("method") == "iow")["n_failed"].to_list() == [2, 2, 2]


def test_checkpoint_resumes_only_the_missing_replicates(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path)) / "study"
    kw = dict(scenario=[small(), small("weak_overlap")], methods=["naive", "iow"], n_reps=3)
    full = Study(**kw).run().replicates  # type: ignore[arg-type]

    calls: list[tuple[int, int]] = []
    original = study_mod._replicate

    def counting(spec: object, s: int, r: int) -> pl.DataFrame:
        calls.append((s, r))
        return original(spec, s, r)  # type: ignore[arg-type]

    monkeypatch.setattr(study_mod, "_replicate", counting)
    first = Study(**kw).run(checkpoint=directory).replicates  # type: ignore[arg-type]
    assert_frame_equal(first, full)
    files = sorted(p.name for p in directory.glob("*.parquet"))
    assert files == [f"s{s:03d}-r{r:06d}.parquet" for s in (0, 1) for r in range(3)]
    assert json.loads((directory / "study.json").read_text())["seed"] == 1

    # an interrupted run: two replicates never written
    (directory / "s000-r000001.parquet").unlink()
    (directory / "s001-r000002.parquet").unlink()
    calls.clear()
    resumed = Study(**kw).run(checkpoint=directory).replicates  # type: ignore[arg-type]
    assert sorted(calls) == [(0, 1), (1, 2)]
    assert_frame_equal(resumed, full)

    # a longer study extends the same replicates; nothing recomputed
    calls.clear()
    longer = Study(**{**kw, "n_reps": 4}).run(checkpoint=directory).replicates  # type: ignore[arg-type]
    assert sorted(calls) == [(0, 3), (1, 3)]
    assert_frame_equal(longer.filter(pl.col("rep") < 3), full)

    # another configuration is refused, naming what differs
    with pytest.raises(ValueError, match=r"seed differ: seed: checkpoint 1, this study 2"):
        Study(**{**kw, "seed": 2}).run(checkpoint=directory)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="methods"):
        Study(**{**kw, "methods": ["naive"]}).run(checkpoint=directory)  # type: ignore[arg-type]


def test_without_checkpoint_nothing_is_written(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    monkeypatch.chdir(str(tmp_path))
    Study(scenario=small(), methods=["naive"], n_reps=2).run()
    assert list(Path(str(tmp_path)).iterdir()) == []


def test_truth_by_quadrature_matches_a_large_sample() -> None:
    """The 'correct' truth (200-point Gauss-Hermite) against 2,000,000 target patients:
    S(12) and RMST(24) within 4 Monte Carlo SEs; twice the quadrature panels and
    adaptive quadrature agree to 1e-13."""
    sc = scenario("correct")
    truth = sc.truth((12.0,), 24.0)
    rng = np.random.default_rng(11)
    n = 2_000_000
    x1 = rng.normal(sc.target.x1_mean, sc.target.x1_sd, n)
    x2 = (rng.uniform(size=n) < sc.target.p_x2).astype(float)
    rate = sc.base_rate * np.exp(sc.b_x1 * x1 + sc.b_x2 * x2 + sc.b_x1sq * x1**2)
    t = rng.exponential(1.0 / rate)
    s12 = t > 12.0
    assert abs(truth[("survival", 12.0)] - s12.mean()) < 4 * s12.std() / np.sqrt(n)
    rm = np.minimum(t, 24.0)
    assert abs(truth[("rmst", 24.0)] - rm.mean()) < 4 * rm.std() / np.sqrt(n)
    assert abs(truth[("median", None)] - np.median(t)) < 0.05
    assert sc.survival(12.0, nodes=96) == pytest.approx(sc.survival(12.0), abs=1e-13)
    assert sc.rmst(24.0, nodes=96) == pytest.approx(sc.rmst(24.0), abs=1e-12)
    adaptive = sum(
        p2
        * quad(
            lambda x, x2=x2: (
                norm.pdf(x)
                * np.exp(
                    -sc.base_rate * 12.0 * np.exp(sc.b_x1 * x + sc.b_x2 * x2 + sc.b_x1sq * x**2)
                )
            ),
            -12.0,
            12.0,
            epsabs=1e-14,
            limit=200,
        )[0]
        for x2, p2 in ((0.0, 1.0 - sc.target.p_x2), (1.0, sc.target.p_x2))
    )
    assert truth[("survival", 12.0)] == pytest.approx(adaptive, abs=1e-13)
    assert sc.survival(sc.median()) == pytest.approx(0.5, abs=1e-12)


def test_truths_move_as_the_scenarios_say() -> None:
    base = scenario("correct").truth((12.0,), 24.0)
    # misspecification changes the analysis, not the population
    assert scenario("both_misspecified").truth((12.0,), 24.0) == base
    # the unmeasured modifier: U = 1 patients with x2 = 1 fare worse, and they are rarer
    # in the target, so the truth depends on the strength; 0 removes it
    s = [
        scenario("unmeasured_modifier", strength=k).truth((12.0,), None)[("survival", 12.0)]
        for k in (0.0, 0.5, 1.0)
    ]
    assert s[0] > s[1] > s[2]
    # a study in days reports the same truth in days
    days = scenario("correct").truth((365.25,), 730.5, "days")
    assert days[("survival", 365.25)] == pytest.approx(base[("survival", 12.0)], rel=1e-12)
    assert days[("rmst", 730.5)] == pytest.approx(base[("rmst", 24.0)] * 365.25 / 12, rel=1e-12)
    assert days[("median", None)] == pytest.approx(base[("median", None)] * 365.25 / 12, rel=1e-12)


def test_time_unit_days_gives_the_months_study_in_days() -> None:
    kw = dict(scenario=small(), methods=["naive", "iow"], n_reps=1, seed=9)
    months = Study(**kw).run().replicates  # type: ignore[arg-type]
    days = Study(**kw, times=[365.25], tau=730.5, time_unit="days").run().replicates  # type: ignore[arg-type]
    surv = [f.filter(pl.col("estimand") == "survival")["estimate"] for f in (months, days)]
    np.testing.assert_allclose(surv[0].to_numpy(), surv[1].to_numpy(), rtol=1e-12)


def test_scenario_cohorts_follow_their_populations() -> None:
    sc = replace(
        scenario("correct"),
        source=Population(4000, x1_mean=0.5, x1_sd=1.5, p_x2=0.35),
        target=Population(4000),
    )
    src, tgt = sc.simulate(np.random.default_rng(0))
    assert (src.n, tgt.n) == (4000, 4000) and src.time_unit == "months"
    xs, xt = src.covariate_frame, tgt.covariate_frame
    assert xs["x1"].mean() == pytest.approx(0.5, abs=0.08)
    assert xs["x1"].std() == pytest.approx(1.5, abs=0.06)
    assert xt["x2"].mean() == pytest.approx(0.5, abs=0.03)
