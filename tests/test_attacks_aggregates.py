"""Attacks on the aggregates the gate releases (issue 14, classes 4, 5 and 10c), written
as a consortium partner holding every released file would try them: read a one-off
string back as a level name, read the oldest patient's age back from the mean of a
steep transform the partner chose, solve the counts of a few-valued code from its mean
and SD. Each asserts that the secret cannot be recovered from what was released.

The cohorts are the synthetic US, UK, DE and JP cohorts with a planted secret (a
free-text covariate, an oldest patient, a rare code), over several seeds.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import disclosure as dc
from transport import policy as pc
from transport.report import render_report, tidy_tables

COUNTRIES = ("US", "UK", "DE", "JP")
SEEDS = (0, 1, 2)
COMMON = ("none", "seen", "follow-up")


def cohort_with(country: str, seed: int, **columns: object) -> tp.Cohort:
    """A synthetic country cohort with extra covariate columns (name -> values)."""
    base = tp.datasets.load_synthetic(country)
    frame = base.to_frame().with_columns(pl.Series(k, np.asarray(v)) for k, v in columns.items())
    return tp.Cohort(
        frame,
        time=base.time,
        event=base.event,
        covariates=[*base.covariates, *columns],
        name=country,
    )


def detail_column(n: int, seed: int, planted: list[str]) -> np.ndarray:
    """A string column of a few common values and ``planted`` one-off ones at random rows."""
    rng = np.random.default_rng(seed)
    col = rng.choice(np.array(COMMON, dtype=object), n)
    col[rng.choice(n, len(planted), replace=False)] = planted
    return col


def released_bytes(directory: Path) -> bytes:
    """Every byte of every file of a release, the manifest included (none if refused)."""
    if not directory.exists():
        return b""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def release_or_refusal(obj: object, directory: Path) -> str | None:
    """Release ``obj``; the refusal's message if the gate refused it."""
    try:
        dc.release(obj, directory)
    except tp.DisclosureError as exc:
        return str(exc)
    return None


# -- class 4: free text and names released as levels ------------------------------------------
FREE_TEXT = {
    "note_with_phone": ["John Smith 943 476 5919 refused chemo", "Dr Who"],
    "one_off_names": ["Ann Lee", "Bob Wu", "Cy Ng"],
    "record_numbers": ["0034567891", "0034567892"],
}


@pytest.mark.parametrize("kind", sorted(FREE_TEXT))
@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS[:2])))
def test_free_text_column_is_refused_and_never_released(
    tmp_path: Path, country: str, seed: int, kind: str
) -> None:
    planted = FREE_TEXT[kind]
    n = tp.datasets.load_synthetic(country).n
    target = cohort_with(country, seed, detail=detail_column(n, seed, planted))
    where = tmp_path / "summary"
    refusal = release_or_refusal(tp.TargetSummary.from_cohort(target), where)
    leaked = released_bytes(where)
    for secret in planted:
        for part in secret.split():
            assert part.encode() not in leaked, f"{part!r} left the target"
    assert refusal is not None and "free_text_levels" in refusal and "'detail'" in refusal
    assert not any(s in refusal for s in planted)  # the refusal names no level either


@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS)))
def test_rare_level_names_are_pooled_out_of_every_release(
    tmp_path: Path, country: str, seed: int
) -> None:
    """Short names on one to three patients each do not read as free text: the gate pools
    them into a generic level, so their names leave in no file (the manifest included),
    neither from a target summary nor from weights diagnostics or the report."""
    rare = ["Ogawa", "Wurzel", "Wurzel", "Kimura", "Kimura", "Kimura"]
    n = tp.datasets.load_synthetic(country).n
    target = cohort_with(country, seed, detail=detail_column(n, seed, rare))
    summary = tp.TargetSummary.from_cohort(target, "age + detail + age:detail")
    assert release_or_refusal(summary, tmp_path / "summary") is None
    leaked = released_bytes(tmp_path / "summary")
    other = "UK" if country != "UK" else "JP"
    source = cohort_with(
        other, seed + 7, detail=detail_column(tp.datasets.load_synthetic(other).n, seed, rare)
    )
    weights = tp.inverse_odds_weights(source, target)
    assert release_or_refusal(weights, tmp_path / "weights") is None
    leaked += released_bytes(tmp_path / "weights")
    if seed == 0:  # the report is an output that leaves, too
        result = tp.transport(source, target, method="iow", times=[365.25])
        leaked += render_report(result, figures=False).encode()
    for secret in set(rare):
        assert secret.encode() not in leaked, f"{secret!r} left as a level name"
    # the gate still releases the common levels, and their shares
    data = json.loads((tmp_path / "summary" / "target_summary.json").read_text())
    assert data["covariates"]["detail"]["levels"] == [*sorted(COMMON), "other"]
    assert any(s is not None for s in data["covariates"]["detail"]["shares"])


