"""How formulaic names the columns of a design, read back: which covariate and level
each column codes (:func:`read_column`), and how an error message may quote levels
without naming a rare one (:func:`quoted_levels`). Text only: a leaf."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["CODINGS", "QUOTED_LEVEL_ROWS", "mentions", "quoted_levels", "read_column"]

#: How formulaic names a level in a design column, for every coding the closed grammar
#: allows: a treatment dummy ``[T.a]``, a sum contrast ``[S.a]`` (``C(x, Sum)``: -1 at the
#: reference, the last level), a full-rank indicator ``[a]`` (in an interaction).
CODINGS: tuple[tuple[str, str], ...] = (("T", "[T.{}]"), ("S", "[S.{}]"), ("I", "[{}]"))
#: An error message quotes a level only when at least this many rows have it (the
#: default ``min_cell``): a rarer level's name, in a log that leaves, would name it.
QUOTED_LEVEL_ROWS = 10


def mentions(expression: str, variable: str) -> bool:
    """Whether ``variable`` occurs in ``expression`` as a whole name (not inside another)."""
    pattern = r"(?<![A-Za-z0-9_.])" + re.escape(variable) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, expression) is not None or f"`{variable}`" in expression


def read_column(
    col: str, covariates: Sequence[str], levels: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, str, str], ...] | None:
    """The (covariate, level, coding) triples a design column named ``col`` is built
    from, one per factor of its categorical ``covariates`` (:data:`CODINGS`; a name read
    two ways gives both), or ``None`` when a factor cannot be read back to a level (``C()``
    of a continuous covariate names its values; a level name holding ``:``)."""
    out: list[tuple[str, str, str]] = []
    for part in col.split(":"):
        cats = [v for v in covariates if v in levels and mentions(part, v)]
        found = [
            (v, str(lv), code)
            for v in cats
            for lv in levels[v]
            for code, form in CODINGS
            if part.endswith(form.format(lv)) and mentions(part[: -len(form.format(lv))], v)
        ]
        coded_value = part.startswith("C(") and any(mentions(part, v) for v in covariates)
        if (cats or coded_value) and not found:
            return None
        out += found
    return tuple(out)


def quoted_levels(counts: Mapping[str, int], limit: int = 5) -> str:
    """Levels as an error message may quote them: at most ``limit`` of those with at
    least :data:`QUOTED_LEVEL_ROWS` rows, each with its count, and how many others there
    are (a rare level's name is what must not reach a log that leaves)."""
    named = [(lv, k) for lv, k in counts.items() if k >= QUOTED_LEVEL_ROWS][:limit]
    shown = [f"{lv!r} ({k} rows)" for lv, k in named]
    if len(counts) > len(named):
        shown.append(
            f"{len(counts) - len(named)} not named (each rarer than {QUOTED_LEVEL_ROWS} "
            f"rows, or beyond the first {limit})"
        )
    return ", ".join(shown)
