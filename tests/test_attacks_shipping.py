"""Attacks on model shipping, written as a hostile consortium partner would write them:
with the released files and the package's source, craft what the target applies, or
read what a release carries, and try to recover a target's or a source's patients.
Each test asserts that the attack fails (it is refused, or what it recovers is wrong).

Class 2: a crafted shipped model probes the target. The partner edits a released model
(its coefficients, baseline, design) and recomputes the manifest's hashes; the target
applies it and releases the result. The secret is the target's oldest patient's age
(planted, unknown to the partner) and the number of its patients above an age.

Class 1: a shipped model makes the target compute for ever. A number in the file sizes
the target's work (the bootstrap's ``n_boot``, a spline's knots); each attack runs in a
child process with a time and memory limit, so that a regression fails in seconds.

Differencing: two models released from sources one patient apart give that patient's
row back from their exact column means (the Cox ``center``).

Class 7: a released bootstrap rebuilds the source's rows. With the seed's entropy and
the per-replicate refits, every resample's counts can be regenerated and the refits
regressed on them, giving each source row's influence on the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import disclosure as dc
from transport.inference import child_seeds, resample_counts
from transport.survival._cox import fit_cox
from transport.survival._pwexp import fit_pwexp

ROOT = Path(tp.__file__).resolve().parent.parent
SECRET_AGE = 93.4  # the planted oldest target patient (the next oldest are 90)
STEP = 30.4375


# -- the partner's tools ---------------------------------------------------------------------
def forge(release: Path, out: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of a released model with ``edit`` applied to its JSON and the manifest's
    hashes recomputed, as anyone holding the release can."""
    shutil.copytree(release, out)
    data = json.loads((out / "shipped_model.json").read_text())
    edit(data)
    payload = (json.dumps(data, indent=2) + "\n").encode()
    (out / "shipped_model.json").write_bytes(payload)
    manifest = json.loads((out / "manifest.json").read_text())
    for e in manifest["files"]:
        if e["file"] == "shipped_model.json":
            e["sha256"] = hashlib.sha256(payload).hexdigest()
            e["bytes"] = len(payload)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def planted(name: str, age: float = SECRET_AGE) -> tp.Cohort:
    """Target ``name`` with its (first) oldest patient made ``age`` years old."""
    c = tp.datasets.load_synthetic(name)
    frame = c.to_frame()
    i = int(np.argmax(frame["age"].to_numpy()))
    ages = frame["age"].to_numpy().copy()
    ages[i] = age
    frame = frame.with_columns(pl.Series("age", ages))
    return tp.Cohort(frame, time=c.time, event=c.event, covariates=list(c.covariates), name=name)


def transported_values(res: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """What the partner reads back: the released transported curve (times, S) and the
    released number of target patients."""
    curves = pl.read_csv(res / "shipped_curves.csv").filter(pl.col("curve") == "transported")
    n = json.loads((res / "shipped_result.json").read_text())["n_target"]
    return curves["time"].to_numpy(), curves["survival"].to_numpy(), float(n)


def apply_and_release(
    model: tp.ShippedModel, target: tp.Cohort, out: Path, **kw: Any
) -> Path | None:
    """The target's side: apply the model and release the result (``None``: refused)."""
    try:
        res = model.apply(target, **kw)
        dc.release(res, out)
    except tp.DisclosureError as exc:
        print(f"refused: {str(exc)[:120]}")
        return None
    return out


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legitimate US model of age and sex, released by the source's gate."""
    us = tp.datasets.load_synthetic("US")
    out = tmp_path_factory.mktemp("us") / "model"
    dc.release(tp.ShippedModel.fit(us, "age + sex"), out)
    return out


# -- class 2: a crafted model probes the target ------------------------------------------------
def threshold(t: np.ndarray) -> np.ndarray:
    """The age the sweep's baseline sets at grid time ``t``: 96 at the first month, a
    quarter year lower each month."""
    return 96.0 - 0.25 * (np.round(np.asarray(t) / STEP) - 1)


def sweep(coef: float, center: float = 89.75) -> Callable[[dict[str, Any]], None]:
    """Coefficient ``coef`` on age (centred at ``center``), none on sex, and a baseline
    rising over the grid so that at grid time ``t`` the patients older than
    ``threshold(t)`` die and the others live: S(t) = 1 - (patients older than it) / n."""

    def edit(data: dict[str, Any]) -> None:
        data["coef"] = [coef, 0.0]
        data["cox"]["center"] = [center, 0.0]
        data["cox"]["hazard"] = np.exp(-coef * (threshold(data["grid"]) - center)).tolist()

    return edit


def oldest_from_sweep(res: Path) -> float | None:
    """The highest threshold above which the released curve counts a patient."""
    time, surv, n = transported_values(res)
    hits = threshold(time)[n * (1.0 - surv) >= 0.5]
    return float(hits.max()) if hits.size else None


@pytest.mark.parametrize("coef", [50.0, 5.0, 1.0])
@pytest.mark.parametrize("name", ["UK", "DE", "JP"])
def test_an_extreme_coefficient_does_not_read_the_oldest_age(
    name: str, coef: float, released: Path, tmp_path: Path
) -> None:
    """Coefficient 50 on age centred at 89.75 (and 5, and 1), with a baseline sweeping a
    threshold down the grid: the released curve once counted the patients above each
    threshold and gave the oldest patient's age to a quarter year."""
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "forged", sweep(coef)))
    res = apply_and_release(model, planted(name), tmp_path / "res")
    guess = None if res is None else oldest_from_sweep(res)
    print(f"{name}, coefficient {coef}: oldest age read as {guess} (secret {SECRET_AGE})")
    assert guess is None or abs(guess - SECRET_AGE) > 2.0


