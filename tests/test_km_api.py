"""SurvivalCurve API: frames, estimates, warnings, plots, and bad inputs for curves."""

from __future__ import annotations

import json
import warnings

import matplotlib
import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import DataError, ExtrapolationWarning

matplotlib.use("Agg")


@pytest.fixture
def cohort(small_frame: pl.DataFrame) -> tp.Cohort:
    return tp.Cohort(small_frame, time="os_days", event="death", covariates=["age"], name="A")


def test_frames_have_the_contract_columns(cohort: tp.Cohort) -> None:
    km = tp.kaplan_meier(cohort)
    assert km.to_frame().columns[:8] == [
        "time",
        "n_risk",
        "n_event",
        "n_censor",
        "survival",
        "se",
        "ci_lower",
        "ci_upper",
    ]
    at = km.at([30.0, 365.25])
    assert at.columns[:6] == ["time", "survival", "se", "ci_lower", "ci_upper", "n_risk"]
    np.testing.assert_array_equal(at["survival"].to_numpy(), km.survival_at([30.0, 365.25]))
    np.testing.assert_array_equal(at["se"].to_numpy(), km.se_at([30.0, 365.25]))
    table = km.risk_table([0.0, 100.0, 200.0])
    assert table.columns == ["time", "n_risk", "n_risk_unweighted", "n_event", "n_censor"]
    assert table["n_risk"][0] == cohort.n
    # events counted in (previous time, time] add up to all events up to the last time
    assert table["n_event"].sum() == pytest.approx(
        float(cohort.event_values[cohort.time_values <= 200.0].sum())
    )


def test_survival_before_first_and_after_last_time(cohort: tp.Cohort) -> None:
    km = tp.kaplan_meier(cohort)
    s = km.survival_at([-1.0, 0.0, float(km.time[-1]), 1e9])
    assert s[0] == 1.0 and s[1] == 1.0 and s[2] == s[3] == km.survival[-1]
    at = km.at([0.0, 1e9])
    assert at["ci_lower"][0] == 1.0 and at["ci_upper"][0] == 1.0
    assert at["n_risk"][1] == 0.0


def test_estimates_and_their_dicts_are_json_safe(cohort: tp.Cohort) -> None:
    km = tp.kaplan_meier(cohort)
    med = km.median()
    assert med.ci_lower <= med.value <= med.ci_upper
    assert np.isnan(med.se) and "band" in med.ci_method
    q = km.quantile(0.25)
    assert q.value <= med.value
    r = km.rmst(365.0)
    z = 1.959963984540054
    assert r.ci_lower == pytest.approx(r.value - z * r.se) and r.ci_method == "wald"
    json.dumps(km.to_dict())
    json.dumps(med.to_dict())
    with pytest.raises(AttributeError):
        med.value = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        km.conf_type = "log"  # type: ignore[misc]
    with pytest.raises(ValueError):
        km.survival[0] = 0.5
    assert "SurvivalCurve('A'" in repr(km) and "median" in repr(km)


def test_rmst_beyond_follow_up_warns(small_frame: pl.DataFrame) -> None:
    censored_last = small_frame.select("os_days", "death").vstack(
        pl.DataFrame(
            {"os_days": [2000.0], "death": [0]},
            schema=small_frame.select("os_days", "death").schema,
        )
    )
    km = tp.kaplan_meier(tp.Cohort(censored_last, time="os_days", event="death"))
    last = float(km.time[-1])
    assert last == 2000.0 and km.survival[-1] > 0
    with pytest.warns(ExtrapolationWarning, match="carried forward"):
        est = km.rmst(last + 100.0)
    assert "carried forward" in est.note
    inside = km.rmst(last)
    assert est.value == pytest.approx(inside.value + 100.0 * km.survival[-1])
    # a curve that reached zero has nothing to carry forward: no warning
    ended = tp.kaplan_meier(tp.Cohort(small_frame, time="os_days", event="death"))
    assert ended.survival[-1] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ended.rmst(float(ended.time[-1]) + 100.0)


def test_weights_object_with_values_attribute(cohort: tp.Cohort) -> None:
    class W:
        values = np.linspace(0.5, 2.0, cohort.n)

    a = tp.kaplan_meier(cohort, weights=W())
    b = tp.kaplan_meier(cohort, weights=W.values)
    np.testing.assert_array_equal(a.survival, b.survival)
    assert a.weighted and a.variance == "infinitesimal jackknife"
    assert tp.kaplan_meier(cohort).variance == "greenwood"


def test_plot_returns_axes_with_a_risk_table(cohort: tp.Cohort, small_frame) -> None:
    import matplotlib.pyplot as plt

    km = tp.kaplan_meier(cohort)
    ax = km.plot(risk_times=[0, 200, 400])
    texts = [t.get_text() for t in ax.texts]
    assert "Number at risk" in texts and str(cohort.n) in texts
    w = tp.kaplan_meier(cohort, weights=np.full(cohort.n, 2.0))
    w.plot(ax=ax, label="weighted", risk_times=[0, 200, 400])
    assert f"{2 * cohort.n}\n({cohort.n})" in [t.get_text() for t in ax.texts]
    plt.close("all")


