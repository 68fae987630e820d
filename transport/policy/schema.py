"""The exact layout of every file the release gate writes (rule ``release_schema``).

One table, :data:`FILE_SCHEMAS`, says for each kind of object (the manifest's ``object``)
which files the gate writes (:data:`RELEASE_FILES` is read from it) and, for each file,
its exact keys at every level (a JSON file) or its exact columns (a CSV file), the type
of every value, which lists have the same length, and what every string may be: a word
of a closed vocabulary, a released name (a column, covariate or cohort name, under the
gate's ``forbidden_column`` rule), a level name (also under ``free_text_levels``), a
formula (``formula_closed``), or a short note the gate writes (:data:`MAX_NOTE`
characters). :data:`MANIFEST_SCHEMA` does the same for ``manifest.json``.

What it protects: without the environment's key, anyone can edit a released file and
recompute its hash; the counts audit (``release_counts``) reads numbers by name and
would pass a key, a column or a string the gate never writes (forty patient rows in the
manifest's ``package``, a ``patient_id`` column, every age under a covariate, a free-text
level, a covariate renamed ``nhs_number``). The table makes verification refuse all of
them, and the gate checks every release it writes against the same table
(:meth:`transport.disclosure.record.Release.write`), so the two cannot drift apart.
:func:`transport.policy.conform.check_release` applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from transport.cohort import TIME_UNITS
from transport.design import closed_text
from transport.exceptions import DataError
from transport.manifest import RELEASE_SCHEMA, SIGNATURE_ALGORITHM
from transport.methods import METHODS, REGISTRY
from transport.policy.cells import AGGREGATE_STATE, QUANTILES, quantile_key
from transport.policy.settings import FORBIDDEN_TOKENS, MAX_LABEL, RULES
from transport.survival._confint import ConfType

__all__ = [
    "CURVE_ESTIMATE",
    "FILE_SCHEMAS",
    "MANIFEST_SCHEMA",
    "MAX_NOTE",
    "PRECISION_NOTE",
    "RELEASE_FILES",
    "Field",
    "Flag",
    "Levels",
    "Map",
    "Null",
    "Num",
    "Obj",
    "Seq",
    "Table",
    "Text",
    "Variant",
]

#: The longest note the gate writes (a ``ci_method``, a withheld item's ``why``),
#: beyond the released names a withheld item quotes (at most two of them).
MAX_NOTE = 400

#: What ``survival_curve.json`` says of its estimate.
CURVE_ESTIMATE = "actuarial (life-table) estimate on the released grid"
#: What ``transport_result.json`` says of the ``precision`` column of its curves.
PRECISION_NOTE = (
    "transported rows: S(t) rounded to a multiple of the row's precision (at least "
    "round_to / n_risk and, a reweighted curve's, the largest share of a weighted risk "
    "set's weight one patient carries up to the row), its SE to a "
    "tenth of it, its limits computed from the two; a null precision: the life table of "
    "the row's released counts (naive, observed, an unweighted transported curve) or, "
    "when the policy rounds no count, unrounded"
)


# -- the schema language -------------------------------------------------------------------
#: ``bad(what, rule)``: the refusal of a part of a released file.
Refusal = Callable[[str, str], Exception]
#: What ties an object's fields together, given the object and a refusal maker.
Check = Callable[[Mapping[str, Any], Refusal], None]


@dataclass(frozen=True)
class Num:
    """A finite JSON number (not a boolean); ``integer``: a whole one."""

    nullable: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false`` (only ``value`` when it is given)."""

    value: bool | None = None


@dataclass(frozen=True)
class Null:
    """Always ``null``: a key the gate writes only as null (what it checked, then left out)."""


@dataclass(frozen=True)
class Text:
    """A string: ``kind`` ``"word"`` (one of ``values``), ``"name"`` (a released name,
    under ``forbidden_column``), ``"formula"`` (``formula_closed``, over the covariates
    its object names), ``"policy"`` (the name of the manifest's policy) or ``"note"``
    (at most ``limit`` characters; :data:`MAX_NOTE` and two released names when
    ``None``)."""

    kind: str
    values: frozenset[str] = frozenset()
    limit: int | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Levels:
    """The level names of one categorical (the key of the enclosing :class:`Map`):
    strings under ``forbidden_column`` and ``free_text_levels``."""

    size: str | None = None


