"""Disclosure control: the policy and the release gate (DESIGN §5).

Patient rows never leave the environment they live in; what leaves is an aggregate that
went through :func:`release`. The gate applies a :class:`Policy` (each environment sets
its own, from a TOML file) and either makes an object safe or refuses it:

``patient_rows``
    A cohort, a data frame or an array of rows is refused outright.
``forbidden_column``
    A column whose role is an identifier, a practice, a physician or free text (declared
    identifiers, or names made of tokens such as ``id``, ``nhs``, ``practice``, ``gp``,
    ``notes``) is refused outright: it cannot be made safe by coarsening.
``min_cell``
    A count below ``min_cell`` patients (a category level, a design column's nonzero
    rows, a risk set, a cohort) is withheld, and so is enough of its complement (the next
    smallest levels) that it cannot be recovered by subtraction from the total. A cohort
    smaller than ``min_cell`` is refused.
``km_grid``, ``min_km_step``
    A survival curve is reported only on a fixed grid: multiples of ``km_grid_step`` (of
    a summary's own fixed times, those on that grid). A grid time is kept
    only when the events and exits (censorings) since the last reported time are none or
    at least ``min_km_step``; otherwise its step is merged into the next. Reporting stops
    where the risk set falls below ``min_cell``. The released curve is the Kaplan–Meier
    actuarial estimate on the kept grid times (:func:`coarsen_km`), so no
    exact event time is released: two cohorts that differ by one patient whose time
    moves within a step give byte-identical releases. A reweighted (transported) curve
    is released as the weighted actuarial estimate on the source's kept steps, with its
    infinitesimal-jackknife SE, which likewise depends on the rows only through their
    step and weight; a model-based one (g-formula, AIPW) at those step ends. S(t) and
    RMST(tau) at the analysis' own (pre-specified) times are released as estimated,
    when at least ``min_cell`` patients are at risk at t and the events and exits up
    to t or tau are none or at least ``min_km_step`` in each cohort.
``round_to``
    Released counts (patients, risk sets, events, censorings) are rounded to the nearest
    multiple of ``round_to``. Means, shares and SDs are released exact when every cell
    behind them has at least ``min_cell`` patients (so entropy balancing on a released
    summary equals the row-level analysis): an exact share implies its cell's count, which
    the cell rule has already judged safe.
``time_grid``
    A median (and the limits of its interval), which is one patient's event time, is
    released rounded outwards to the KM grid: the value and its upper limit up, the lower
    limit down.
``min_residual_df``
    A fitted model is released only with at least ``min_residual_df`` residual degrees of
    freedom (events minus parameters for a survival model).

Known limits (read before relying on a release): S(t) and RMST at the analysis' own
times are exact estimates, so two releases from cohorts differing by one patient differ
in them (by that patient's share of the estimate, not by an event time); means in a
summary are exact (the summary-only transport needs them), so two summaries differing by
one patient give that patient's covariates. Release once per analysis from a fixed
cohort, as output checkers expect. The names of withheld levels are kept (the source
needs them to recognise the level); a model-based transported curve (g-formula, AIPW)
depends on exact times through the fitted model, so it moves (by about 1e-6) when one
source patient's time moves within a step, like any released model coefficient;
interaction columns are withheld when small but
without complementary suppression within their family. Curves with delayed entry are
refused. A weights' balance table withholds, besides small columns, enough of a
categorical's other levels that a small reference level (which has no row) cannot be
recovered by subtraction.

Every release writes its files and ``manifest.json``: the SHA-256 and size of each file,
the policy, and what was withheld and why (never the withheld value or its count). The
directory must be empty, so that everything in it is in the manifest; :func:`verify`
re-checks a directory against its manifest before it is exported.

Reference: Griffiths E. et al. (2019) *Handbook on Statistical Disclosure Control for
Outputs*, Safe Data Access Professionals Working Group (thresholds, dominance,
differencing, survival tables).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from transport import manifest as manifests
from transport._version import __version__
from transport.cohort import TIME_UNITS, Cohort
from transport.exceptions import DisclosureError
from transport.manifest import MANIFEST, RELEASE_SCHEMA, verify
from transport.survival._confint import ConfType, bands

__all__ = [
    "FORBIDDEN_TOKENS",
    "MANIFEST",
    "Policy",
    "coarsen_km",
    "forbidden_role",
    "release",
    "verify",
]

MANIFEST_SCHEMA = RELEASE_SCHEMA

#: Name tokens that mark a column's role as one that must never be released. A column
#: name is split into lower-case tokens at non-alphanumerics and camelCase boundaries.
FORBIDDEN_TOKENS: dict[str, frozenset[str]] = {
    "identifier": frozenset(
        {
            "id",
            "ids",
            "pid",
            "patid",
            "patientid",
            "personid",
            "uuid",
            "guid",
            "nhs",
            "nhsno",
            "nhsnumber",
            "mrn",
            "ssn",
            "chi",
            "name",
            "surname",
            "forename",
            "address",
            "postcode",
            "zipcode",
            "zip",
            "dob",
            "birthdate",
            "email",
            "phone",
        }
    ),
    "practice": frozenset(
        {"practice", "pracid", "surgery", "gpcode", "clinic", "hospital", "trust", "ward"}
    ),
    "physician": frozenset(
        {
            "physician",
            "doctor",
            "clinician",
            "consultant",
            "prescriber",
            "provider",
            "gp",
            "staff",
            "surgeon",
            "oncologist",
        }
    ),
    "free_text": frozenset(
        {
            "note",
            "notes",
            "comment",
            "comments",
            "text",
            "freetext",
            "narrative",
            "description",
            "remarks",
            "memo",
        }
    ),
}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [t for t in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if t]


def forbidden_role(name: str, policy: Policy | None = None) -> str | None:
    """The forbidden role a column name carries under ``policy`` (``None`` if none)."""
    policy = policy or Policy()
    parts = _tokens(name)
    tokens = set(parts)
    joined = "".join(parts)
    if name.lower() in policy.forbidden_names or joined in policy.forbidden_names:
        return "identifier"
    for role in policy.forbidden_roles:
        words = FORBIDDEN_TOKENS.get(role, frozenset())
        if tokens & words or joined in words:
            return role
    return None


@dataclass(frozen=True)
class Policy:
    """What may leave an environment (DESIGN §5). Load each environment's own with
    :meth:`from_toml`.

    Parameters
    ----------
    min_cell
        Fewest patients behind any released count, share, mean or risk set.
    min_km_step
        Fewest events plus exits behind each reported step of a survival curve (a step
        with none is reported: the curve is flat there).
    round_to
        Released counts are rounded to a multiple of this (1: no rounding).
    min_residual_df
        Fewest residual degrees of freedom of a released model.
    km_grid_step, time_unit
        Spacing of the fixed grid survival curves are reported on, in ``time_unit``
        (default one month: 30.4375 days).
    forbidden_roles
        Roles whose columns are refused: any of ``"identifier"``, ``"practice"``,
        ``"physician"``, ``"free_text"``.
    forbidden_names
        Further column names (lower case) this environment treats as identifiers.
    name
        A label for the manifest.
    """

    min_cell: int = 10
    min_km_step: int = 10
    round_to: int = 5
    min_residual_df: int = 10
    km_grid_step: float = 30.4375
    time_unit: str = "days"
    forbidden_roles: tuple[str, ...] = ("identifier", "practice", "physician", "free_text")
    forbidden_names: tuple[str, ...] = ()
    name: str = "default"

    def __post_init__(self) -> None:
        for key in ("min_cell", "min_km_step", "round_to", "min_residual_df"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Policy {key!r} must be an integer >= 1; got {v!r}")
        step = self.km_grid_step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ValueError(f"Policy 'km_grid_step' must be a positive number; got {step!r}")
        if not math.isfinite(step):
            raise ValueError(f"Policy 'km_grid_step' must be finite; got {step!r}")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(
                f"Policy 'time_unit' must be one of {sorted(TIME_UNITS)}; got {self.time_unit!r}"
            )
        unknown = set(self.forbidden_roles) - set(FORBIDDEN_TOKENS)
        if unknown:
            raise ValueError(
                f"Policy 'forbidden_roles' has unknown role(s) {sorted(unknown)}; known: "
                f"{sorted(FORBIDDEN_TOKENS)}"
            )
        for key in ("forbidden_roles", "forbidden_names"):
            if isinstance(getattr(self, key), str):
                raise ValueError(
                    f"Policy {key!r} must be a list of names, not one string; got "
                    f"{getattr(self, key)!r} (write [{getattr(self, key)!r}])"
                )
        object.__setattr__(self, "forbidden_roles", tuple(self.forbidden_roles))
        object.__setattr__(
            self, "forbidden_names", tuple(str(x).lower() for x in self.forbidden_names)
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy from a TOML file: the keys of :class:`Policy`, at the top level
        or in a ``[disclosure]`` table; missing keys keep their defaults."""
        path = Path(path)
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        data = data.get("disclosure", data)
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"disclosure policy {str(path)!r} has unknown key(s) {unknown}; known: "
                f"{sorted(allowed)}"
            )
        for key in ("forbidden_roles", "forbidden_names"):
            if key in data and not isinstance(data[key], str):
                data[key] = tuple(data[key])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The policy as written into every manifest."""
        out = asdict(self)
        out["forbidden_roles"] = list(self.forbidden_roles)
        out["forbidden_names"] = list(self.forbidden_names)
        return out

    def round_count(self, x: float) -> int:
        """``x`` rounded to the nearest multiple of ``round_to`` (halves up)."""
        return int(self.round_to * math.floor(float(x) / self.round_to + 0.5))

    def grid_step_in(self, time_unit: str) -> float:
        """The KM grid step in ``time_unit``."""
        return self.km_grid_step * TIME_UNITS[self.time_unit] / TIME_UNITS[time_unit]

    def grid(self, last: float, time_unit: str) -> np.ndarray:
        """The fixed grid covering ``last`` (in ``time_unit``): multiples of the step, the
        last one at or after ``last`` so that every exit falls in a step."""
        step = self.grid_step_in(time_unit)
        n = max(1, math.ceil(last / step - 1e-9))
        return step * np.arange(1, n + 1, dtype=np.float64)


# -- the record of one release -------------------------------------------------------------
class _Release:
    def __init__(self, policy: Policy, kind: str, name: str) -> None:
        self.policy = policy
        self.kind = kind
        self.name = name
        self.suppressed: list[dict[str, str]] = []
        self.files: dict[str, bytes] = {}

    def withhold(self, item: str, rule: str, why: str) -> None:
        self.suppressed.append({"item": item, "rule": rule, "why": why})

    def check_names(self, names: Sequence[str], where: str) -> None:
        for col in names:
            role = forbidden_role(col, self.policy)
            if role is not None:
                raise DisclosureError(
                    f"{where} has column {col!r}, whose name marks it as {role.replace('_', ' ')} "
                    f"(rule: forbidden_column; policy {self.policy.name!r} refuses "
                    f"{list(self.policy.forbidden_roles)}); drop it before releasing"
                )

    def add_json(self, filename: str, data: Any) -> None:
        text = json.dumps(_json_safe(data), indent=2, allow_nan=False, sort_keys=False)
        self.files[filename] = (text + "\n").encode()

    def add_csv(self, filename: str, frame: pl.DataFrame) -> None:
        self.files[filename] = frame.write_csv(float_precision=None).encode()

    def write(self, directory: Path, overwrite: bool) -> dict[str, Any]:
        _prepare(directory, overwrite)
        entries = []
        for filename, payload in self.files.items():
            (directory / filename).write_bytes(payload)
            entries.append(manifests.entry(filename, payload))
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "version": 1,
            "package": {"name": "transport", "version": __version__},
            "object": self.kind,
            "name": self.name,
            "policy": self.policy.to_dict(),
            "files": entries,
            "suppressed": self.suppressed,
        }
        manifests.write(directory, manifest)
        return manifest


def _prepare(directory: Path, overwrite: bool) -> None:
    """An empty (or new) directory; with ``overwrite``, one holding exactly an earlier
    release (its manifest and files) is cleared first. Anything else is refused, so that
    every file in a release directory is listed in its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    present = sorted(p.name for p in directory.iterdir())
    if not present:
        return
    listed = manifests.listed(directory) if overwrite else None
    if listed is not None and set(present) <= listed:
        for p in present:
            (directory / p).unlink()
        return
    raise FileExistsError(
        f"release directory {str(directory)!r} is not empty ({len(present)} entries): a "
        "release writes into an empty directory so that everything in it is listed in its "
        "manifest (overwrite=True replaces an earlier release there)"
    )


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_json_safe(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


# -- survival curves -----------------------------------------------------------------------
def coarsen_km(
    table: Mapping[str, Any],
    n: float,
    policy: Policy,
    record: _Release | None = None,
    label: str = "",
    *,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> pl.DataFrame:
    """A Kaplan–Meier curve made safe to release: the grouped estimate on a fixed grid.

    ``table`` holds the grid (``time``, increasing) and the unweighted ``n_event`` and
    ``n_censor`` in each interval ``(previous time, time]``; ``n`` is the number of
    patients at the start. A grid time is kept when the events plus censorings since the
    last kept time are none or at least ``min_km_step`` (otherwise its interval merges
    into the next), while the risk set at the start of its interval is at least
    ``min_cell``. At the kept times the curve is the actuarial (life-table) estimate
    ``S(t_j) = prod_{i <= j} (1 - d_i / (Y_i - c_i / 2))``, with ``Y_i`` the patients
    still at risk after ``t_{i-1}`` and ``c_i`` those censored within the step (at risk
    for half of it on average), its SE Greenwood's, its interval of ``conf_type``
    (Cutler & Ederer 1958). It depends on the data only through the counts per released
    step, so moving any patient's time within a step changes nothing (no differencing
    attack reveals more than the step). Counts are rounded to ``round_to``.
    """
    t = np.asarray(table["time"], dtype=np.float64)
    ev = np.asarray(table["n_event"], dtype=np.float64)
    ce = np.asarray(table["n_censor"], dtype=np.float64)
    keep: list[int] = []
    steps: list[tuple[float, float, float]] = []
    at_risk = float(n)  # at the start of the pending interval
    events = exits = 0.0
    for j in range(t.size):
        if at_risk < policy.min_cell:
            if record is not None:
                record.withhold(
                    f"{label} from time {t[j]:g}",
                    "min_cell",
                    f"risk set below {policy.min_cell} patients: the curve stops here",
                )
            break
        events += ev[j]
        exits += ev[j] + ce[j]
        if exits == 0 or exits >= policy.min_km_step:
            keep.append(j)
            steps.append((at_risk, events, exits - events))
            at_risk -= exits
            events = exits = 0.0
        elif record is not None:
            record.withhold(
                f"{label} at time {t[j]:g}",
                "min_km_step",
                f"fewer than {policy.min_km_step} events and exits since the last reported "
                "time: merged into the next step",
            )
    y = np.asarray([s[0] for s in steps], dtype=np.float64)
    d = np.asarray([s[1] for s in steps], dtype=np.float64)
    c = np.asarray([s[2] for s in steps], dtype=np.float64)
    y_eff = y - c / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - np.where(d > 0, d / y_eff, 0.0))
        green = np.cumsum(np.where(d > 0, d / (y_eff * (y_eff - d)), 0.0))
        se = surv * np.sqrt(green)
    se = np.where(surv > 0, se, np.nan)
    lo, hi = bands(surv, se, conf_type, conf_level)
    frame = pl.DataFrame(
        {
            "time": t[np.asarray(keep, dtype=np.int64)],
            "survival": surv,
            "se": se,
            "ci_lower": lo,
            "ci_upper": hi,
            "n_risk": [policy.round_count(x) for x in y],
            "n_event": [policy.round_count(x) for x in d],
            "n_censor": [policy.round_count(x) for x in c],
        },
        schema_overrides={"n_risk": pl.Int64, "n_event": pl.Int64, "n_censor": pl.Int64},
    )
    return frame.fill_nan(None)


def _grid_counts(curve: Any, grid: np.ndarray) -> dict[str, Any]:
    """The unweighted events and censorings of a Kaplan–Meier curve in each grid
    interval: what :func:`coarsen_km` takes."""
    from transport.summary import interval_counts

    return {"time": grid, **interval_counts(curve.to_frame(), grid)}


def _release_curve(obj: Any, policy: Policy, record: _Release) -> None:
    n = float(obj.n_risk_unweighted[0]) if obj.n_risk_unweighted.size else 0.0
    if n < policy.min_cell:
        raise DisclosureError(
            f"survival curve {obj.name!r} rests on fewer than {policy.min_cell} patients "
            "(rule: min_cell)"
        )
    exits = float(np.sum(obj.n_event_unweighted) + np.sum(obj.n_censor_unweighted))
    if abs(exits - n) > 0.5:
        raise DisclosureError(
            f"survival curve {obj.name!r} has delayed entry (its first risk set is not its "
            "number of patients), whose risk sets the release grid cannot yet rebuild "
            "(rule: km_grid)"
        )
    if obj.weighted:
        raise DisclosureError(
            f"survival curve {obj.name!r} is weighted: release the TransportResult it "
            "belongs to, whose curves are checked against the patients behind them (rule: "
            "km_grid)"
        )
    grid = policy.grid(float(obj.time[-1]), obj.time_unit)
    frame = coarsen_km(
        _grid_counts(obj, grid),
        n,
        policy,
        record,
        f"curve {obj.name!r}",
        conf_type=obj.conf_type,
        conf_level=obj.conf_level,
    )
    record.add_csv("survival_curve.csv", frame)
    record.add_json(
        "survival_curve.json",
        {
            "name": obj.name,
            "time_unit": obj.time_unit,
            "estimate": "actuarial (life-table) estimate on the released grid",
            "conf_type": obj.conf_type,
            "conf_level": obj.conf_level,
            "n": policy.round_count(n),
            "grid_step": policy.grid_step_in(obj.time_unit),
        },
    )


# -- target summaries ----------------------------------------------------------------------
def _release_summary(obj: Any, policy: Policy, record: _Release) -> None:
    from transport.summary import TargetSummary

    record.check_names(list(obj.types), f"target summary {obj.name!r}")
    record.check_names(list(obj.columns), f"target summary {obj.name!r}")
    if obj.counts is None:
        raise DisclosureError(
            f"target summary {obj.name!r} carries no per-column counts (it was released "
            "before, or read from an older file): the cell rule cannot be checked (rule: "
            "min_cell); rebuild it with TargetSummary.from_cohort inside the environment"
        )
    if obj.n < policy.min_cell:
        raise DisclosureError(
            f"target summary {obj.name!r} describes fewer than {policy.min_cell} patients "
            "(rule: min_cell)"
        )
    for v, levels in obj.levels.items():
        for level in levels:
            role = forbidden_role(str(level), policy)
            if role is not None:
                raise DisclosureError(
                    f"covariate {v!r} of target summary {obj.name!r} has a level whose value "
                    f"marks it as {role.replace('_', ' ')} (rule: forbidden_column)"
                )
        if len(levels) * policy.min_cell > obj.n:
            raise DisclosureError(
                f"covariate {v!r} of target summary {obj.name!r} has {len(levels)} levels, "
                f"more than its {policy.min_cell}-patient cells allow (rule: min_cell; an "
                "identifier or free text?): merge its levels before summarising"
            )
    if obj.km is not None and obj.km.get("delayed_entry"):
        raise DisclosureError(
            f"the Kaplan–Meier table of target summary {obj.name!r} has delayed entry, whose "
            "risk sets the release grid cannot yet rebuild (rule: km_grid); summarise "
            "without km_times"
        )
    data = obj.to_dict()
    suppressed: dict[str, str] = dict(obj.suppressed)
    # categorical levels: primary and complementary suppression
    for v, c in data["covariates"].items():
        if c["type"] != "categorical":
            continue
        cells = [None if s is None else s * obj.n for s in c["shares"]]
        hidden = _cells_to_hide(cells, policy.min_cell)
        for i in hidden:
            item = f"{v}={c['levels'][i]}"
            c["shares"][i] = None
            suppressed[item] = "min_cell"
            record.withhold(
                f"share of {item}",
                "min_cell",
                f"fewer than {policy.min_cell} patients in the level, or needed to keep "
                "such a level from being recovered by subtraction",
            )
        hidden_levels = {f"{v}[{c['levels'][i]}]" for i in hidden} | {
            f"{v}[T.{c['levels'][i]}]" for i in hidden
        }
        for j, col in enumerate(data["columns"]):
            if hidden_levels & set(col.split(":")) and data["mean"][j] is not None:
                data["mean"][j] = data["sd"][j] = None
                suppressed[col] = "min_cell"
                record.withhold(
                    f"mean and SD of design column {col!r}",
                    "min_cell",
                    "it involves a withheld level",
                )
    # design columns (interactions) resting on few patients, or on all but a few
    for j, col in enumerate(data["columns"]):
        k = obj.counts[j]
        small = 0 < k < policy.min_cell or 0 < obj.n - k < policy.min_cell
        if data["mean"][j] is not None and small:
            data["mean"][j] = data["sd"][j] = None
            suppressed[col] = "min_cell"
            record.withhold(
                f"mean and SD of design column {col!r}",
                "min_cell",
                f"fewer than {policy.min_cell} patients have (or lack) a nonzero value",
            )
    n_released = max(policy.round_count(obj.n), policy.min_cell)
    if n_released != obj.n:
        # SDs use the n - 1 denominator: restate them at the released n so that the
        # second moments a reader rebuilds from (n, mean, SD) are the cohort's own
        factor = math.sqrt((obj.n - 1) / obj.n * n_released / (n_released - 1))
        data["sd"] = [None if x is None else x * factor for x in data["sd"]]
    data["n"] = n_released
    data["counts"] = None
    data["suppressed"] = suppressed
    if obj.km is not None:
        data["km"] = _release_summary_km(obj, policy, record)
    TargetSummary.from_dict(data)  # what is released must read back
    record.add_json("target_summary.json", data)


def _cells_to_hide(cells: list[float | None], min_cell: int) -> list[int]:
    """Indices of cells to withhold: those below ``min_cell`` (but above 0), then the
    next smallest until the withheld cells sum to at least ``min_cell`` (so that they
    cannot be recovered from the total) or every cell is withheld."""
    vals = [np.nan if c is None else round(c) for c in cells]
    hidden = {i for i, c in enumerate(vals) if c is not None and 0 < c < min_cell}
    hidden |= {i for i, c in enumerate(vals) if isinstance(c, float) and math.isnan(c)}
    if not hidden:
        return []
    total = sum(vals[i] for i in hidden if not math.isnan(vals[i]))
    rest = sorted((c, i) for i, c in enumerate(vals) if i not in hidden and c > 0)
    while (total < min_cell or len(hidden) == 1) and rest:
        c, i = rest.pop(0)
        hidden.add(i)
        total += c
    return sorted(hidden)


def _release_summary_km(obj: Any, policy: Policy, record: _Release) -> dict[str, Any]:
    km = obj.km
    if "n_event" not in km or "n_censor" not in km:
        raise DisclosureError(
            f"the Kaplan–Meier table of target summary {obj.name!r} has no event and exit "
            "counts per interval, so its steps cannot be checked (rule: min_km_step); "
            "rebuild the summary with TargetSummary.from_cohort"
        )
    times = np.asarray(km["time"], dtype=np.float64)
    step = policy.grid_step_in(obj.time_unit)
    rows = []
    for j, t in enumerate(times):  # only times on the policy's grid
        k = round(t / step)
        if k >= 1 and abs(t - k * step) <= 1e-9 * max(1.0, t):
            rows.append(j)
        else:
            record.withhold(
                f"Kaplan–Meier of {obj.name!r} at time {t:g}",
                "km_grid",
                f"not a multiple of the grid step {step:g}: its counts merge into the next "
                "grid time",
            )
    table: dict[str, Any] = {"time": times[rows]}
    for key in ("n_event", "n_censor"):  # merge the counts of dropped times forward
        cum = np.cumsum(np.asarray(km[key], dtype=np.float64))[rows]
        table[key] = np.diff(np.concatenate(([0.0], cum)))
    frame = coarsen_km(
        table,
        obj.n,
        policy,
        record,
        f"Kaplan–Meier of {obj.name!r}",
        conf_type=km.get("conf_type", "log-log"),
    )
    return {"conf_type": km.get("conf_type", "log-log"), **frame.to_dict(as_series=False)}


# -- weights diagnostics -------------------------------------------------------------------
def _release_weights(obj: Any, policy: Policy, record: _Release) -> None:
    design = obj.design
    record.check_names(list(design.covariates), f"weights of {obj.source!r}")
    record.check_names(list(design.columns), f"weights of {obj.source!r}")
    n, nt = obj.n, int(obj.target_n)
    for who, m in ((obj.source, n), (obj.target, nt)):
        if m < policy.min_cell:
            raise DisclosureError(
                f"cohort {who!r} has fewer than {policy.min_cell} patients (rule: min_cell)"
            )
    X = design.source_matrix
    source_counts = np.count_nonzero(X, axis=0)
    binary = np.all((X == 0) | (X == 1), axis=0)
    table = obj.balance()
    cols = {c: table[c].to_list() for c in table.columns}
    # a categorical's reference level has no column but is 1 minus the others' shares:
    # when it is small, withhold enough of the other levels that it cannot be recovered
    complement: set[str] = set()
    for idx in level_dummies(design).values():
        for m, counts in (
            (n, [int(source_counts[j]) for j in idx]),
            (nt, [round(float(obj.target_mean[j]) * nt) for j in idx]),
        ):
            cells: list[float | None] = [float(m - sum(counts)), *map(float, counts)]
            complement |= {
                design.columns[idx[i - 1]] for i in _cells_to_hide(cells, policy.min_cell) if i > 0
            }
    for j, col in enumerate(design.columns):
        ks = int(source_counts[j])
        if binary[j]:
            kt: int | None = round(float(obj.target_mean[j]) * nt)
        else:
            kt = None if ":" in col else nt
        bad_s = 0 < ks < policy.min_cell or 0 < n - ks < policy.min_cell
        bad_t = kt is None or 0 < kt < policy.min_cell or 0 < nt - kt < policy.min_cell
        if bad_s or bad_t:
            why = (
                f"fewer than {policy.min_cell} patients have (or lack) it in "
                + ("the source" if bad_s else "the target")
                + ("" if kt is not None else " (an interaction: its target count is unknown)")
            )
        elif col in complement:
            why = (
                f"its covariate has a level with fewer than {policy.min_cell} patients, "
                "recoverable by subtraction from this one"
            )
        else:
            continue
        for c in ("mean_source", "mean_source_weighted", "mean_target", "smd_before", "smd_after"):
            cols[c][j] = None
        record.withhold(f"balance of design column {col!r}", "min_cell", why)
    record.add_csv("weights_balance.csv", pl.DataFrame(cols, schema=table.schema))
    w = obj.values / obj.values.mean()
    info: dict[str, Any] = {
        "method": obj.method,
        "source": obj.source,
        "target": obj.target,
        "n_source": policy.round_count(n),
        "n_target": policy.round_count(nt),
        "ess": round(obj.ess, 1),
        "ess_share": round(obj.ess / n, 4),
        "normalised_weight_quantiles": {},
    }
    for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99):
        # a quantile rests on the rows beyond it: at least min_cell of them
        if min(q, 1 - q) * n >= policy.min_cell:
            info["normalised_weight_quantiles"][f"q{round(100 * q):02d}"] = float(np.quantile(w, q))
    k = int(np.ceil(0.01 * n))
    if k >= policy.min_cell:
        info["top1_share"] = float(np.sort(w)[-k:].sum() / w.sum())
    record.withhold("smallest and largest weight", "min_cell", "each is one patient's value")
    record.add_json("weights.json", info)


