"""Inputs of shipping_reference.R: a target cohort and the shipped pwexp cut points.

    .venv/bin/python tests/r/make_cox_cases.py && .venv/bin/python tests/r/make_shipping_cases.py
    Rscript tests/r/shipping_reference.R tests/r

The source is that of the Cox reference (tests/r/data/cox_source.csv: 2,000 US rows).
Writes tests/r/data/shipping_target.csv (the first 400 rows of the synthetic JP cohort:
outcomes and covariates) and tests/r/data/shipping_breaks.csv (the interior cut points a
shipped piecewise exponential model uses on cox_source.csv under the default policy: the
event-time deciles snapped to the monthly grid and merged).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import transport as tp

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE.parent.parent / "data" / "synthetic"
COVARIATES = list(tp.datasets.COVARIATES)


def main() -> None:
    target = pl.read_csv(SYNTHETIC / "JP.csv").head(400)
    out = HERE / "data" / "shipping_target.csv"
    target.select("os_days", "os_event", *COVARIATES).write_csv(out)
    src = pl.read_csv(HERE / "data" / "cox_source.csv", schema_overrides={"ecog": pl.String})
    src = src.with_columns(
        [pl.col(c).cast(pl.Enum(list(lv))) for c, lv in tp.datasets.LEVELS.items()]
    )
    cohort = tp.Cohort(src, time="os_days", event="os_event", covariates=COVARIATES, name="US")
    model = tp.ShippedModel.fit(cohort, model="pwexp")
    assert model.breaks is not None
    pl.DataFrame({"cut": model.breaks}).write_csv(
        HERE / "data" / "shipping_breaks.csv", float_precision=17
    )


if __name__ == "__main__":
    main()
