"""The bundled synthetic cohorts (``data/synthetic``) and their known truth.

Four simulated first-line advanced NSCLC cohorts, "US", "UK", "DE" and "JP", from the
data-generating process of :mod:`transport.simulate.dgp`; see ``data/synthetic/README.md``
for the data dictionary and the model. No real patient data.

When the files are not where the package expects them (``TRANSPORT_DATA`` or the
repository's ``data/synthetic``), they are generated in memory from the same seed, which
gives the same rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import polars as pl

from transport.cohort import Cohort
from transport.simulate.dgp import COUNTRIES

__all__ = ["COVARIATES", "IDENTIFIERS", "LEVELS", "data_dir", "load_synthetic", "load_truth"]

#: Covariate columns of the synthetic cohorts.
COVARIATES: tuple[str, ...] = (
    "age",
    "sex",
    "ecog",
    "stage",
    "histology",
    "smoking",
    "egfr_alk",
    "pdl1",
    "regimen",
)
#: Identifier columns: kept for linkage, never in any output.
IDENTIFIERS: tuple[str, ...] = ("patient_id", "practice_id")
#: Level order of the categorical covariates; the first level is the reference.
LEVELS: dict[str, tuple[str, ...]] = {
    "sex": ("male", "female"),
    "ecog": ("0", "1", "2+"),
    "stage": ("IV", "III", "I-II"),
    "histology": ("non-squamous", "squamous"),
    "smoking": ("never", "former", "current"),
    "egfr_alk": ("negative", "positive"),
    "pdl1": ("<50%", ">=50%"),
    "regimen": ("chemo", "io", "chemo-io", "targeted"),
}


def data_dir() -> Path:
    """Directory of the synthetic files: ``$TRANSPORT_DATA`` or ``<repo>/data/synthetic``."""
    env = os.environ.get("TRANSPORT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "synthetic"


def _frame(country: str) -> pl.DataFrame:
    if country not in COUNTRIES:
        raise ValueError(
            f"The 'country' parameter of load_synthetic must be one of {list(COUNTRIES)}. "
            f"Got {country!r} instead."
        )
    path = data_dir() / f"{country}.parquet"
    if path.exists():
        frame = pl.read_parquet(path)
    else:
        from transport.simulate.build import shipped_cohort

        frame = shipped_cohort(country)
    return frame.with_columns(pl.col(c).cast(pl.Enum(list(lv))) for c, lv in LEVELS.items())


def load_synthetic(
    country: str,
    *,
    outcome: Literal["os", "pfs"] = "os",
    time_unit: Literal["days", "weeks", "months", "years"] = "days",
) -> Cohort:
    """One synthetic country cohort as a :class:`~transport.Cohort` with its roles set.

    Categorical covariates come in the clinical order of :data:`LEVELS` (first level =
    reference in a design): male, ECOG 0, stage IV, non-squamous, never smoker,
    EGFR/ALK negative, PD-L1 < 50%, chemotherapy.

    Parameters
    ----------
    country
        ``"US"`` (10,000 patients), ``"UK"`` (1,000), ``"DE"`` (500) or ``"JP"`` (800).
    outcome
        ``"os"`` (overall survival: ``os_days``, ``os_event``) or ``"pfs"``
        (progression-free survival: ``pfs_days``, ``pfs_event``).
    time_unit
        Unit of the returned cohort's time (the files hold whole days).

    Examples
    --------
    >>> import transport as tp
    >>> us = tp.datasets.load_synthetic("US")
    >>> us.n, us.time_unit, us.identifiers
    (10000, 'days', ('patient_id', 'practice_id'))
    """
    if outcome not in ("os", "pfs"):
        raise ValueError(
            f"The 'outcome' parameter of load_synthetic must be 'os' or 'pfs'. Got {outcome!r}."
        )
    cohort = Cohort(
        _frame(country),
        time=f"{outcome}_days",
        event=f"{outcome}_event",
        covariates=list(COVARIATES),
        identifiers=list(IDENTIFIERS),
        name=country,
        time_unit="days",
    )
    return cohort if time_unit == "days" else cohort.in_unit(time_unit)


def load_truth() -> pl.DataFrame:
    """The known truth of the synthetic cohorts.

    Columns ``source``, ``target``, ``outcome`` (``"os"``, ``"pfs"``), ``quantity``
    (``"transported"``: the target's patient mix under the source's outcome mechanism;
    ``"target"``: the target's own curve), ``estimand`` (``"survival"``, ``"median"``,
    ``"rmst"``), ``time`` (t for survival, tau for RMST, null for the median),
    ``time_unit`` and ``value``. Every ordered pair of countries, both outcomes.
    """
    path = data_dir() / "truth.parquet"
    if path.exists():
        return pl.read_parquet(path)
    from transport.simulate.truth import truth_table

    return truth_table()