_DUMMY = re.compile(r"^(.*)\[T\.(.*)\]$")


def level_dummies(design: Any) -> dict[str, list[int]]:
    """Per categorical covariate of a :class:`~transport.Design`, the indices of its
    main-effect treatment dummies when they cover every level but one (the reference,
    which has no column but whose share is 1 minus theirs), whatever formulaic names
    them: ``grade[T.b]``, ``C(grade)[T.b]``, ``C(grade, Treatment('b'))[T.a]``."""
    out: dict[str, list[int]] = {}
    for v, levels in design.levels.items():
        by_level: dict[str, int] = {}
        for j, col in enumerate(design.columns):
            match = _DUMMY.match(col)
            if ":" in col or match is None or design.covariates_of([j]) != [v]:
                continue
            if match.group(2) in levels and match.group(2) not in by_level:
                by_level[match.group(2)] = j
        if len(by_level) == len(levels) - 1:
            out[v] = [by_level[lv] for lv in levels if lv in by_level]
    return out


# -- transport results ---------------------------------------------------------------------
def _release_result(obj: Any, policy: Policy, record: _Release) -> None:
    from transport.result import TransportResult

    assert isinstance(obj, TransportResult)
    ns = float(obj.naive.n_risk_unweighted[0])
    nt = float(obj.observed.n_risk_unweighted[0]) if obj.observed is not None else math.inf
    for who, m in ((obj.source, ns), (obj.target, nt)):
        if m < policy.min_cell:
            raise DisclosureError(
                f"cohort {who!r} has fewer than {policy.min_cell} patients (rule: min_cell)"
            )
    if obj.weights is not None:
        record.check_names(list(obj.weights.design.covariates), f"result {obj.source!r}")
    for curve in (obj.naive, obj.transported, obj.observed):
        if getattr(getattr(curve, "_fit", None), "entry_index", None) is not None:
            raise DisclosureError(
                f"a curve of the result for {obj.source!r} -> {obj.target!r} has delayed "
                "entry, whose risk sets the release grid cannot yet rebuild (rule: km_grid)"
            )
    summary = obj.summary()
    step = policy.grid_step_in(obj.time_unit)
    summary = _guard_summary(obj, summary, policy, record, step)
    record.add_csv("transport_summary.csv", summary)
    frames = []
    for label, curve, base in (
        ("naive", obj.naive, obj.naive),
        ("transported", obj.transported, obj.naive),
        ("observed", obj.observed, obj.observed),
    ):
        if curve is None or base is None:
            continue
        grid = policy.grid(float(base.time[-1]), obj.time_unit)
        n = float(base.n_risk_unweighted[0])
        tab = coarsen_km(
            _grid_counts(base, grid),
            n,
            policy,
            record if label != "transported" else None,
            f"{label} curve",
            conf_type=base.conf_type,
            conf_level=base.conf_level,
        )
        if label == "transported":
            tab = tab.with_columns(_transported_on_grid(curve, tab["time"].to_numpy()))
        frames.append(tab.select(pl.lit(label).alias("curve"), pl.all()))
    record.add_csv("transport_curves.csv", pl.concat(frames, how="vertical_relaxed"))
    record.add_json(
        "transport_result.json",
        {
            "source": obj.source,
            "target": obj.target,
            "method": obj.method,
            "time_unit": obj.time_unit,
            "times": obj.times,
            "tau": obj.tau,
            "ci_level": obj.ci_level,
            "n_boot": obj.bootstrap.n_boot if obj.bootstrap else 0,
            "n_source": policy.round_count(ns),
            "n_target": None if math.isinf(nt) else policy.round_count(nt),
            "ess": None if obj.weights is None else round(obj.weights.ess, 1),
            "grid_step": step,
        },
    )


