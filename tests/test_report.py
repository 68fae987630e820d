"""transport.report: the self-contained HTML report and its tidy tables."""

from __future__ import annotations

import base64
import html
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import transport as tp
import transport.plotting
from transport import disclosure as dc
from transport.disclosure import Policy
from transport.report import (
    analysis_settings,
    collect_results,
    render_report,
    tidy_tables,
    versions,
    write_report,
)

#: The default policy's grid step (days), to which released medians are rounded.
STEP = 30.4375

METHODS = ["naive", "iow", "entropy", "gformula", "aipw"]
TIMES, TAU = [365.0, 730.0], 1095.0
N_SOURCE = 1234  # not a multiple of round_to: it must never appear
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}
DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def subset(cohort: tp.Cohort, n: int, seed: int, name: str | None = None) -> tp.Cohort:
    rows = np.sort(np.random.default_rng(seed).choice(cohort.n, n, replace=False))
    return tp.Cohort(
        cohort.to_frame()[rows.tolist()],
        time=cohort.time,
        event=cohort.event,
        covariates=list(cohort.covariates),
        name=name or cohort.name,
        time_unit=cohort.time_unit,
    )


class Page(HTMLParser):
    """Collects ids, images, links, script tags and checks that tags nest."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.imgs: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self._where: list[str] = []
        self.cells: dict[str, list[list[str]]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.imgs.append(str(a.get("src")))
        if "href" in a:
            self.hrefs.append(str(a["href"]))
        if tag == "section":
            self._where.append(str(a.get("id")))
        if tag == "tr":
            self.cells.setdefault(self._where[-1] if self._where else "", []).append([])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag == "section":
            self._where.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] in ("td", "th", "span") and self._where:
            rows = self.cells.get(self._where[-1])
            if rows:
                rows[-1].append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def cohorts() -> dict[str, tp.Cohort]:
    us = tp.datasets.load_synthetic("US")
    return {
        "US": subset(us, N_SOURCE, 1),
        "UK": subset(tp.datasets.load_synthetic("UK"), 400, 2),
        "JP": subset(tp.datasets.load_synthetic("JP"), 300, 3),
    }


@pytest.fixture(scope="module")
def results(cohorts: dict[str, tp.Cohort]) -> dict[str, tp.TransportResults]:
    targets = {k: v for k, v in cohorts.items() if k != "US"}
    out = {}
    for m in METHODS:
        res = tp.transport(
            cohorts["US"],
            targets,
            method=m,
            times=TIMES,
            tau=TAU,
            n_boot=20,
            seed=2026,
            margin={"survival": 0.05, "rmst": 30.0},
        )
        assert isinstance(res, tp.TransportResults)
        out[m] = res
    return out


class Report:
    """The report of the module's results, with what was seen while it was drawn."""

    def __init__(self, path: Path, figures_before: list[int], figures_after: list[int]) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.figures_before, self.figures_after = figures_before, figures_after
        self.risk_texts: list[str] = []


@pytest.fixture(scope="module")
def report(
    results: dict[str, tp.TransportResults], tmp_path_factory: pytest.TempPathFactory
) -> Report:
    path = tmp_path_factory.mktemp("report") / "out" / "report.html"
    texts: list[str] = []
    original = transport.plotting.plot_transport_methods

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        ax = original(*args, **kwargs)
        texts.extend(t.get_text() for t in ax.texts)
        return ax

    before = plt.get_fignums()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transport.plotting, "plot_transport_methods", spy)
        written = write_report(
            results, path, title="US to UK and JP", settings={"seed": 2026, "formula": None}
        )
    out = Report(written, before, plt.get_fignums())
    out.risk_texts = texts
    return out


