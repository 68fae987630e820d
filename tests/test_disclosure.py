"""The release gate: one test per rule (it fires on a crafted unsafe input and passes a
safe one), differencing, identifiers never released, the manifest, and the summary-only
transport end to end."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from conftest import R_DIR, needs_r
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transport as tp
from transport import disclosure as dc
from transport.policy import cells_to_hide
from transport.survival._actuarial import weighted_actuarial

STEP = 30.4375  # the default grid step, days


def cohort(frame: pl.DataFrame, name: str = "T", **roles: object) -> tp.Cohort:
    covs = [c for c in frame.columns if c not in ("time", "event", "pid", "practice_code")]
    return tp.Cohort(frame, time="time", event="event", covariates=covs, name=name, **roles)


def frame(n: int, seed: int, *, ecog_counts: tuple[int, ...] | None = None) -> pl.DataFrame:
    """n patients: whole-day times, age, and ECOG with the given level counts."""
    rng = np.random.default_rng(seed)
    if ecog_counts is None:
        ecog = rng.choice(["0", "1", "2"], n, p=[0.5, 0.3, 0.2])
    else:
        ecog = np.repeat(["0", "1", "2", "3"][: len(ecog_counts)], ecog_counts)
        rng.shuffle(ecog)
    t = np.ceil(rng.exponential(400.0, n))
    c = np.ceil(rng.uniform(200.0, 1500.0, n))
    return pl.DataFrame(
        {
            "time": np.minimum(t, c),
            "event": (t <= c).astype(np.int64),
            "age": np.round(rng.normal(65.0, 9.0, n), 1),
            "ecog": ecog,
            "pid": [f"PX{seed:03d}{i:06d}" for i in range(n)],
            "practice_code": rng.choice(["GP-A17", "GP-B22", "GP-C09"], n),
        }
    )


def released_text(directory: Path) -> str:
    """Every released data file (the manifest, which quotes the policy, aside)."""
    return "\n".join(
        p.read_text() for p in sorted(directory.iterdir()) if p.name != "manifest.json"
    )


# -- the policy -------------------------------------------------------------------------------
def test_policy_defaults_and_toml(tmp_path: Path) -> None:
    p = dc.Policy()
    assert (p.min_cell, p.min_km_step, p.round_to, p.min_residual_df) == (10, 10, 5, 10)
    assert set(p.forbidden_roles) == {"identifier", "practice", "physician", "free_text"}
    path = tmp_path / "policy.toml"
    path.write_text(
        '[disclosure]\nmin_cell = 20\nround_to = 10\nkm_grid_step = 3.0\ntime_unit = "months"\n'
        'forbidden_names = ["HospNo"]\nname = "TRE-7"\n'
    )
    q = dc.Policy.from_toml(path)
    assert (q.min_cell, q.round_to, q.min_km_step, q.name) == (20, 10, 10, "TRE-7")
    assert q.grid_step_in("days") == pytest.approx(3 * 365.25 / 12)
    assert dc.forbidden_role("hospno", q) == "identifier" and dc.forbidden_role("hospno") is None
    flat = tmp_path / "flat.toml"
    flat.write_text("min_km_step = 25\n")
    assert dc.Policy.from_toml(flat).min_km_step == 25
    flat.write_text("min_cells = 5\n")
    with pytest.raises(ValueError, match=r"unknown key.*min_cells"):
        dc.Policy.from_toml(flat)
    for bad in (
        {"min_cell": 0},
        {"round_to": 2.5},
        {"km_grid_step": -1.0},
        {"time_unit": "fortnights"},
        {"forbidden_roles": ("gossip",)},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dc.Policy(**bad)  # type: ignore[arg-type]
    assert p.round_count(12) == 10 and p.round_count(12.5) == 15 and p.round_count(2) == 0
    km = tp.kaplan_meier(cohort(frame(50, 1), identifiers=["pid", "practice_code"]))
    with pytest.raises(TypeError, match=r"'policy' parameter.*dict"):
        dc.release(km, tmp_path / "out", {"min_cell": 5})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("patient_id", "identifier"),
        ("NHSNumber", "identifier"),
        ("postcode", "identifier"),
        ("practice_code", "practice"),
        ("gp_code", "practice"),
        ("gp", "physician"),
        ("treating_physician", "physician"),
        ("clinical_notes", "free_text"),
        ("FreeText", "free_text"),
        ("age", None),
        ("ecog", None),
        ("stage", None),
        ("regimen", None),
        ("histology", None),
        ("identity_flag", None),
    ],
)
def test_forbidden_roles_by_name(name: str, role: str | None) -> None:
    assert dc.forbidden_role(name) == role


# -- patient_rows ---------------------------------------------------------------------------
def test_patient_rows_are_refused(tmp_path: Path) -> None:
    f = frame(50, 1)
    c = cohort(f, identifiers=["pid", "practice_code"])
    pandas_rows = pd.DataFrame(f.to_dict(as_series=False))
    rows = (c, f, f.lazy(), pandas_rows, f["time"].to_numpy(), pd.Series([1.0, 2.0]))
    for obj in rows:
        with pytest.raises(tp.DisclosureError, match="patient_rows"):
            dc.release(obj, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(TypeError, match="cannot release a dict"):
        dc.release({"a": 1}, tmp_path / "out")


# -- forbidden_column ------------------------------------------------------------------------
def test_forbidden_columns_are_refused(tmp_path: Path) -> None:
    f = frame(200, 2)
    unsafe = tp.Cohort(f, time="time", event="event", covariates=["age", "practice_code"])
    with pytest.raises(tp.DisclosureError, match=r"'practice_code'.*practice.*forbidden_column"):
        dc.release(tp.TargetSummary.from_cohort(unsafe), tmp_path / "a")
    src = tp.Cohort(frame(300, 3), time="time", event="event", covariates=["age", "practice_code"])
    with pytest.raises(tp.DisclosureError, match="forbidden_column"):
        dc.release(tp.inverse_odds_weights(src, unsafe), tmp_path / "b")
    # the same data with the practice declared an identifier releases, without it
    safe = cohort(f, identifiers=["pid", "practice_code"])
    dc.release(tp.TargetSummary.from_cohort(safe), tmp_path / "c")
    text = released_text(tmp_path / "c")
    assert "practice" not in text and "GP-" not in text and "PX002" not in text


# -- min_cell --------------------------------------------------------------------------------
def test_min_cell_withholds_small_levels_and_their_complement(tmp_path: Path) -> None:
    # ECOG 3 has 4 patients: pooled into a generic level "other" (its name and columns
    # dropped), which is withheld, and the next smallest level (2: 30) with it, so that
    # the pool cannot be recovered from the total
    c = cohort(frame(334, 4, ecog_counts=(200, 100, 30, 4)), identifiers=["pid", "practice_code"])
    manifest = dc.release(tp.TargetSummary.from_cohort(c), tmp_path / "s")
    data = json.loads((tmp_path / "s" / "target_summary.json").read_text())
    ecog = data["covariates"]["ecog"]
    assert ecog["levels"] == ["0", "1", "2", "other"] and ecog["pooled"] == "other"
    shares = ecog["shares"]
    assert shares[0] == pytest.approx(200 / 334) and shares[1] == pytest.approx(100 / 334)
    assert shares[2] is None and shares[3] is None
    withheld = {col for col in data["suppressed"]}
    assert {"ecog=2", "ecog=other"} <= withheld
    assert not any("3" in col for col in data["columns"])
    j = data["columns"].index("ecog[T.2]")
    assert data["mean"][j] is None and "ecog[T.2]" in withheld
    assert {s["rule"] for s in manifest["suppressed"]} == {"min_cell"}
    # the withheld count itself is not written anywhere
    assert '"4"' not in json.dumps(manifest) and "4 patients" not in json.dumps(manifest)
    # a summary that withholds a column the source design needs cannot be balanced on
    back = tp.TargetSummary.from_json(tmp_path / "s" / "target_summary.json")
    src = cohort(frame(600, 5, ecog_counts=(300, 200, 80, 20)), name="S")
    with pytest.raises(tp.DataError, match=r"withheld.*min_cell"):
        tp.entropy_balance(src, back)
    with pytest.raises(tp.DataError, match="withheld number"):
        tp.entropy_balance(cohort(frame(600, 5), name="S3"), back)
    # every level large enough: nothing withheld
    ok = cohort(frame(400, 6, ecog_counts=(200, 100, 60, 40)), identifiers=["pid"])
    assert dc.release(tp.TargetSummary.from_cohort(ok), tmp_path / "ok")["suppressed"] == []


def test_weights_balance_hides_a_complement_of_a_small_reference_level(tmp_path: Path) -> None:
    """The reference level has no balance row but its share is 1 minus the others': when
    the target has 4 patients in it, another level's row is withheld too."""
    src = cohort(frame(600, 7, ecog_counts=(200, 200, 120, 80)), name="S", identifiers=["pid"])
    tgt = cohort(frame(334, 8, ecog_counts=(4, 200, 100, 30)), name="T", identifiers=["pid"])
    manifest = dc.release(tp.inverse_odds_weights(src, tgt), tmp_path / "w")
    bal = pl.read_csv(tmp_path / "w" / "weights_balance.csv")
    row = {r["covariate"]: r for r in bal.iter_rows(named=True)}
    assert row["ecog[T.3]"]["mean_target"] is None  # the next smallest level (30)
    assert row["ecog[T.1]"]["mean_target"] is not None and row["age"]["mean_target"] is not None
    assert any("ecog[T.3]" in x["item"] for x in manifest["suppressed"])
    # every level large in both cohorts: nothing of ECOG withheld
    tgt_ok = cohort(frame(334, 8, ecog_counts=(40, 164, 100, 30)), name="T", identifiers=["pid"])
    ok = dc.release(tp.inverse_odds_weights(src, tgt_ok), tmp_path / "ok")
    assert not any("ecog" in x["item"] for x in ok["suppressed"])