def test_a_shipped_model_with_a_rare_level_is_refused(tmp_path: Path) -> None:
    """A shipped model's design must let the target rebuild it, so the gate cannot pool
    a level the model was fitted on: it refuses the model, and nothing leaves."""
    n = tp.datasets.load_synthetic("UK").n
    source = cohort_with("UK", 3, detail=detail_column(n, 3, ["Ogawa", "Kimura", "Kimura"]))
    model = tp.ShippedModel.fit(source, "age + detail")
    refusal = release_or_refusal(model, tmp_path / "model")
    assert refusal is not None and "min_cell" in refusal
    assert b"Ogawa" not in released_bytes(tmp_path / "model")
    # free text on enough patients for the cell rule: refused by its look
    free = cohort_with("UK", 3, detail=detail_column(n, 3, FREE_TEXT["note_with_phone"] * 12))
    refusal = release_or_refusal(tp.ShippedModel.fit(free, "age + detail"), tmp_path / "free")
    assert b"John" not in released_bytes(tmp_path / "free")
    assert refusal is not None and "free_text_levels" in refusal


# -- class 5: a mean dominated by one patient -------------------------------------------------
def with_oldest(country: str, seed: int) -> tuple[tp.Cohort, float]:
    """The country cohort with one patient (at a random row) made the oldest by years:
    the secret is that patient's age."""
    base = tp.datasets.load_synthetic(country)
    rng = np.random.default_rng([seed, COUNTRIES.index(country)])
    age = base.covariate_frame["age"].to_numpy().copy()
    secret = float(rng.uniform(95.0, 105.0))
    age[rng.integers(base.n)] = secret
    frame = base.to_frame().with_columns(pl.Series("age", age))
    cohort = tp.Cohort(
        frame, time=base.time, event=base.event, covariates=list(base.covariates), name=country
    )
    return cohort, secret


#: What the partner asks for, and how each released sum bounds the oldest age from
#: above: every term is at least 0, so the sum of f(age) over the patients is at least the
#: oldest patient's term, and f read backwards gives a bound. The steep ones (the issue's
#: and a scan of powers), and the shifted squares the gate lets through.
POWERS = (20, 40, 60, 100, 150)
SHIFTS = (0, 35, 60, 85, 89.5)
TRANSFORMS: dict[str, object] = {
    "I(age ** 60)": lambda s: s ** (1 / 60),
    "I(exp(age))": math.log,
    "I((age > 90) * age)": lambda s: s,
    **{f"I((age / 100) ** {p})": (lambda s, p=p: 100 * s ** (1 / p)) for p in POWERS},
    **{f"I((age - {t}) ** 2)": (lambda s, t=t: t + math.sqrt(s)) for t in SHIFTS},
}


def attacker_bounds(data: dict[str, object]) -> list[float]:
    """From a released summary: each transform's upper bound on the oldest age, from its
    mean (the sum of f) and from its SD (with the mean, the sum of f squared)."""
    n = float(data["n"])  # type: ignore[arg-type]
    out = []
    for col, m, sd in zip(data["columns"], data["mean"], data["sd"], strict=True):  # type: ignore[call-overload]
        if col not in TRANSFORMS or m is None or m <= 0:
            continue
        inverse = TRANSFORMS[col]
        out.append(inverse(n * m))  # type: ignore[operator]
        if sd is not None:
            squares = (n - 1) * sd**2 + n * m**2
            out.append(inverse(math.sqrt(squares)))  # type: ignore[operator]
    return out