def test_report_is_written_parses_and_has_every_section(report: Report) -> None:
    path, text = report.path, report.text
    assert path.exists() and path.name == "report.html"
    page = parse(text)
    assert page.errors == [] and page.stack == []
    expected = ["cohorts", "overview", "settings", "versions"]
    for i in (1, 2):
        expected += [f"target-{i}"] + [
            f"target-{i}-{s}" for s in ("curves", "weights", "transportability", "decomposition")
        ]
    assert set(expected) <= set(page.ids)
    assert len(page.ids) == len(set(page.ids))  # ids are unique
    assert "target-3" not in page.ids
    # targets in input order, sections in the documented order
    order = [page.ids.index(x) for x in ("cohorts", "overview", "target-1", "target-2")]
    assert order == sorted(order)
    assert 'data-target="UK"' in text and 'data-target="JP"' in text
    assert text.index('data-target="UK"') < text.index('data-target="JP"')
    assert "<title>US to UK and JP</title>" in text


def test_report_is_self_contained(report: Report) -> None:
    text = report.text
    page = parse(text)
    # forest + (curves, weights, decomposition) for each of two targets
    assert len(page.imgs) == 7
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(h.startswith("#") and h[1:] in page.ids for h in page.hrefs)
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    lowered = text.lower()
    for needle in ('src="http', "http://", "https://", "url(", "@import"):
        assert needle not in lowered


def test_no_exact_cohort_count_is_shown(
    report: Report,
    cohorts: dict[str, tp.Cohort],
    results: dict[str, tp.TransportResults],
) -> None:
    text = report.text
    visible = DATA_URI.sub("", text)
    assert "1234" not in visible and "1,234" not in visible
    assert "1,235" in visible  # 1234 rounded to the nearest 5
    page = parse(text)
    rows = page.cells["cohorts"][1:]
    assert [r[0] for r in rows] == ["US", "UK", "JP"]
    us_events = int(cohorts["US"].event_values.sum())
    assert us_events % 5 != 0  # the check below could fail
    assert rows[0][3:5] == ["1,235", f"{Policy().round_count(us_events):,}"]
    for row in rows:  # every count shown is a multiple of round_to
        for cell in row[3:5]:
            assert int(cell.replace(",", "")) % 5 == 0
    assert tidy_tables(results)["cohorts"]["n"].to_list() == [1235, 400, 300]


def test_numbers_at_risk_in_the_figures_are_rounded(report: Report) -> None:
    seen = report.risk_texts
    assert seen.count("1,235") == 2  # the source's risk set at time 0, in each target's figure
    assert not any("1234" in s or "1,234" in s for s in seen)
    counts = [s for s in seen if re.fullmatch(r"[0-9,]+", s)]
    assert len(counts) > 10 and all(int(s.replace(",", "")) % 5 == 0 for s in counts)


def test_figures_are_closed(report: Report) -> None:
    assert report.figures_after == report.figures_before


