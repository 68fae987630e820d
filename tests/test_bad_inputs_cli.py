"""The command line given what a hurried user types: an option that would be ignored, a
file that is not what it says, a table of the wrong kind. Each is one line naming it,
exit status 2, and nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import transport as tp
from transport.cli import main


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "option",
    [
        ["--covariates", "age"],
        ["--name", "Japan"],
        ["--time", "os_days"],
        ["--event", "os_event"],
        ["--entry", "entry_days"],
        ["--identifiers", "patient_id"],
        ["--na-action", "drop"],
    ],
)
def test_an_option_a_bundled_cohort_ignores_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    # summarize synthetic:JP --covariates age wrote the summary of every covariate,
    # --name Japan released it as 'JP': the user's choice was dropped without a word
    out = tmp_path / "release"
    err = _refused(capsys, "summarize", "synthetic:JP", *option, "--out", str(out))
    assert option[0] in err and "bundled cohort" in err
    assert not out.exists()


def test_a_csv_naming_a_column_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the reader renamed the second 'age' to 'age_duplicated_0' and the first was summarised
    jp = pl.read_parquet(tp.datasets.data_dir() / "JP.parquet").head(200)
    text = jp.select("os_days", "os_event", "age", "ecog").write_csv()
    header, _, rows = text.partition("\n")
    path = tmp_path / "jp.csv"
    path.write_text(header.replace("ecog", "age") + "\n" + rows)
    out = tmp_path / "release"
    argv = ["summarize", str(path), "--time", "os_days", "--event", "os_event"]
    err = _refused(capsys, *argv, "--covariates", "age", "--out", str(out))
    assert "['age'] more than once" in err and "jp.csv" in err
    assert not out.exists()
    path.write_text(text)  # the same file with distinct names is summarised
    assert main([*argv, "--covariates", "age", "--out", str(out)]) == 0


PLAN = (
    '[cohorts.US]\ndataset = "synthetic:US"\n[cohorts.JP]\ndataset = "synthetic:JP"\n'
    '[analysis]\nsource = "US"\ntargets = ["JP"]\nmethods = ["naive"]\ntimes = [365.25]\n'
)
STUDY = (
    'title = "s"\n[study]\nscenarios = ["correct"]\nmethods = ["naive"]\nn_reps = 2\n'
    "seed = 1\ntimes = [12.0]\ntau = 24.0\n"
)


@pytest.mark.parametrize(
    ("command", "text", "named"),
    [
        ("run", PLAN + "[disclosure]\npolicy = 5\n", r"\[disclosure\] policy must be the name"),
        ("run", PLAN + "[output\n", r"plan '.*p.toml' is not valid TOML: .*line 10"),
        ("run", b"\x7fELF\x02\x01\x01\x00\xd0\xff", r"plan '.*p.toml' is not a text file"),
        ("simulate", STUDY + "[run]\ncheckpoint = 5\n", r"\[run\] 'checkpoint' must be a string"),
        ("simulate", STUDY + "[run]\nscheduler = 5\n", r"\[run\] 'scheduler' must be a string"),
        ("simulate", STUDY + "[output]\ndirectory = 5\n", r"\[output\] 'directory' must be"),
        ("simulate", "run = 5\n" + STUDY, r"study file's \[run\] must be a table"),
        ("simulate", STUDY + "[run\n", r"study file '.*p.toml' is not valid TOML"),
    ],
)
def test_a_plan_or_study_file_of_the_wrong_kind_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: Any, named: str
) -> None:
    # policy = 5 and checkpoint = 5 gave "expected str, bytes or os.PathLike object, not
    # int"; a binary file given as a plan gave a UnicodeDecodeError naming no file
    path = tmp_path / "p.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    err = _refused(capsys, command, str(path), "--out", str(tmp_path / "out"))
    assert re.search(named, err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["run", "simulate", "demo"])
def test_an_output_directory_that_cannot_be_written_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # the analysis ran to its end and then failed with FileNotFoundError on a hidden
    # '/proc/.x.partial-…' directory the user never named
    path = tmp_path / "p.toml"
    path.write_text(PLAN if command == "run" else STUDY)
    args = (
        ["demo", "--n-boot", "0", "--methods", "naive"]
        if command == "demo"
        else [command, str(path)]
    )
    assert main([*args, "--out", "/proc/transport-out"]) == 2
    out, err = capsys.readouterr()
    assert "output directory '/proc/transport-out' cannot be written" in err
    assert "naive" not in out  # refused before any method ran


def test_a_plan_read_from_a_pipe_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # transport run <(cat plan.toml): the plan reader asked for a regular file
    import threading

    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=(PLAN,))
    writer.start()
    try:
        assert main(["run", str(fifo), "--out", str(tmp_path / "out")]) == 0
    finally:
        writer.join(timeout=30)
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_trailing_empty_columns_of_a_spreadsheet_are_no_duplicates(tmp_path: Path) -> None:
    jp = pl.read_parquet(tp.datasets.data_dir() / "JP.parquet").head(300)
    text = jp.select("os_days", "os_event", "age").write_csv()
    lines = text.splitlines()
    path = tmp_path / "trail.csv"
    path.write_text("\n".join([lines[0] + ",,", *(row + ",," for row in lines[1:])]) + "\n")
    argv = ["summarize", str(path), "--time", "os_days", "--event", "os_event"]
    assert main([*argv, "--covariates", "age", "--out", str(tmp_path / "release")]) == 0


def test_a_refused_run_creates_no_parent_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the writability probe made a/b before the plan's missing cohort file was found
    plan = tmp_path / "p.toml"
    plan.write_text(
        PLAN.replace('dataset = "synthetic:JP"', 'path = "nofile.csv"\ntime = "t"\nevent = "e"')
    )
    _refused(capsys, "run", str(plan), "--out", str(tmp_path / "a" / "b" / "c"))
    assert not (tmp_path / "a").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]