def _transported_on_grid(curve: Any, kept: np.ndarray) -> list[pl.Series]:
    """The transported curve at the source's released steps: a reweighted Kaplan–Meier
    curve as the weighted actuarial estimate on those steps (so that, like the released
    unweighted curves, it depends on the rows only through their step and weight), a
    model-based curve (g-formula, AIPW: a smooth function of the fitted model and the
    target's covariates) at the step ends."""
    from transport.survival import SurvivalCurve
    from transport.survival._actuarial import weighted_actuarial

    if isinstance(curve, SurvivalCurve) and not curve.weighted:
        return []  # the unweighted (naive) curve: the life table already in the frame
    if isinstance(curve, SurvivalCurve):
        fit = curve._fit
        surv, se = weighted_actuarial(fit.grid[fit.exit_index], fit.event, fit.weights, kept)
        lo, hi = bands(surv, se, curve.conf_type, curve.conf_level)
        values = {"survival": surv, "se": se, "ci_lower": lo, "ci_upper": hi}
    else:
        exact = curve.at(kept)
        values = {c: exact[c].to_numpy() for c in ("survival", "se", "ci_lower", "ci_upper")}
    return [pl.Series(c, v, dtype=pl.Float64).fill_nan(None) for c, v in values.items()]


def _exits_to(curve: Any, t: float) -> float:
    """Unweighted events and censorings of a Kaplan–Meier curve at times <= t."""
    upto = curve.time <= t
    return float(np.sum(curve.n_event_unweighted[upto]) + np.sum(curve.n_censor_unweighted[upto]))