# -- bad inputs for curves (DESIGN section 8) ----------------------------------------------


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(5), r"weights have 5 values but the cohort has 300 rows"),
        (np.r_[-1.0, np.ones(299)], r"weights have 1 of 300 values negative"),
        (np.r_[np.nan, np.nan, np.ones(298)], r"weights have 2 of 300 values missing"),
        (np.r_[np.inf, np.ones(299)], r"weights have 1 of 300 values infinite"),
        (np.zeros(300), r"weights are all zero in 300 rows"),
        (["a"] * 300, r"weights are .* not numbers"),
    ],
)
def test_bad_weights(cohort: tp.Cohort, weights, message: str) -> None:
    with pytest.raises(DataError, match=message):
        tp.kaplan_meier(cohort, weights=weights)


def test_non_integer_frequency_weights(cohort: tp.Cohort) -> None:
    with pytest.raises(
        DataError,
        match=r"frequency weights have 300 of 300 values that are "
        r"not whole numbers",
    ):
        tp.kaplan_meier(cohort, weights=np.full(cohort.n, 1.5), weight_type="frequency")


def test_no_events(small_frame: pl.DataFrame) -> None:
    frame = small_frame.with_columns(pl.lit(0).alias("death"))
    c = tp.Cohort(frame, time="os_days", event="death")
    with pytest.raises(DataError, match=r"event column 'death' has no events in 300 rows"):
        tp.kaplan_meier(c)
    c2 = tp.Cohort(small_frame, time="os_days", event="death")
    w = np.where(small_frame["death"].to_numpy() == 1, 0.0, 1.0)
    with pytest.raises(DataError, match=r"no events among the \d+ rows with positive weight"):
        tp.kaplan_meier(c2, weights=w)


def test_bad_arguments(cohort: tp.Cohort) -> None:
    km = tp.kaplan_meier(cohort)
    with pytest.raises(TypeError, match=r"must be a transport\.Cohort"):
        tp.kaplan_meier(cohort.to_frame())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'conf_type'.*Got 'logit'"):
        tp.kaplan_meier(cohort, conf_type="logit")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'conf_level'"):
        tp.kaplan_meier(cohort, conf_level=95)
    with pytest.raises(ValueError, match="'weight_type'"):
        tp.kaplan_meier(cohort, weights=np.ones(cohort.n), weight_type="analytic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'tau'"):
        km.rmst(0.0)
    with pytest.raises(ValueError, match="'p'"):
        km.quantile(1.0)
    with pytest.raises(ValueError, match=r"'times'.*finite"):
        km.at([np.nan])
    with pytest.raises(ValueError, match="must be sorted"):
        km.risk_table([10.0, 5.0])


def test_conf_level_changes_the_width(cohort: tp.Cohort) -> None:
    k95 = tp.kaplan_meier(cohort)
    k80 = tp.kaplan_meier(cohort, conf_level=0.8)
    mid = k95.survival.size // 2
    assert k80.ci_upper[mid] - k80.ci_lower[mid] < k95.ci_upper[mid] - k95.ci_lower[mid]


def test_entry_equal_to_exit_after_snapping(small_frame: pl.DataFrame) -> None:
    frame = pl.DataFrame(
        {"t": [1 + 1e-12, 2.0, 3.0, 4.0], "d": [1, 0, 1, 0], "e": [1.0, 0.0, 0.0, 0.0]}
    )
    c = tp.Cohort(frame, time="t", event="d", entry="e")  # exactly, entry < time
    with pytest.raises(
        DataError,
        match=r"entry column 'e' and time column 't': 1 of 4 rows "
        r"have entry equal to exit.*timefix=False",
    ):
        tp.kaplan_meier(c)
    # without snapping all four rows are at risk at 1 + 1e-12: S = 3/4
    assert tp.kaplan_meier(c, timefix=False).survival[0] == pytest.approx(0.75)


def test_numpy_scalars_are_accepted(cohort: tp.Cohort) -> None:
    km = tp.kaplan_meier(cohort, conf_level=np.float32(0.9))
    assert km.rmst(np.int64(300)).value == km.rmst(300.0).value
    assert km.quantile(np.float32(0.5)).value == km.median().value
    with pytest.raises(ValueError, match="'tau'"):
        km.rmst(True)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones((150, 2)), r"weights have shape \(150, 2\)"),
        (np.ones(300, dtype=bool), r"weights are boolean in 300 rows"),
    ],
)
def test_weights_of_the_wrong_kind(cohort: tp.Cohort, weights, message: str) -> None:
    with pytest.raises(DataError, match=message):
        tp.kaplan_meier(cohort, weights=weights)


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_extreme_weight_scales_give_the_same_curve(cohort: tp.Cohort, scale: float) -> None:
    w = np.linspace(0.5, 2.0, cohort.n)
    base = tp.kaplan_meier(cohort, weights=w)
    far = tp.kaplan_meier(cohort, weights=w * scale)
    np.testing.assert_allclose(far.survival, base.survival, atol=1e-12)
    np.testing.assert_allclose(far.se, base.se, atol=1e-10)
    np.testing.assert_allclose(far.n_risk, base.n_risk * scale, rtol=1e-12)
    assert far.rmst(300.0).se == pytest.approx(base.rmst(300.0).se, rel=1e-10)
