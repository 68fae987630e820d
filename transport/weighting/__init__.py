"""Reweighting a source cohort to a target: inverse odds weights, entropy balancing,
and their diagnostics."""

from transport.weighting.entropy import entropy_balance
from transport.weighting.iow import inverse_odds_weights
from transport.weighting.weights import Weights, effective_sample_size

__all__ = ["Weights", "effective_sample_size", "entropy_balance", "inverse_odds_weights"]
