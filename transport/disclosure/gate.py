"""The release gate: one function, :func:`release`, through which every export passes.

It refuses patient rows and cohorts, finds the handler of the object's type in one static
table, refuses a cohort name with a forbidden role, lets the handler apply the rules of
:mod:`transport.policy` and add its files to a :class:`~transport.disclosure.record.Release`,
and writes the files with their manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from transport._validate import check_flag
from transport.cohort import Cohort
from transport.disclosure.aggregates import release_summary, release_weights
from transport.disclosure.curves import release_curve
from transport.disclosure.models import release_model, release_shipped_result
from transport.disclosure.record import Release
from transport.disclosure.results import release_result
from transport.exceptions import DataError, DisclosureError
from transport.policy import Policy, floor_policy, forbidden_role
from transport.result import TransportResult, TransportResults
from transport.shipping import ShippedModel, ShippedResult
from transport.staging import directory_path
from transport.summary import TargetSummary
from transport.survival import SurvivalCurve
from transport.weighting import Weights

__all__ = ["HANDLERS", "Handler", "release"]

Handler = Callable[[Any, Policy, Release], None]

#: What the gate releases: type -> (kind named in the manifest, handler).
HANDLERS: dict[type, tuple[str, Handler]] = {
    TargetSummary: ("TargetSummary", release_summary),
    SurvivalCurve: ("SurvivalCurve", release_curve),
    Weights: ("Weights", release_weights),
    TransportResult: ("TransportResult", release_result),
    ShippedModel: ("ShippedModel", release_model),
    ShippedResult: ("ShippedResult", release_shipped_result),
}


def release(
    obj: Any,
    directory: str | Path,
    policy: Policy | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Make ``obj`` safe under ``policy``, write it to ``directory`` with
    ``manifest.json``, and return the manifest.

    Releasable: a :class:`~transport.TargetSummary` (``target_summary.json``, readable by
    :meth:`~transport.TargetSummary.from_json`), a :class:`~transport.SurvivalCurve`
    (``survival_curve.csv`` and ``.json``), :class:`~transport.Weights` diagnostics
    (``weights_balance.csv``, ``weights.json``), a :class:`~transport.TransportResult`
    (``transport_summary.csv``, ``transport_curves.csv``, ``transport_result.json``), a
    :class:`~transport.ShippedModel` (``shipped_model.json``, ``shipped_model_coef.csv``)
    and the :class:`~transport.ShippedResult` of applying it in the target's environment
    (``shipped_summary.csv``, ``shipped_curves.csv``, ``shipped_result.json``). The rules
    are those of :mod:`transport.policy`.

    ``policy`` defaults to the environment's (the file ``TRANSPORT_POLICY`` names, else
    the defaults); when ``TRANSPORT_POLICY`` is set, a policy looser than it is refused
    (rule ``policy_floor``). With a release key (``policy.signing_key_file``, else
    ``TRANSPORT_RELEASE_KEY``) the manifest is signed (HMAC-SHA256; rule
    ``release_signature``).

    ``directory`` is a path (text or a :class:`pathlib.Path`, not empty), created with
    its parents when missing; ``overwrite`` is ``True`` or ``False``.

    Raises
    ------
    DisclosureError
        ``obj`` cannot be made safe (patient rows, an identifier column, too few
        patients), or ``policy`` loosens the environment's; the message names the rule.
    DataError
        ``directory`` or ``overwrite`` is no such parameter, or the directory cannot be
        made or written (the system's reason: no such directory, no permission, a full
        disk); the message names the directory.
    FileExistsError
        ``directory`` is not empty (``overwrite=True`` replaces an earlier release).
    """
    directory = directory_path(directory, "directory", "release")
    overwrite = check_flag(overwrite, "overwrite", "release")
    floor = floor_policy()
    policy = (floor or Policy()) if policy is None else policy
    if not isinstance(policy, Policy):
        raise TypeError(
            "The 'policy' parameter of release must be a transport.disclosure.Policy (or "
            f"None for the environment's: TRANSPORT_POLICY, else the defaults; "
            f"Policy.from_toml reads a file). Got {type(policy).__name__} instead."
        )
    if floor is not None:
        floor.refuse_looser(policy, f"the policy {policy.name!r} of this release")
    if isinstance(obj, Cohort) or _is_rows(obj):
        n = obj.n if isinstance(obj, Cohort) else _n_rows(obj)
        raise DisclosureError(
            f"{type(obj).__name__} of {n} rows holds patient-level data (rule: patient_rows): "
            "release an aggregate of it instead (TargetSummary.from_cohort, kaplan_meier, "
            "transport)"
        )
    if isinstance(obj, TransportResults):
        raise TypeError(
            "release one TransportResult at a time (results[name]), each into its own directory"
        )
    for cls, (kind, handler) in HANDLERS.items():
        if isinstance(obj, cls):
            _refuse_forbidden_labels(obj, kind, policy)
            name = str(getattr(obj, "name", None) or getattr(obj, "source", ""))
            record = Release(policy, kind, name)
            handler(obj, policy, record)
            return record.write(directory, overwrite)
    kinds = ", ".join(kind for kind, _ in HANDLERS.values())
    raise TypeError(f"release() cannot release a {type(obj).__name__}: it takes a {kinds}")


def _refuse_forbidden_labels(obj: Any, kind: str, policy: Policy) -> None:
    """A cohort name (the object's name, source or target) that is no text (an object
    edited by hand: a ``DataError``) or has a forbidden role."""
    for attr in ("name", "source", "target"):
        if not hasattr(obj, attr):
            continue
        label = getattr(obj, attr)
        if not isinstance(label, str):
            raise DataError(
                f"the {kind}'s {attr} must be text (a cohort's name); got {type(label).__name__}"
            )
        role = forbidden_role(label, policy)
        if role is not None:
            raise DisclosureError(
                f"the {kind}'s {attr} is named {label!r}, which marks it as "
                f"{role.replace('_', ' ')} (rule: forbidden_column): rename the "
                "cohort before releasing"
            )


def _is_rows(obj: Any) -> bool:
    if isinstance(obj, pl.DataFrame | pl.LazyFrame | pl.Series | np.ndarray):
        return True
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "__len__")


def _n_rows(obj: Any) -> str:
    if isinstance(obj, pl.LazyFrame):
        return "unknown"
    return str(len(obj))