def indicator(threshold: float, coef: float = 5.0, h0: float = 0.05) -> Callable[..., None]:
    """A design ``I(age > threshold)`` with coefficient ``coef`` (a spread of ``coef``,
    under the bound) and a flat baseline ``h0``: the patients above the threshold have
    S = exp(-h0 e^coef), about 0, every other patient S = exp(-h0), so the curve gives
    their number."""

    def edit(data: dict[str, Any]) -> None:
        col = f"I(age > {threshold})"
        data["design"] = {"formula": col, "columns": [col], "covariates": ["age"],
                          "types": {"age": "continuous"}, "levels": {}, "source": "US",
                          "transform_state": {}}  # fmt: skip
        data["names"] = [col]
        data["coef"] = [coef]
        data["cov"] = [[0.01]]
        data["cox"]["center"] = [0.0]
        data["cox"]["hazard"] = [h0] * len(data["grid"])

    return edit


def count_from_indicator(res: Path, coef: float = 5.0, h0: float = 0.05) -> float | None:
    """The number above the threshold, from every released transported S (curve and
    summary rows): ``n (q - S) / (q - r)``."""
    _, surv, n = transported_values(res)
    summ = pl.read_csv(res / "shipped_summary.csv").filter(pl.col("estimand") == "survival")
    values = [*surv.tolist(), *[v for v in summ["transported"].to_list() if v is not None]]
    if not values:
        return None
    q, r = np.exp(-h0), np.exp(-h0 * np.exp(coef))
    return float(np.median([n * (q - s) / (q - r) for s in values]))


CASES = [(name, thr) for name in ("UK", "DE", "JP") for thr in (90.5, 93.0, 95.0)] + [("DE", 88.5)]


@pytest.mark.parametrize(("name", "threshold"), CASES)
def test_a_model_under_the_bound_does_not_count_a_few_patients(
    name: str, threshold: float, released: Path, tmp_path: Path
) -> None:
    """Under ``max_log_hazard_ratio`` (a spread of 5), an indicator column and a chosen
    baseline once read the number of target patients above an age exactly: 1 above
    90.5 or 93 (the planted oldest), 0 above 95, 9 above 88.5 in DE, each a cell below
    ``min_cell``. Released or refused, the count must not come back."""
    target = planted(name)
    truth = int(np.sum(target.to_frame()["age"].to_numpy() > threshold))
    assert truth < 10
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", indicator(threshold)))
    res = apply_and_release(model, target, tmp_path / "res", times=[365.25])
    guess = None if res is None else count_from_indicator(res)
    print(f"{name}, patients above {threshold}: read as {guess} (secret {truth})")
    assert guess is None or round(guess) != truth


def masked(split: float, b2: float, b3: float, h0: tuple[float, float]) -> Callable[..., None]:
    """Two indicator columns, ``I(age > split)`` (coefficient ``b2``: many patients vary)
    and ``I(age > 90.5)`` (``b3``: the planted oldest alone), spread ``b2 + b3`` under the
    bound, and a baseline rising geometrically over ``h0``: three groups whose S the
    partner knows at every grid time, so each released value is a known combination of
    the three groups' sizes."""

    def edit(data: dict[str, Any]) -> None:
        cols = [f"I(age > {split})", "I(age > 90.5)"]
        data["design"] = {"formula": " + ".join(cols), "columns": cols, "covariates": ["age"],
                          "types": {"age": "continuous"}, "levels": {}, "source": "US",
                          "transform_state": {}}  # fmt: skip
        data["names"] = cols
        data["coef"] = [b2, b3]
        data["cov"] = [[0.01, 0.0], [0.0, 0.01]]
        data["cox"]["center"] = [0.0, 0.0]
        data["cox"]["hazard"] = np.geomspace(*h0, len(data["grid"])).tolist()

    return edit


