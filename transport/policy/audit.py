"""The audit of a release: is what a release directory holds what the gate would have
written under the policy its manifest states?

:func:`transport.manifest.verify` checks a directory against its manifest (paths, hashes,
the keyed signature); anyone can recompute a hash, so this module checks the content as
well, by the rules it names:

``release_manifest``
    The manifest's policy is a valid :class:`~transport.policy.Policy`; each withheld
    item names a known rule (:data:`~transport.policy.RULES`); the files are exactly those
    the gate writes for the manifest's object (:data:`RELEASE_FILES`).
``release_schema``
    Every released file and the manifest hold exactly the keys (at every level), columns,
    types and strings the gate writes for them (:mod:`transport.policy.schema`), and every
    released name passes the gate's name rules (:func:`audit_schema`).
``release_counts``
    The released numbers are consistent with the stated policy, checked by the name of
    the column (CSV) or key (JSON) that holds them, whatever the file (:data:`COUNTS`):
    every count a whole multiple of ``round_to`` (a cohort's size may be ``min_cell``
    itself); no cohort or risk set below ``min_cell`` (as rounded: the gate decides on
    the released counts); each curve step with none or at least ``min_km_step`` exits
    (as released); risk sets not increasing
    along a curve; curve times and a model's grid on the policy's grid (and a stated
    ``grid_step`` the policy's); level shares of at least ``min_cell`` patients each, and
    their complements; a model's events at least its coefficients plus
    ``min_residual_df``; the per-level and per-column source counts the gate leaves out
    (:data:`WITHHELD_KEYS`) null.
``policy_floor``
    In the environment's own check (:func:`verify_release`), the stated policy is no
    looser than the environment's (``TRANSPORT_POLICY``).

Known limit: a hand-edited release that keeps to these rules (a count moved to another
multiple of ``round_to``, a withheld item removed) is told apart only by the keyed
signature, which only the key's holder can check; a reader without the key is told the
signature was not checked.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from transport._validate import check_flag
from transport.cohort import TIME_UNITS
from transport.exceptions import DisclosureError
from transport.manifest import MANIFEST, Verified, release_key, verify
from transport.policy.conform import check_release
from transport.policy.schema import RELEASE_FILES
from transport.policy.settings import RULES, Policy, floor_policy

__all__ = [
    "COUNTS",
    "RELEASE_FILES",
    "WITHHELD_KEYS",
    "audit_release",
    "audit_schema",
    "verify_release",
]

#: The columns (CSV) and keys (JSON) that hold released patient counts, by what the gate
#: requires of them: ``cohort`` (a cohort's size: at least ``min_cell``, rounded or
#: ``min_cell`` itself), ``risk_set`` (at least ``min_cell``, rounded), ``exits`` (a
#: step's events or censorings, rounded, their sum none or at least ``min_km_step``),
#: ``total`` (rounded).
COUNTS: dict[str, str] = {
    "n": "cohort",
    "n_source": "cohort",
    "n_target": "cohort",
    "n_risk": "risk_set",
    "n_event": "exits",
    "n_censor": "exits",
    "n_events": "total",
}

#: Keys the gate writes only as null (counts it checked, then left out).
WITHHELD_KEYS: frozenset[str] = frozenset(
    {"counts", "level_counts", "column_counts", "column_binary", "column_scale"}
)


def verify_release(
    directory: str | Path, key_file: str | Path | None = None, *, environment: bool = True
) -> Verified:
    """Check a release directory (:func:`transport.manifest.verify`) and audit its content
    against its stated policy (:func:`audit_release`); returns the manifest, whose
    ``signature`` says whether the keyed signature was checked.

    ``environment`` is ``True`` or ``False``. ``environment=True`` (the environment's own
    check before export): the signature is checked with the key of ``key_file``, else of
    the floor policy's ``signing_key_file``, else of ``TRANSPORT_RELEASE_KEY``, when
    there is one; and the stated policy must be no looser than ``TRANSPORT_POLICY``
    (``policy_floor``).
    ``environment=False`` (reading a release that came from another environment, which
    signed it with its own key): the signature is checked only with ``key_file``."""
    environment = check_flag(environment, "environment", "verify_release")
    floor = floor_policy() if environment else None
    if key_file is None and floor is not None:
        key_file = floor.signing_key_file
    key = release_key(key_file) if environment or key_file is not None else None
    manifest = verify(directory, key)
    policy = audit_release(directory, manifest)
    if floor is not None:
        floor.refuse_looser(policy, f"the policy of release {str(directory)!r}")
    return manifest


def audit_release(directory: str | Path, manifest: Mapping[str, Any]) -> Policy:
    """Audit the content of a verified release directory against the policy its manifest
    states (rules ``release_manifest``, ``release_counts``, ``release_schema``); returns
    that policy."""
    directory = Path(directory)
    try:
        policy = Policy.from_dict(manifest["policy"], "the manifest's policy")
    except (TypeError, ValueError) as exc:
        raise _refuse(f"the manifest's policy is not a valid Policy: {exc}") from None
    for s in manifest["suppressed"]:
        if s["rule"] not in RULES:
            raise _refuse(f"withheld item {s['item']!r} names an unknown rule {s['rule']!r}")
    kind, files = manifest["object"], {e["file"] for e in manifest["files"]}
    if kind not in RELEASE_FILES or files != RELEASE_FILES[kind]:
        expected = sorted(RELEASE_FILES.get(kind, ()))
        raise _refuse(
            f"a {kind!r} release holds {sorted(files)}; the gate writes {expected or 'no such'}"
        )
    docs = {name: _read(directory / name) for name in sorted(files)}
    step = _grid_step(docs, policy)
    for name, doc in docs.items():
        top = doc if isinstance(doc, dict) else {}
        for where, node in _nodes(name, doc):
            _check_node(where, node, top, policy, step)
    audit_schema(directory, kind, files, policy)
    return policy


def audit_schema(directory: Path, kind: str, files: set[str], policy: Policy) -> None:
    """Rule ``release_schema``: every released file and the manifest laid out exactly as
    the gate writes them (:func:`~transport.policy.conform.check_release`, against the
    table :data:`~transport.policy.schema.FILE_SCHEMAS`), their names under the gate's
    name rules."""
    payloads = {name: (directory / name).read_bytes() for name in sorted(files)}
    check_release(kind, payloads, (directory / MANIFEST).read_bytes(), policy)


def _refuse(what: str, rule: str = "release_manifest") -> DisclosureError:
    return DisclosureError(
        f"{what} (rule: {rule}: a release holds what the gate writes under its policy)"
    )


def _read(path: Path) -> Any:
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        frame = pl.read_csv(path, infer_schema_length=None)
    except (UnicodeDecodeError, json.JSONDecodeError, pl.exceptions.PolarsError) as exc:
        raise _refuse(
            f"released file {path.name!r} cannot be read: {exc}", "release_counts"
        ) from None
    if "curve" not in frame.columns:
        return frame.to_dict(as_series=False)
    return {  # one table per curve
        str(label): part.drop("curve").to_dict(as_series=False)
        for (label,), part in frame.group_by("curve", maintain_order=True)
    }


def _nodes(where: str, doc: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object (a CSV is one, or one per curve) in ``doc``, with its path."""
    if isinstance(doc, dict):
        yield where, doc
        for k, v in doc.items():
            yield from _nodes(f"{where}: {k}", v)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(f"{where}[{i}]", v)


