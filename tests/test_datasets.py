"""The shipped synthetic cohorts and their truth: loaders, documented directions, the
checks that make them useful, and byte-identical regeneration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport.simulate import build
from transport.simulate.dgp import COUNTRIES, PROFILES, covariate_log_pmf
from transport.simulate.truth import covariate_patterns

DATA = Path(__file__).resolve().parent.parent / "data" / "synthetic"


def truth(source: str, target: str, quantity: str, estimand: str, time=None, outcome="os"):
    t = tp.datasets.load_truth()
    t = t.filter((pl.col("source") == source) & (pl.col("target") == target)
                 & (pl.col("quantity") == quantity) & (pl.col("estimand") == estimand)
                 & (pl.col("outcome") == outcome))  # fmt: skip
    t = t.filter(pl.col("time").is_null()) if time is None else t.filter(pl.col("time") == time)
    assert t.height == 1
    return float(t["value"][0])


@pytest.mark.parametrize(("country", "n"), [("US", 10_000), ("UK", 1_000), ("DE", 500),
                                             ("JP", 800)])  # fmt: skip
def test_load_synthetic(country: str, n: int) -> None:
    c = tp.datasets.load_synthetic(country)
    assert (c.n, c.name, c.time, c.event, c.time_unit) == (n, country, "os_days", "os_event",
                                                          "days")  # fmt: skip
    assert c.covariates == tp.datasets.COVARIATES
    assert c.identifiers == ("patient_id", "practice_id")
    assert c.covariate_types["age"] == "continuous"
    assert c.levels == {k: v for k, v in tp.datasets.LEVELS.items()}  # clinical order
    pfs = tp.datasets.load_synthetic(country, outcome="pfs", time_unit="months")
    assert pfs.time == "pfs_days" and pfs.time_unit == "months"
    assert np.all(pfs.time_values <= c.time_values / (365.25 / 12) + 1e-9)  # PFS <= OS
    with pytest.raises(ValueError, match="'country'"):
        tp.datasets.load_synthetic("FR")


def test_load_truth_covers_every_pair() -> None:
    t = tp.datasets.load_truth()
    assert t.columns[:6] == ["source", "target", "outcome", "quantity", "estimand", "time"]
    assert "value" in t.columns
    pairs = t.select("source", "target").unique()
    assert pairs.height == 16
    per_pair = t.group_by("source", "target").len()["len"].unique().to_list()
    assert per_pair == [2 * 2 * (8 + 1 + 2)]  # outcomes x quantities x estimands
    same = t.filter(pl.col("source") == pl.col("target"))
    by = ["source", "outcome", "estimand", "time"]
    a = same.filter(pl.col("quantity") == "transported").sort(by)["value"].to_numpy()
    b = same.filter(pl.col("quantity") == "target").sort(by)["value"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_shipped_seed_follows_the_stated_rule() -> None:
    t = tp.datasets.load_truth()
    assert build.covers_truth(build.SEED, t)
    for seed in range(build.FIRST_SEED, build.SEED):
        assert not build.covers_truth(seed, t), seed


def test_own_km_agrees_with_the_truth_in_every_country() -> None:
    """Done-when of the synthetic data: each country's own KM interval holds its truth."""
    t = tp.datasets.load_truth()
    for country in COUNTRIES:
        km = tp.kaplan_meier(tp.datasets.load_synthetic(country))
        own = t.filter((pl.col("source") == country) & (pl.col("target") == country)
                       & (pl.col("quantity") == "target") & (pl.col("outcome") == "os")
                       & (pl.col("estimand") == "survival"))  # fmt: skip
        at = km.at(own["time"].to_numpy())
        v = own["value"].to_numpy()
        assert np.all((at["ci_lower"].to_numpy() <= v) & (v <= at["ci_upper"].to_numpy()))


def test_patient_mix_matters_for_the_naive_us_estimate() -> None:
    km = tp.kaplan_meier(tp.datasets.load_synthetic("US"))
    naive_median = km.median()
    naive_1y = float(km.survival_at([365])[0])
    for target, sign in (("UK", -1), ("JP", +1)):
        tr_median = truth("US", target, "transported", "median")
        tr_1y = truth("US", target, "transported", "survival", 365.0)
        # more than 1.3 months and 5 percentage points, outside the naive interval
        assert sign * (tr_median - naive_median.value) > 40
        assert sign * (tr_1y - naive_1y) > 0.05
        assert not naive_median.ci_lower <= tr_median <= naive_median.ci_upper


def exact_share(country: str, name: str, code: int) -> float:
    pats = covariate_patterns()
    prob = np.exp(covariate_log_pmf(PROFILES[country], pats))
    return float(prob[pats[name] == code].sum())


