"""Attacks on the environment boundary, class 10: what a transport result and the report
built from it give away.

The attacker reads what leaves the target's environment: a released result, and the
analysis report with its tidy tables (an output that can leave too). They want a
practice's identity (a practice code analysed as a covariate) or one patient's event
time (the observed median is one patient's exit; its SE, or a difference of medians,
gives it back to the day).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import disclosure as dc
from transport import manifest as manifests
from transport.report import render_report, tidy_tables, write_report


def _with_practice(country: str, name: str) -> tp.Cohort:
    """The synthetic cohort with its practice code analysed as a covariate named ``name``."""
    frame = pl.read_parquet(tp.datasets.data_dir() / f"{country}.parquet")
    number = pl.col("practice_id").cast(pl.String).str.extract(r"(\d+)$").cast(pl.Int64)
    frame = frame.with_columns(number.alias(name))
    return tp.Cohort(
        frame if name == "practice_id" else frame.drop("practice_id"),
        time="os_days",
        event="os_event",
        covariates=["age", "sex", "ecog", name],
        identifiers=["patient_id"],
        name=country,
    )


@pytest.mark.parametrize("method", ["naive", "gformula"])
@pytest.mark.parametrize("name", ["practice_id", "gp_code", "treating_physician"])
def test_a_practice_analysed_as_a_covariate_never_leaves(
    method: str, name: str, tmp_path: Path
) -> None:
    src, tgt = _with_practice("UK", name), _with_practice("DE", name)
    kw = {"outcome_formula": f"age + sex + {name}"} if method == "gformula" else {}
    res = tp.transport(src, tgt, method=method, times=[365.25], **kw)
    with pytest.raises(tp.DisclosureError, match=f"{name}.*forbidden_column"):
        dc.release(res, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def _exit_times(cohort: tp.Cohort) -> set[float]:
    return set(np.unique(cohort.time_values[cohort.event_values == 1]).tolist())


@pytest.mark.parametrize(("source", "target", "seed"), [("US", "JP", 3), ("UK", "DE", 11)])
def test_the_report_gives_no_patient_s_event_time_as_a_median(
    source: str, target: str, seed: int, tmp_path: Path
) -> None:
    src, tgt = tp.datasets.load_synthetic(source), tp.datasets.load_synthetic(target)
    res = tp.transport(src, tgt, method="iow", times=[365.25], n_boot=20, seed=seed)
    exact = res.summary().filter(pl.col("estimand") == "median").row(0, named=True)
    assert exact["observed"] in _exit_times(tgt)  # the secret: one patient's exit
    tables = tidy_tables(res)
    median = tables["summary"].filter(pl.col("estimand") == "median").row(0, named=True)
    # the attacker tries the median itself, and the median of the transported curve
    # minus the released difference, and the decomposition's raw gap against the naive
    guesses = {median["observed"], median["transported"] - (median["difference"] or 0.0)}
    dec = tables["decomposition"].filter(pl.col("estimand") == "median")
    guesses |= {median["naive"] - v for v in dec["value"].drop_nulls()}
    for se in ("observed_se", "transported_se", "naive_se", "difference_se"):
        assert median[se] is None, f"{se} of a median lets its exact value be solved back"
    assert dec["se"].null_count() == dec.height
    assert not any(abs(g - exact["observed"]) < 0.5 for g in guesses if g is not None)
    # and the report's page says nothing finer than its tables
    page = tmp_path / "report.html"
    write_report(res, page)
    text = page.read_text()
    for v in (exact["observed"], exact["transported"], exact["naive"]):
        assert f"{v:,.1f}" not in text


@pytest.mark.parametrize(
    ("source", "target", "method"), [("US", "JP", "iow"), ("UK", "DE", "aipw")]
)
def test_the_report_s_figures_draw_no_exact_event_time(
    source: str, target: str, method: str
) -> None:
    """The attacker reads the figure's line coordinates (a vector image or a careful
    digitisation gives them): every step is on the release grid, fixed in advance, so
    the steps tell no exit time."""
    import matplotlib.pyplot as plt

    from transport.plotting import plot_transport_methods
    from transport.report.released import released_views

    src, tgt = tp.datasets.load_synthetic(source), tp.datasets.load_synthetic(target)
    res = tp.transport(src, tgt, method=method, times=[365.25])
    policy = dc.Policy()
    (view,), refused = released_views([res], "percentile", policy)
    assert not refused
    fig, ax = plt.subplots()
    plot_transport_methods([view], ax)
    xs = np.concatenate([np.asarray(line.get_xdata(), float) for line in ax.get_lines()])
    plt.close(fig)
    step = policy.grid_step_in(res.time_unit)
    assert xs.size > 10 and np.allclose(xs / step, np.round(xs / step), atol=1e-9)
    counts = view.naive.n_risk
    assert np.all(counts % policy.round_to == 0)


# -- the report's other numbers and figures (found by an independent red team) --------
STEP = 30.4375
COUNTRIES = ("US", "UK", "DE", "JP")


def with_columns(
    like: tp.Cohort, name: str, rows: pl.DataFrame | None = None, **columns: Any
) -> tp.Cohort:
    """``like``'s rows (or ``rows``) with extra or replaced covariate columns."""
    frame = like.to_frame() if rows is None else rows
    frame = frame.with_columns(pl.Series(k, np.asarray(v)) for k, v in columns.items())
    covs = list(dict.fromkeys([*like.covariates, *columns]))
    return tp.Cohort(
        frame,
        time=like.time,
        event=like.event,
        covariates=covs,
        name=name,
        time_unit=like.time_unit,
    )