def test_strings_from_the_data_are_escaped(cohorts: dict[str, tp.Cohort]) -> None:
    evil = '<script>alert("x")</script> $\\frac$'  # "$...$" would be mathtext in a figure
    target = subset(tp.datasets.load_synthetic("DE"), 200, 4, name=evil)
    res = tp.transport(cohorts["US"], target, method="iow", times=TIMES, tau=TAU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a figure that fails to draw warns
        text = render_report(res, settings={"<b>key</b>": "<img src=x onerror=alert(1)>"})
    page = parse(text)
    assert page.errors == []
    assert "script" not in page.tags and len(page.imgs) == 4 and "Figure not drawn" not in text
    visible = DATA_URI.sub("", text)
    assert "<script" not in visible.lower() and "<b>key" not in visible
    assert "<img src=x" not in visible
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; $\\frac$" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert evil in "".join(page.text)  # the reader sees the name as it is
    assert f'data-target="{html.escape(evil)}"' in text


def _released_summary(r: tp.TransportResult, directory: Path) -> pl.DataFrame:
    """What the release gate writes for ``r``: the numbers the report may show."""
    dc.release(r, directory)
    return pl.read_csv(directory / "transport_summary.csv", schema=r.summary().schema)


def test_tidy_tables_hold_the_results_numbers(
    results: dict[str, tp.TransportResults], tmp_path: Path
) -> None:
    tables = tidy_tables(results)
    assert set(tables) == {
        "cohorts",
        "summary",
        "equivalence",
        "decomposition",
        "curve_distance",
        "weights",
        "balance",
    }
    summary = tables["summary"]
    assert summary.height == len(METHODS) * 2 * 4
    for m, res in results.items():
        for target, r in res.items():
            pick = (pl.col("method") == m) & (pl.col("target") == target)
            # the report can leave the environment: it shows what the gate releases
            mine = summary.filter(pick).select(r.summary().columns)
            assert_frame_equal(mine, _released_summary(r, tmp_path / f"{m}-{target}"))
            timed = pl.col("estimand") != "median"
            dec = tables["decomposition"].filter(pick).drop("source", "target", "method")
            assert_frame_equal(dec.filter(timed), r.decomposition().filter(timed))
            medians = dec.filter(~timed)
            assert medians["se"].null_count() == medians.height  # an SE gives the median back
            assert all(abs(v / STEP - round(v / STEP)) < 1e-9 for v in medians["value"])
            eq = tables["equivalence"].filter(pick).drop("source", "target", "method")
            assert_frame_equal(
                eq.filter(timed), r.equivalence().filter(timed), check_column_order=False
            )
            dist = tables["curve_distance"].filter(pick)
            assert dist["value"].to_list() == [r.curve_distance().value]
            w = tables["weights"].filter(pick)
            if r.weights is None:
                assert w.height == 0 and tables["balance"].filter(pick).height == 0
            else:
                assert w["ess"].item() == round(r.weights.ess, 1)
                q = np.quantile(r.weights.values / r.weights.values.mean(), 0.5)
                assert w["q50"].item() == pytest.approx(q, rel=1e-12)
                bal = tables["balance"].filter(pick)
                assert_frame_equal(bal.select(r.weights.balance().columns), r.weights.balance())


def test_report_shows_the_tidy_numbers(
    report: Report, results: dict[str, tp.TransportResults]
) -> None:
    page = parse(report.text)
    rows = page.cells["target-2-transportability"]  # JP
    r = results["aipw"]["JP"].summary().row(0, named=True)  # S(365 days)
    row = next(x for x in rows if x[:2] == ["aipw", "S(365 days)"])
    assert row[3] == (
        f"{r['transported']:.3f} [{r['transported_ci_lower']:.3f}, {r['transported_ci_upper']:.3f}]"
    )
    assert row[4].startswith(f"{r['observed']:.3f} [")
    assert row[5].replace("−", "-").startswith(f"{r['difference']:.3f} [")
    assert r["verdict"] in row
    median = next(x for x in rows if x[:2] == ["iow", "median (days)"])
    released = tidy_tables(results)["summary"].filter(
        (pl.col("method") == "iow") & (pl.col("target") == "JP") & (pl.col("estimand") == "median")
    )
    exact = results["iow"]["JP"].summary().filter(pl.col("estimand") == "median")["transported"]
    assert released["transported"].item() != exact.item()  # the grid's, not the patient's
    assert median[3].startswith(f"{released['transported'].item():,.1f} [")
    # verdicts only where a margin was set: none for the median
    assert median[-2] == "—"


def test_settings_and_versions(report: Report, results: dict[str, tp.TransportResults]) -> None:
    page = parse(report.text)
    settings = dict(tuple(r) for r in page.cells["settings"][1:])  # type: ignore[misc]
    assert settings["methods"] == ", ".join(METHODS)
    assert settings["times"] == "365, 730" and settings["tau"] == "1095"
    assert settings["n_boot"] == "20" and settings["bootstrap_seed"] == "2026"
    assert settings["ci_level"] == "0.95" and settings["seed"] == "2026"
    assert settings["margin"] == "survival: 0.05; rmst: 30"
    assert settings["formula"] == "—"  # the caller's None
    assert "round" in settings["disclosure_policy"]
    assert analysis_settings(results)["participation_formula"].startswith("age")
    shown = dict(tuple(r) for r in page.cells["versions"][1:])  # type: ignore[misc]
    assert shown == versions()
    assert set(shown) >= {"python", "transport", "numpy", "scipy", "polars", "lifelines"}
    assert set(shown) >= {"statsmodels", "matplotlib"}


def test_summary_only_target(cohorts: dict[str, tp.Cohort]) -> None:
    summary = tp.TargetSummary.from_cohort(cohorts["JP"], km_times=[365.0, 730.0])
    res = {
        m: tp.transport(cohorts["US"], summary, method=m, times=TIMES, tau=TAU, n_boot=20, seed=1)
        for m in ("naive", "entropy")
    }
    assert all(r.observed is None for r in res.values())
    text = render_report(res)
    page = parse(text)
    assert page.errors == []
    assert {"target-1-curves", "target-1-transportability", "target-1-decomposition"} <= set(
        page.ids
    )
    assert len(page.imgs) == 4 and "Figure not drawn" not in text
    cohort_rows = page.cells["cohorts"][1:]
    assert cohort_rows[1][:4] == ["JP", "target", "summary", "300"]
    tables = tidy_tables(res)
    assert tables["curve_distance"].height == 0
    s = tables["summary"]
    assert s.filter(pl.col("estimand") == "median")["observed"].null_count() == 2
    surv = s.filter((pl.col("estimand") == "survival") & (pl.col("method") == "entropy"))
    assert surv["observed"].to_list() == res["entropy"].summary()["observed"][:2].to_list()
    assert surv["observed"].null_count() == 0  # read from the summary's KM grid


def test_output_is_deterministic(results: dict[str, tp.TransportResults]) -> None:
    one = render_report(results, figures=False, settings={"b": 1, "a": 2})
    assert one == render_report(results, figures=False, settings={"b": 1, "a": 2})
    single = results["naive"]["JP"]  # figures' bytes too (no timestamp in the PNGs)
    assert DATA_URI.findall(render_report(single)) == DATA_URI.findall(render_report(single))


def test_a_single_result_and_every_input_form(results: dict[str, tp.TransportResults]) -> None:
    single = results["iow"]["UK"]
    page = parse(render_report(single, figures=False))
    assert "target-1-weights" in page.ids and "target-2" not in page.ids
    assert page.imgs == []
    flat = [r for res in results.values() for r in res.values()]
    expected = tidy_tables(results)["summary"]
    for form in (flat, list(results.values()), dict(enumerate(flat))):
        assert_frame_equal(tidy_tables(form)["summary"], expected)  # type: ignore[arg-type]
    # pairs in order of first appearance, methods in their canonical order within each
    backwards = tidy_tables(flat[::-1])["summary"].filter(pl.col("estimand") == "median")
    assert backwards["target"].to_list() == ["JP"] * 5 + ["UK"] * 5
    assert backwards["method"].to_list() == METHODS * 2
    timed = pl.col("estimand") != "median"
    assert_frame_equal(tidy_tables(single)["summary"].filter(timed), single.summary().filter(timed))
    assert collect_results(results["naive"]) == list(results["naive"].values())
    with pytest.raises(ValueError, match="two results"):
        collect_results([single, single])
    with pytest.raises(ValueError, match="no results"):
        collect_results([])
    with pytest.raises(TypeError, match="DataFrame"):
        collect_results([single.summary()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Policy"):
        tidy_tables(single, policy={"round_to": 5})  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::transport.exceptions.PositivityWarning")
def test_forbidden_and_small_cell_columns_are_withheld() -> None:
    rng = np.random.default_rng(5)

    def frame(n: int, rare: int, shift: float, grades: list[int]) -> pl.DataFrame:
        age = rng.normal(65 + shift, 8, n)
        flag = np.zeros(n, dtype=int)
        flag[:rare] = 1
        grade = np.repeat(["a", "b", "c"], grades)
        t = rng.exponential(300 * np.exp(-0.02 * (age - 65)))
        c = rng.uniform(100, 900, n)
        return pl.DataFrame(
            {
                "os_days": np.round(np.minimum(t, c)) + 1,
                "death": (t <= c).astype(int),
                "age": age,
                "rare_flag": flag,
                "practice_size": rng.normal(50, 10, n),
                "grade": rng.permutation(grade),
            }
        )

    covs = ["age", "rare_flag", "practice_size", "grade"]
    a = frame(600, 60, 0.0, [200, 200, 200])
    b = frame(200, 4, 3.0, [4, 90, 106])  # grade "a", the reference level, is small
    src = tp.Cohort(a, time="os_days", event="death", covariates=covs, name="A")
    tgt = tp.Cohort(b, time="os_days", event="death", covariates=covs, name="B")
    res = tp.transport(src, tgt, method="iow", times=[180.0])
    tables = tidy_tables(res)
    bal = tables["balance"]
    assert bal["covariate"].to_list() == ["age", "rare_flag", "grade[T.b]", "grade[T.c]"]
    withheld = dict(zip(bal["covariate"], bal["withheld"], strict=True))
    # the small flag, and the next smallest grade with the reference level it would reveal
    assert withheld == {
        "age": None,
        "rare_flag": "min_cell",
        "grade[T.b]": "min_cell",
        "grade[T.c]": None,
    }
    rare = bal.filter(pl.col("covariate") == "rare_flag").row(0, named=True)
    assert rare["mean_target"] is None and rare["smd_after"] is None
    assert bal.filter(pl.col("covariate") == "grade[T.c]")["mean_target"].item() == 106 / 200
    text = render_report(res, figures=False)
    visible = DATA_URI.sub("", text)
    assert "practice_size" not in visible  # not in the tables, nor in the formula
    assert "1 design column(s) with a forbidden role are not shown" in visible
    assert analysis_settings(res)["participation_formula"].startswith("withheld")
    assert "rare_flag" in visible and "withheld (fewer than 10 patients)" in visible
    rows = parse(text).cells["target-1-weights"]
    rare_row = next(r for r in rows if r[0] == "rare_flag")
    assert rare_row == ["rare_flag", "withheld (fewer than 10 patients)"]  # no number
    age_row = next(r for r in rows if r[0] == "age")
    assert len(age_row) == 5 and age_row[2] == f"{tgt.covariate_frame['age'].mean():.3f}"
    # a looser policy shows the rare column
    loose = tidy_tables(res, policy=Policy(min_cell=2))["balance"]
    assert loose.filter(pl.col("covariate") == "rare_flag")["withheld"].item() is None


def test_the_figures_the_report_adds(results: dict[str, tp.TransportResults]) -> None:
    from transport.plotting import plot_decomposition_methods, plot_transport_methods

    uk = [results[m]["UK"] for m in METHODS]
    fig, ax = plt.subplots()
    try:
        plot_transport_methods(uk, ax)  # default labels: the exact numbers at risk
        texts = [t.get_text() for t in ax.texts]
        assert "1234" in texts and "400" in texts
        labels = ax.get_legend_handles_labels()[1]
        assert labels[:2] == ["US (naive)", "UK (observed)"]
        assert [x for x in labels if x.startswith("transported")] == [
            f"transported ({m})" for m in METHODS[1:]
        ]
        ax.clear()
        plot_decomposition_methods(uk[1:], estimand="rmst", ax=ax)
        widths = [p.get_width() for p in ax.patches]
        dec = results["iow"]["UK"].decomposition().filter(pl.col("estimand") == "rmst")
        for comp in ("raw_gap", "patient_mix", "residual"):
            value = dec.filter(pl.col("component") == comp)["value"].item()
            assert any(w == pytest.approx(value, rel=1e-12) for w in widths)
        with pytest.raises(ValueError, match="share one source and target"):
            plot_transport_methods([results["iow"]["UK"], results["iow"]["JP"]], ax)
        with pytest.raises(ValueError, match="no rows"):
            plot_decomposition_methods(uk, estimand="survival", time=1.0, ax=ax)
    finally:
        plt.close(fig)


def _graded(n: int, grades: list[int], shift: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(65 + shift, 8, n)
    t = rng.exponential(300 * np.exp(-0.02 * (age - 65)))
    c = rng.uniform(100, 900, n)
    return pl.DataFrame(
        {
            "os_days": np.round(np.minimum(t, c)) + 1,
            "death": (t <= c).astype(int),
            "age": age,
            "grade": rng.permutation(np.repeat(["a", "b", "c"], grades)),
            "gp_practice": rng.choice(["p1", "p2", "p3"], n),
        }
    )


@pytest.mark.parametrize(
    ("formula", "small", "columns"),
    [
        # C() names its columns "C(grade)[T.b]": the reference "a" is still 1 minus them
        ("age + C(grade)", [4, 90, 106], ["C(grade)[T.b]", "C(grade)[T.c]"]),
        # another reference level: "b" has no column, and it is the small one
        ("age + C(grade, Treatment('b'))", [90, 4, 106], [
            "C(grade, Treatment('b'))[T.a]", "C(grade, Treatment('b'))[T.c]"]),
    ],
)  # fmt: skip
def test_a_small_reference_level_is_withheld_whatever_the_column_names(
    formula: str, small: list[int], columns: list[str]
) -> None:
    """The reference level has no balance row, but its share is 1 minus the other
    levels' shares however formulaic names their columns: with 4 target patients in it,
    the next smallest level is withheld too, so the 4 cannot be recovered."""
    covs = ["age", "grade"]
    src = tp.Cohort(
        _graded(600, [200, 200, 200], 0.0, 1), time="os_days", event="death",
        covariates=covs, name="A",
    )  # fmt: skip
    tgt = tp.Cohort(
        _graded(200, small, 3.0, 2), time="os_days", event="death", covariates=covs, name="B"
    )
    res = tp.transport(src, tgt, method="iow", times=[180.0], formula=formula)
    bal = tidy_tables(res)["balance"]
    assert bal["covariate"].to_list() == ["age", *columns]
    shown = bal.filter(pl.col("withheld").is_null())["covariate"].to_list()
    assert shown == ["age", columns[1]]  # the 90-patient level is withheld with the 4
    assert bal.filter(pl.col("covariate") == columns[0])["mean_target"].item() is None


def test_caller_settings_naming_a_forbidden_column_are_withheld() -> None:
    """The report leaves out covariates with a forbidden role, and withholds the
    participation formula that names one: so too a formula the caller passes in its
    settings (as ``transport run`` does)."""
    covs = ["age", "grade", "gp_practice"]
    src = tp.Cohort(
        _graded(600, [200, 200, 200], 0.0, 3), time="os_days", event="death",
        covariates=covs, name="A",
    )  # fmt: skip
    tgt = tp.Cohort(
        _graded(300, [100, 100, 100], 3.0, 4), time="os_days", event="death",
        covariates=covs, name="B",
    )  # fmt: skip
    formula = "age + grade + gp_practice"
    res = tp.transport(src, tgt, method="iow", times=[180.0], formula=formula)
    settings = {"formula": formula, "outcome_formula": "age + C(gp_practice)", "seed": 1}
    text = render_report(res, figures=False, settings=settings)
    visible = DATA_URI.sub("", text)
    assert "gp_practice" not in visible
    shown = dict(tuple(r) for r in parse(text).cells["settings"][1:])  # type: ignore[misc]
    assert shown["formula"].startswith("withheld") and shown["seed"] == "1"
    assert shown["outcome_formula"].startswith("withheld")
    # a formula without such a column, and other settings, are shown as given
    fine = render_report(res, figures=False, settings={"formula": "age + grade", "plan": "x"})
    shown = dict(tuple(r) for r in parse(fine).cells["settings"][1:])  # type: ignore[misc]
    assert shown["formula"] == "age + grade" and shown["plan"] == "x"