def _grid_step(docs: Mapping[str, Any], policy: Policy) -> float | None:
    """The policy's grid step in the release's time unit (``None`` when it has none)."""
    units = {d["time_unit"] for d in docs.values() if isinstance(d, dict) and "time_unit" in d}
    if len(units) > 1 or not units <= set(TIME_UNITS):
        raise _refuse(f"the release states time unit(s) {sorted(map(str, units))}")
    return policy.grid_step_in(units.pop()) if units else None


Refusal = Callable[[str], DisclosureError]


def _values(x: Any) -> list[Any]:
    return [v for v in (x if isinstance(x, list) else [x]) if v is not None]


def _check_node(
    where: str, node: dict[str, Any], top: dict[str, Any], policy: Policy, step: float | None
) -> None:
    """The rules ``release_counts`` for one object of a released file."""

    def bad(what: str) -> DisclosureError:
        return _refuse(
            f"{where}: {what} under the manifest's policy {policy.name!r}", "release_counts"
        )

    for key in WITHHELD_KEYS & set(node):
        if node[key] is not None:
            raise bad(f"{key!r} is released, which the gate leaves out")
    for key, kind in COUNTS.items():
        if (key == "n_events" and node.get("kind") == "pwexp") or (
            key == "n_event" and where.endswith("pwexp: interval_counts")
        ):
            continue  # a pwexp model's information holds them exactly: released exact
        for v in _values(node.get(key)):
            _check_count(key, kind, v, policy, bad)
    _check_steps(node, policy, bad)
    has_counts = any(k in node for k in COUNTS)
    for key in ("time", "grid"):
        if step is not None and (key == "grid" or has_counts) and isinstance(node.get(key), list):
            off = [t for t in _values(node[key]) if not _on_grid(t, step)]
            if off:
                raise bad(f"{key} {off[0]!r} is not on the grid of step {step:g}")
    if step is not None and "grid_step" in node and not _close(node["grid_step"], step):
        raise bad(f"grid_step {node['grid_step']!r} is not the policy's {step:g}")
    n = top.get("n")
    if "shares" in node and isinstance(n, int | float):
        bound = policy.min_cell / (n + policy.round_to) - 1e-12
        for s in _values(node["shares"]):
            if not isinstance(s, int | float) or not 0 <= s <= 1:
                raise bad(f"share {s!r} is not a share")
            if 0 < s < bound or 0 < 1 - s < bound:
                raise bad(f"share {s!r} of {n:g} patients rests on fewer than {policy.min_cell}")
    if isinstance(node.get("names"), list) and "n_events" in node:
        need = policy.round_count(len(node["names"]) + policy.min_residual_df)
        if _values(node["n_events"]) and min(_values(node["n_events"])) < need:
            raise bad(f"{node['n_events']!r} events leave fewer residual df than min_residual_df")