def guard_timed_rows(
    cols: dict[str, list[Any]],
    value_cols: Sequence[str],
    curves: Sequence[Any],
    policy: Policy,
    record: _Release,
) -> None:
    """Withhold (set to null in ``cols``, a summary table as lists) the S(t) and RMST rows
    the patients behind ``curves`` (unweighted Kaplan–Meier curves) do not support: S(t)
    needs ``min_cell`` patients at risk at t in each; between consecutive released times
    (and from 0 to the first) the events and exits are none or at least ``min_km_step``
    in each, since two estimates a few days apart would otherwise give away the few
    patients who left between them. Shared by every gate handler with such rows."""

    def withhold_row(i: int, rule: str, why: str) -> None:
        t = cols["time"][i]
        label = f"S({t:g})" if cols["estimand"][i] == "survival" else f"RMST({t:g})"
        for c in value_cols:
            cols[c][i] = None
        record.withhold(f"{label} row of the summary", rule, why)

    timed = [i for i, e in enumerate(cols["estimand"]) if e in ("survival", "rmst")]
    for i in timed:
        t = cols["time"][i]
        risks = [float(c.at([t])["n_risk_unweighted"][0]) for c in curves]
        if cols["estimand"][i] == "survival" and min(risks) < policy.min_cell:
            withhold_row(i, "min_cell", f"fewer than {policy.min_cell} patients at risk at {t:g}")
    last = 0.0
    for t in sorted({cols["time"][i] for i in timed if cols["transported"][i] is not None}):
        exits = [_exits_to(c, t) - _exits_to(c, last) for c in curves]
        if any(0 < x < policy.min_km_step for x in exits):
            why = (
                f"fewer than {policy.min_km_step} events and exits between {last:g} and {t:g} "
                "in a cohort"
            )
            for i in timed:
                if cols["time"][i] == t and cols["transported"][i] is not None:
                    withhold_row(i, "min_km_step", why)
        else:
            last = t


