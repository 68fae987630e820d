"""Study plots (transport.plotting.plot_study_*) and the HTML study report
(transport.study_report).

One tiny seeded study (two scenarios, every method, 4 replicates of small cohorts,
influence-function intervals only) is shared: its second scenario has a hostile name
and a participation formula naming a column that does not exist, so iow, entropy and
aipw fail in every replicate. Every number the plots draw or the report shows is read
back and compared with the study's replicates or metrics().
"""

from __future__ import annotations

import base64
import math
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_rgba

from transport.plotting import plot_study_bias, plot_study_coverage, plot_study_estimates
from transport.simulate import Scenario, Study, StudyResult, scenario
from transport.study_report import render_study_report, write_study_report

matplotlib.use("Agg")

ALL = ["naive", "iow", "entropy", "gformula", "aipw"]
HOSTILE = '<script>alert("x")</script> & $y$'
N_REPS = 4


def small(name: str = "correct") -> Scenario:
    sc = scenario(name)
    return replace(sc, source=replace(sc.source, n=300), target=replace(sc.target, n=150))


@pytest.fixture(scope="module")
def out() -> StudyResult:
    broken = replace(small(), name=HOSTILE, formula="x1 + nowhere", description=f"{HOSTILE}!")
    study = Study(
        scenario=[small(), broken], methods=ALL, n_reps=N_REPS, seed=5, times=[12.0], tau=24.0
    )
    return study.run()


@pytest.fixture(scope="module")
def page(out: StudyResult) -> str:
    return render_study_report(out, settings={"study file": "study.toml"})


@pytest.fixture(autouse=True)
def _close() -> Any:
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def by_gid(ax: Any, prefix: str) -> dict[str, Any]:
    """Artists of ``ax`` whose gid starts with ``prefix:``, by the rest of the gid."""
    found = [*ax.collections, *ax.lines]
    return {
        a.get_gid()[len(prefix) + 1 :]: a
        for a in found
        if (a.get_gid() or "").startswith(f"{prefix}:")
    }


def reps(out: StudyResult, sc: str, method: str, estimand: str = "survival") -> pl.DataFrame:
    return out.replicates.filter(
        (pl.col("scenario") == sc) & (pl.col("method") == method) & (pl.col("estimand") == estimand)
    ).sort("rep")


