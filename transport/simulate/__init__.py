"""Simulation: the synthetic cohorts' data-generating process and its known truth.

* :mod:`transport.simulate.dgp`: the model (country profiles, outcome and censoring
  models) and :func:`simulate_cohort`;
* :mod:`transport.simulate.truth`: exact population curves, medians and RMSTs
  (:func:`truth_table`);
* :mod:`transport.simulate.build`: regeneration of ``data/synthetic``;
* :mod:`transport.simulate.metrics`: performance measures of a simulation study with
  their Monte Carlo SEs (:func:`performance`).
"""

from transport.simulate.dgp import (
    COUNTRIES,
    PROFILES,
    CensoringModel,
    CountryProfile,
    OutcomeModel,
    covariate_log_pmf,
    sample_covariates,
    simulate_cohort,
)
from transport.simulate.metrics import performance
from transport.simulate.truth import GRID_DAYS, TAUS_DAYS, truth_table

__all__ = [
    "COUNTRIES",
    "GRID_DAYS",
    "PROFILES",
    "TAUS_DAYS",
    "CensoringModel",
    "CountryProfile",
    "OutcomeModel",
    "covariate_log_pmf",
    "performance",
    "sample_covariates",
    "simulate_cohort",
    "truth_table",
]