def _guard_summary(
    obj: Any, summary: pl.DataFrame, policy: Policy, record: _Release, step: float
) -> pl.DataFrame:
    """S(t) rows need ``min_cell`` patients still at risk at t in each cohort, and S(t)
    and RMST rows none or at least ``min_km_step`` exits since the previous released
    time; medians (one patient's event time) are rounded outwards to the grid."""
    cols = summary.to_dict(as_series=False)
    value_cols = [
        c
        for c in summary.columns
        if c
        not in (
            "source",
            "target",
            "method",
            "estimand",
            "time",
            "ci_method",
            "conf_level",
            "n_boot",
            "n_boot_failed",
            "margin",
            "verdict",
        )
    ]
    curves = [obj.naive] + ([obj.observed] if obj.observed is not None else [])
    guard_timed_rows(cols, value_cols, curves, policy, record)
    for i, est in enumerate(cols["estimand"]):
        if est == "median":
            _round_median_row(cols, i, step)
            record.withhold(
                "median rows of the summary",
                "time_grid",
                f"medians, their limits and their differences are rounded outwards to the "
                f"grid step {step:g}, and ratios of medians to 2 decimals; their equivalence "
                "p-value, which would give the exact difference back, is withheld",
            )
    return pl.DataFrame(cols, schema=summary.schema)