def with_oldest(country: str, seed: int) -> tuple[tp.Cohort, float]:
    base = tp.datasets.load_synthetic(country)
    rng = np.random.default_rng([seed, 99])
    age = np.minimum(base.covariate_frame["age"].to_numpy().copy(), 90.0)
    secret = float(rng.uniform(95.0, 105.0))
    age[rng.integers(base.n)] = secret
    return with_columns(base, country, age=age), secret


def lonely_window(source: tp.Cohort, target: tp.Cohort, length: float) -> tuple[float, float]:
    """A window of ``length`` days after a year in which the target has exactly one exit,
    an event, and the source none: what the partner's plan asks for."""
    ts, tt, et = source.time_values, target.time_values, target.event_values
    for a in np.arange(365.0, 1200.0, 1.0):
        b = a + length
        inside = (tt > a) & (tt <= b)
        if inside.sum() == 1 and et[inside][0] == 1 and not np.any((ts > a) & (ts <= b)):
            return float(a), float(b)
    raise AssertionError("no such window")  # pragma: no cover


@pytest.mark.parametrize("method", ["naive", "iow"])
@pytest.mark.parametrize(
    ("src", "tgt", "length"), [("UK", "DE", 10.0), ("JP", "DE", 6.0), ("UK", "JP", 8.0)]
)
def test_the_report_s_curve_distance_does_not_give_an_event_time(
    tmp_path: Path, src: str, tgt: str, length: float, method: str
) -> None:
    """The report's tidy ``curve_distance`` is computed from the exact curves over the
    plan's window and is released by the report (and the CLI's results/) though the gate
    never releases it. With a window of a few days holding one target death, the
    distance, the summary's exact S(a) difference and the released risk set give that
    death's day, where the gate's grid says only its month."""
    source, target = tp.datasets.load_synthetic(src), tp.datasets.load_synthetic(tgt)
    a, b = lonely_window(source, target, length)
    secret = float(target.time_values[(target.time_values > a) & (target.time_values <= b)][0])
    res = tp.transport(source, target, method=method, times=[a], window=(a, b))
    tables = tidy_tables(res)
    dist = tables["curve_distance"]
    row = tables["summary"].filter(pl.col("estimand") == "survival").row(0, named=True)
    if dist.height == 0 or dist["value"][0] is None or row["difference"] is None:
        return  # nothing to read
    # the risk set near a: the released observed step's, give or take its exits and rounding
    dc.release(res, tmp_path / "r")
    obs = pl.read_csv(tmp_path / "r" / "transport_curves.csv").filter(pl.col("curve") == "observed")
    j = int(np.searchsorted(obs["time"].to_numpy(), a))
    y, d, c = (int(obs[k][j]) for k in ("n_risk", "n_event", "n_censor"))
    D, delta, s_a = dist["value"][0] * (b - a), row["difference"], row["observed"]
    guesses = []
    for Y in range(max(1, y - d - c - 10), y + 9):
        jump = s_a / Y  # the observed curve falls by this at the death: the gap grows by it
        after = abs(delta + jump)
        if abs(abs(delta) - after) > 1e-12:
            guesses.append((D + abs(delta) * a - after * b) / (abs(delta) - after))
    lo, hi = min(guesses), max(guesses)
    print(
        f"{src}->{tgt} {method}: death at {secret:g} in window ({a:g}, {b:g}], read as "
        f"[{lo:.2f}, {hi:.2f}]"
    )
    assert not (hi - lo <= 2.0 and lo - 0.5 <= secret <= hi + 0.5), (
        f"the death at day {secret:g} was read from the curve distance to [{lo:.2f}, {hi:.2f}]"
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_report_s_overlap_figure_draws_no_bin_of_one_patient(seed: int) -> None:
    """The report's weights section draws a histogram of the participation scores of
    both cohorts, from every row: a bin is a count (height x n x bin width), and with
    the plan's participation formula ``age`` the target's oldest patient stands alone in
    the top bin, which moves with that patient's age (a bin is about 4 years wide)."""
    import matplotlib.pyplot as plt

    from transport.report.weights import _balance_drawing

    source = tp.datasets.load_synthetic("UK")
    target, _ = with_oldest("DE", seed)
    res = tp.transport(source, target, method="iow", times=[365.25], formula="age")
    bal = tidy_tables(res)["balance"]
    draw, size = _balance_drawing([res], bal)
    fig = plt.figure(figsize=size)
    try:
        draw(fig)
        overlap = fig.axes[1]
        heights = np.asarray([p.get_height() for p in overlap.patches])
    finally:
        plt.close(fig)
    bins = heights.size // 2
    policy = dc.Policy()
    small = []
    for k, n in enumerate((source.n, target.n)):
        counts = np.round(heights[k * bins : (k + 1) * bins] * n / bins).astype(int)
        small += [(k, i, int(x)) for i, x in enumerate(counts) if 0 < x < policy.min_cell]
    assert small == [], f"bins of fewer than {policy.min_cell} patients drawn: {small}"


# == the report: verdicts of withheld rows, for a result the gate refuses =======================
def vertex(src: tp.Cohort, seed: int) -> tuple[tp.Cohort, int]:
    """98% of a crafted target's rows copy one source patient with an event whose levels
    no other source patient shares."""
    f = src.to_frame()
    cats = [c for c in src.covariates if src.covariate_types[c] == "categorical"]
    key = f.select(cats).with_row_index("i")
    size = key.join(key.group_by(cats).len(), on=cats, how="left").sort("i")["len"].to_numpy()
    rng = np.random.default_rng(seed)
    p = int(rng.choice(np.flatnonzero((size == 1) & (src.event_values == 1))))
    rows = pl.concat([f[[p] * 392], f[rng.choice(f.height, 8).tolist()]])
    return with_columns(src, "T", rows), p


@pytest.mark.parametrize("seed", [31, 32])
@pytest.mark.parametrize("country", COUNTRIES)
def test_the_report_s_verdicts_do_not_give_one_patient_s_event_month(
    country: str, seed: int
) -> None:
    """A crafted target summary at a vertex of the source's levels (ESS about 1: the gate
    refuses the result, rule min_ess) whose Kaplan-Meier table says S = 0.9 at every
    month, and a margin of 0.3. The report still shows the result: its S(t) rows are
    withheld (min_ess), but their equivalence verdicts are not, and each says whether
    the one patient carrying the weight was alive at t ("equivalent" while S ~ 1, "not
    equivalent" once S ~ 0): the first "not equivalent" is that patient's death month."""
    src = tp.datasets.load_synthetic(country)
    cats = [c for c in src.covariates if src.covariate_types[c] == "categorical"]
    target, p = vertex(src, seed)
    times = [k * STEP for k in range(1, 25)]
    data = tp.TargetSummary.from_cohort(target, " + ".join(cats), km_times=times).to_dict()
    k = len(data["km"]["time"])
    data["km"].update(survival=[0.9] * k, se=[1e-3] * k, ci_lower=[0.898] * k, ci_upper=[0.902] * k)
    crafted = tp.TargetSummary.from_dict(data)
    with np.errstate(invalid="ignore"):
        res = tp.transport(
            src, crafted, method="entropy", times=times, formula=" + ".join(cats), margin=0.3
        )
    eq = tidy_tables(res)["equivalence"].filter(pl.col("estimand") == "survival").sort("time")
    page = render_report(res, figures=False)
    verdicts = eq["verdict"].to_list()
    month = math.ceil(src.time_values[p] / STEP)
    dead = [i + 1 for i, v in enumerate(verdicts) if v == "not equivalent"]
    alive = [i + 1 for i, v in enumerate(verdicts) if v == "equivalent"]
    guessed = dead[0] if dead and all(a < dead[0] for a in alive) else None
    print(f"{country} seed {seed}: ESS {res.weights.ess:.2f}, death month {month}, read {guessed}")
    assert "verdict-not-equivalent" in page  # the page shows the verdicts too
    assert guessed != month, (
        f"the death month {month} of the patient carrying the weight read from the verdicts"
    )


def test_the_report_and_tidy_tables_keep_to_the_environment_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: ``release()`` takes the environment's policy (TRANSPORT_POLICY) as its
    default and refuses a looser one, but ``tidy_tables`` and ``write_report`` default to
    the package's defaults and accept any policy. Under a floor of min_cell 20 and
    round_to 10, a target of 123 patients showed n = 125 (the defaults' rounding; the
    gate's 120 beside it leaves 123 or 124), and ``policy=Policy(min_cell=1,
    round_to=1)`` showed 123 and its exact events. The report is an output that leaves;
    the docs say it shows nothing finer than the gate releases."""
    floor = tmp_path / "floor.toml"
    floor.write_text('[disclosure]\nmin_cell = 20\nround_to = 10\nname = "TRE"\n')
    monkeypatch.setenv("TRANSPORT_POLICY", str(floor))
    monkeypatch.delenv(manifests.KEY_ENV, raising=False)
    rng = np.random.default_rng(41)
    n = 123
    us = tp.datasets.load_synthetic("US")
    jp = tp.datasets.load_synthetic("JP").to_frame()
    rows = jp[np.sort(rng.choice(jp.height, n, replace=False)).tolist()]
    small = tp.Cohort(
        rows, time="os_days", event="os_event", covariates=["age", "sex", "ecog"], name="small"
    )
    events = int(small.event_values.sum())
    res = tp.transport(us, small, method="iow", times=[365.25], formula="age + sex + ecog")
    shown: dict[str, Any] = {}
    tables = tp.report.tidy_tables(res)
    shown["default"] = tables["cohorts"].filter(pl.col("cohort") == "small").row(0, named=True)
    try:
        loose = tp.report.tidy_tables(res, policy=dc.Policy(min_cell=1, round_to=1))
        shown["loose"] = loose["cohorts"].filter(pl.col("cohort") == "small").row(0, named=True)
    except tp.DisclosureError as exc:
        assert "policy_floor" in str(exc)
    html = tp.report.render_report(res, policy=None, figures=False)
    print(f"secret n {n}, events {events}; shown {shown}")
    for row in shown.values():
        assert row["n"] is None or row["n"] % 10 == 0, f"n {row['n']} is finer than the floor"
        assert row["events"] is None or row["events"] % 10 == 0
    assert f">{n}<" not in html and ">125<" not in html