@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS)))
def test_a_dominated_mean_does_not_reveal_the_oldest_age(
    tmp_path: Path, country: str, seed: int
) -> None:
    target, secret = with_oldest(country, seed)
    bounds: list[float] = []
    for k, formula in enumerate(TRANSFORMS):
        try:
            summary = tp.TargetSummary.from_cohort(target, f"sex + {formula}")
        except tp.DataError as exc:  # the closed grammar refuses it before reading a row
            assert "bounded powers" in str(exc)
            continue
        refusal = release_or_refusal(summary, tmp_path / str(k))
        if refusal is not None:  # nothing leaves, and the refusal says why
            assert "steep_transform" in refusal and not (tmp_path / str(k)).exists()
            continue
        data = json.loads((tmp_path / str(k) / "target_summary.json").read_text())
        bounds += attacker_bounds(data)
        manifest = json.loads((tmp_path / str(k) / "manifest.json").read_text())
        if data["mean"][data["columns"].index(formula)] is None:
            assert formula in data["suppressed"]
            assert any(formula in s["item"] for s in manifest["suppressed"])
    # every bound is above the oldest age; the tightest one must still miss it by a year
    best = min(bounds, default=math.inf)
    print(f"{country} seed {seed}: oldest {secret:.2f}, best bound {best:.2f}")
    assert not abs(best - secret) <= 1.0


def outcome(target: tp.Cohort, formula: str, directory: Path) -> bool:
    """What the source learns from asking for a summary: whether one came back."""
    try:
        dc.release(tp.TargetSummary.from_cohort(target, formula), directory)
    except (tp.DisclosureError, tp.DataError):
        return False
    return True


@pytest.mark.parametrize(
    "probe",
    [
        "sex + np.log(age - {t})",  # finite exactly when everyone is older than t
        "sex + np.sqrt(age - {t})",
        "sex + I((age * 1e{t:.0f}) ** 2)",  # overflows exactly above a chosen age
    ],
)
@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")
@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES[1:], SEEDS[:1])))
def test_a_threshold_the_source_picks_answers_nothing(
    tmp_path: Path, country: str, seed: int, probe: str
) -> None:
    """A scan of thresholds, one summary each: whether a summary comes back must not
    depend on where the threshold lies (else a bisection finds the youngest age)."""
    target, _ = with_oldest(country, seed)
    youngest = float(target.covariate_frame["age"].min())
    scan = [youngest - 5, youngest - 0.5, youngest + 0.5, youngest + 5, 150.0, 152.0, 154.0]
    answers = {outcome(target, probe.format(t=t), tmp_path / str(k)) for k, t in enumerate(scan)}
    assert answers == {False}  # refused whatever the threshold (rule steep_transform)


@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS[:1])))
def test_nested_thresholds_do_not_difference_into_a_small_cell(
    tmp_path: Path, country: str, seed: int
) -> None:
    """Two indicators a half year apart, each on min_cell patients or more: the
    difference of their released shares counts the patients between them."""
    target, _ = with_oldest(country, seed)
    small = []
    for k, t in enumerate(np.arange(80.0, 95.0, 0.5)):
        a, b = f"I(age > {t:g})", f"I(age > {t + 0.5:g})"
        summary = tp.TargetSummary.from_cohort(target, f"sex + {a} + {b}")
        if release_or_refusal(summary, tmp_path / str(k)) is not None:
            continue
        data = json.loads((tmp_path / str(k) / "target_summary.json").read_text())
        mean = dict(zip(data["columns"], data["mean"], strict=True))
        if mean[a] is not None and mean[b] is not None:
            between = round(data["n"] * (mean[a] - mean[b]))
            if 0 < between < dc.Policy().min_cell:
                small.append((t, between))
    assert small == [], f"cells of {small} patients between thresholds"


@pytest.mark.parametrize(
    ("formula", "refused"),
    [
        ("age + sex + I(age ** 2)", None),
        ("np.log(age) + np.sqrt(age / 2) + age:sex + I((age - 60) ** 2)", None),
        ("poly(age, 2, raw=True) + C(ecog, Treatment('0'))", None),
        ("I(age ** 3)", "polynomial degree 3"),
        ("age:I(age ** 2)", "polynomial degree 3"),
        ("I(exp(age / 10))", "exp"),
        ("I(2 ** age)", "exponent"),
        ("I(age ** 0.5)", "whole"),
        ("I(1 / (age - 97))", "pole"),
        ("I(age > 65)", "comparison"),
        ("I(np.abs(age - 90))", "threshold"),
        ("np.log1p(age - 90)", "domain"),
        ("I(age * 1e7)", "number"),
    ],
)
def test_steep_transform_rule(formula: str, refused: str | None) -> None:
    growth = dict((t, why) for t, _, why in pc.formula_growth(formula, {"age"}))
    problems = [why for why in growth.values() if why]
    if refused is None:
        assert problems == []
        pc.refuse_steep_formula(formula, {"age"}, "a summary")
    else:
        assert len(problems) == 1 and refused in problems[0]
        with pytest.raises(tp.DisclosureError, match="steep_transform"):
            pc.refuse_steep_formula(formula, {"age"}, "a summary")