def cohort_floor(policy: Policy) -> int:
    """The smallest cohort size the gate releases: ``min_cell``, rounded (or itself)."""
    return min(policy.min_cell, policy.round_count(policy.min_cell))


def risk_set_floor(policy: Policy) -> int:
    """The smallest risk set the gate releases: the gate decides on the released risk
    set (the rounded ``n`` less the rounded cumulative exits,
    :func:`~transport.policy.released_counts`), which is at least ``min_cell`` and a
    multiple of ``round_to``."""
    r = policy.round_to
    return r * math.ceil(policy.min_cell / r - 1e-9)


def exits_floor(policy: Policy) -> float:
    """The fewest events and censorings of a released step with any: the gate decides
    on the released counts (differences of rounded cumulative counts), so their sum is
    none or at least ``min_km_step``."""
    return float(policy.min_km_step)


def _check_count(key: str, kind: str, v: Any, policy: Policy, bad: Refusal) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise bad(f"{key} {v!r} is not a count")
    if v != round(v) or (
        round(v) % policy.round_to and not (kind == "cohort" and v == policy.min_cell)
    ):
        raise bad(f"{key} {v!r} is not a multiple of round_to {policy.round_to}")
    least = risk_set_floor(policy) if kind == "risk_set" else cohort_floor(policy)
    if kind in ("cohort", "risk_set") and v < least:
        raise bad(f"{key} {v!r} is below min_cell {policy.min_cell}")


def _check_steps(node: Mapping[str, Any], policy: Policy, bad: Refusal) -> None:
    """Each curve step none or at least ``min_km_step`` exits (as released: a step's
    events and censorings are differences of rounded cumulative counts,
    :func:`~transport.policy.released_counts`, and the gate keeps a step on them);
    risk sets not increasing."""
    events, censor = node.get("n_event"), node.get("n_censor")
    if isinstance(events, list):
        censor = censor if isinstance(censor, list) else [0] * len(events)
        for d, c in zip(events, censor, strict=False):
            if d is not None and c is not None and 0 < d + c < exits_floor(policy):
                raise bad(
                    f"a step of {d} events and {c} censorings is below min_km_step "
                    f"{policy.min_km_step}"
                )
    risk = node.get("n_risk")
    if isinstance(risk, list):
        seen = _values(risk)
        if any(b > a for a, b in itertools.pairwise(seen)):
            raise bad("the risk set grows along the curve")


def _on_grid(t: Any, step: float) -> bool:
    return isinstance(t, int | float) and t > 0 and _close(t / step, round(t / step))


def _close(a: Any, b: float) -> bool:
    return isinstance(a, int | float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
