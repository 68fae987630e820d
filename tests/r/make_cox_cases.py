"""Inputs of cox_reference.R: a source with outcomes and the patients to predict for.

    .venv/bin/python tests/r/make_cox_cases.py && Rscript tests/r/cox_reference.R tests/r

Writes tests/r/data/cox_source.csv (first 2,000 rows of the synthetic US cohort: OS,
covariates and a deterministic weight in [0.5, 2]) and tests/r/data/cox_newdata.csv (the
first 25 rows of the JP cohort's covariates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE.parent.parent / "data" / "synthetic"
COVARIATES = ["age", "sex", "ecog", "stage", "histology", "smoking", "egfr_alk", "pdl1", "regimen"]


def main() -> None:
    src = pl.read_csv(SYNTHETIC / "US.csv").head(2000)
    w = np.random.default_rng(20261122).uniform(0.5, 2.0, src.height)
    src.select("os_days", "os_event", *COVARIATES).with_columns(pl.Series("w", w)).write_csv(
        HERE / "data" / "cox_source.csv", float_precision=17
    )
    pl.read_csv(SYNTHETIC / "JP.csv").head(25).select(COVARIATES).write_csv(
        HERE / "data" / "cox_newdata.csv"
    )


if __name__ == "__main__":
    main()