@pytest.mark.parametrize("formula", ["sex + I((age / 100) ** 60)", "sex + I(exp(age))"])
@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS[:2])))
def test_a_shipped_model_does_not_carry_a_dominated_column(
    tmp_path: Path, country: str, seed: int, formula: str
) -> None:
    """A Cox model's centre is its design columns' source means: a dominated one is the
    oldest source patient's age. The gate refuses the model, naming the column and rule."""
    source, secret = with_oldest(country, seed)
    model = tp.ShippedModel.fit(source, formula)
    refusal = release_or_refusal(model, tmp_path / "model")
    if refusal is None:
        data = json.loads((tmp_path / "model" / "shipped_model.json").read_text())
        centre, n = data["cox"]["center"][1], data["n"]
        inverse = TRANSFORMS[formula.removeprefix("sex + ")]
        assert not abs(inverse(n * centre) - secret) <= 1.0  # type: ignore[operator]
    else:
        assert "dominance" in refusal or "p_percent" in refusal
        assert formula.removeprefix("sex + ") in refusal


def with_marker(country: str, seed: int) -> tp.Cohort:
    """The country cohort with a lab value whose total one patient's value dominates."""
    n = tp.datasets.load_synthetic(country).n
    rng = np.random.default_rng([seed, COUNTRIES.index(country)])
    marker = rng.lognormal(0.0, 0.3, n)
    marker[rng.integers(n)] = 5e4
    return cohort_with(country, seed, marker=marker)


def test_a_withheld_dominated_column_cannot_be_balanced_on(tmp_path: Path) -> None:
    """The entropy (summary-only) path refuses a column the gate withheld by dominance,
    as it does one withheld by the cell rule; the other columns still balance."""
    formula = "age + sex + marker"
    dc.release(tp.TargetSummary.from_cohort(with_marker("JP", 4), formula), tmp_path / "s")
    back = tp.TargetSummary.from_json(tmp_path / "s" / "target_summary.json")
    assert back.suppressed == {"marker": "dominance"}
    assert back.counts is None and back.concentration is None and back.value_cells is None
    source = with_marker("US", 5)
    with pytest.raises(tp.DataError, match=r"withheld.*dominance"):
        tp.entropy_balance(source, back, formula=formula)
    with pytest.raises(tp.DataError, match=r"withheld.*dominance"):
        tp.transport(source, back, method="entropy", times=[365.25], formula=formula)
    assert tp.entropy_balance(source, back, formula="age + sex").ess > 0


# -- class 10c: a few-valued code typed continuous ----------------------------------------------
CODINGS: dict[str, tuple[tuple[float, ...], str]] = {
    "0/1/3": ((0.0, 1.0, 3.0), "score"),
    "0/1/2": ((0.0, 1.0, 2.0), "score"),
    "0/1/2/3 with its square": ((0.0, 1.0, 2.0, 3.0), "score + I(score ** 2)"),
}


def coded(country: str, seed: int, values: tuple[float, ...]) -> tuple[tp.Cohort, int]:
    """The cohort with a numeric code: the last value rare (1 to 9 patients), the others
    common. Returns the cohort and the rare value's count (the secret)."""
    n = tp.datasets.load_synthetic(country).n
    rng = np.random.default_rng([seed, COUNTRIES.index(country)])
    rare = int(rng.integers(1, 10))
    score = rng.choice(np.asarray(values[:-1]), n)
    score[rng.choice(n, rare, replace=False)] = values[-1]
    return cohort_with(country, seed, score=score), rare


def solve_counts(data: dict[str, object], values: tuple[float, ...], round_to: int) -> set[int]:
    """The rare value's counts consistent with the released n (rounded), means and SDs:
    the moments give each value's share exactly, and a count must be a whole number."""
    cols, mean, sd = data["columns"], data["mean"], data["sd"]
    n_released = int(data["n"])  # type: ignore[call-overload]
    m = dict(zip(cols, mean, strict=True))  # type: ignore[call-overload]
    s = dict(zip(cols, sd, strict=True))  # type: ignore[call-overload]
    if m.get("score") is None:
        return set()  # withheld: nothing to solve
    v = np.asarray(values)
    second = ((n_released - 1) * s["score"] ** 2 + n_released * m["score"] ** 2) / n_released
    rows, rhs = [np.ones_like(v), v, v**2], [1.0, m["score"], second]
    if len(v) == 4:
        sq = "I(score ** 2)"
        if m.get(sq) is None:
            return set()
        fourth = ((n_released - 1) * s[sq] ** 2 + n_released * m[sq] ** 2) / n_released
        rows.append(v**4)
        rhs.append(fourth)
    shares = np.linalg.lstsq(np.vstack(rows), np.asarray(rhs), rcond=None)[0]
    found = set()
    half = round_to // 2
    for n in range(n_released - half, n_released + half + 1):
        counts = shares * n
        if np.all(np.abs(counts - np.round(counts)) < 1e-6) and np.all(np.round(counts) >= 0):
            found.add(round(float(counts[-1])))
    return found


