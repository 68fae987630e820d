"""Simulation: the synthetic cohorts' data-generating process and its known truth.

* :mod:`transport.simulate.dgp`: the model (country profiles, outcome and censoring
  models) and :func:`simulate_cohort`;
* :mod:`transport.simulate.truth`: exact population curves, medians and RMSTs
  (:func:`truth_table`);
* :mod:`transport.simulate.build`: regeneration of ``data/synthetic``;
* :mod:`transport.simulate.metrics`: performance measures of a simulation study with
  their Monte Carlo SEs (:func:`performance`);
* :mod:`transport.simulate.scenarios` and :mod:`transport.simulate.study`: built-in
  scenarios with known truth (:func:`scenarios`) and the study runner (:class:`Study`).
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
from transport.simulate.scenarios import Scenario, scenario, scenarios
from transport.simulate.study import Study, StudyResult
from transport.simulate.truth import GRID_DAYS, TAUS_DAYS, truth_table

__all__ = [
    "COUNTRIES",
    "GRID_DAYS",
    "PROFILES",
    "TAUS_DAYS",
    "CensoringModel",
    "CountryProfile",
    "OutcomeModel",
    "Scenario",
    "Study",
    "StudyResult",
    "covariate_log_pmf",
    "performance",
    "sample_covariates",
    "scenario",
    "scenarios",
    "simulate_cohort",
    "truth_table",
]
