"""The command line given what a hurried user types: an option that would be ignored, a
file that is not what it says, a table of the wrong kind. Each is one line naming it,
exit status 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

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
