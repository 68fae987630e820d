"""Inputs of iow_reference.R: a source and a target taken from the synthetic cohorts.

    .venv/bin/python tests/r/make_iow_cases.py && Rscript tests/r/iow_reference.R tests/r

Writes tests/r/data/iow_source.csv (the first 2,000 rows of the synthetic US cohort) and
tests/r/data/iow_target.csv (the JP cohort): covariates only, no identifiers.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE.parent.parent / "data" / "synthetic"
COVARIATES = ["age", "sex", "ecog", "stage", "histology", "smoking", "egfr_alk", "pdl1", "regimen"]


def main() -> None:
    pl.read_csv(SYNTHETIC / "US.csv").head(2000).select(COVARIATES).write_csv(
        HERE / "data" / "iow_source.csv"
    )
    pl.read_csv(SYNTHETIC / "JP.csv").select(COVARIATES).write_csv(HERE / "data" / "iow_target.csv")


if __name__ == "__main__":
    main()