def test_min_cell_applies_to_every_column_and_level(tmp_path: Path) -> None:
    # a rare 0/1 flag typed continuous: 3 patients have it, so its mean is withheld
    f = frame(300, 21).with_columns(
        pl.Series("hiv", np.r_[np.ones(3), np.zeros(297)]), pl.lit("x").alias("grp")
    )
    c = cohort(f.drop("grp"), identifiers=["pid", "practice_code"])
    s = tp.TargetSummary.from_cohort(c)
    dc.release(s, tmp_path / "a")
    data = json.loads((tmp_path / "a" / "target_summary.json").read_text())
    j = data["columns"].index("hiv")
    assert data["mean"][j] is None and data["suppressed"]["hiv"] == "min_cell"
    # a categorical with more levels than 10-patient cells allow (an identifier in disguise)
    many = f.with_columns(pl.Series("grp", [f"L{i % 40}" for i in range(300)]))
    c2 = cohort(many, identifiers=["pid", "practice_code"])
    with pytest.raises(tp.DisclosureError, match="40 levels"):
        dc.release(tp.TargetSummary.from_cohort(c2), tmp_path / "b")
    # a level whose value marks it as a practice
    gp = f.with_columns(pl.Series("grp", ["GP-A17" if i % 2 else "other" for i in range(300)]))
    c3 = cohort(gp, identifiers=["pid", "practice_code"])
    with pytest.raises(tp.DisclosureError, match=r"GP-A17.*forbidden_column"):
        dc.release(tp.TargetSummary.from_cohort(c3), tmp_path / "c")