def sizes_consistent(res: Path, model: tp.ShippedModel, lp: np.ndarray, near: int) -> set[int]:
    """Every size of the third group (0 to 11) for which some integer sizes of the
    three groups (the first within 80 of ``near``, the total within the released n's
    rounding) give the released curve: exactly, or within the rounding when the values
    are multiples of round_to over n."""
    time, surv, n = transported_values(res)
    if time.size == 0:
        return set(range(12))
    q = np.exp(-np.outer(np.asarray(model.hazard)[np.searchsorted(model.grid, time)], np.exp(lp)))
    rounded = np.allclose(surv * n / 5, np.round(surv * n / 5), atol=1e-9)
    out = set()
    for total in range(int(n) - 2, int(n) + 3):
        survivors, tol = (surv * n, 2.5 + 1e-9) if rounded else (surv * total, 1e-6)
        for m in range(12):
            for n1 in range(max(0, near - 80), near + 80):
                x = np.array([n1, total - n1 - m, m])
                if np.all(np.abs(q @ x - survivors) <= tol):
                    out.add(m)
    return out


@pytest.mark.parametrize(
    ("split", "b2", "b3", "h0"),
    [(60.0, 2.0, 5.0, (0.01, 1.0)), (70.0, 3.0, 5.0, (0.01, 10.0)), (60.0, 1.0, 3.0, (1e-4, 1.0))],
)
@pytest.mark.parametrize("name", ["UK", "DE", "JP"])
def test_a_masked_model_under_the_bound_does_not_count_one_patient(
    name: str, split: float, b2: float, b3: float, h0: tuple[float, float],
    released: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """Many patients varying beside one apart (so that every contributor count is
    large), the released curve over the grid once gave the three groups' integer sizes
    exactly, the planted oldest patient's 1 among them. Rounded and at the target's own
    steps only, several sizes must stay possible."""
    target = planted(name)
    age = target.to_frame()["age"].to_numpy()
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", masked(split, b2, b3, h0)))
    res = apply_and_release(model, target, tmp_path / "res")
    lp = np.array([0.0, b2, b2 + b3])
    found = (
        set(range(12))
        if res is None
        else sizes_consistent(res, model, lp, int(np.sum(age <= split)))
    )
    print(f"{name}: patients above 90.5 consistent with the release: {sorted(found)} (secret 1)")
    assert len(found) > 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("coef", [float("nan"), 0.0]),  # null in JSON
        ("coef", [1e308, 0.0]),
        ("cov", [[1.0, 2.0], [0.0, 1.0]]),  # not symmetric
        ("cov", [[1.0, 2.0], [2.0, 1.0]]),  # not positive semidefinite
        ("hazard", "negative"),
        ("hazard", "decreasing"),
    ],
)
def test_a_model_with_numbers_no_fit_has_is_refused(
    field: str, value: Any, released: Path, tmp_path: Path
) -> None:
    """Numbers no fitted model has (a non-finite or overflowing coefficient, a covariance
    that is none, a baseline hazard that falls or is negative: a dead patient coming
    back to life gives a threshold too) are refused where the model is read."""

    def edit(data: dict[str, Any]) -> None:
        if field == "hazard":
            h = np.asarray(data["cox"]["hazard"])
            data["cox"]["hazard"] = (-h if value == "negative" else h[::-1]).tolist()
        else:
            data[field] = [[None if v != v else v for v in row] if isinstance(row, list)
                           else (None if row != row else row) for row in value]  # fmt: skip

    forged = forge(released, tmp_path / "forged", edit)
    accepted = True
    try:
        model = tp.ShippedModel.from_release(forged)
        model.apply(planted("JP"), times=[365.25])
    except (tp.DataError, tp.DisclosureError) as exc:
        accepted = False
        print(f"refused: {str(exc)[:160]}")
        assert "model_bounds" in str(exc)
    assert not accepted


@pytest.mark.parametrize("name", ["UK", "DE", "JP"])
def test_the_targets_gate_rules_whatever_policy_applied_the_model(
    name: str, released: Path, tmp_path: Path
) -> None:
    """Applied under a loose policy (max_log_hazard_ratio 1e4), the extreme model's
    result still meets the target's own gate, which refuses it."""
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", sweep(50.0)))
    loose = dc.Policy(max_log_hazard_ratio=1e4)
    with np.errstate(over="ignore", invalid="ignore"):  # e^(50 x 46 years) is inf
        res = model.apply(planted(name), policy=loose)
    with pytest.raises(tp.DisclosureError, match=r"rule: model_bounds"):
        dc.release(res, tmp_path / "res")