def _outward(v: Any, unit: float, up: bool) -> Any:
    if v is None or not math.isfinite(v):
        return v
    x = v / unit
    return unit * (math.ceil(x - 1e-9) if up else math.floor(x + 1e-9))


def _round_median_row(cols: dict[str, list[Any]], i: int, step: float) -> None:
    """A median is one patient's event time: report it, and anything that would give it
    back from a value the reader knows (its difference from, or ratio to, another
    median), only to the grid."""
    for base in ("transported", "observed", "naive"):
        cols[base][i] = _outward(cols[base][i], step, up=True)
        cols[f"{base}_ci_lower"][i] = _outward(cols[f"{base}_ci_lower"][i], step, up=False)
        cols[f"{base}_ci_upper"][i] = _outward(cols[f"{base}_ci_upper"][i], step, up=True)
    tr, ob = cols["transported"][i], cols["observed"][i]
    known = tr is not None and ob is not None and math.isfinite(tr) and math.isfinite(ob)
    cols["difference"][i] = tr - ob if known else None
    cols["ratio"][i] = round(tr / ob, 2) if known and ob > 0 else None
    for c, unit in (("difference", step), ("ratio", 0.01)):
        cols[f"{c}_ci_lower"][i] = _outward(cols[f"{c}_ci_lower"][i], unit, up=False)
        cols[f"{c}_ci_upper"][i] = _outward(cols[f"{c}_ci_upper"][i], unit, up=True)
    if "equivalence_p" in cols:
        cols["equivalence_p"][i] = None