def test_delayed_entry_curves_are_refused_until_supported(tmp_path: Path) -> None:
    f = frame(300, 22)
    f = f.with_columns((pl.col("time") * 0.3).floor().alias("start"))
    c = tp.Cohort(f, time="time", event="event", entry="start", covariates=["age"], name="E")
    with pytest.raises(tp.DisclosureError, match="delayed entry"):
        dc.release(tp.kaplan_meier(c), tmp_path / "a")
    with pytest.raises(tp.DisclosureError, match="delayed entry"):
        dc.release(tp.TargetSummary.from_cohort(c, km_times=[182.0, 365.0]), tmp_path / "b")
    dc.release(tp.TargetSummary.from_cohort(c), tmp_path / "c")  # without its curve


def test_follow_up_shorter_than_a_step_is_one_step(tmp_path: Path) -> None:
    f = frame(200, 23).with_columns((pl.col("time") % 20 + 1).alias("time"))
    km = tp.kaplan_meier(cohort(f, identifiers=["pid", "practice_code"]))
    dc.release(km, tmp_path / "a")
    out = pl.read_csv(tmp_path / "a" / "survival_curve.csv")
    assert out["time"].to_list() == [STEP]
    d = int(f["event"].sum())
    # the life table of the released (rounded) counts, each within round_to of the exact
    y, dr, cr = (out[k][0] for k in ("n_risk", "n_event", "n_censor"))
    assert (y, abs(dr - d) <= 5, abs(cr - (200 - d)) <= 5) == (200, True, True)
    assert out["survival"][0] == pytest.approx(1 - dr / (y - cr / 2), rel=1e-12)


def test_min_cell_refuses_a_tiny_cohort(tmp_path: Path) -> None:
    small = cohort(frame(8, 7), identifiers=["pid", "practice_code"])
    with pytest.raises(tp.DisclosureError, match=r"fewer than 10 patients.*min_cell"):
        dc.release(tp.TargetSummary.from_cohort(small), tmp_path / "a")
    with pytest.raises(tp.DisclosureError, match="min_cell"):
        dc.release(tp.kaplan_meier(small), tmp_path / "b")
    dc.release(tp.kaplan_meier(cohort(frame(40, 7), identifiers=["pid"])), tmp_path / "c")


def test_cells_to_hide() -> None:
    assert cells_to_hide([200.0, 100.0, 30.0, 4.0], 10) == [2, 3]
    assert cells_to_hide([200.0, 7.0, 4.0], 10) == [1, 2]
    assert cells_to_hide([200.0, 9.0, 8.0, 50.0], 10) == [1, 2]
    assert cells_to_hide([5.0, 5.0], 10) == [0, 1]
    assert cells_to_hide([200.0, 0.0, 12.0], 10) == []


# -- km_grid, min_km_step, round_to -------------------------------------------------------------
def raw_steps(f: pl.DataFrame, times: np.ndarray) -> list[int]:
    """Events plus censorings in each (previous released time, time] from the rows."""
    t = f["time"].to_numpy()
    edges = np.concatenate(([0.0], times))
    return [int(np.sum((t > a) & (t <= b))) for a, b in itertools.pairwise(edges)]