@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize(("country", "seed"), list(itertools.product(COUNTRIES, SEEDS)))
def test_few_valued_codes_do_not_give_their_counts_away(
    tmp_path: Path, country: str, seed: int, coding: str
) -> None:
    values, formula = CODINGS[coding]
    target, rare = coded(country, seed, values)
    dc.release(tp.TargetSummary.from_cohort(target, formula), tmp_path / "s")
    data = json.loads((tmp_path / "s" / "target_summary.json").read_text())
    found = solve_counts(data, values, dc.Policy().round_to)
    assert found != {rare}, f"the {rare} patients coded {values[-1]:g} were counted"
    if not found:
        assert data["suppressed"]["score"] == "few_values"
    # the same code with every value common is released
    spread = np.random.default_rng(seed).permutation(np.resize(np.asarray(values), target.n))
    common = cohort_with(country, seed, score=spread)
    dc.release(tp.TargetSummary.from_cohort(common, formula), tmp_path / "ok")
    ok = json.loads((tmp_path / "ok" / "target_summary.json").read_text())
    assert ok["mean"][ok["columns"].index("score")] is not None


# -- the policy's new fields -----------------------------------------------------------------
def test_dominance_policy_fields_are_validated_and_turn_the_rules_off(tmp_path: Path) -> None:
    p = dc.Policy()
    assert (p.dominance_n, p.dominance_k, p.p_percent) == (2, 0.9, 0.1)
    for bad in (
        {"dominance_n": 0},
        {"dominance_n": 11},
        {"dominance_n": 2.0},
        {"dominance_k": 0.0},
        {"dominance_k": 1.5},
        {"p_percent": -0.1},
        {"p_percent": 1.0},
        {"p_percent": math.nan},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            dc.Policy(**bad)  # type: ignore[arg-type]
    assert dc.Policy.from_dict({"dominance_n": 3, "p_percent": 0.2}).to_dict()["dominance_n"] == 3
    # k = 1 and p = 0 turn the rules off; a stricter policy withholds more
    summary = tp.TargetSummary.from_cohort(with_marker("DE", 11), "age + marker")
    shown = {}
    for name, pol in {
        "off": dc.Policy(dominance_k=1.0, p_percent=0.0),
        "default": dc.Policy(),
        "strict": dc.Policy(dominance_n=10, dominance_k=0.01),
    }.items():
        manifest = dc.release(summary, tmp_path / name, pol)
        data = json.loads((tmp_path / name / "target_summary.json").read_text())
        shown[name] = {
            c for c, m in zip(data["columns"], data["mean"], strict=True) if m is not None
        }
        if name == "default":
            rules = {x["rule"] for x in manifest["suppressed"] if "marker" in x["item"]}
            assert rules == {"dominance"} and data["suppressed"] == {"marker": "dominance"}
    assert shown == {"off": {"age", "marker"}, "default": {"age"}, "strict": set()}


# -- the red team's round (issue 14): codings, named references, titles, more values --------
RARE = ["Ogawa", "Wurzel", "Wurzel", "Kimura"]


def with_columns(like: tp.Cohort, name: str, **columns: object) -> tp.Cohort:
    """``like``'s rows with extra or replaced covariate columns (name -> values)."""
    frame = like.to_frame().with_columns(pl.Series(k, np.asarray(v)) for k, v in columns.items())
    covs = list(dict.fromkeys([*like.covariates, *columns]))
    return tp.Cohort(
        frame, time=like.time, event=like.event, covariates=covs, name=name,
        time_unit=like.time_unit,
    )  # fmt: skip


def rare_level_counts(bal: pl.DataFrame, n: int) -> dict[str, int]:
    """The attacker's reading of sum contrasts: a column's source mean is its level's
    share less the reference's, the shares add to 1, so the reference's share is
    (1 - the sum of the means) / the number of levels, and each level's count follows."""
    cols = [c for c in bal["covariate"] if c.startswith("C(detail") and ":" not in c]
    means = dict(zip(bal["covariate"], bal["mean_source"], strict=True))
    if not cols or any(means[c] is None for c in cols) or "[S." not in cols[0]:
        return {}
    ref = (1 - sum(means[c] for c in cols)) / (len(cols) + 1)
    counts = {c.split("[S.")[1][:-1]: round((means[c] + ref) * n) for c in cols}
    return {lv: k for lv, k in counts.items() if 0 < k < dc.Policy().min_cell}


@pytest.mark.parametrize(
    "formula", ["age + C(detail, Sum)", "age + C(detail, contr.sum)", "sex + age:C(detail, Sum)"]
)
@pytest.mark.parametrize(("src", "tgt"), [("UK", "DE"), ("JP", "UK"), ("DE", "JP")])
def test_sum_coded_participation_formula_releases_rare_level_names_and_counts(
    tmp_path: Path, src: str, tgt: str, formula: str
) -> None:
    """The plan's participation formula codes a categorical with sum contrasts (allowed
    by the closed grammar), or as indicators in an interaction. Its design columns are
    named ``C(detail, Sum)[S.<level>]`` or ``age:C(detail, Sum)[<level>]``; a gate
    that reads only treatment dummies ``[T.<level>]`` names every one-to-two-patient
    level in the balance table, whose means (a level's share less the reference's) give
    each rare level's exact count. Neither may leave: not in the gate's release, the
    report or its tidy tables."""
    s0, t0 = tp.datasets.load_synthetic(src), tp.datasets.load_synthetic(tgt)
    source = with_columns(s0, src, detail=detail_column(s0.n, 1, RARE))
    target = with_columns(t0, tgt, detail=detail_column(t0.n, 2, ["Ogawa", "Kimura", "Wurzel"]))
    weights = tp.inverse_odds_weights(source, target, formula=formula)
    leaked = b""
    if release_or_refusal(weights, tmp_path / "w") is None:
        leaked += released_bytes(tmp_path / "w")
        bal = pl.read_csv(tmp_path / "w" / "weights_balance.csv")
        small = rare_level_counts(bal, s0.n)
        assert small == {}, f"rare levels and their exact counts released: {small}"
    res = tp.transport(source, target, method="iow", times=[365.25], formula=formula)
    leaked += render_report(res, figures=False).encode()
    leaked += b"".join(f.write_csv().encode() for f in tidy_tables(res).values())
    for name in set(RARE):
        assert name.encode() not in leaked, f"{name!r} left as a level name"


@pytest.mark.parametrize("country", ["UK", "DE", "JP"])
def test_a_continuous_covariate_coded_as_levels_does_not_name_its_values(
    tmp_path: Path, country: str
) -> None:
    """``C(age)`` is in the closed grammar, and codes a continuous covariate as levels
    named by its values: the oldest patient's exact age would leave as a column's name,
    from a target summary the source asks for and from a weighting's balance table. The
    gate cannot read such columns back to a level, so it refuses them (rule
    ``level_coding``), naming the covariate, never the value."""
    target, secret = with_oldest(country, 5)
    shown = f"{secret!r}"[:6].encode()  # the age as a level name, to a few decimals
    leaked, refusals = b"", []
    try:
        summary = tp.TargetSummary.from_cohort(target, "sex + C(age)")
    except tp.DataError as exc:
        refusals.append(str(exc))
    else:
        refusals.append(release_or_refusal(summary, tmp_path / "s") or "")
        leaked += released_bytes(tmp_path / "s")
    source = with_columns(target, "S")  # the same rows: every target age is a source level
    weights = tp.inverse_odds_weights(source, with_columns(target, "T"), formula="sex + C(age)")
    refusals.append(release_or_refusal(weights, tmp_path / "w") or "")
    leaked += released_bytes(tmp_path / "w")
    res = tp.transport(
        source, with_columns(target, "T"), method="iow", times=[365.25], formula="sex + C(age)"
    )
    leaked += b"".join(f.write_csv().encode() for f in tidy_tables(res).values())
    leaked += "".join(refusals).encode()
    print(f"{country}: oldest age {secret!r}; refusals: {[r[:60] for r in refusals]}")
    assert shown not in leaked, f"the oldest age {secret:.3f} left as a level name"
    assert all("level_coding" in r for r in refusals)


@pytest.mark.parametrize("country", ["UK", "DE", "JP"])
def test_naming_a_level_in_a_summary_formula_answers_no_membership_question(
    tmp_path: Path, country: str
) -> None:
    """The source asks for a target summary with ``C(detail, Treatment('<name>'))``. A
    summary comes back when one target patient's value is that name (the level is then
    pooled), and an error when no one's is: whether a given person is in the target
    would be a yes/no the source can ask. The answer, and what is released (with the
    name the source chose taken out), are the same for either."""
    base = tp.datasets.load_synthetic(country)
    target = with_columns(base, country, detail=detail_column(base.n, 3, ["Ogawa", "Kimura"]))

    def answered(name: str) -> str | None:
        try:
            summary = tp.TargetSummary.from_cohort(
                target, f"age + sex + C(detail, Treatment('{name}'))"
            )
        except (tp.DataError, tp.DisclosureError):
            return None
        if release_or_refusal(summary, tmp_path / name) is not None:
            return None
        return (tmp_path / name / "target_summary.json").read_text().replace(name, "?")

    answers = {name: answered(name) for name in ["Ogawa", "Kimura", "Nobody"]}
    assert len(set(answers.values())) == 1, "membership of one-patient names answered"
    assert answers["Nobody"] is not None  # and the summary is released


TITLED = {
    "dotted": ["Dr.Smith", "Prof.Lee", "Mrs.Ng"],
    "capitals": ["DR JONES", "MR PATEL", "MS KHAN"],
    "lower case": ["dr jones", "prof lee", "mr patel"],
    "non-ASCII name": ["Dr Øst", "Dr Ümit", "Dr Ólafsson"],
}


@pytest.mark.parametrize("kind", sorted(TITLED))
@pytest.mark.parametrize("column", ["seen_by", "attending", "referrer", "referredBy", "contact"])
def test_clinicians_named_with_a_title_are_not_released_as_levels(
    tmp_path: Path, column: str, kind: str
) -> None:
    """A column naming the clinician who saw each patient, under a name with no
    forbidden token, with titles the free-text rule's pattern must still know:
    "Dr.Smith", "DR JONES", "dr jones", "Dr Øst". Every name is common (no cell rule
    applies): the column must be refused (by its name, or, for ``contact``, by its
    levels' titles) and no name may leave."""
    base = tp.datasets.load_synthetic("UK")
    names = TITLED[kind]
    rng = np.random.default_rng(len(column))
    who = np.asarray(names, dtype=object)[rng.integers(0, len(names), base.n)]
    target = with_columns(base, "UK", **{column: who})
    why = release_or_refusal(tp.TargetSummary.from_cohort(target, f"age + {column}"), tmp_path)
    leaked = released_bytes(tmp_path)
    shown = [n for n in names if json.dumps(n)[1:-1].encode() in leaked or n.encode() in leaked]
    assert shown == [], f"clinicians {shown} released as levels of {column!r} (refusal: {why})"
    rule = "free_text_levels" if column == "contact" else "forbidden_column"
    assert why is not None and rule in why and not any(n in why for n in names)


#: A lab value with four measured values; the last one is rare.
LAB = np.array([4.1, 5.3, 6.2, 9.7])


def exact_n(data: dict[str, object]) -> list[int]:
    """The cohort's exact n from the released (rounded) n and the exact level shares."""
    n0 = int(data["n"])  # type: ignore[call-overload]
    covariates = data["covariates"]
    assert isinstance(covariates, dict)
    shares = [
        s
        for c in covariates.values()
        if c["type"] == "categorical"
        for s in c["shares"]
        if s is not None
    ]
    return [
        n
        for n in range(n0 - 2, n0 + 3)
        if shares and all(abs(s * n - round(s * n)) < 1e-6 for s in shares)
    ]


def lab_counts(data: dict[str, object]) -> set[int]:
    """The rare value's counts consistent with the summary: n exact (from the shares),
    the mean and the second moment (from the mean and the SD restated at the released
    n) are three equations in four counts, and the counts are whole numbers."""
    m = dict(zip(data["columns"], data["mean"], strict=True))  # type: ignore[call-overload]
    sd = dict(zip(data["columns"], data["sd"], strict=True))  # type: ignore[call-overload]
    if m.get("lab") is None or sd.get("lab") is None:
        return set()
    nr = int(data["n"])  # type: ignore[call-overload]
    second = ((nr - 1) * sd["lab"] ** 2 + nr * m["lab"] ** 2) / nr
    A = np.vstack([np.ones(3), LAB[:3], LAB[:3] ** 2])
    found = set()
    for n in exact_n(data):
        for k in range(n + 1):
            rhs = [n - k, n * m["lab"] - k * LAB[3], n * second - k * LAB[3] ** 2]
            c = np.linalg.solve(A, rhs)
            if np.all(np.abs(c - np.round(c)) < 1e-4) and np.all(np.round(c) >= 0):
                found.add(k)
    return found


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("country", "size"), [("UK", 733), ("DE", 412), ("JP", 598)])
def test_a_four_valued_column_does_not_give_its_rare_values_count(
    tmp_path: Path, country: str, size: int, seed: int
) -> None:
    """A lab value with 4 uneven values has a one-dimensional family of counts with its
    n, mean and SD, but the integer lattice of that family is so sparse (steps of
    hundreds of patients) that one solution is left: the 1 to 9 patients with the rare
    value would be counted exactly."""
    full = tp.datasets.load_synthetic(country)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(full.n, size, replace=False)).tolist()
    cohort = tp.Cohort(
        full.to_frame()[take], time=full.time, event=full.event,
        covariates=list(full.covariates), name=f"{country}{seed}",
    )  # fmt: skip
    rng = np.random.default_rng([seed, size])
    rare = int(rng.integers(1, 10))
    lab = rng.choice(LAB[:3], cohort.n)
    lab[rng.choice(cohort.n, rare, replace=False)] = LAB[3]
    target = with_columns(cohort, country, lab=lab)
    dc.release(tp.TargetSummary.from_cohort(target, "sex + ecog + lab"), tmp_path / "s")
    data = json.loads((tmp_path / "s" / "target_summary.json").read_text())
    assert data["n"] % 5 == 0
    found = lab_counts(data)
    assert found != {rare}, f"the {rare} patients with lab = {LAB[3]} were counted exactly"