@dataclass(frozen=True)
class Seq:
    """A list of ``item``; lists with the same ``size`` tag in one object (and the
    objects within it) have the same length."""

    item: Field
    size: str | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Obj:
    """A JSON object with exactly ``fields`` (those in ``optional`` may be absent);
    ``check(obj, bad)`` states what ties its fields together (``bad(what, rule)`` makes
    the refusal)."""

    fields: Mapping[str, Field]
    optional: frozenset[str] = frozenset()
    nullable: bool = False
    check: Check | None = None


@dataclass(frozen=True)
class Map:
    """A JSON object keyed by released names (``keys="name"``, under
    ``forbidden_column``; ``"free"``: what ``check`` of the enclosing object allows),
    each value a ``value``."""

    value: Field
    keys: str = "name"
    nullable: bool = False


@dataclass(frozen=True)
class Variant:
    """One of ``cases``, chosen by the word under ``key``."""

    key: str
    cases: Mapping[str, Obj]


@dataclass(frozen=True)
class Table:
    """A CSV file with exactly the columns ``columns`` (each of the ``optional`` groups
    present entirely or not at all), each a :class:`Num` or a :class:`Text`."""

    columns: Mapping[str, Num | Text]
    optional: tuple[frozenset[str], ...] = field(default=())


Field = Num | Flag | Null | Text | Levels | Seq | Obj | Map | Variant


def word(*values: str, nullable: bool = False) -> Text:
    """A string that is one of ``values``."""
    return Text("word", frozenset(values), nullable=nullable)


NAME = Text("name")
NOTE = Text("note")
LABEL = Text("note", limit=MAX_LABEL)
NUM, NUM0 = Num(), Num(nullable=True)
INT, INT0 = Num(integer=True), Num(nullable=True, integer=True)
UNIT = word(*TIME_UNITS)
CONF_TYPES = word(*get_args(ConfType))
ESTIMANDS = word("survival", "median", "rmst")
VERDICTS = word("equivalent", "not equivalent", "inconclusive", nullable=True)
MODEL_KINDS = ("cox", "pwexp")
WEIGHTINGS = sorted({w for w in (REGISTRY[m].weights for m in METHODS) if w is not None})


def _nums(*keys: str, size: str | None = None) -> dict[str, Field]:
    """Lists of numbers (each may be null: withheld), one per key, of one ``size``."""
    return {k: Seq(NUM0, size) for k in keys}


# -- what the gate writes ------------------------------------------------------------------
#: A life table on the grid (:func:`~transport.policy.coarsen_km`), as CSV columns.
LIFE_TABLE: dict[str, Num | Text] = {
    "time": NUM,
    "survival": NUM0,
    "se": NUM0,
    "ci_lower": NUM0,
    "ci_upper": NUM0,
    "n_risk": NUM0,
    "n_event": NUM0,
    "n_censor": NUM0,
}

_INTERVALS = ("transported", "observed", "difference", "naive")


def _summary_table(methods: Text, naive: bool) -> Table:
    """A comparison's summary table (:meth:`ComparisonResult.summary`)."""
    cols: dict[str, Num | Text] = {"source": NAME, "target": NAME, "method": methods}
    cols |= {"estimand": ESTIMANDS, "time": NUM0}
    for q in _INTERVALS if naive else _INTERVALS[:3]:
        cols |= {q: NUM0, f"{q}_se": NUM0, f"{q}_ci_lower": NUM0, f"{q}_ci_upper": NUM0}
        if q == "difference":
            cols |= {"ratio": NUM0, "ratio_ci_lower": NUM0, "ratio_ci_upper": NUM0}
    cols |= {"ci_method": NOTE, "conf_level": NUM, "n_boot": INT, "n_boot_failed": INT}
    cols |= {"margin": NUM0, "equivalence_p": NUM0, "verdict": VERDICTS}
    return Table(cols, (frozenset({"margin", "equivalence_p", "verdict"}),))


def _result_json(methods: Text, weighted: bool) -> Obj:
    fields: dict[str, Field] = {
        "source": NAME,
        "target": NAME,
        "method": methods,
        "time_unit": UNIT,
        "times": Seq(NUM),
        "tau": NUM0,
        "ci_level": NUM,
        "n_boot": INT,
        "n_source": INT,
        "n_target": INT0 if weighted else INT,
    }
    if weighted:
        fields |= {"ess": NUM0, "grid_step": NUM, "transported_precision": word(PRECISION_NOTE)}
    else:
        fields |= {"grid_step": NUM}
    return Obj(fields)


def _pooled_is_a_level(c: Mapping[str, Any], bad: Refusal) -> None:
    if "pooled" in c and c["pooled"] not in c["levels"]:
        raise bad("pooled: the pooled level is not one of the levels", "release_schema")