def life_table(t: np.ndarray, event: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """The actuarial estimate at the grid times, from the rows (Cutler & Ederer 1958):
    S = prod (1 - d / (Y - c/2)), Greenwood's SE, the log-log interval."""
    edges = np.concatenate(([0.0], grid))
    y = np.array([np.sum(t > a) for a in edges[:-1]], dtype=float)
    d = np.array([np.sum((t > a) & (t <= b) & (event == 1)) for a, b in itertools.pairwise(edges)])
    c = np.array([np.sum((t > a) & (t <= b) & (event == 0)) for a, b in itertools.pairwise(edges)])
    return counts_table(y, d, c)


def counts_table(y: np.ndarray, d: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """The actuarial estimate of a life table's counts per step (risk set y, events d,
    censorings c): S = prod (1 - d / (Y - c/2)), Greenwood's SE, the log-log interval."""
    y, d, c = (np.asarray(a, dtype=float) for a in (y, d, c))
    ye = y - c / 2
    s = np.cumprod(1 - d / ye)
    se = s * np.sqrt(np.cumsum(d / (ye * (ye - d))))
    z = 1.959963984540054
    lo = s ** np.exp(-z * se / (s * np.log(s)))
    return {"survival": s, "se": se, "ci_lower": lo}


def released_table(out: pl.DataFrame | dict[str, list[float]]) -> dict[str, np.ndarray]:
    """The actuarial estimate of a released curve's own (rounded) counts."""
    return counts_table(
        *(np.asarray(out[k], dtype=float) for k in ("n_risk", "n_event", "n_censor"))
    )


def released_actuarial(tmp_path: Path) -> pl.DataFrame:
    """The released curve of tests/r/data/actuarial.csv under a policy that merges and
    rounds nothing: the actuarial estimate on every grid time."""
    data = pl.read_csv(R_DIR / "data" / "actuarial.csv")
    km = tp.kaplan_meier(tp.Cohort(data, time="time", event="event", name="A"))
    policy = dc.Policy(min_cell=1, min_km_step=1, round_to=1)
    dc.release(km, tmp_path / "a", policy)
    return pl.read_csv(tmp_path / "a" / "survival_curve.csv")


def test_released_curve_matches_r_actuarial(tmp_path: Path) -> None:
    ours = released_actuarial(tmp_path)
    ref = pl.read_csv(R_DIR / "actuarial_reference" / "actuarial.csv")
    np.testing.assert_allclose(ours["time"].to_numpy(), ref["time"].to_numpy(), rtol=1e-15)
    for col in ("survival", "se", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12)
    for col in ("n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(ours[col].to_numpy(), ref[col].to_numpy())


@pytest.mark.r
@needs_r("actuarial_reference.R")
def test_r_regenerates_the_actuarial_reference(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for name in ("actuarial.csv", "actuarial_grid.csv", "actuarial_weighted.csv"):
        (tmp_path / "data" / name).write_bytes((R_DIR / "data" / name).read_bytes())
    script = str(R_DIR / "actuarial_reference.R")
    subprocess.run(["Rscript", script, str(tmp_path)], check=True, capture_output=True)
    for name in ("actuarial.csv", "actuarial_weighted.csv"):
        new = pl.read_csv(tmp_path / "actuarial_reference" / name)
        old = pl.read_csv(R_DIR / "actuarial_reference" / name)
        assert new.columns == old.columns
        for col in new.columns:
            np.testing.assert_allclose(new[col].to_numpy(), old[col].to_numpy(), rtol=1e-13)


def test_weighted_actuarial_matches_r_survfit_robust() -> None:
    """The released form of a reweighted curve: the weighted actuarial estimate and its
    infinitesimal-jackknife SE equal R's survfit (robust, clustered on the patient) on
    the half-weight construction, and the SE is invariant to the weights' scale."""
    data = pl.read_csv(R_DIR / "data" / "actuarial_weighted.csv")
    grid = pl.read_csv(R_DIR / "data" / "actuarial_grid.csv")["time"].to_numpy()
    ref = pl.read_csv(R_DIR / "actuarial_reference" / "actuarial_weighted.csv")
    t, e, w = (data[c].to_numpy() for c in ("time", "event", "weight"))
    surv, se = weighted_actuarial(t, e, w, grid)
    np.testing.assert_allclose(surv, ref["survival"].to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(se, ref["se"].to_numpy(), rtol=0, atol=1e-12)
    _, se_scaled = weighted_actuarial(t, e, 7.3 * w, grid)
    np.testing.assert_allclose(se_scaled, se, rtol=1e-12)
    # unit weights: the point estimate is the classical life table
    base = pl.read_csv(R_DIR / "data" / "actuarial.csv").height  # the rows the two files share
    unit, _ = weighted_actuarial(t[:base], e[:base], np.ones(base), grid)
    classic = pl.read_csv(R_DIR / "actuarial_reference" / "actuarial.csv")["survival"]
    np.testing.assert_allclose(unit, classic.to_numpy(), rtol=0, atol=1e-13)


def test_km_release_is_on_the_grid_with_enough_exits_per_step(tmp_path: Path) -> None:
    # 60 patients over ~4 years: many monthly steps hold fewer than 10 exits
    f = frame(60, 8)
    km = tp.kaplan_meier(cohort(f, identifiers=["pid", "practice_code"]))
    manifest = dc.release(km, tmp_path / "km")
    out = pl.read_csv(tmp_path / "km" / "survival_curve.csv")
    times = out["time"].to_numpy()
    assert np.allclose(times / STEP, np.round(times / STEP))  # km_grid
    # min_km_step and min_cell are decided on the counts as released (rounded), so that
    # varying them reveals nothing the release does not state; the exact counts are
    # within the rounding of those: a step's exits within 4 x 2, a risk set within 3 x 2
    released_exits = (out["n_event"] + out["n_censor"]).to_numpy()
    assert all(s == 0 or s >= 10 for s in released_exits)  # min_km_step
    assert {s["rule"] for s in manifest["suppressed"]} >= {"min_km_step"}
    assert np.all(np.abs(np.asarray(raw_steps(f, times)) - released_exits) <= 8)
    t = f["time"].to_numpy()
    starts = np.concatenate(([0.0], times[:-1]))
    assert (out["n_risk"].to_numpy() >= 10).all()  # risk set >= min_cell
    exact_risk = np.asarray([np.sum(t > x) for x in starts])
    assert np.all(np.abs(exact_risk - out["n_risk"].to_numpy()) <= 6)
    for col in ("n_risk", "n_event", "n_censor"):  # round_to
        assert (out[col].to_numpy() % 5 == 0).all()
    # the released curve is the actuarial estimate of its released counts on the
    # released grid (so the exact counts cannot be solved back from it) ...
    ref = released_table(out)
    np.testing.assert_allclose(out["survival"].to_numpy(), ref["survival"], rtol=1e-13)
    np.testing.assert_allclose(out["se"].to_numpy(), ref["se"], rtol=1e-10)
    np.testing.assert_allclose(out["ci_lower"].to_numpy(), ref["ci_lower"], rtol=1e-10)
    # ... whose table is additive: each risk set is the last less its events and exits
    y, d, c = (out[k].to_numpy() for k in ("n_risk", "n_event", "n_censor"))
    np.testing.assert_array_equal(y[1:], (y - d - c)[:-1])
    # close to the rows' own life table, and to the exact curve
    exact = life_table(f["time"].to_numpy(), f["event"].to_numpy(), times)
    assert np.max(np.abs(out["survival"].to_numpy() - exact["survival"])) < 0.05
    assert np.max(np.abs(out["survival"].to_numpy() - km.survival_at(times))) < 0.05
    # a large cohort with a coarse-enough grid loses no step
    big = tp.kaplan_meier(cohort(frame(3000, 9), identifiers=["pid"]))
    m = dc.release(big, tmp_path / "big", dc.Policy(km_grid_step=3, time_unit="months"))
    assert all(s["rule"] != "min_km_step" for s in m["suppressed"])


def test_summary_km_keeps_only_times_on_the_grid(tmp_path: Path) -> None:
    """A summary's own times are kept only on the policy grid: two summaries at times a
    few days apart would otherwise give the exits between them by subtraction."""
    f = frame(500, 10)
    c = cohort(f, identifiers=["pid", "practice_code"])
    on_grid = [3 * STEP, 6 * STEP, 12 * STEP, 24 * STEP]
    s = tp.TargetSummary.from_cohort(c, km_times=[*on_grid, 100.0, 730.0])
    manifest = dc.release(s, tmp_path / "s")
    km = json.loads((tmp_path / "s" / "target_summary.json").read_text())["km"]
    assert km["time"] == on_grid  # 100 and 730 are off the grid (730.5 is on it)
    off = {x["item"] for x in manifest["suppressed"] if x["rule"] == "km_grid"}
    assert off == {f"Kaplan–Meier of 'T' at time {t:g}" for t in (100.0, 730.0)}
    assert any(x["rule"] == "km_grid" for x in manifest["suppressed"])
    assert all(x % 5 == 0 for x in km["n_risk"] + km["n_event"] + km["n_censor"])
    assert all(s == 0 or s >= 10 for s in raw_steps(f, np.asarray(km["time"])))
    # events and exits of the dropped time move into the next interval
    assert sum(km["n_event"]) == pytest.approx(sum(s.km["n_event"]), abs=10)


def test_released_summary_n_and_sd_keep_the_second_moments(tmp_path: Path) -> None:
    c = cohort(frame(333, 11), identifiers=["pid", "practice_code"])
    s = tp.TargetSummary.from_cohort(c)
    dc.release(s, tmp_path / "s")
    back = tp.TargetSummary.from_json(tmp_path / "s" / "target_summary.json")
    assert back.n == 335
    m2 = s.sd**2 * (s.n - 1) / s.n + s.mean**2
    m2_back = back.sd**2 * (back.n - 1) / back.n + back.mean**2
    np.testing.assert_allclose(m2_back, m2, rtol=1e-13)
    np.testing.assert_array_equal(back.mean, s.mean)


# -- time_grid ---------------------------------------------------------------------------------
def test_medians_are_rounded_outwards_to_the_grid(tmp_path: Path) -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    res = tp.transport(us, jp, method="iow", times=[365.0], tau=1095.0)
    dc.release(res, tmp_path / "r")
    out = pl.read_csv(tmp_path / "r" / "transport_summary.csv")
    exact = res.summary()
    med = out.filter(pl.col("estimand") == "median").row(0, named=True)
    ex = exact.filter(pl.col("estimand") == "median").row(0, named=True)
    for base in ("transported", "observed", "naive"):
        v, lo, hi = med[base], med[f"{base}_ci_lower"], med[f"{base}_ci_upper"]
        for x in (v, lo, hi):
            assert x / STEP == pytest.approx(round(x / STEP))
        assert ex[base] <= v < ex[base] + STEP
        assert lo <= ex[f"{base}_ci_lower"] and hi >= ex[f"{base}_ci_upper"]
    assert med["difference"] == pytest.approx(med["transported"] - med["observed"])
    assert med["ratio"] == round(med["transported"] / med["observed"], 2)
    # S(t) and RMST rows are the analysis' own
    for est in ("survival", "rmst"):
        a = out.filter(pl.col("estimand") == est)["transported"].to_numpy()
        b = exact.filter(pl.col("estimand") == est)["transported"].to_numpy()
        np.testing.assert_array_equal(a, b)
    curves = pl.read_csv(tmp_path / "r" / "transport_curves.csv")
    assert set(curves["curve"]) == {"naive", "transported", "observed"}


def test_survival_rows_need_a_risk_set_of_min_cell(tmp_path: Path) -> None:
    a = cohort(frame(300, 12), name="A", identifiers=["pid", "practice_code"])
    b = cohort(frame(120, 13), name="B", identifiers=["pid", "practice_code"])
    late = float(np.sort(b.time_values)[-5])  # 5 patients of B still at risk
    res = tp.transport(a, b, method="iow", times=[365.0, late])
    manifest = dc.release(res, tmp_path / "r")
    out = pl.read_csv(tmp_path / "r" / "transport_summary.csv")
    assert out["transported"][0] is not None and out["transported"][1] is None
    assert out["observed"][1] is None and out["difference"][1] is None
    assert any(s["item"].startswith(f"S({late:g})") for s in manifest["suppressed"])


def test_survival_and_rmst_rows_need_min_km_step_exits(tmp_path: Path) -> None:
    """S(t) and RMST(tau) at a time with 1-9 exits before it would give those patients'
    count away (S = 1 - 2/n): withheld under min_km_step; a later time is kept."""
    a = cohort(frame(300, 12), name="A", identifiers=["pid", "practice_code"])
    b = cohort(frame(200, 13), name="B", identifiers=["pid", "practice_code"])
    early = 6.0
    exits = [int(np.sum(c.time_values <= early)) for c in (a, b)]
    assert max(exits) > 0 and all(x < 10 for x in exits)  # the crafted unsafe time
    res = tp.transport(a, b, method="iow", times=[early, 365.0], tau=early)
    manifest = dc.release(res, tmp_path / "r")
    out = pl.read_csv(tmp_path / "r" / "transport_summary.csv")
    rows = {(r["estimand"], r["time"]): r for r in out.iter_rows(named=True)}
    assert rows[("survival", early)]["transported"] is None
    assert rows[("rmst", early)]["observed"] is None
    assert rows[("survival", 365.0)]["transported"] is not None
    rules = {s["item"]: s["rule"] for s in manifest["suppressed"]}
    assert rules[f"S({early:g}) row of the summary"] == "min_km_step"
    assert rules[f"RMST({early:g}) row of the summary"] == "min_km_step"


def test_close_analysis_times_cannot_isolate_a_patient(tmp_path: Path) -> None:
    """S(365) and S(366) released together would give the one death between them
    (S(366) / S(365) = 1 - 1/Y): a released time needs none or min_km_step exits since
    the previous released time, in each cohort."""
    a = cohort(frame(400, 12), name="A", identifiers=["pid", "practice_code"])
    f = frame(300, 13).with_columns(
        pl.col("time").map_elements(
            lambda x: 700.0 if 365 < x <= 366 else x, return_dtype=pl.Float64
        )
    )
    one = f[:1].with_columns(pl.lit(365.5).alias("time"), pl.lit(1).cast(pl.Int64).alias("event"))
    b = cohort(pl.concat([f, one]), name="B", identifiers=["pid", "practice_code"])
    res = tp.transport(a, b, method="iow", times=[365.0, 366.0, 730.0], tau=366.0)
    obs = res.summary()["observed"].to_numpy()
    assert obs[1] < obs[0]  # the exact estimates do reveal the death
    manifest = dc.release(res, tmp_path / "r")
    out = pl.read_csv(tmp_path / "r" / "transport_summary.csv")
    rows = {(r["estimand"], r["time"]): r for r in out.iter_rows(named=True)}
    assert rows[("survival", 365.0)]["observed"] is not None
    assert rows[("survival", 366.0)]["observed"] is None
    assert rows[("rmst", 366.0)]["observed"] is None
    assert rows[("survival", 730.0)]["observed"] is not None  # many exits since 365
    why = {s["item"]: s["why"] for s in manifest["suppressed"]}
    assert "between 365 and 366" in why["S(366) row of the summary"]


def test_median_equivalence_p_value_is_withheld(tmp_path: Path) -> None:
    """With a median margin, the exact p-value and SE would give the exact difference of
    medians back (d = se * z(p) - margin): the p-value of a median row is withheld."""
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    res = tp.transport(
        us,
        jp,
        method="iow",
        times=[365.0],
        n_boot=20,
        seed=3,
        margin={"median": 30.0, "survival": 0.05},
    )
    assert res.summary().filter(pl.col("estimand") == "median")["equivalence_p"][0] is not None
    dc.release(res, tmp_path / "r")
    out = pl.read_csv(tmp_path / "r" / "transport_summary.csv")
    med = out.filter(pl.col("estimand") == "median").row(0, named=True)
    assert med["equivalence_p"] is None and med["verdict"] is not None
    surv = out.filter(pl.col("estimand") == "survival").row(0, named=True)
    assert surv["equivalence_p"] is not None


def test_weights_complement_with_c_coded_and_other_reference(tmp_path: Path) -> None:
    """The reference-level complement rule finds a categorical's dummies whatever
    formulaic names them: C(ecog), or C(ecog, Treatment('1'))."""
    src = cohort(frame(600, 7, ecog_counts=(200, 200, 120, 80)), name="S", identifiers=["pid"])
    tgt = cohort(frame(334, 8, ecog_counts=(4, 200, 100, 30)), name="T", identifiers=["pid"])
    for formula, small in (("age + C(ecog)", "0"), ("age + C(ecog, Treatment('1'))", "0")):
        d = tmp_path / str(abs(hash(formula)))
        manifest = dc.release(tp.inverse_odds_weights(src, tgt, formula=formula), d)
        bal = pl.read_csv(d / "weights_balance.csv")
        hidden = bal.filter(pl.col("mean_target").is_null())["covariate"].to_list()
        assert any(c.endswith("[T.3]") for c in hidden), (formula, hidden)
        assert not any(c.endswith(f"[T.{small}]") for c in hidden) or "Treatment" in formula
        assert all(x["rule"] == "min_cell" for x in manifest["suppressed"] if "ecog" in x["item"])


def test_policy_names_must_be_lists_and_cohort_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"forbidden_names.*list of names"):
        dc.Policy(forbidden_names="registry_no")  # type: ignore[arg-type]
    path = tmp_path / "p.toml"
    path.write_text('forbidden_names = "registry_no"\n')
    with pytest.raises(ValueError, match="list of names"):
        dc.Policy.from_toml(path)
    f = frame(200, 31)
    named = cohort(f, name="gp_practice_42", identifiers=["pid", "practice_code"])
    with pytest.raises(tp.DisclosureError, match=r"gp_practice_42.*forbidden_column"):
        dc.release(tp.kaplan_meier(named), tmp_path / "km")
    with pytest.raises(tp.DisclosureError, match="forbidden_column"):
        dc.release(tp.TargetSummary.from_cohort(named), tmp_path / "s")
    dc.release(
        tp.kaplan_meier(cohort(f, name="UK", identifiers=["pid", "practice_code"])), tmp_path / "ok"
    )


# -- differencing --------------------------------------------------------------------------------
def test_differencing_does_not_reveal_an_event_time(tmp_path: Path) -> None:
    """Releases from a cohort plus one patient who died at day 400, and plus one who died
    at day 410 (the same grid step), are byte-identical: the patient's event time is
    not revealed beyond the grid step."""
    base = frame(400, 14)

    def plus(day: float) -> pl.DataFrame:
        extra = base[:1].with_columns(
            pl.lit(day).alias("time"), pl.lit(1).cast(pl.Int64).alias("event")
        )
        return pl.concat([base, extra])

    assert math.floor(400 / STEP) == math.floor(410 / STEP)
    texts = []
    for k, day in enumerate((400.0, 410.0)):
        c = cohort(plus(day), identifiers=["pid", "practice_code"])
        d = tmp_path / f"km{k}"
        dc.release(tp.kaplan_meier(c), d)
        s = tp.TargetSummary.from_cohort(c, km_times=STEP * np.arange(1, 30))
        dc.release(s, tmp_path / f"s{k}")
        texts.append(released_text(d) + released_text(tmp_path / f"s{k}"))
    assert texts[0] == texts[1]
    # without the patient the release differs (the gate is not just hiding everything)
    c0 = cohort(base, identifiers=["pid", "practice_code"])
    dc.release(tp.kaplan_meier(c0), tmp_path / "km_base")
    assert released_text(tmp_path / "km_base") != released_text(tmp_path / "km0")


@pytest.mark.parametrize("method", ["iow", "entropy"])
def test_result_curves_do_not_reveal_a_source_event_time(tmp_path: Path, method: str) -> None:
    """Two transport results whose source cohorts differ only by one patient's event time
    within a grid step (day 400 vs 410) release byte-identical curves: the naive and
    observed curves as life tables, the reweighted curve as the weighted actuarial
    estimate, each depending on the rows only through their step (and weight). S(t) at
    an analysis time before the step is identical too (to rounding of the sums)."""
    base = frame(400, 14)
    target = cohort(frame(300, 15), name="B", identifiers=["pid", "practice_code"])
    texts, rows = [], []
    for k, day in enumerate((400.0, 410.0)):
        extra = base[:1].with_columns(
            pl.lit(day).alias("time"), pl.lit(1).cast(pl.Int64).alias("event")
        )
        src = cohort(pl.concat([base, extra]), name="A", identifiers=["pid", "practice_code"])
        res = tp.transport(src, target, method=method, times=[365.0])
        d = tmp_path / f"r{k}"
        dc.release(res, d)
        texts.append((d / "transport_curves.csv").read_text())
        out = pl.read_csv(d / "transport_summary.csv").filter(pl.col("estimand") == "survival")
        rows.append(out.row(0))
        # the exact curves differ: the gate, not the data, makes the releases equal
        exact = res.transported.survival_at(STEP * np.arange(14, 20))
        if k == 0:
            first = exact
    assert texts[0] == texts[1]
    # S(365): equal up to summation order (the rows sort differently)
    for a, b in zip(rows[0], rows[1], strict=True):
        assert a == b if not isinstance(a, float) else a == pytest.approx(b, rel=1e-12)
    assert np.max(np.abs(exact - first)) > 0
    curves = pl.read_csv(tmp_path / "r0" / "transport_curves.csv")
    assert curves.filter(pl.col("curve") == "transported")["survival"].null_count() == 0


# -- identifiers never leave --------------------------------------------------------------------
ID_NAMES = st.sampled_from(["patient_id", "nhs_number", "mrn", "practice", "gp_code", "pat_key"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    id_name=ID_NAMES,
    n=st.integers(min_value=30, max_value=300),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_identifier_columns_never_appear_in_a_release(
    tmp_path_factory: pytest.TempPathFactory, id_name: str, n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    ids = [f"Z{v:09d}Q" for v in rng.integers(0, 10**9, n)]
    f = frame(n, seed % 997).drop("pid", "practice_code").with_columns(pl.Series(id_name, ids))
    c = tp.Cohort(
        f, time="time", event="event", covariates=["age", "ecog"], identifiers=[id_name], name="T"
    )
    src = tp.Cohort(
        frame(400, 1).drop("pid", "practice_code"),
        time="time",
        event="event",
        covariates=["age", "ecog"],
        name="S",
    )
    root = tmp_path_factory.mktemp("rel")
    objs = {
        "summary": tp.TargetSummary.from_cohort(c, km_times=[6 * STEP, 12 * STEP]),
        "km": tp.kaplan_meier(c),
        "weights": tp.inverse_odds_weights(src, c),
        "result": tp.transport(src, c, method="iow", times=[182.0]),
    }
    for key, obj in objs.items():
        dc.release(obj, root / key)
        text = released_text(root / key)
        assert id_name not in text
        assert not any(v in text for v in ids)
        assert "Z0" not in text and "Q" not in text.replace("q", "")
    # the same column left undeclared and used as a covariate: the gate refuses it by its
    # name, or else by its levels (record numbers, read as free text; one per patient)
    u = tp.Cohort(f, time="time", event="event", covariates=["age", id_name], name="T")
    rule = "forbidden_column" if dc.forbidden_role(id_name) else "free_text_levels"
    with pytest.raises(tp.DisclosureError, match=rule):
        dc.release(tp.TargetSummary.from_cohort(u), root / "undeclared")
    assert not (root / "undeclared").exists() or not any((root / "undeclared").iterdir())
    # a name that says nothing: refused by its levels (nine digits each: free text)
    anon = f.rename({id_name: "field7"})
    a = tp.Cohort(anon, time="time", event="event", covariates=["age", "field7"], name="T")
    with pytest.raises(tp.DisclosureError, match="free_text_levels"):
        dc.release(tp.TargetSummary.from_cohort(a), root / "anonymous")
    # and with short codes, by their number, one per patient
    short = anon.with_columns(pl.Series("field7", [f"K{i}" for i in range(n)]))
    b = tp.Cohort(short, time="time", event="event", covariates=["age", "field7"], name="T")
    with pytest.raises(tp.DisclosureError, match=r"free_text_levels|min_cell"):
        dc.release(tp.TargetSummary.from_cohort(b), root / "codes")


# -- the manifest ---------------------------------------------------------------------------------
def test_manifest_hashes_and_verify(tmp_path: Path) -> None:
    c = cohort(frame(200, 15), identifiers=["pid", "practice_code"])
    d = tmp_path / "r"
    manifest = dc.release(tp.kaplan_meier(c), d)
    assert manifest["schema"] == "transport.ReleaseManifest"
    assert manifest["policy"] == dc.Policy().to_dict()
    for entry in manifest["files"]:
        payload = (d / entry["file"]).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == entry["sha256"]
        assert len(payload) == entry["bytes"]
    assert json.loads((d / "manifest.json").read_text()) == manifest
    assert dc.verify(d) == manifest
    with pytest.raises(FileExistsError, match="not empty"):
        dc.release(tp.kaplan_meier(c), d)
    assert dc.release(tp.kaplan_meier(c), d, overwrite=True) == manifest  # deterministic
    (d / "survival_curve.csv").write_text("time\n1\n")
    with pytest.raises(tp.DisclosureError, match="changed after release"):
        dc.verify(d)
    dc.release(tp.kaplan_meier(c), d, overwrite=True)
    (d / "extra.csv").write_text("x\n")
    with pytest.raises(tp.DisclosureError, match="not in its manifest"):
        dc.verify(d)
    with pytest.raises(FileExistsError):
        dc.release(tp.kaplan_meier(c), d, overwrite=True)  # a foreign file is never removed


# -- summary-only target, end to end --------------------------------------------------------------
@pytest.mark.parametrize("moments", [1, 2])
def test_summary_only_transport_equals_the_row_level_one(tmp_path: Path, moments: int) -> None:
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP")
    # drop three JP rows so that n is not a multiple of 5: the released n is rounded
    jp = tp.Cohort(
        jp.to_frame()[3:].with_columns(jp.linkage_keys()[3:]),
        time=jp.time,
        event=jp.event,
        covariates=list(jp.covariates),
        identifiers=list(jp.identifiers),
        name="JP",
        time_unit=jp.time_unit,
    )
    times = [365.25, 730.5]
    # target's environment: summarise on the policy's grid (quarterly: 3 steps), release
    summary = tp.TargetSummary.from_cohort(jp, km_times=3 * STEP * np.arange(1, 17))
    dc.release(summary, tmp_path / "jp")
    path = tmp_path / "jp" / "target_summary.json"
    # source's environment: read the JSON, transport
    released = tp.TargetSummary.from_json(path)
    assert released.n == 795 and jp.n == 797
    kw = {"method": "entropy", "times": times, "tau": 1095.0, "moments": moments}
    rows = tp.transport(us, jp, **kw).summary()
    summ = tp.transport(us, released, **kw).summary()
    for col in ("transported", "transported_se", "naive"):
        np.testing.assert_allclose(summ[col].to_numpy(), rows[col].to_numpy(), rtol=0, atol=1e-10)
    # the observed S(t) comes from the released curve: the actuarial estimate of its
    # released (rounded) counts on the released (quarterly) grid
    grid = np.asarray(released.km["time"])
    at = np.searchsorted(grid, times)
    assert np.array_equal(grid[at], times)
    ref = released_table(released.km)
    np.testing.assert_allclose(summ["observed"].to_numpy()[:2], ref["survival"][at], rtol=1e-13)
    np.testing.assert_allclose(summ["observed_se"].to_numpy()[:2], ref["se"][at], rtol=1e-10)
    # within a fraction of its SE of the exact Kaplan–Meier
    gap = np.abs(summ["observed"].to_numpy()[:2] - rows["observed"].to_numpy()[:2])
    assert np.all(gap < 0.25 * rows["observed_se"].to_numpy()[:2])
    # the JSON holds no row-level value: no list as long as the cohort, no identifier
    text = path.read_text()
    data = json.loads(text)

    def lists(x: object) -> list[list[object]]:
        if isinstance(x, dict):
            return [y for v in x.values() for y in lists(v)]
        if isinstance(x, list):
            return [x, *[y for v in x for y in lists(v)]]
        return []

    assert max(len(x) for x in lists(data)) < 60
    ids = jp.linkage_keys()
    for col in ids.columns:
        assert col not in text
        assert not any(str(v) in text for v in ids[col].head(200).to_list())
    assert data["counts"] is None


def test_median_rows_are_released_under_the_shipped_results_rule(tmp_path: Path) -> None:
    """One rule for every transport result: a median row's SEs go with its p-value
    (with the exact SE and p the exact difference of medians comes back), as a shipped
    result's always did; its rounded limits stay."""
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    res = tp.transport(
        us, jp, method="naive", times=[365.0], n_boot=20, seed=3, margin={"median": 30.0}
    )
    exact = res.summary().filter(pl.col("estimand") == "median").row(0, named=True)
    assert exact["difference_se"] is not None and exact["transported_se"] is not None
    dc.release(res, tmp_path / "r")
    med = pl.read_csv(tmp_path / "r" / "transport_summary.csv").filter(
        pl.col("estimand") == "median"
    )
    row = med.row(0, named=True)
    for c in ("transported_se", "observed_se", "naive_se", "difference_se", "equivalence_p"):
        assert row[c] is None, c
    assert row["difference_ci_lower"] is not None and row["verdict"] is not None
