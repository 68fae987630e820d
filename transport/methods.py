"""The method registry: the one place the transport methods are named and described.

Every module that needs to know which methods exist, in which order they are shown, or
what a method accepts (a summary-only target, delayed entry) or produces (weights, a
model-based curve, an analytic interval) reads it here, instead of re-deriving it from
the method's name.

>>> from transport.methods import METHODS, REGISTRY
>>> METHODS
('naive', 'iow', 'entropy', 'gformula', 'aipw')
>>> [m for m in METHODS if REGISTRY[m].summary_target]
['naive', 'entropy']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "METHODS",
    "REGISTRY",
    "SUMMARY_METHODS",
    "Method",
    "MethodInfo",
    "check_method",
]

Method = Literal["naive", "iow", "entropy", "gformula", "aipw"]


@dataclass(frozen=True)
class MethodInfo:
    """What a transport method is and what it accepts.

    Attributes
    ----------
    name
        The method's name, as :func:`~transport.transport` takes it.
    description
        One line for reports and help texts.
    summary_target
        Runs against a :class:`~transport.TargetSummary` (target aggregates only).
    delayed_entry
        Accepts cohorts with an entry column (left truncation).
    weights
        The weighting method whose :class:`~transport.Weights` its result carries
        (``"iow"`` for ``iow`` and for ``aipw``'s participation model, ``"entropy"``),
        or ``None``.
    model_based
        Its transported curve comes from an outcome model (a ``ModelCurve``), not from
        a (weighted) Kaplan–Meier estimate.
    analytic_interval
        Without the bootstrap its curve has an interval of its own (Greenwood, or the
        infinitesimal jackknife with the weights treated as fixed).
    """

    name: str
    description: str
    summary_target: bool
    delayed_entry: bool
    weights: str | None
    model_based: bool
    analytic_interval: bool

    @property
    def weights_fixed(self) -> bool:
        """Its analytic interval treats estimated weights as known."""
        return self.analytic_interval and self.weights is not None


REGISTRY: dict[str, MethodInfo] = {
    info.name: info
    for info in (
        MethodInfo(
            "naive",
            "the source's own Kaplan–Meier curve (no transport)",
            summary_target=True,
            delayed_entry=True,
            weights=None,
            model_based=False,
            analytic_interval=True,
        ),
        MethodInfo(
            "iow",
            "Kaplan–Meier weighted by inverse odds of participation",
            summary_target=False,
            delayed_entry=True,
            weights="iow",
            model_based=False,
            analytic_interval=True,
        ),
        MethodInfo(
            "entropy",
            "Kaplan–Meier weighted by entropy balancing (MAIC)",
            summary_target=True,
            delayed_entry=True,
            weights="entropy",
            model_based=False,
            analytic_interval=True,
        ),
        MethodInfo(
            "gformula",
            "outcome-model standardisation over the target",
            summary_target=False,
            delayed_entry=False,
            weights=None,
            model_based=True,
            analytic_interval=False,
        ),
        MethodInfo(
            "aipw",
            "doubly robust: g-formula plus weighted residuals",
            summary_target=False,
            delayed_entry=False,
            weights="iow",
            model_based=True,
            analytic_interval=False,
        ),
    )
}

#: Every method, in the order reports, tables and plots show them.
METHODS: tuple[str, ...] = tuple(REGISTRY)
#: Methods that run against a released target summary.
SUMMARY_METHODS: tuple[str, ...] = tuple(m for m, i in REGISTRY.items() if i.summary_target)


def check_method(method: object) -> MethodInfo:
    """The registry entry of ``method``; ``ValueError`` naming the methods otherwise."""
    if not isinstance(method, str) or method not in REGISTRY:
        raise ValueError(f"The 'method' parameter must be one of {list(METHODS)}. Got {method!r}.")
    return REGISTRY[method]