@pytest.mark.parametrize("name", ["DE", "JP"])
def test_forged_bootstrap_refits_do_not_count_patients(
    name: str, released: Path, tmp_path: Path
) -> None:
    """Bootstrap refits forged into the release beside the honest model, each the
    extreme one (coefficient 5, a sweeping baseline): the target's replicates once
    averaged them over its resamples, and the lower limits of S(t) at the grid times
    counted the patients above each threshold (half a patient below 1 exactly where
    some are), while the estimate itself passed every rule."""

    def edit(data: dict[str, Any]) -> None:
        extreme = json.loads(json.dumps(data))
        sweep(5.0, center=data["cox"]["center"][0])(extreme)  # refits share the centre
        refits = {"coef": [extreme["coef"]] * 50, "hazard": [extreme["cox"]["hazard"]] * 50}
        data["bootstrap"] = {**refits, "seed_entropy": "1"}

    try:
        model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", edit))
    except (tp.DataError, tp.DisclosureError) as exc:  # the reader's, or the audit's layout
        print(f"refused: {str(exc)[:160]}")
        return
    res = apply_and_release(model, planted(name), tmp_path / "res", times=model.grid[:60], seed=1)
    if res is None:
        return
    summ = pl.read_csv(res / "shipped_summary.csv").filter(pl.col("estimand") == "survival")
    lower = summ["transported_ci_lower"].to_numpy()
    n = transported_values(res)[2]
    hits = threshold(summ["time"].to_numpy())[np.isfinite(lower) & (lower < 1.0 - 0.5 / n)]
    guess = float(hits.max()) if hits.size else None
    print(f"{name}: oldest age read from the intervals as {guess} (secret {SECRET_AGE})")
    assert guess is None or abs(guess - SECRET_AGE) > 2.0


# -- class 2: the transported median of a crafted model ----------------------------------------
def target_with_old(seed: int, m: int, threshold: float, n: int = 400) -> tp.Cohort:
    """A target of ``n`` patients aged below ``threshold - 3``, except ``m`` planted ones
    older than ``threshold`` (the secret: their number, and the oldest one's age)."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(64, 8, n), 30, threshold - 3)
    age[rng.choice(n, m, replace=False)] = threshold + rng.uniform(0.5, 6.0, m)
    frame = pl.DataFrame({
        "days": rng.exponential(700, n).round() + 1,
        "dead": (rng.uniform(size=n) < 0.7).astype(int),
        "age": age,
        "sex": rng.choice(["f", "m"], n),
    })  # fmt: skip
    return tp.Cohort(frame, time="days", event="dead", covariates=["age", "sex"], name="T")


def median_probe(
    threshold: float, n_guess: float, coef: float = 9.0, top: int = 12, boot: bool = False
) -> tuple[Callable[[dict[str, Any]], None], Callable[[Path, np.ndarray], int | None]]:
    """The partner's model: one column ``I(age > threshold)`` with coefficient ``coef``
    (a spread of ``coef``, under max_log_hazard_ratio) and a baseline such that the
    patients above the threshold die at once and the others share one survival
    ``q_k = 0.5 / (1 - f_k)`` at grid step ``k``, with ``f_k = (j + 0.5) / n`` sweeping
    ``j`` down from ``top``: S(t_k) = (1 - m / n) q_k crosses 0.5 exactly at the step
    where ``j = m - 1``, so the released median's grid step is the count ``m``. With
    ``boot``, a bootstrap summary of tiny spread: the target's replicates then differ by
    its resamples only, and the interval's limits read the count too. Returns the
    edit and the reader (the count, from the median or a limit; ``None`` if withheld)."""
    first = 2

    def edit(data: dict[str, Any]) -> None:
        col = f"I(age > {threshold})"
        data["design"] = {"formula": col, "columns": [col], "covariates": ["age"],
                          "types": {"age": "continuous"}, "levels": {}, "source": "US",
                          "transform_state": {}}  # fmt: skip
        data["names"], data["coef"], data["cov"] = [col], [coef], [[0.01]]
        data["cox"]["center"] = [0.0]
        hazard: list[float] = []
        for k in range(len(data["grid"])):
            j = top - (k - first)
            if k < first:
                hazard.append(0.01 * (k + 1))
            elif j >= -1:
                hazard.append(-np.log(0.5 / (1 - (j + 0.5) / n_guess)))
            else:
                hazard.append(hazard[-1] + 0.01)
        data["cox"]["hazard"] = hazard
        width = 1 + len(hazard)
        data["bootstrap"] = None if not boot else {
            "n_boot": 40, "failed": 0, "level": 0.95, "cov": (1e-12 * np.eye(width)).tolist(),
            "se": [1e-6] * width, "lower": [coef, *hazard], "upper": [coef, *hazard]}  # fmt: skip

    def read(res: Path, grid: np.ndarray) -> int | None:
        summ = pl.read_csv(res / "shipped_summary.csv").filter(pl.col("estimand") == "median")
        for col in ("transported", "transported_ci_lower", "transported_ci_upper"):
            med = summ[col][0]
            if med is not None and np.isfinite(med):
                return top - (int(np.argmin(np.abs(grid - float(med)))) - first) + 1
        return None

    return edit, read


MEDIAN_CASES = [
    # (seed, planted count above the threshold, threshold, target policy)
    (0, 1, 88.0, dc.Policy()),
    (1, 2, 85.0, dc.Policy(min_cell=20, round_to=10)),
    (2, 3, 90.0, dc.Policy(min_cell=5, round_to=1)),
    (3, 0, 88.0, dc.Policy(min_cell=50, round_to=5, min_km_step=10)),
    (4, 7, 86.5, dc.Policy(min_cell=15, round_to=3)),
    (5, 4, 87.0, dc.Policy(min_cell=5, round_to=10)),
]


@pytest.mark.parametrize("boot", [False, True])
@pytest.mark.parametrize(("seed", "m", "threshold", "policy"), MEDIAN_CASES)
def test_the_transported_median_does_not_count_target_patients_above_a_threshold(
    seed: int,
    m: int,
    threshold: float,
    policy: dc.Policy,
    boot: bool,
    released: Path,
    tmp_path: Path,
) -> None:
    """min_contributors withheld the transported S(t) rows and curve of an indicator
    model (the few patients above the threshold are the only spread), but the
    transported median was released, rounded to the grid, with no contributor rule. A
    baseline sweeping the 0.5 crossing across the grid in steps of one patient turned
    the median's grid step into the count: it read 1, 2, 3, 0 and 7 patients above the
    threshold exactly, on every policy, with the spread (9) under max_log_hazard_ratio.
    With a bootstrap summary, the interval's limits are read the same way."""
    target = target_with_old(seed, m, threshold)
    edit, read = median_probe(threshold, n_guess=400, boot=boot)
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", edit))
    guess, rules = None, set()
    try:
        res = model.apply(target, times=[365.25], policy=policy, seed=3)
        manifest = dc.release(res, tmp_path / "res", policy)
        guess = read(tmp_path / "res", model.grid)
        rules = {(s["item"], s["rule"]) for s in manifest["suppressed"]}
    except tp.DisclosureError as exc:
        print(f"refused: {str(exc)[:150]}")
    print(f"seed {seed}, boot {boot}: patients above {threshold}: read as {guess} (secret {m})")
    assert guess != m
    assert not rules or ("transported median row of the summary", "min_contributors") in rules