def _formula_over(formula: Any, covariates: Any, bad: Refusal) -> None:
    """The gate's ``formula_closed`` rule: a released formula in the closed grammar, over
    the covariates its object names (the formula itself is never quoted)."""
    try:
        closed_text(formula, [str(v) for v in covariates], "released formula")
    except DataError:
        raise bad(
            "formula: not a formula of the closed grammar over the covariates it names",
            "formula_closed",
        ) from None


def _summary_ties(s: Mapping[str, Any], bad: Refusal) -> None:
    """A summary's formula over its covariates; each withheld item a released column or
    a level ``covariate=level`` of it."""
    _formula_over(s["formula"], s["covariates"], bad)
    known = set(s["columns"]) | {
        f"{v}={lv}" for v, c in s["covariates"].items() for lv in c.get("levels", ())
    }
    if set(s["suppressed"]) - known:
        raise bad(
            "suppressed: a withheld item that is neither a released column nor a level",
            "release_schema",
        )


def _design_ties(d: Mapping[str, Any], bad: Refusal) -> None:
    """A shipped design's formula over its covariates, each typed, levels only of them."""
    _formula_over(d["formula"], d["covariates"], bad)
    if set(d["types"]) != set(d["covariates"]) or not set(d["levels"]) <= set(d["types"]):
        raise bad("types, levels: not those of the design's covariates", "release_schema")


CATEGORICAL = Obj(
    {
        "type": word("categorical"),
        "levels": Levels("levels"),
        "shares": Seq(NUM0, "levels"),
        "pooled": NAME,
    },
    optional=frozenset({"pooled"}),
    check=_pooled_is_a_level,
)

TARGET_SUMMARY = Obj(
    {
        "schema": word("transport.TargetSummary"),
        "version": INT,
        "name": NAME,
        "n": INT,
        "time_unit": UNIT,
        "formula": Text("formula"),
        "columns": Seq(NAME, "columns"),
        **_nums("mean", "sd", size="columns"),
        "covariates": Map(
            Variant(
                "type",
                {"continuous": Obj({"type": word("continuous")}), "categorical": CATEGORICAL},
            )
        ),
        "km": Obj({"conf_type": CONF_TYPES, **_nums(*LIFE_TABLE, size="km")}, nullable=True),
        **{k: Null() for k in ("counts", "concentration", "value_cells", "column_levels")},
        "suppressed": Map(word(*RULES), keys="free"),
    },
    check=_summary_ties,
)

DESIGN = Obj(
    {
        "formula": Text("formula"),
        "columns": Seq(NAME, "columns"),
        "covariates": Seq(NAME),
        "types": Map(word("continuous", "categorical")),
        "levels": Map(Levels()),
        "source": NAME,
        "transform_state": Map(
            Obj({k: NUM0 for k in sorted(AGGREGATE_STATE)}, optional=AGGREGATE_STATE)
        ),
    },
    check=_design_ties,
)

BOOTSTRAP = Obj(
    {
        "n_boot": INT,
        "failed": INT,
        "level": NUM,
        "cov": Seq(Seq(NUM0, "boot"), "boot"),
        **_nums("se", "lower", "upper", size="boot"),
    },
    nullable=True,
)


def _shipped_model(kind: str) -> Obj:
    cox = Obj(
        {
            "ties": word("efron", "breslow"),
            **_nums("center", size="columns"),
            **_nums("hazard", size="grid"),
        }
    )
    pwexp = Obj(
        {
            **_nums("breaks"),
            **_nums("shift", size="intervals"),
            "time_varying": Flag(),
            "interval_counts": Obj(_nums("n_risk", "n_event", size="intervals"), nullable=True),
        }
    )
    return Obj(
        {
            "schema": word("transport.ShippedModel"),
            "version": INT,
            "kind": word(kind),
            "estimand": NOTE,
            "source": NAME,
            "time_unit": UNIT,
            "design": DESIGN,
            "names": Seq(NAME, "coef"),
            **_nums("coef", size="coef"),
            "cov": Seq(Seq(NUM0, "coef"), "coef"),
            "grid_step": NUM,
            **_nums("grid", size="grid"),
            "grid_counts": Obj(_nums("n_risk", "n_event", "n_censor", size="grid")),
            "n": NUM,
            "n_events": NUM,
            "cox": cox if kind == "cox" else Null(),
            "pwexp": pwexp if kind == "pwexp" else Null(),
            **{
                k: Null()
                for k in ("level_counts", "column_counts", "column_binary", "column_scale")
            },
            "column_concentration": Null(),
            "bootstrap": BOOTSTRAP,
            "released": Flag(True),
            "policy": Text("policy"),
        }
    )


