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

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ESTIMATOR_OPTIONS",
    "METHODS",
    "REGISTRY",
    "SUMMARY_METHODS",
    "Method",
    "MethodInfo",
    "check_method",
    "idle_options",
    "options_read",
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
    options
        The options of :data:`ESTIMATOR_OPTIONS` its estimator reads (``ties`` only
        with the Cox outcome model).
    """

    name: str
    description: str
    summary_target: bool
    delayed_entry: bool
    weights: str | None
    model_based: bool
    analytic_interval: bool
    options: tuple[str, ...] = ()

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
            options=(),
        ),
        MethodInfo(
            "iow",
            "Kaplan–Meier weighted by inverse odds of participation",
            summary_target=False,
            delayed_entry=True,
            weights="iow",
            model_based=False,
            analytic_interval=True,
            options=("formula",),
        ),
        MethodInfo(
            "entropy",
            "Kaplan–Meier weighted by entropy balancing (MAIC)",
            summary_target=True,
            delayed_entry=True,
            weights="entropy",
            model_based=False,
            analytic_interval=True,
            options=("formula", "moments"),
        ),
        MethodInfo(
            "gformula",
            "outcome-model standardisation over the target",
            summary_target=False,
            delayed_entry=False,
            weights=None,
            model_based=True,
            analytic_interval=False,
            options=("outcome_formula", "outcome_model", "ties"),
        ),
        MethodInfo(
            "aipw",
            "doubly robust: g-formula plus weighted residuals",
            summary_target=False,
            delayed_entry=False,
            weights="iow",
            model_based=True,
            analytic_interval=False,
            options=("formula", "outcome_formula", "outcome_model", "ties", "censoring"),
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


#: The estimator options of :func:`~transport.transport` and their defaults. A method
#: reads those of its :attr:`MethodInfo.options`; another, set away from its default,
#: would be ignored without a word, so it is refused (:func:`idle_options`).
ESTIMATOR_OPTIONS: dict[str, Any] = {
    "formula": None,
    "outcome_formula": None,
    "outcome_model": "cox",
    "ties": "efron",
    "moments": 1,
    "censoring": "km",
}


def options_read(method: str, outcome_model: object = "cox") -> tuple[str, ...]:
    """The estimator options ``method`` reads with ``outcome_model``.

    >>> options_read("gformula", "pwexp")
    ('outcome_formula', 'outcome_model')
    """
    read = check_method(method).options
    return read if outcome_model == "cox" else tuple(o for o in read if o != "ties")


def _is_default(value: object, default: object) -> bool:
    if value is default:
        return True
    # numbers.Real covers numpy's integers and floats (moments=np.int64(1) is the default)
    same_kind = isinstance(value, str | numbers.Real) and not isinstance(value, bool)
    return same_kind and bool(value == default)


def idle_options(method: str, given: Mapping[str, Any]) -> list[str]:
    """The options of ``given`` (a call's keywords) that ``method`` would ignore: those
    of :data:`ESTIMATOR_OPTIONS` it does not read, set away from their default.

    >>> idle_options("iow", {"formula": "age", "moments": 2, "ties": "efron"})
    ['moments']
    """
    read = options_read(method, given.get("outcome_model", "cox"))
    return [
        k
        for k, default in ESTIMATOR_OPTIONS.items()
        if k in given and k not in read and not _is_default(given[k], default)
    ]
