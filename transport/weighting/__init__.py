"""Reweighting a source cohort to a target: inverse odds weights and diagnostics."""

from transport.weighting.iow import inverse_odds_weights
from transport.weighting.weights import Weights, effective_sample_size

__all__ = ["Weights", "effective_sample_size", "inverse_odds_weights"]