_SHIPPED_METHODS = word(*(f"gformula (shipped {k})" for k in MODEL_KINDS))
_BOOT_COLUMNS = frozenset({"bootstrap_se", "bootstrap_lower", "bootstrap_upper"})

#: Every file the gate writes for each kind of object, with its exact layout.
FILE_SCHEMAS: dict[str, dict[str, Obj | Variant | Table]] = {
    "TargetSummary": {"target_summary.json": TARGET_SUMMARY},
    "SurvivalCurve": {
        "survival_curve.csv": Table(LIFE_TABLE),
        "survival_curve.json": Obj(
            {
                "name": NAME,
                "time_unit": UNIT,
                "estimate": word(CURVE_ESTIMATE),
                "conf_type": CONF_TYPES,
                "conf_level": NUM,
                "n": INT,
                "grid_step": NUM,
            }
        ),
    },
    "Weights": {
        "weights_balance.csv": Table(
            {
                "covariate": NAME,
                **dict.fromkeys(("mean_source", "mean_source_weighted", "mean_target"), NUM0),
                "smd_before": NUM0,
                "smd_after": NUM0,
            }
        ),
        "weights.json": Obj(
            {
                "method": word(*WEIGHTINGS),
                "source": NAME,
                "target": NAME,
                "n_source": INT,
                "n_target": INT,
                "ess": NUM,
                "ess_share": NUM,
                "normalised_weight_quantiles": Obj(
                    {quantile_key(q): NUM for q in QUANTILES},
                    optional=frozenset(quantile_key(q) for q in QUANTILES),
                ),
                "top1_share": NUM,
            },
            optional=frozenset({"top1_share"}),
        ),
    },
    "TransportResult": {
        "transport_summary.csv": _summary_table(word(*METHODS), naive=True),
        "transport_curves.csv": Table(
            {"curve": word("naive", "transported", "observed"), **LIFE_TABLE, "precision": NUM0}
        ),
        "transport_result.json": _result_json(word(*METHODS), weighted=True),
    },
    "ShippedModel": {
        "shipped_model.json": Variant("kind", {k: _shipped_model(k) for k in MODEL_KINDS}),
        "shipped_model_coef.csv": Table(
            {"term": NAME, "estimate": NUM0, "se": NUM0, **dict.fromkeys(_BOOT_COLUMNS, NUM0)},
            (_BOOT_COLUMNS,),
        ),
    },
    "ShippedResult": {
        "shipped_summary.csv": _summary_table(_SHIPPED_METHODS, naive=False),
        "shipped_curves.csv": Table({"curve": word("transported", "observed"), **LIFE_TABLE}),
        "shipped_result.json": _result_json(_SHIPPED_METHODS, weighted=False),
    },
}

#: The files the gate writes for each kind of object (the manifest's ``object``).
RELEASE_FILES: dict[str, frozenset[str]] = {
    kind: frozenset(files) for kind, files in FILE_SCHEMAS.items()
}

#: ``manifest.json`` (:mod:`transport.manifest` checks its top-level fields and types,
#: each file entry and each withheld item's fields; this adds what is inside them).
MANIFEST_SCHEMA = Obj(
    {
        "schema": word(RELEASE_SCHEMA),
        "version": INT,
        "package": Obj({"name": word("transport"), "version": LABEL}),
        "object": word(*FILE_SCHEMAS),
        "name": NAME,
        "policy": Obj(
            {
                **dict.fromkeys(("min_cell", "min_km_step", "round_to", "min_residual_df"), INT),
                "min_ess": INT0,
                "km_grid_step": NUM,
                "max_log_hazard_ratio": NUM,
                "dominance_n": INT,
                "dominance_k": NUM,
                "p_percent": NUM,
                "time_unit": UNIT,
                "forbidden_roles": Seq(word(*FORBIDDEN_TOKENS)),
                "forbidden_names": Seq(LABEL),
                "name": LABEL,
                "signing_key_file": Text("note", limit=4096, nullable=True),
            }
        ),
        "files": Seq(
            Obj(
                {
                    "file": word(*sorted(set().union(*RELEASE_FILES.values()))),
                    "sha256": Text("note", limit=64),
                    "bytes": INT,
                }
            )
        ),
        "suppressed": Seq(Obj({"item": NOTE, "rule": word(*RULES), "why": NOTE})),
        "signature": Obj({"algorithm": word(SIGNATURE_ALGORITHM), "value": Text("note", limit=64)}),
    },
    optional=frozenset({"signature"}),
)