@pytest.mark.parametrize(("name", "threshold"), [("UK", 90.5), ("DE", 88.5), ("JP", 93.0)])
def test_the_median_does_not_count_the_oldest_patients_of_a_synthetic_target(
    name: str, threshold: float, released: Path, tmp_path: Path
) -> None:
    """The same probe on the bundled targets (the oldest planted at 93.4 years), the
    partner guessing their size from a released count."""
    target = planted(name)
    truth = int(np.sum(target.to_frame()["age"].to_numpy() > threshold))
    edit, read = median_probe(threshold, n_guess=target.n)
    model = tp.ShippedModel.from_release(forge(released, tmp_path / "f", edit))
    res = apply_and_release(model, target, tmp_path / "res", times=[365.25])
    guess = None if res is None else read(res, model.grid)
    print(f"{name}: patients above {threshold}: read as {guess} (secret {truth})")
    assert guess != truth


@pytest.mark.parametrize(
    ("seed", "policy"), [(7, dc.Policy()), (8, dc.Policy(min_cell=5, round_to=1))]
)
def test_median_queries_do_not_bisect_the_oldest_target_age(
    seed: int, policy: dc.Policy, released: Path, tmp_path: Path
) -> None:
    """The same channel, one query per threshold (each a model the partner sends): a
    bisection on 'is anyone older than x' read the planted oldest age (92.92, as 92.89)
    to a quarter year in 7 queries; each release was an exact count of 0 or 1 patient."""
    target = target_with_old(seed, 1, 88.0)
    secret = float(target.to_frame()["age"].max())  # type: ignore[arg-type]
    lo, hi, queries = 80.0, 100.0, 0
    while hi - lo > 0.25 and queries < 10:
        mid = round((lo + hi) / 2, 3)
        edit, read = median_probe(mid, n_guess=400)
        out = tmp_path / f"q{queries}"
        model = tp.ShippedModel.from_release(forge(released, out / "f", edit))
        try:
            dc.release(model.apply(target, times=[365.25], policy=policy), out / "res", policy)
            count = read(out / "res", model.grid)
        except tp.DisclosureError:
            count = None
        queries += 1
        if count is None:
            break
        lo, hi = (mid, hi) if count >= 1 else (lo, mid)
    guess = (lo + hi) / 2
    print(f"oldest age read as {guess:.2f} in {queries} queries (secret {secret:.2f})")
    assert abs(guess - secret) > 1.0