def test_countries_differ_in_the_documented_directions() -> None:
    share = {c: {k: exact_share(c, *k) for k in [("female", 1), ("smoking", 0), ("driver", 1),
                                                  ("ecog", 2), ("regimen", 3), ("regimen", 2),
                                                  ("regimen", 0)]}
             for c in COUNTRIES}  # fmt: skip
    frames = {c: pl.read_parquet(DATA / f"{c}.parquet") for c in COUNTRIES}
    mean_age = {c: frames[c]["age"].mean() for c in COUNTRIES}
    others = {c: [o for o in COUNTRIES if o != c] for c in COUNTRIES}
    assert all(mean_age["DE"] > mean_age[o] for o in others["DE"])  # DE oldest
    assert all(share["DE"][("female", 1)] < share[o][("female", 1)] for o in ("US", "UK"))
    assert all(share["UK"][("ecog", 2)] > share[o][("ecog", 2)] for o in others["UK"])
    for k in (("smoking", 0), ("driver", 1), ("regimen", 3)):  # never, EGFR/ALK+, targeted
        assert all(share["JP"][k] > share[o][k] for o in others["JP"]), k
    assert all(share["US"][("regimen", 2)] > share[o][("regimen", 2)] for o in others["US"])
    assert all(share["UK"][("regimen", 0)] > share[o][("regimen", 0)] for o in others["UK"])
    assert max(PROFILES, key=lambda c: PROFILES[c].n) == "US"

    # the shipped samples show the same directions
    def sample(c: str, col: str, value: str) -> float:
        return float((frames[c][col] == value).mean())

    assert sample("JP", "egfr_alk", "positive") > 2 * sample("US", "egfr_alk", "positive")
    assert sample("UK", "ecog", "2+") > sample("US", "ecog", "2+")


def test_readme_table_matches_the_model() -> None:
    """The covariate table in data/synthetic/README.md states the exact model shares."""
    readme = (DATA / "README.md").read_text()
    rows = {
        "Female": ("female", 1), "Never smoker": ("smoking", 0), "Squamous": ("squamous", 1),
        "EGFR/ALK positive": ("driver", 1), "PD-L1 >=50%": ("pdl1", 1), "ECOG 0": ("ecog", 0),
        "ECOG 2+": ("ecog", 2),
        "Stage IV at diagnosis": ("stage", 2), "Chemotherapy": ("regimen", 0),
        "Immunotherapy": ("regimen", 1), "Chemo-immunotherapy": ("regimen", 2),
        "Targeted therapy": ("regimen", 3),
    }  # fmt: skip

    def cells(label: str) -> list[str]:
        line = next(ln for ln in readme.splitlines() if ln.startswith(f"| {label} |"))
        return [c.strip().rstrip("%") for c in line.strip("|").split("|")[1:]]

    for label, (name, code) in rows.items():
        for country, cell in zip(COUNTRIES, cells(label), strict=True):
            assert float(cell) == pytest.approx(100 * exact_share(country, name, code), abs=0.05)
    pats = covariate_patterns()
    for country, cell in zip(COUNTRIES, cells("Mean age (years)"), strict=True):
        prob = np.exp(covariate_log_pmf(PROFILES[country], pats))
        assert float(cell) == pytest.approx(float(prob @ pats["age"]), abs=0.05)
    for country, cell in zip(COUNTRIES, cells("Setting log hazard ratio"), strict=True):
        assert float(cell.replace("−", "-")) == PROFILES[country].setting_loghr
    for country, cell in zip(COUNTRIES, cells("P(U = 1), unmeasured"), strict=True):
        assert float(cell) == PROFILES[country].u_prevalence
    outcome_rows = {"True median OS (days)": ("os", "median", None),
                    "True 1-year OS": ("os", "survival", 365.0),
                    "True median PFS (days)": ("pfs", "median", None)}  # fmt: skip
    for label, (outcome, estimand, time) in outcome_rows.items():
        for country, cell in zip(COUNTRIES, cells(label), strict=True):
            value = truth(country, country, "target", estimand, time, outcome)
            assert float(cell) == pytest.approx(value, abs=0.0005 if time else 0)


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    build.build(tmp_path)
    for country in COUNTRIES:
        assert (tmp_path / f"{country}.csv").read_bytes() == (DATA / f"{country}.csv").read_bytes()
        assert pl.read_parquet(tmp_path / f"{country}.parquet").equals(
            pl.read_parquet(DATA / f"{country}.parquet")
        )
    # the truths are quadratures accurate to 1e-13: their last bits follow the numpy and
    # scipy builds (summation order), so they are compared to that accuracy, the rest exactly
    fresh, stored = pl.read_csv(tmp_path / "truth.csv"), pl.read_csv(DATA / "truth.csv")
    assert fresh.drop("value").equals(stored.drop("value"))
    np.testing.assert_allclose(fresh["value"], stored["value"], rtol=1e-12, atol=0)
    # the Parquet writer is deterministic too (its bytes carry the polars version)
    again = tmp_path / "again"
    build.build(again, truth=False)
    for country in COUNTRIES:
        assert (again / f"{country}.parquet").read_bytes() == (
            tmp_path / f"{country}.parquet"
        ).read_bytes()


def test_files_are_generated_in_memory_when_absent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRANSPORT_DATA", str(tmp_path))
    c = tp.datasets.load_synthetic("DE")
    monkeypatch.delenv("TRANSPORT_DATA")
    assert c.to_frame().equals(tp.datasets.load_synthetic("DE").to_frame())


def test_no_shipped_file_holds_the_unmeasured_modifier() -> None:
    for country in COUNTRIES:
        cols = pl.read_parquet_schema(DATA / f"{country}.parquet")
        assert not {"u", "t_death", "t_pfs"} & set(cols)