# -- the gate ------------------------------------------------------------------------------
Handler = Callable[[Any, Policy, "_Release"], None]
_REGISTERED: dict[type, tuple[str, Handler]] = {}


def register(cls: type, kind: str, handler: Handler) -> None:
    """Let :func:`release` take objects of ``cls`` (for modules above this one, such as
    model shipping): ``handler(obj, policy, record)`` applies the rules and adds files to
    ``record``. Private to the package."""
    _REGISTERED[cls] = (kind, handler)


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
    (``weights_balance.csv``, ``weights.json``) and a :class:`~transport.TransportResult`
    (``transport_summary.csv``, ``transport_curves.csv``, ``transport_result.json``);
    and, registered by :mod:`transport.shipping`, a shipped outcome model and the result
    of applying it in the target's environment. The module docstring lists the rules.

    Raises
    ------
    DisclosureError
        ``obj`` cannot be made safe (patient rows, an identifier column, too few
        patients); the message names the rule.
    FileExistsError
        ``directory`` is not empty (``overwrite=True`` replaces an earlier release).
    """
    from transport.result import TransportResult, TransportResults
    from transport.summary import TargetSummary
    from transport.survival import SurvivalCurve
    from transport.weighting import Weights

    policy = Policy() if policy is None else policy
    if not isinstance(policy, Policy):
        raise TypeError(
            "The 'policy' parameter of release must be a transport.disclosure.Policy (or "
            f"None for the defaults; Policy.from_toml reads a file). Got "
            f"{type(policy).__name__} instead."
        )
    if isinstance(obj, Cohort) or _is_rows(obj):
        n = obj.n if isinstance(obj, Cohort) else _n_rows(obj)
        raise DisclosureError(
            f"{type(obj).__name__} of {n} rows holds patient-level data (rule: patient_rows): "
            "release an aggregate of it instead (TargetSummary.from_cohort, kaplan_meier, "
            "transport)"
        )
    handlers: dict[type, tuple[str, Handler]] = {
        TargetSummary: ("TargetSummary", _release_summary),
        SurvivalCurve: ("SurvivalCurve", _release_curve),
        Weights: ("Weights", _release_weights),
        TransportResult: ("TransportResult", _release_result),
        **_REGISTERED,
    }
    if isinstance(obj, TransportResults):
        raise TypeError(
            "release one TransportResult at a time (results[name]), each into its own directory"
        )
    for cls, (kind, handler) in handlers.items():
        if isinstance(obj, cls):
            name = str(getattr(obj, "name", None) or getattr(obj, "source", ""))
            for attr in ("name", "source", "target"):
                label = getattr(obj, attr, None)
                role = forbidden_role(label, policy) if isinstance(label, str) else None
                if role is not None:
                    raise DisclosureError(
                        f"the {kind}'s {attr} is named {label!r}, which marks it as "
                        f"{role.replace('_', ' ')} (rule: forbidden_column): rename the "
                        "cohort before releasing"
                    )
            record = _Release(policy, kind, name)
            handler(obj, policy, record)
            return record.write(Path(directory), overwrite)
    kinds = ", ".join(kind for kind, _ in handlers.values())
    raise TypeError(f"release() cannot release a {type(obj).__name__}: it takes a {kinds}")


def _is_rows(obj: Any) -> bool:
    if isinstance(obj, (pl.DataFrame, pl.LazyFrame, pl.Series, np.ndarray)):
        return True
    mod = type(obj).__module__
    return mod.startswith("pandas") and hasattr(obj, "__len__")


def _n_rows(obj: Any) -> str:
    if isinstance(obj, pl.LazyFrame):
        return "unknown"
    return str(len(obj))