def capped(country: str, seed: int | None = None) -> tuple[tp.Cohort, float]:
    """The country cohort with ages capped at 90: with ``seed``, one patient (at a random
    row) made the oldest, at a secret age; without, 30 patients at 90 (no one dominates)."""
    base = tp.datasets.load_synthetic(country)
    age = np.minimum(base.covariate_frame["age"].to_numpy(), 90.0)
    secret = 90.0
    if seed is None:
        age[:30] = 90.0
    else:
        rng = np.random.default_rng([seed, 99])
        secret = float(rng.uniform(95.0, 105.0))
        age[rng.integers(base.n)] = secret
    return with_columns(base, country, age=age), secret


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("power", [60, 80])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("src", "tgt"), [("UK", "DE"), ("US", "JP")])
def test_a_steep_participation_formula_does_not_give_the_oldest_target_age(
    tmp_path: Path, src: str, tgt: str, seed: int, power: int
) -> None:
    """The plan's participation formula is chosen by the partner too: the balance
    table's target mean of ``I((age / 100) ** 60)`` is the oldest target patient's term,
    in the gate's weights_balance.csv and in the report alike (the source's dominance
    check does not see the target's rows). The ``steep_transform`` rule withholds it."""
    source, _ = capped(src)
    target, secret = capped(tgt, seed)
    term = f"I((age / 100) ** {power})"
    res = tp.transport(source, target, method="iow", times=[365.25], formula=f"age + {term}")
    bounds = []
    if release_or_refusal(res.weights, tmp_path / "w") is None:
        bal = pl.read_csv(tmp_path / "w" / "weights_balance.csv")
        n_t = json.loads((tmp_path / "w" / "weights.json").read_text())["n_target"]
        for m in bal.filter(pl.col("covariate") == term)["mean_target"]:
            if m is not None:
                bounds.append(100 * (m * n_t) ** (1 / power))
    balance = tidy_tables(res)["balance"].filter(pl.col("covariate") == term)
    for m in balance["mean_target"]:
        if m is not None:
            bounds.append(100 * (m * target.n) ** (1 / power))
    best = min(bounds, default=math.inf)
    print(f"{src}->{tgt} power {power}: oldest target age {secret:.2f}, read as {best:.2f}")
    assert not abs(best - secret) <= 1.0, f"oldest target age {secret:.2f} read as {best:.2f}"
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert any(s["rule"] == "steep_transform" for s in manifest["suppressed"])
    assert balance["withheld"].to_list() == ["steep_transform"]