# -- differencing: two shipped models whose sources differ by one patient ---------------------
def source_frame(seed: int, n: int = 400) -> pl.DataFrame:
    """A source of ``n`` patients: age, sex and a group whose level ``c`` is rare (about
    3%, above min_cell)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(63, 9, n)
    sex = rng.choice(["f", "m"], n)
    grp = rng.choice(["a", "b", "c"], n, p=[0.6, 0.37, 0.03])
    lp = 0.04 * (age - 63) + 0.3 * (sex == "m") + 0.2 * (grp == "b")
    t, c = np.ceil(rng.exponential(600 * np.exp(-lp))), np.ceil(rng.uniform(200, 1500, n))
    return pl.DataFrame({"days": np.minimum(t, c), "dead": (t <= c).astype(int),
                         "age": age, "sex": sex, "grp": grp})  # fmt: skip


def source_of(frame: pl.DataFrame) -> tp.Cohort:
    return tp.Cohort(frame, time="days", event="dead", covariates=["age", "sex", "grp"], name="S")


@pytest.mark.parametrize(
    ("seed", "formula", "patient"),
    [
        (0, "age + sex", {"age": 91.3, "sex": "f", "grp": "a", "days": 14 * STEP + 3, "dead": 1}),
        (1, "age + sex", {"age": 47.2, "sex": "m", "grp": "b", "days": 20 * STEP - 5, "dead": 1}),
        (2, "age + sex", {"age": 78.8, "sex": "m", "grp": "a", "days": 300.0, "dead": 0}),
        (3, "age + sex + grp", {"age": 83.1, "sex": "f", "grp": "c", "days": 500.0, "dead": 1}),
        (4, "age * sex + grp", {"age": 35.4, "sex": "m", "grp": "c", "days": 90.0, "dead": 1}),
    ],
)
def test_two_shipped_models_one_patient_apart_do_not_give_its_covariates(
    seed: int, formula: str, patient: dict[str, Any], tmp_path: Path
) -> None:
    """A released Cox model carried ``cox.center``, the exact means of the source's
    design columns (any reference point would do for the baseline). Two releases from a
    source before and after one patient joined (n released as 400 both times) gave that
    patient's design row as ``c_a + (n + 1)(c_b - c_a)``: age 91.3, 47.2 and 78.8 to the
    printed digit, and sex exactly (and a rare level's dummy, whose mean moves by 1/401,
    as surely)."""
    before = source_frame(seed)
    after = pl.concat([before, pl.DataFrame({k: [patient[k]] for k in before.columns})],
                      how="vertical_relaxed")  # fmt: skip
    rel, rules = [], set()
    for k, frame in (("a", before), ("b", after)):
        d = tmp_path / k
        manifest = dc.release(tp.ShippedModel.fit(source_of(frame), formula), d)
        rules |= {s["rule"] for s in manifest["suppressed"]}
        rel.append(json.loads((d / "shipped_model.json").read_text()))
    a, b = rel
    ca, cb = np.array(a["cox"]["center"], float), np.array(b["cox"]["center"], float)
    row = ca + (a["n"] + 1) * (cb - ca)
    design = tp.Design(source_of(after), formula)
    truth = design.matrix(source_of(after.tail(1)))[0]
    print(f"seed {seed}: recovered {row.round(3).tolist()} (secret {truth.round(3).tolist()})")
    assert not np.all(np.abs(row - truth) <= 0.5)
    assert "centre_lattice" in rules


@pytest.mark.parametrize("formula", ["age + sex", "age * sex + grp", "center(age) + grp"])
def test_a_released_model_predicts_as_the_unreleased_one(formula: str, tmp_path: Path) -> None:
    """The centre on its lattice and the baseline (and each bootstrap refit's) moved to
    it: the released model's marginal survival is the unreleased one's at the released
    grid times, on every target, and its bootstrap intervals stay about as wide."""
    model = tp.ShippedModel.fit(source_of(source_frame(9)), formula, n_boot=30, seed=2)
    dc.release(model, tmp_path / "m")
    back = tp.ShippedModel.from_release(tmp_path / "m")
    assert back.center is not None and model.center is not None
    assert not np.array_equal(back.center, model.center)
    for name in ("UK", "DE", "JP"):
        rows = source_frame(20 + len(name), n=300)
        target = tp.Cohort(rows, time="days", event="dead", covariates=["age", "sex", "grp"],
                           name=name)  # fmt: skip
        gap = back.marginal_survival(target, back.grid) - model.marginal_survival(target, back.grid)
        print(f"{formula} in {name}: largest difference {np.max(np.abs(gap)):.2e}")
        assert np.max(np.abs(gap)) < 1e-10
    target = source_of(source_frame(31, n=300))
    se = [m.apply(target, times=[365.25], seed=4).summary()["transported_se"][0]
          for m in (model, back)]  # fmt: skip
    assert 0.7 < se[1] / se[0] < 1.4


# -- class 7: released bootstrap refits and seed -------------------------------------------------
def source_cohort(n: int, seed: int) -> tp.Cohort:
    """``n`` US patients drawn with ``seed`` (the source's secret rows)."""
    us = tp.datasets.load_synthetic("US")
    frame = us.to_frame().sample(n, seed=seed)
    return tp.Cohort(frame, time=us.time, event=us.event, covariates=list(us.covariates),
                     name="US")  # fmt: skip


def refit(model: tp.ShippedModel, source: tp.Cohort, w: np.ndarray) -> np.ndarray:
    """The model's coefficients refitted with case weights ``w`` (the test's truth)."""
    X = model.design.matrix(source)
    time, event = source.time_values, source.event_values
    if model.kind == "cox":
        return fit_cox(time, event, X, w).coef
    assert model.breaks is not None
    fit = fit_pwexp(time, event, X, model.breaks, w, time_varying=model.time_varying,
                    start=model.coef)  # fmt: skip
    return fit.coef


def regress_influence(release: Path) -> np.ndarray | None:
    """The partner's regression: find the seed's entropy and the per-replicate refits
    anywhere in the release, regenerate every resample's counts, and regress the refits
    on them; returns each source row's estimated influence on the coefficients (rows x
    coefficients), or ``None`` when the release does not hold what it needs."""
    texts = {p.name: p.read_text() for p in release.iterdir()}
    data = json.loads(texts["shipped_model.json"])
    found: dict[str, Any] = {}

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for key, v in x.items():
                if "seed" in key or "entropy" in key:
                    found["seed"] = v
                rows = isinstance(v, list) and len(v) > 2 and isinstance(v[0], list)
                if rows and key != "cov" and len(v[0]) == len(data["coef"]):
                    found["refits"] = v
                walk(v)

    walk(data)
    if "seed" not in found or "refits" not in found or found["seed"] is None:
        return None
    refits = np.asarray(found["refits"], dtype=np.float64)
    entropy = int(found["seed"])
    best: tuple[float, np.ndarray] | None = None
    for n in range(int(data["n"]) - 2, int(data["n"]) + 3):  # n was released rounded
        C = np.vstack([resample_counts(np.random.default_rng(s), n)
                       for s in child_seeds(entropy, refits.shape[0])])  # fmt: skip
        design = np.column_stack((np.ones(C.shape[0]), C - 1.0))
        beta, *_ = np.linalg.lstsq(design, refits, rcond=None)
        fit = 1.0 - np.sum((refits - design @ beta) ** 2) / np.sum((refits - refits.mean(0)) ** 2)
        if best is None or fit > best[0]:
            best = (float(fit), beta[1:])
    assert best is not None
    return best[1]


@pytest.mark.parametrize(("seed", "kind"), [(3, "cox"), (20261122, "cox"), (7, "pwexp")])
def test_a_released_bootstrap_cannot_regenerate_its_resamples(
    seed: int, kind: str, tmp_path: Path
) -> None:
    """Released with its seed's entropy and its 400 refits, a model of 150 source
    patients let every resample be regenerated and each row's influence on the
    coefficients be regressed out (the attack on the landed code found the exit month
    of 87% of the event rows from them). The release must hold neither, and the target's
    intervals must still come, about as wide as the refits gave."""
    source = source_cohort(150, seed)
    model = tp.ShippedModel.fit(source, "age + sex", model=kind, n_boot=400, seed=seed)  # type: ignore[arg-type]
    dc.release(model, tmp_path / "model")
    files = [p for p in (tmp_path / "model").iterdir() if p.name != "manifest.json"]
    text = "\n".join(p.read_text() for p in files)  # the manifest says what was withheld
    influence = regress_influence(tmp_path / "model")
    if influence is not None:  # the partner has the rows' influence: how well?
        j = model.names.index("age")
        w = np.ones(source.n)
        base = refit(model, source, w)
        true = [refit(model, source, w + np.eye(source.n)[i])[j] - base[j] for i in range(source.n)]
        corr = np.corrcoef(influence[:, j], true)[0, 1]
        print(f"influence of each row on the age coefficient recovered, correlation {corr:.3f}")
        assert corr < 0.5
    assert "seed" not in text and "entropy" not in text
    # the target's intervals: from the shipped summary, about those of the refits
    target = tp.datasets.load_synthetic("JP")
    times = [182.625, 365.25, 730.5]
    before = model.apply(target, times=times, tau=730.5, seed=5).summary()
    after = tp.ShippedModel.from_release(tmp_path / "model").apply(
        target, times=times, tau=730.5, seed=5
    )
    summ = after.summary()
    assert summ["ci_method"][0].startswith("bootstrap-percentile (400 parametric draws")
    rows = [0, 1, 2, 4]  # S(t) and RMST
    ratio = summ["transported_se"].to_numpy()[rows] / before["transported_se"].to_numpy()[rows]
    print(f"parametric / refit-based SE of the transported estimates: {np.round(ratio, 3)}")
    assert np.all((ratio > 0.75) & (ratio < 1.25))
    assert np.all(
        summ["transported_ci_lower"].to_numpy()[rows] < summ["transported"].to_numpy()[rows]
    )


# -- class 1: a shipped model makes the target compute for ever --------------------------------
def child(code: str, timeout: float, memory_gb: float) -> tuple[str, str]:
    """Run ``code`` in a fresh interpreter with this checkout's package, at most
    ``memory_gb`` of address space and ``timeout`` seconds: ``("ok", output)`` when it
    finished and exited 0, else ``("timeout" | "failed", output)``."""
    prelude = f"import resource\nlimit = int({memory_gb} * 2**30)\n"
    prelude += "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True, text=True, timeout=timeout, env=env, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "timeout", f"still running after {timeout:g} s"
    return ("ok" if done.returncode == 0 else "failed"), done.stdout + done.stderr[-1500:]


APPLY = """
    import transport as tp
    try:
        model = tp.ShippedModel.{read}({path!r})
        model.apply(tp.datasets.load_synthetic({target!r}), times=[365.25], seed=5)
        print("applied")
    except (tp.DataError, tp.DisclosureError) as exc:
        print("refused:", str(exc)[:300])
"""


@pytest.fixture(scope="module")
def released_boot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legitimate US model of age and sex with 4 bootstrap refits, released."""
    out = tmp_path_factory.mktemp("boot") / "model"
    us = tp.datasets.load_synthetic("US")
    dc.release(tp.ShippedModel.fit(us, "age + sex", n_boot=4, seed=11), out)
    return out


@pytest.mark.parametrize(("n_boot", "target"), [(10**9, "JP"), (10**6, "DE"), (10_001, "UK")])
def test_a_shipped_bootstrap_cannot_demand_endless_replicates_of_the_target(
    n_boot: int, target: str, released_boot: Path, tmp_path: Path
) -> None:
    """A released model's bootstrap summary states ``n_boot``, and the target ran that
    many replicates of its own rows when it applied the model (checked only to be at
    least 2): edited to 10**9 (one number, the hashes recomputed), it spawned a billion
    seeds and would run for days (200 replicates take 0.3 s). The target must refuse a
    number beyond MAX_SHIPPED_BOOT where it reads the model."""

    def edit(data: dict[str, Any]) -> None:
        data["bootstrap"]["n_boot"] = n_boot

    forged = forge(released_boot, tmp_path / "forged", edit)
    code = APPLY.format(read="from_release", path=str(forged), target=target)
    status, out = child(code, timeout=90.0, memory_gb=3.0)
    print(f"n_boot {n_boot} in {target}: {status}: {out[:300]}")
    assert status == "ok" and "refused:" in out, f"{status}: {out[-600:]}"
    assert "n_boot" in out and "rule: bootstrap_summary" in out


def spline_model(path: Path, formula: str, knots: int) -> Path:
    """A model of ``formula`` (a spline of age, and sex) whose design state lists
    ``knots`` knots between the source's bounds, written where the target reads it."""
    us = tp.datasets.load_synthetic("US")
    data = json.loads(json.dumps(tp.ShippedModel.fit(us, "bs(age, df=4) + sex").to_dict()))
    spec = tp.Design(us, formula, closed=True, source=False).to_dict()
    assert len(spec["columns"]) == len(data["names"])  # the same coefficients fit it
    data["design"], data["names"] = spec, spec["columns"]
    state = next(iter(spec["transform_state"].values()))
    lo, hi = state["lower_bound"], state["upper_bound"]
    inner = np.linspace(lo + 0.01, hi - 0.01, knots).tolist()
    state["knots"] = [lo] * 4 + inner + [hi] * 4 if formula.startswith("bs") else [lo, *inner, hi]
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("formula", "knots", "target"),
    [
        ("bs(age, df=4) + sex", 400_000, "JP"),
        ("cr(age, df=4) + sex", 200_000, "DE"),
        ("bs(age, df=4) + sex", 160, "UK"),  # just past MAX_STATE
        ("cs(age, df=4) + sex", 3, "JP"),  # one knot more than the formula gives
    ],
)
def test_a_shipped_spline_state_cannot_demand_a_huge_basis(
    formula: str, knots: int, target: str, tmp_path: Path
) -> None:
    """A shipped design carries the source's state of its stateful transforms, and the
    target used it as it came: a ``bs(age, df=4)`` model whose state lists 400,000
    knots (an 8 MB file) made the target build an n x 400,000 basis (800 target rows:
    2.6 GB) before formulaic noticed that the columns disagree with the spec (and raised
    its own error, not a DataError). The state must be checked where the model is
    read, against the keys, kinds and sizes its formula gives."""
    path = spline_model(tmp_path / "model.json", formula, knots)
    code = APPLY.format(read="from_json", path=str(path), target=target)
    status, out = child(code, timeout=120.0, memory_gb=2.0)
    print(f"{formula} with {knots} knots in {target}: {status}: {out[:300]}")
    assert status == "ok" and "refused:" in out, f"{status}: {out[-600:]}"
    assert "rule: transform_state" in out and formula.split(" +")[0] in out
