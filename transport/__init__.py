"""transport: estimate real-world survival in one country's cohort and test whether it
transports to another country's patient mix.

Public names are listed in ``__all__``; everything else is private.
"""

from transport import datasets, disclosure, simulate
from transport._version import __version__
from transport.analysis import transport
from transport.cohort import TIME_UNITS, Cohort
from transport.design import Design
from transport.estimate import Estimate
from transport.exceptions import (
    DataError,
    DisclosureError,
    ExtrapolationWarning,
    PositivityWarning,
    TransportError,
    TransportWarning,
)
from transport.result import TransportResult, TransportResults
from transport.shipping import ShippedModel, ShippedResult
from transport.summary import TargetSummary
from transport.survival import SurvivalCurve, kaplan_meier
from transport.weighting import Weights, entropy_balance, inverse_odds_weights

__all__ = [
    "TIME_UNITS",
    "Cohort",
    "DataError",
    "Design",
    "DisclosureError",
    "Estimate",
    "ExtrapolationWarning",
    "PositivityWarning",
    "ShippedModel",
    "ShippedResult",
    "SurvivalCurve",
    "TargetSummary",
    "TransportError",
    "TransportResult",
    "TransportResults",
    "TransportWarning",
    "Weights",
    "__version__",
    "datasets",
    "disclosure",
    "entropy_balance",
    "inverse_odds_weights",
    "kaplan_meier",
    "simulate",
    "transport",
]
