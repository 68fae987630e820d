"""Regenerate every file in ``data/synthetic`` (byte-identical for a given polars).

    python -m transport.simulate.build data/synthetic        (or: make synthetic)

Writes ``<country>.parquet`` and ``<country>.csv`` for US, UK, DE and JP, and
``truth.parquet`` and ``truth.csv``. Country ``i`` (in the order US, UK, DE, JP) is drawn
with ``numpy.random.default_rng(SeedSequence([SEED, i]))``.

The shipped draw is chosen by a stated rule (:func:`find_seed`): ``SEED`` is the first
seed from ``FIRST_SEED`` upwards for which every country's own Kaplan–Meier curve, OS
and PFS, covers its true curve with its pointwise 95% log-log interval at every grid time
that still has patients at risk. Pointwise intervals miss a fixed truth 5% of the time
each, so some seeds fail; the rule keeps the example data from telling a misleading
story by chance, and is re-checked by the tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from transport.simulate.dgp import COUNTRIES, simulate_cohort
from transport.simulate.truth import truth_table

__all__ = ["SEED", "build", "shipped_cohort"]

#: Where the seed search starts (the date the cohorts were first built).
FIRST_SEED = 20261122
#: Seed of the shipped cohorts: the first seed from FIRST_SEED that find_seed accepts.
SEED = 20261125


def shipped_cohort(country: str, seed: int | None = None) -> pl.DataFrame:
    """The shipped cohort of ``country`` (or its draw under another ``seed``)."""
    index = COUNTRIES.index(country)
    rng = np.random.default_rng(np.random.SeedSequence([SEED if seed is None else seed, index]))
    return simulate_cohort(country, seed=rng)


def covers_truth(seed: int, truth: pl.DataFrame) -> bool:
    """Whether every country's own KM (OS and PFS) covers its truth at every grid time
    with patients at risk, with its pointwise 95% log-log interval."""
    from transport.cohort import Cohort
    from transport.survival import kaplan_meier

    for country in COUNTRIES:
        frame = shipped_cohort(country, seed)
        for outcome in ("os", "pfs"):
            own = truth.filter(
                (pl.col("source") == country)
                & (pl.col("target") == country)
                & (pl.col("quantity") == "target")
                & (pl.col("outcome") == outcome)
                & (pl.col("estimand") == "survival")
            )
            km = kaplan_meier(Cohort(frame, time=f"{outcome}_days", event=f"{outcome}_event"))
            at = km.at(own["time"].to_numpy())
            value = own["value"].to_numpy()
            risk = at["n_risk"].to_numpy() > 0
            lo, up = at["ci_lower"].to_numpy(), at["ci_upper"].to_numpy()
            if not np.all((lo[risk] <= value[risk]) & (value[risk] <= up[risk])):
                return False
    return True


def find_seed(truth: pl.DataFrame, start: int = FIRST_SEED, tries: int = 100) -> int:
    """The first seed from ``start`` that :func:`covers_truth` accepts."""
    for seed in range(start, start + tries):
        if covers_truth(seed, truth):
            return seed
    raise RuntimeError(f"no seed in [{start}, {start + tries}) covers the truth")


def _write(frame: pl.DataFrame, directory: Path, stem: str) -> None:
    frame.write_parquet(directory / f"{stem}.parquet", compression="zstd", statistics=False)
    frame.write_csv(directory / f"{stem}.csv")


def build(directory: str | Path, *, truth: bool = True) -> list[Path]:
    """Write the four cohorts (and the truth table) to ``directory``; return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for country in COUNTRIES:
        _write(shipped_cohort(country), directory, country)
    if truth:
        _write(truth_table(), directory, "truth")
    stems = [*COUNTRIES, "truth"] if truth else list(COUNTRIES)
    return [directory / f"{s}.{ext}" for s in stems for ext in ("parquet", "csv")]


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the synthetic cohorts.")
    parser.add_argument("directory", nargs="?", default="data/synthetic")
    parser.add_argument(
        "--find-seed",
        action="store_true",
        help="apply the seed rule from FIRST_SEED and print the seed",
    )
    args = parser.parse_args()
    if args.find_seed:
        print(find_seed(truth_table()))
        return
    for path in build(args.directory):
        print(path)


if __name__ == "__main__":
    main()