# -- plots -----------------------------------------------------------------------------------
def test_strip_plot_draws_every_finite_estimate_its_mean_and_the_truth(out: StudyResult) -> None:
    ax = plot_study_estimates(out)  # S(12), the only time
    points, means, truths = by_gid(ax, "estimates"), by_gid(ax, "mean"), by_gid(ax, "truth")
    # the failed methods of the hostile scenario draw nothing
    expected = [f"correct:{m}" for m in ALL] + [f"{HOSTILE}:{m}" for m in ("naive", "gformula")]
    assert list(points) == expected and list(means) == expected
    assert list(truths) == ["correct", HOSTILE]
    for key, coll in points.items():
        sc, method = key.rsplit(":", 1)
        r = reps(out, sc, method)
        y = coll.get_offsets()[:, 1]
        assert len(y) == N_REPS
        np.testing.assert_array_equal(y, r["estimate"].to_numpy())
        assert means[key].get_ydata()[0] == pytest.approx(r["estimate"].mean(), rel=1e-14)
        assert truths[sc].get_ydata()[0] == r["truth"][0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ALL + ALL
    # points of a method lie in its own column
    ticks = ax.get_xticks()
    x_iow = points["correct:iow"].get_offsets()[:, 0]
    assert np.all(np.abs(x_iow - ticks[1]) <= 0.3 + 1e-12)
    assert ax.get_ylabel() == "S(12 months): estimates"


def test_zip_plot_ranks_covering_intervals_first_and_colours_misses(out: StudyResult) -> None:
    ax = plot_study_estimates(out, kind="zip", estimand="rmst")
    lines = by_gid(ax, "intervals")
    # intervals exist for naive, iow, entropy (influence function) only
    assert list(lines) == [f"correct:{m}" for m in ("naive", "iow", "entropy")] + [
        f"{HOSTILE}:naive"
    ]
    metrics = out.metrics().filter(pl.col("estimand") == "rmst")
    blue, red = to_rgba("C0"), to_rgba("C3")
    ranked_reps: list[list[int]] = []
    for key, coll in lines.items():
        sc, method = key.rsplit(":", 1)
        m = metrics.filter((pl.col("scenario") == sc) & (pl.col("method") == method)).row(
            0, named=True
        )
        segs = coll.get_segments()
        assert len(segs) == m["n_ci"] == N_REPS
        colors = [tuple(c) for c in coll.get_colors()]
        assert set(colors) <= {blue, red}
        misses = sum(c == red for c in colors)
        assert misses == round((1 - m["coverage"]) * m["n_ci"])
        # covering first, then misses
        assert colors == sorted(colors, key=lambda c: c == red)
        # left to right: the replicates' intervals (finite here) ranked by the distance
        # of the truth from the estimate in half-widths on the truth's side
        r = reps(out, sc, method, "rmst")
        truth = r["truth"][0]
        ranked = sorted(
            r.iter_rows(named=True),
            key=lambda x: (
                abs(x["estimate"] - truth)
                / (
                    x["estimate"] - x["ci_lower"]
                    if x["estimate"] >= truth
                    else x["ci_upper"] - x["estimate"]
                )
            ),
        )
        drawn = [(float(s[0][1]), float(s[1][1])) for s in segs]
        assert drawn == [(x["ci_lower"], x["ci_upper"]) for x in ranked]
        xs = [float(s[0][0]) for s in segs]
        assert xs == sorted(xs)
        ranked_reps.append([x["rep"] for x in ranked])
    assert any(rr != sorted(rr) for rr in ranked_reps)  # the ranking is not the rep order
    nominal = [ln for ln in ax.lines if ln.get_gid() == "nominal"]
    assert len(nominal) == len(lines)  # one nominal-level mark per drawn column


def test_coverage_plot_intervals_are_coverage_pm_196_mcse(out: StudyResult) -> None:
    metrics = out.metrics()
    ax = plot_study_coverage(out, estimand="survival", time=12.0)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ALL + ALL
    y_of = dict(zip(ax.get_yticks(), labels, strict=True))
    # one errorbar container per method with a coverage, in method order
    assert [c.get_label() for c in ax.containers] == ["naive", "iow", "entropy"]
    rows = metrics.filter(pl.col("estimand") == "survival")
    checked = 0
    for cont in ax.containers:
        method = cont.get_label()
        xs, ys = cont.lines[0].get_data()
        (bars,) = cont.lines[2]
        expect = rows.filter((pl.col("method") == method) & pl.col("coverage").is_not_null())
        # rows top to bottom: scenario order of the study, not metrics()' sorted order
        want = {HOSTILE: 1, "correct": 0}
        expect = expect.sort(pl.col("scenario").replace_strict(want, return_dtype=pl.Int64))
        np.testing.assert_array_equal(xs, expect["coverage"].to_numpy())
        for y, seg, m in zip(ys, bars.get_segments(), expect.iter_rows(named=True), strict=True):
            assert y_of[y] == method
            half = 1.96 * m["coverage_mcse"]
            assert seg[0][0] == pytest.approx(m["coverage"] - half, abs=1e-15)
            assert seg[1][0] == pytest.approx(m["coverage"] + half, abs=1e-15)
            checked += 1
    assert checked == 4  # naive twice, iow and entropy in the correct scenario
    ref = [ln for ln in ax.lines if ln.get_gid() == "reference"]
    assert len(ref) == 1 and ref[0].get_xdata()[0] == 0.95
    missing = [t for t in ax.texts if t.get_text() == "not estimable"]
    assert len(missing) == rows.filter(pl.col("coverage").is_null()).height == 6


def test_bias_plot_from_a_metrics_frame_and_scenario_order(out: StudyResult) -> None:
    metrics = out.metrics()
    ax = plot_study_bias(metrics, estimand="rmst", scenarios=["correct"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ALL
    assert [c.get_label() for c in ax.containers] == ALL
    rmst = metrics.filter((pl.col("estimand") == "rmst") & (pl.col("scenario") == "correct"))
    for cont in ax.containers:
        m = rmst.filter(pl.col("method") == cont.get_label()).row(0, named=True)
        (seg,) = cont.lines[2][0].get_segments()
        assert seg[0][0] == pytest.approx(m["bias"] - 1.96 * m["bias_mcse"], abs=1e-13)
        assert seg[1][0] == pytest.approx(m["bias"] + 1.96 * m["bias_mcse"], abs=1e-13)
    ref = [ln for ln in ax.lines if ln.get_gid() == "reference"]
    assert ref[0].get_xdata()[0] == 0.0
    # a bare metrics frame knows no study order: scenarios as they come (sorted by name)
    ax2 = plot_study_bias(metrics, estimand="median")
    heads = [t.get_text() for t in ax2.texts if t.get_text() in ("correct", HOSTILE)]
    assert heads == sorted(["correct", HOSTILE])


def test_plot_arguments_are_checked(out: StudyResult) -> None:
    with pytest.raises(ValueError, match="no rows for estimand 'survival' at time 7"):
        plot_study_coverage(out, time=7.0)
    with pytest.raises(ValueError, match="'kind' parameter must be 'strip' or 'zip'"):
        plot_study_estimates(out, kind="violin")
    with pytest.raises(TypeError, match="StudyResult or a polars DataFrame"):
        plot_study_estimates([1, 2, 3])
    with pytest.raises(ValueError, match="lacks column 'coverage'"):
        plot_study_coverage(out.replicates)


# -- the report ------------------------------------------------------------------------------
class Page(HTMLParser):
    """Section ids, images, external references and every table's cells by section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.images: list[str] = []
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._stack: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(a["id"] or "")
            self._stack.append(a["id"] or "")
        for k in ("src", "href"):
            if a.get(k) is not None:
                self.refs.append(a[k] or "")
        if tag == "img":
            self.images.append(a["src"] or "")
        if tag == "table":
            self.tables.setdefault(self._stack[-1], []).append([])
        if tag == "tr":
            self.tables[self._stack[-1]][-1].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._stack[-1]][-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    return p


def fmt(v: float | None, digits: int) -> str:
    """The report's number format, written out independently: a dash for a missing value,
    a true minus sign, none on a value that rounds to zero."""
    if v is None:
        return "—"
    text = f"{v:,.{digits}f}"
    if text.startswith("-"):
        text = "−" + text[1:] if set(text[1:]) - set("0.,") else text[1:]
    return text


def test_report_sections_images_and_no_external_resources(out: StudyResult, page: str) -> None:
    p = parse(page)
    assert p.sections == ["scenarios", "metrics", "figures", "failures", "settings", "versions"]
    # per estimand (S(12), median, RMST(24)): estimates + zip, bias + coverage
    assert len(p.images) == 6
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r for r in p.refs if not r.startswith(("#", "data:image/png;base64,"))] == []
    assert not p.tags & {"script", "link", "iframe", "object", "embed"}
    assert "http://" not in page and "https://" not in page
    assert "Figure not drawn" not in page


def test_report_escapes_the_hostile_scenario_name(out: StudyResult, page: str) -> None:
    assert HOSTILE not in page and "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; $y$" in page
    p = parse(page)
    scen = p.tables["scenarios"][0]
    assert scen[0][:2] == ["scenario", "description"]
    assert [row[0] for row in scen[1:]] == ["correct", HOSTILE]
    assert scen[2][1] == f"{HOSTILE}!" and scen[2][4] == "x1 + nowhere"
    assert scen[2][7] == str(N_REPS) and scen[2][8] == "SeedSequence(5, spawn_key=(1, r, ·))"


def test_metrics_table_cells_equal_metrics_formatted(out: StudyResult, page: str) -> None:
    metrics = out.metrics()
    (table,) = parse(page).tables["metrics"]
    head, body = table[0], table[1:]
    assert head[:3] == ["scenario", "method", "estimand"]
    assert head[3:] == [
        "bias (MCSE)", "empirical SE (MCSE)", "model SE (MCSE)",
        "relative error of model SE (MCSE)", "coverage (MCSE)",
        "bias-eliminated coverage (MCSE)", "RMSE (MCSE)", "replicates", "with interval", "failed",
    ]  # fmt: skip
    assert len(body) == metrics.height == 2 * 5 * 3
    label = {"survival": "S(12 months)", "median": "median (months)", "rmst": "RMST to 24 months"}
    cells = {(r[0], r[1], r[2]): r for r in body}
    # rows: by estimand, then the study's scenario order, then method order
    assert [r[2] for r in body[::10]] == list(label.values())
    assert [r[1] for r in body[:5]] == ALL and [r[0] for r in body[:10]] == ["correct"] * 5 + [
        HOSTILE
    ] * 5
    measures = ["bias", "empirical_se", "model_se", "relative_error_model_se", "coverage",
                "be_coverage", "rmse"]  # fmt: skip
    nonempty = 0
    for m in metrics.iter_rows(named=True):
        row = cells[(m["scenario"], m["method"], label[m["estimand"]])]
        for cell, measure in zip(row[3:10], measures, strict=True):
            digits = (
                3
                if measure in ("relative_error_model_se", "coverage", "be_coverage")
                else (4 if m["estimand"] == "survival" else 3)
            )
            v, se = m[measure], m[f"{measure}_mcse"]
            want = (
                "—"
                if v is None
                else fmt(v, digits) + ("" if se is None else f" ({fmt(se, digits)})")
            )
            assert cell == want, (m["scenario"], m["method"], m["estimand"], measure)
            nonempty += v is not None
        assert row[10:] == [str(m["n_reps"]), str(m["n_ci"]), str(m["n_failed"])]
    assert nonempty > 50  # the comparison is not vacuous
    iow = cells[(HOSTILE, "iow", "S(12 months)")]
    assert iow[3:10] == ["—"] * 7 and iow[10:] == ["0", "0", str(N_REPS)]


def test_failures_section_counts_the_crafted_failure(out: StudyResult, page: str) -> None:
    p = parse(page)
    assert "12 of 40 fits (scenario × method × replicate) failed." in page
    table = p.tables["failures"][0]
    assert table[0] == ["scenario", "method", "failed", "replicates", "error"]
    rows = table[1:]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (HOSTILE, m, str(N_REPS), "0, 1, 2, 3") for m in ("iow", "entropy", "aipw")
    ]
    for r in rows:
        assert "nowhere" in r[4]
        assert r[4] == out.failures().filter(pl.col("method") == r[1])["error"][0]


def test_settings_versions_and_determinism(out: StudyResult, tmp_path: Path) -> None:
    a = render_study_report(out, figures=False, settings={"seed": "overridden", "note": "<i>"})
    b = render_study_report(out, figures=False, settings={"seed": "overridden", "note": "<i>"})
    assert a == b
    p = parse(a)
    assert "figures" not in p.sections and p.images == []
    settings = dict((r[0], r[1]) for r in p.tables["settings"][0][1:])
    assert settings["methods"] == ", ".join(ALL)
    assert settings["n_reps"] == str(N_REPS) and settings["times"] == "12"
    assert settings["seed"] == "overridden" and settings["note"] == "<i>"
    assert "&lt;i&gt;" in a
    versions = dict((r[0], r[1]) for r in p.tables["versions"][0][1:])
    assert {"python", "transport", "numpy", "polars", "matplotlib"} <= set(versions)
    path = write_study_report(out, tmp_path / "deep" / "study.html", figures=False,
                              title="My <study>")  # fmt: skip
    assert path == tmp_path / "deep" / "study.html"
    text = path.read_text(encoding="utf-8")
    assert "<title>My &lt;study&gt;</title>" in text
    assert text.replace("My &lt;study&gt;", "T") == render_study_report(
        out, figures=False, title="T"
    )


def test_report_without_failures_says_so() -> None:
    res = Study(scenario=small(), methods=["naive", "gformula"], n_reps=2, seed=1).run()
    p = parse(render_study_report(res, figures=False))
    assert "failures" in p.sections and "failures" not in p.tables
    assert math.isclose(res.metrics()["n_failed"].sum(), 0)


def test_warnings_are_counted_by_class_once_per_replicate(out: StudyResult) -> None:
    text = "PositivityWarning: poor overlap; see scores(); ConvergenceWarning: <no> convergence"
    crafted = out.replicates.with_columns(
        warning=pl.when((pl.col("method") == "iow") & (pl.col("rep") < 3))
        .then(pl.lit(text))
        .when((pl.col("method") == "naive") & (pl.col("rep") == 0))
        .then(pl.lit("PositivityWarning: once"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    res = StudyResult(crafted, out.config, out.n_reps)
    p = parse(render_study_report(res, figures=False))
    fails, warns = p.tables["failures"]
    assert warns[0] == ["scenario", "method", "warning", "replicates"]
    assert warns[1:] == [
        [sc, m, w, n]
        for sc in ("correct", HOSTILE)
        for m, w, n in [
            ("naive", "PositivityWarning", "1"),
            ("iow", "PositivityWarning", "3"),
            ("iow", "ConvergenceWarning", "3"),
        ]
    ]
    assert fails[0][0] == "scenario"
