"""A release's files against the layout the gate writes for them (rule ``release_schema``).

:func:`check_release` reads every released file and the manifest and walks each against
its entry of :data:`~transport.policy.schema.FILE_SCHEMAS` (and
:data:`~transport.policy.schema.MANIFEST_SCHEMA`): exact keys and columns, the type of
every value, lists of one size tag of the same length, and every string what the table
says it is. Released names go through the gate's own rules: ``forbidden_column``
(:func:`~transport.policy.forbidden_role`) on every column, covariate, term and cohort
name and every level value (:func:`~transport.policy.refuse_forbidden_levels`),
``free_text_levels`` on every categorical's levels
(:func:`~transport.policy.refuse_free_text`), ``formula_closed`` on every formula.

A refusal names the file, the key or column and the rule, never the value (which may be
what was smuggled in); a key that reads as free text is not named either.
:class:`SchemaMismatch` (a layout the gate does not write) is what the gate itself
treats as its own bug when it checks what it writes; the name rules raise a plain
:class:`~transport.DisclosureError`.

Known limit: a value of the right type in the right place (a number moved, a short note
reworded within :data:`~transport.policy.schema.MAX_NOTE` characters) is told apart only
by the keyed signature.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from transport.exceptions import DisclosureError
from transport.policy.levels import free_text_reason, refuse_free_text
from transport.policy.refusals import refuse_forbidden_levels
from transport.policy.schema import (
    FILE_SCHEMAS,
    MANIFEST_SCHEMA,
    MAX_NOTE,
    Field,
    Flag,
    Levels,
    Map,
    Null,
    Num,
    Obj,
    Seq,
    Table,
    Text,
    Variant,
)
from transport.policy.settings import Policy, forbidden_role

__all__ = ["SchemaMismatch", "check_release"]

MANIFEST = "manifest.json"


class SchemaMismatch(DisclosureError):
    """A released file (or manifest) laid out otherwise than the gate writes it (rule
    ``release_schema``)."""


def check_release(kind: str, files: Mapping[str, bytes], manifest: bytes, policy: Policy) -> None:
    """Refuse a release of a ``kind`` object whose ``files`` (bytes by name) or
    ``manifest`` (the bytes of ``manifest.json``) are not laid out as the gate writes
    them under ``policy`` (the manifest's own)."""
    schemas = FILE_SCHEMAS.get(kind)
    if schemas is None or set(files) != set(schemas):
        raise SchemaMismatch(
            f"a {kind!r} release holds files the gate does not write for it (rule: release_schema)"
        )
    longest = 0
    for name in sorted(schemas):
        walk = _Walk(name, policy, MAX_NOTE)
        walk.file(schemas[name], files[name])
        longest = max(longest, walk.longest)
    # a withheld item's note quotes at most two released names
    walk = _Walk(MANIFEST, policy, MAX_NOTE + 2 * (longest + 2))
    walk.file(MANIFEST_SCHEMA, manifest)


def shown(key: str) -> str:
    """A key as a refusal may name it: quoted, unless it reads as free text or is long
    (then only its length: the key may be what was smuggled in)."""
    if len(key) <= 60 and key.isprintable() and free_text_reason([key]) is None:
        return repr(key)
    return f"a key of {len(key)} characters"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _DuplicateKey
    return out


class _DuplicateKey(ValueError):
    pass


class _Walk:
    """One file's walk against its schema; ``longest`` is its longest released name."""

    def __init__(self, file: str, policy: Policy, note_limit: int) -> None:
        self.name, self.policy, self.note_limit = file, policy, note_limit
        self.longest = 0
        self.owner = ""  # the key of the innermost map entry: a categorical's name

    def bad(self, path: Sequence[str], what: str, rule: str | None = "release_schema") -> Exception:
        """The refusal of ``path`` in this file: a :class:`SchemaMismatch` under
        ``release_schema``, else under ``rule`` as well (``None``: ``what`` names it)."""
        where = ": ".join([repr(self.name), *path])
        rules = "" if rule is None else f"rule: {rule}, " if rule != "release_schema" else ""
        text = (
            f"released file {where}: {what} ({rules or 'rule: '}release_schema: a released "
            "file holds exactly what the gate writes for it)"
        )
        return SchemaMismatch(text) if rule == "release_schema" else DisclosureError(text)

    def file(self, schema: Obj | Variant | Table, payload: bytes) -> None:
        if isinstance(schema, Table):
            self.table(schema, payload)
            return
        try:
            doc = json.loads(payload.decode(), object_pairs_hook=_unique_keys)
        except _DuplicateKey:
            raise self.bad([], "an object holds a key twice") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise self.bad([], "cannot be read as JSON") from None
        self.value(schema, doc, [], {})

    # -- JSON -------------------------------------------------------------------------------
    def value(self, spec: Field, x: Any, path: list[str], sizes: dict[str, int]) -> None:
        """``x`` at ``path`` as ``spec`` says (``sizes``: the lengths of size tags seen)."""
        if x is None and getattr(spec, "nullable", False):
            return
        if isinstance(spec, Num | Flag | Null | Text):
            self.leaf(spec, x, path)
        elif isinstance(spec, Levels):
            self.levels(spec, x, path, sizes)
        elif isinstance(spec, Seq):
            self.sized(spec.size, x, path, sizes)
            head, last = path[:-1], path[-1] if path else ""
            for i, item in enumerate(x):
                self.value(spec.item, item, [*head, f"{last}[{i}]"], sizes)
        elif isinstance(spec, Variant):
            case = x.get(spec.key) if isinstance(x, dict) else None
            if not isinstance(case, str) or case not in spec.cases:
                raise self.bad([*path, spec.key], "is not a kind the gate writes here")
            self.value(spec.cases[case], x, path, sizes)
        elif isinstance(spec, Obj):
            self.obj(spec, x, path, sizes)
        else:
            self.mapping(spec, x, path, sizes)

    def leaf(self, spec: Num | Flag | Null | Text, x: Any, path: list[str]) -> None:
        if isinstance(spec, Null):
            if x is not None:
                raise self.bad(path, "is released, where the gate writes null")
        elif isinstance(spec, Flag):
            if not isinstance(x, bool) or (spec.value is not None and x is not spec.value):
                raise self.bad(path, "is not the flag the gate writes")
        elif isinstance(spec, Num):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise self.bad(path, f"is a {type(x).__name__}, not a finite number")
            if spec.integer and x != round(x):
                raise self.bad(path, "is not a whole number")
        elif not isinstance(x, str):
            raise self.bad(path, f"is a {type(x).__name__}, not a string")
        else:
            self.text(spec, x, path)

    def text(self, spec: Text, x: str, path: list[str]) -> None:
        if spec.kind == "word" and x not in spec.values:
            raise self.bad(path, "is not a value the gate writes here")
        if spec.kind == "policy" and x != self.policy.name:
            raise self.bad(path, "is not the name of the manifest's policy")
        if spec.kind == "note":
            limit = self.note_limit if spec.limit is None else spec.limit
            if len(x) > limit:
                raise self.bad(path, f"is a string of {len(x)} characters, over {limit}")
        if spec.kind == "name":
            self.longest = max(self.longest, len(x))
            role = forbidden_role(x, self.policy)
            if role is not None:
                raise self.bad(
                    path,
                    f"a released name marks it as {role.replace('_', ' ')}",
                    "forbidden_column",
                )

    def levels(self, spec: Levels, x: Any, path: list[str], sizes: dict[str, int]) -> None:
        self.sized(spec.size, x, path, sizes)
        if not all(isinstance(v, str) for v in x):
            raise self.bad(path, "a level is not a string")
        self.longest = max([self.longest, *map(len, x)])
        levels = {self.owner: x}
        where = f"released file {self.name!r}"
        try:
            refuse_forbidden_levels(levels, self.policy, where)
            refuse_free_text(levels, None, self.policy, where)
        except DisclosureError as exc:
            raise self.bad(path, str(exc), None) from None

    def sized(self, tag: str | None, x: Any, path: list[str], sizes: dict[str, int]) -> None:
        if not isinstance(x, list):
            raise self.bad(path, f"is a {type(x).__name__}, not a list")
        if tag is not None and sizes.setdefault(tag, len(x)) != len(x):
            raise self.bad(path, f"has {len(x)} entries where its fellows have {sizes[tag]}")

    def obj(self, spec: Obj, x: Any, path: list[str], sizes: dict[str, int]) -> None:
        if not isinstance(x, dict):
            raise self.bad(path, f"is a {type(x).__name__}, not an object")
        unknown = sorted(set(x) - set(spec.fields))
        if unknown:
            raise self.bad(path, f"holds {shown(unknown[0])}, a key the gate does not write")
        missing = sorted(set(spec.fields) - set(x) - spec.optional)
        if missing:
            raise self.bad(path, f"lacks key {missing[0]!r}")
        for key, sub in spec.fields.items():
            if key in x:
                self.value(sub, x[key], [*path, repr(key)], sizes)
        if spec.check is not None:
            spec.check(x, lambda what, rule: self.bad(path, what, rule))

    def mapping(self, spec: Map, x: Any, path: list[str], sizes: dict[str, int]) -> None:
        if not isinstance(x, dict):
            raise self.bad(path, f"is a {type(x).__name__}, not an object")
        outer = self.owner
        for key, v in x.items():
            at = [*path, shown(key)]
            if spec.keys == "name":
                self.text(Text("name"), key, at)
            self.owner = key if shown(key) == repr(key) else shown(key)
            self.value(spec.value, v, at, dict(sizes))  # each entry sizes its own lists
        self.owner = outer

    # -- CSV --------------------------------------------------------------------------------
    def table(self, spec: Table, payload: bytes) -> None:
        try:
            frame = pl.read_csv(io.BytesIO(payload), infer_schema_length=None)
        except pl.exceptions.PolarsError:
            raise self.bad([], "cannot be read as CSV") from None
        cols = set(frame.columns)
        unknown = sorted(cols - set(spec.columns))
        if unknown:
            raise self.bad([], f"holds column {shown(unknown[0])}, which the gate does not write")
        optional = set().union(*spec.optional)
        missing = sorted(set(spec.columns) - optional - cols)
        part = [g for g in spec.optional if cols & g and not g <= cols]
        if missing or part:
            lacks = missing[0] if missing else sorted(part[0] - cols)[0]
            raise self.bad([], f"lacks column {lacks!r}")
        for name in frame.columns:
            self.column(spec.columns[name], frame[name], [f"column {name!r}"])

    def column(self, spec: Num | Text, s: pl.Series, path: list[str]) -> None:
        if s.null_count() and not spec.nullable:
            raise self.bad(path, "holds a null where the gate writes a value")
        if s.null_count() == s.len():
            return
        if isinstance(spec, Text):
            for v in s.cast(pl.String).drop_nulls().unique().to_list():
                self.text(spec, v, path)
            return
        if not s.dtype.is_numeric():
            raise self.bad(path, f"holds {s.dtype} values where the gate writes numbers")
        if s.dtype.is_float() and not s.drop_nulls().is_finite().all():
            raise self.bad(path, "holds a number that is not finite")
        if spec.integer and s.dtype.is_float() and (s.drop_nulls() % 1 != 0).any():
            raise self.bad(path, "holds a number that is not whole")
