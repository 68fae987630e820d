"""The `transport` command, run as a user runs it: through its console entry point in a
subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport.disclosure import verify

COMMAND = Path(sys.executable).parent / "transport"
METHODS = ("naive", "iow", "entropy", "gformula", "aipw")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def all_text(directory: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace") for p in sorted(directory.rglob("*")) if p.is_file()
    )


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        src = a.get("src") or ""
        if tag == "img":
            self.images.append(src)
        if src.startswith(("http:", "https:", "//")) or tag in ("link", "script"):
            self.external.append(tag)


def test_the_entry_point_is_installed() -> None:
    assert COMMAND.is_file(), "pip install -e . installs the `transport` command"
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"transport {tp.__version__}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`transport demo` with every method and a small bootstrap."""
    out = tmp_path_factory.mktemp("demo") / "transport-demo"
    res = run("demo", "--out", str(out), "--n-boot", "10", "--n-jobs", "1")
    assert res.returncode == 0, res.stderr
    assert f"report: {out / 'report.html'}" in res.stdout
    return out


def test_demo_writes_the_report_results_releases_and_manifest(demo: Path) -> None:
    html = (demo / "report.html").read_text()
    parser = _Ids()
    parser.feed(html)
    for sid in ("cohorts", "overview", "settings", "versions"):
        assert sid in parser.ids
    assert {f"target-{i}" for i in (1, 2, 3)} <= parser.ids
    assert len(parser.images) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert parser.external == []
    summary = pl.read_csv(demo / "results" / "summary.csv")
    assert set(summary["method"]) == set(METHODS)
    assert set(summary["target"]) == {"UK", "DE", "JP"}
    # 3 survival times, the median and the RMST, per method and target
    assert summary.height == 5 * 3 * 5
    assert (summary["n_boot"] == 10).all()
    data = json.loads((demo / "results" / "results.json").read_text())
    assert len(data["summary"]) == summary.height
    # the tidy results are the analysis' numbers: rerun one in process
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    mine = tp.transport(us, jp, method="iow", times=[182.625, 365.25, 730.5], tau=1095.75)
    theirs = summary.filter((pl.col("method") == "iow") & (pl.col("target") == "JP"))
    timed = pl.col("estimand") != "median"  # medians are on the grid, as released
    np.testing.assert_allclose(
        theirs.filter(timed)["transported"].to_numpy(),
        mine.summary().filter(timed)["transported"].to_numpy(),
        rtol=1e-12,
    )
    released = pl.read_csv(demo / "release" / "US-JP-iow" / "transport_summary.csv")
    assert (
        theirs.filter(~timed)["transported"].item() == released.filter(~timed)["transported"].item()
    )
    # every result went through the gate; every release verifies
    releases = sorted((demo / "release").iterdir())
    assert len(releases) == 15
    for d in releases:
        assert verify(d)["object"] == "TransportResult"
    # the run manifest lists every file with its hash
    manifest = json.loads((demo / "manifest.json").read_text())
    listed = {e["file"]: e["sha256"] for e in manifest["files"]}
    files = {str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file()}
    assert set(listed) == files - {"manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((demo / name).read_bytes()).hexdigest() == digest


def test_demo_outputs_hold_no_identifier(demo: Path) -> None:
    text = all_text(demo)
    assert "patient_id" not in text and "practice_id" not in text
    frame = pl.read_parquet(tp.datasets.data_dir() / "JP.parquet")
    for pid in frame["patient_id"].head(50).to_list():
        assert str(pid) not in text


def test_demo_plan_reruns_and_refuses_a_used_directory(demo: Path, tmp_path: Path) -> None:
    plan = demo / "plan.toml"
    # the saved plan, cut to one method, runs to the same numbers
    text = plan.read_text().replace(
        'methods = ["naive", "iow", "entropy", "gformula", "aipw"]', 'methods = ["entropy"]'
    )
    small = tmp_path / "plan.toml"
    small.write_text(text)
    res = run("run", str(small), "--out", str(tmp_path / "again"), "--no-figures", "--quiet")
    assert res.returncode == 0, res.stderr
    a = pl.read_csv(tmp_path / "again" / "results" / "summary.csv")
    b = pl.read_csv(demo / "results" / "summary.csv").filter(pl.col("method") == "entropy")
    assert a["transported"].to_list() == b["transported"].to_list()
    assert a["transported_ci_lower"].to_list() == b["transported_ci_lower"].to_list()
    # a directory holding something else is refused; an earlier run is replaced on request
    res = run("run", str(small), "--out", str(demo / "results"), "--quiet")
    assert res.returncode == 2 and "not empty" in res.stderr
    res = run("run", str(small), "--out", str(tmp_path / "again"), "--quiet", "--no-figures")
    assert res.returncode == 2 and "--overwrite" in res.stderr
    res = run(
        "run",
        str(small),
        "--out",
        str(tmp_path / "again"),
        "--quiet",
        "--no-figures",
        "--overwrite",
    )
    assert res.returncode == 0, res.stderr


def test_summary_only_workflow_through_the_command(tmp_path: Path) -> None:
    """Target side: `transport summarize` on the target's rows writes a release. Source
    side: a plan names that JSON as the target. The transported estimate equals the
    row-level one."""
    jp = pl.read_parquet(tp.datasets.data_dir() / "JP.parquet")
    jp.write_csv(tmp_path / "jp.csv")
    covs = "age,sex,ecog,stage,histology"
    res = run(
        "summarize",
        str(tmp_path / "jp.csv"),
        "--time",
        "os_days",
        "--event",
        "os_event",
        "--covariates",
        covs,
        "--identifiers",
        "patient_id,practice_id",
        "--name",
        "JP",
        "--out",
        str(tmp_path / "jp-release"),
    )
    assert res.returncode == 0, res.stderr
    assert "released to" in res.stdout and "target_summary.json" in res.stdout
    released = tmp_path / "jp-release" / "target_summary.json"
    assert "patient_id" not in released.read_text()
    verify(tmp_path / "jp-release")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""title = "US to JP from JP's released summary"
[cohorts.US]
dataset = "synthetic:US"
[cohorts.JP]
summary = "jp-release/target_summary.json"
[analysis]
source = "US"
targets = ["JP"]
methods = ["entropy"]
times = [365.25]
formula = "{covs.replace(",", " + ")}"
"""
    )
    res = run("run", str(plan), "--quiet", "--no-figures")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "plan-output"
    got = pl.read_csv(out / "results" / "summary.csv")
    us = tp.datasets.load_synthetic("US")
    us = tp.Cohort(
        pl.read_parquet(tp.datasets.data_dir() / "US.parquet"),
        time="os_days",
        event="os_event",
        covariates=covs.split(","),
        name="US",
        identifiers=["patient_id", "practice_id"],
    )
    rows = tp.Cohort(
        jp,
        time="os_days",
        event="os_event",
        covariates=covs.split(","),
        name="JP",
        identifiers=["patient_id", "practice_id"],
    )
    want = tp.transport(us, rows, method="entropy", times=[365.25]).summary()
    np.testing.assert_allclose(
        got["transported"].to_numpy()[:1], want["transported"].to_numpy()[:1], atol=1e-10
    )
    # the plan saved with the output names its files absolutely: it reruns from anywhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = run(
        "run", str(out / "plan.toml"), "--out", "again", "--quiet", "--no-figures", cwd=elsewhere
    )
    assert res.returncode == 0, res.stderr
    again = pl.read_csv(elsewhere / "again" / "results" / "summary.csv")
    assert again["transported"].to_list() == got["transported"].to_list()
    # a method that needs the target's rows is refused before anything runs
    plan.write_text(plan.read_text().replace('methods = ["entropy"]', 'methods = ["iow"]'))
    res = run("run", str(plan), "--out", str(tmp_path / "iow"))
    assert res.returncode == 2 and "'JP' is a released summary" in res.stderr
    assert "[1/1]" not in res.stderr and not (tmp_path / "iow").exists()


def test_command_errors_name_the_problem(tmp_path: Path) -> None:
    jp = pl.read_parquet(tp.datasets.data_dir() / "JP.parquet")
    jp.write_csv(tmp_path / "jp.csv")
    base = ["summarize", str(tmp_path / "jp.csv"), "--time", "os_days", "--event", "os_event"]
    # an identifier as a covariate: refused by the gate, naming the rule
    res = run(*base, "--covariates", "age,practice_id", "--out", str(tmp_path / "a"))
    assert res.returncode == 2
    assert "practice_id" in res.stderr and "forbidden_column" in res.stderr
    # a column that is not there
    res = run(*base, "--covariates", "age,weight_kg", "--out", str(tmp_path / "b"))
    assert res.returncode == 2 and "weight_kg" in res.stderr
    # missing roles
    res = run("summarize", str(tmp_path / "jp.csv"), "--out", str(tmp_path / "c"))
    assert res.returncode == 2 and "--time and --event" in res.stderr
    # a plan with a misspelt key
    plan = tmp_path / "bad.toml"
    plan.write_text(
        '[cohorts.US]\ndataset = "synthetic:US"\n[analysis]\nsource = "US"\n'
        'targets = ["US"]\nmethods = ["iow"]\nn_boots = 5\n'
    )
    res = run("run", str(plan))
    assert res.returncode == 2 and "n_boots" in res.stderr and "[analysis]" in res.stderr
    plan.write_text(
        '[cohorts.US]\ndataset = "synthetic:US"\n[analysis]\nsource = "US"\n'
        'targets = ["XX"]\nmethods = ["iow"]\n'
    )
    res = run("run", str(plan))
    assert res.returncode == 2 and "'XX'" in res.stderr
    res = run("run", str(tmp_path / "missing.toml"))
    assert res.returncode == 2 and "missing.toml" in res.stderr


def test_release_curve_and_verify(tmp_path: Path) -> None:
    res = run("release", "curve", "synthetic:DE", "--out", str(tmp_path / "de"))
    assert res.returncode == 0, res.stderr
    curve = pl.read_csv(tmp_path / "de" / "survival_curve.csv")
    step = tp.disclosure.Policy().km_grid_step
    assert np.allclose(curve["time"].to_numpy() / step, np.round(curve["time"].to_numpy() / step))
    assert (curve["n_risk"] % 5 == 0).all()
    res = run("release", "verify", str(tmp_path / "de"))
    assert res.returncode == 0 and "match manifest.json" in res.stdout
    (tmp_path / "de" / "survival_curve.csv").write_text("time,survival\n1,0.5\n")
    res = run("release", "verify", str(tmp_path / "de"))
    assert res.returncode == 2 and "changed after release" in res.stderr
    # a stricter policy from a file
    policy = tmp_path / "policy.toml"
    policy.write_text("[disclosure]\nmin_cell = 1000\n")
    res = run(
        "release",
        "curve",
        "synthetic:DE",
        "--policy",
        str(policy),
        "--out",
        str(tmp_path / "strict"),
    )
    assert res.returncode == 2 and "min_cell" in res.stderr


def test_overwrite_replaces_only_run_output_and_a_failed_run_leaves_nothing(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[cohorts.DE]\ndataset = "synthetic:DE"\n[cohorts.JP]\n'
        'dataset = "synthetic:JP"\n[analysis]\nsource = "DE"\ntargets = ["JP"]\n'
        'methods = ["naive"]\ntimes = [365.25]\n'
    )
    out = tmp_path / "out"
    assert run("run", str(plan), "--out", str(out), "--quiet", "--no-figures").returncode == 0
    # a user's file beside the run output: --overwrite refuses and deletes nothing
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir would have made it
    (out / "NOTES.md").write_text("my notes")
    res = run("run", str(plan), "--out", str(out), "--quiet", "--no-figures", "--overwrite")
    assert res.returncode == 2 and "NOTES.md" in res.stderr
    assert (out / "NOTES.md").read_text() == "my notes" and (out / "report.html").exists()
    (out / "NOTES.md").unlink()
    res = run("run", str(plan), "--out", str(out), "--quiet", "--no-figures", "--overwrite")
    assert res.returncode == 0, res.stderr
    # a run that fails after the analysis (the gate refuses a cohort name) leaves nothing
    pl.read_parquet(tp.datasets.data_dir() / "JP.parquet").write_csv(tmp_path / "jp.csv")
    bad = plan.read_text().replace(
        '[cohorts.JP]\ndataset = "synthetic:JP"',
        '[cohorts.JP]\npath = "jp.csv"\ntime = "os_days"\nevent = "os_event"\n'
        'covariates = ["age"]\nidentifiers = ["patient_id", "practice_id"]\n'
        'name = "gp_practice_7"',
    )
    plan.write_text(bad)
    res = run("run", str(plan), "--out", str(tmp_path / "failed"), "--quiet", "--no-figures")
    assert res.returncode == 2 and "forbidden_column" in res.stderr
    assert not (tmp_path / "failed").exists()
    assert not any(p.name.startswith(".failed.partial") for p in tmp_path.iterdir())


def test_plan_and_option_checks(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    head = '[cohorts.DE]\ndataset = "synthetic:DE"\n'
    cases = {
        'targets = ["DE"]\nmethods = ["ipw"]\n': "'ipw' is not one of",
        'targets = ["DE"]\nmethods = ["iow"]\nwindow = 5\n': "'window' must be a list",
    }
    for body, message in cases.items():
        plan.write_text(head + '[analysis]\nsource = "DE"\n' + body)
        res = run("run", str(plan), "--out", str(tmp_path / "o"))
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    plan.write_text(
        '[cohorts."x/../../esc"]\ndataset = "synthetic:DE"\n[analysis]\n'
        'source = "x/../../esc"\ntargets = []\nmethods = ["naive"]\n'
    )
    res = run("run", str(plan))
    assert res.returncode == 2 and "directory names" in res.stderr
    plan.write_text(
        head + '[analysis]\nsource = "DE"\ntargets = ["DE"]\nmethods = ["naive"]\n'
        "[disclosure]\nmin_cells = 5\n"
    )
    res = run("run", str(plan), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "min_cells" in res.stderr and "min_cell'" in res.stderr
    res = run("run", str(tmp_path))  # a directory, not a plan
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (tmp_path / "broken.csv").write_text('a,b\n1,"2\n')
    res = run(
        "summarize",
        str(tmp_path / "broken.csv"),
        "--time",
        "a",
        "--event",
        "b",
        "--out",
        str(tmp_path / "s"),
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = run("summarize", "synthetic:DE", "--km-every", "0", "--out", str(tmp_path / "k"))
    assert res.returncode == 2 and "--km-every" in res.stderr


def test_simulate_writes_metrics_and_report_and_resumes(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(
        'title = "a small study"\n[study]\nscenarios = ["correct", "outcome_misspecified"]\n'
        'methods = ["naive", "iow"]\nn_reps = 4\nseed = 9\ntimes = [12.0]\ntau = 24.0\n'
        '[run]\nn_jobs = 2\ncheckpoint = "ckpt"\n'
    )
    res = run("simulate", str(study), "--out", str(tmp_path / "out"), "--quiet")
    assert res.returncode == 0, res.stderr
    metrics = pl.read_csv(tmp_path / "out" / "metrics.csv")
    assert set(metrics["scenario"]) == {"correct", "outcome_misspecified"}
    assert set(metrics["method"]) == {"naive", "iow"} and (metrics["n_reps"] == 4).all()
    want = (
        tp.simulate.Study(
            scenario=["correct", "outcome_misspecified"],
            methods=["naive", "iow"],
            n_reps=4,
            seed=9,
            times=[12.0],
            tau=24.0,
        )
        .run()
        .metrics()
    )
    assert metrics["bias"].to_list() == pytest.approx(want["bias"].to_list(), rel=1e-12)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "data:image/png;base64," in html and "outcome_misspecified" in html
    assert len(list((tmp_path / "ckpt").glob("*.parquet"))) == 8  # 2 scenarios x 4 replicates
    # resumed from the checkpoint: the same numbers, into another directory
    res = run("simulate", str(study), "--out", str(tmp_path / "again"), "--quiet")
    assert res.returncode == 0, res.stderr
    again = pl.read_csv(tmp_path / "again" / "metrics.csv")
    assert again["bias"].to_list() == metrics["bias"].to_list()
    # errors are one line naming the key
    study.write_text('[study]\nscenario = "correct"\n')
    res = run("simulate", str(study), "--out", str(tmp_path / "bad"))
    assert res.returncode == 2 and "'scenario'" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("n_boot = 1", "'n_boot'"),
        ("times = [365, -1]", "'times'"),
        ("tau = 0", "'tau'"),
        ("ci_level = 1.5", "'ci_level'"),
        ("window = [5, 1]", "'window'"),
        ('margin = {"survival" = -0.1}', "margin"),
        ("n_jobs = 0", "'n_jobs'"),
    ],
)
def test_plan_values_are_checked_before_any_cohort_is_read(setting: str, message: str) -> None:
    """The plan reader applies transport()'s own checks (one home: _validate) at once: the
    cohort file named here does not exist, so an error about it would mean the value was
    only checked after loading."""
    from transport.cli import PlanError, check_plan

    plan = tomllib.loads(
        '[cohorts.A]\npath = "missing.csv"\ntime = "t"\nevent = "e"\n'
        '[cohorts.B]\npath = "missing.csv"\ntime = "t"\nevent = "e"\n'
        f'[analysis]\nsource = "A"\ntargets = ["B"]\nmethods = ["iow"]\n{setting}\n'
    )
    with pytest.raises(PlanError, match=r"\[analysis\]") as err:
        check_plan(plan)
    assert message in str(err.value)
