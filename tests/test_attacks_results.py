"""Attacks on the environment boundary, class 10: what a transport result and the report
built from it give away.

The attacker reads what leaves the target's environment: a released result, and the
analysis report with its tidy tables (an output that can leave too). They want a
practice's identity (a practice code analysed as a covariate) or one patient's event
time (the observed median is one patient's exit; its SE, or a difference of medians,
gives it back to the day).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import disclosure as dc
from transport.report import tidy_tables, write_report


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
