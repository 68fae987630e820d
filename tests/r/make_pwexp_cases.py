"""Inputs of pwexp_reference.R: the cut points of the piecewise exponential model.

    .venv/bin/python tests/r/make_cox_cases.py && .venv/bin/python tests/r/make_pwexp_cases.py
    Rscript tests/r/pwexp_reference.R tests/r

The data are those of the Cox reference (tests/r/data/cox_source.csv: 2,000 US rows with
a weight ``w``; cox_newdata.csv: 25 JP patients). Writes tests/r/data/pwexp_breaks.csv:
the default cut points of ``transport`` (the unweighted event-time quantiles j/8) on
cox_source.csv. R splits the rows at these cuts itself (``survSplit``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from transport.survival._pwexp import default_breaks

HERE = Path(__file__).resolve().parent


def main() -> None:
    src = pl.read_csv(HERE / "data" / "cox_source.csv")
    cuts = default_breaks(src["os_days"].to_numpy(), src["os_event"].to_numpy(), 8)
    pl.DataFrame({"cut": cuts}).write_csv(HERE / "data" / "pwexp_breaks.csv")


if __name__ == "__main__":
    main()
