"""The rules on categorical levels, whose names are released as text: a column whose
levels read as free text is refused (``free_text_levels``), and a level with fewer than
``min_cell`` patients is pooled into a generic one whose name says nothing (``min_cell``),
so that no one-off string ("John Smith 943 476 5919 refused chemo") leaves as a name.
Design columns are read back to their levels whatever their coding (treatment dummies,
sum contrasts, indicators: :meth:`~transport.Design.column_coding`), and a design with a
column that cannot be is refused (``level_coding``), so that no coding slips past."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from transport.exceptions import DisclosureError
from transport.policy.settings import Policy

__all__ = [
    "FREE_TEXT_MAX_DIGITS",
    "FREE_TEXT_MAX_LENGTH",
    "FREE_TEXT_MAX_WORDS",
    "FREE_TEXT_MIN_SINGLETONS",
    "FREE_TEXT_SINGLETON_SHARE",
    "POOLED_LEVEL",
    "design_level_counts",
    "free_text_reason",
    "pooled_name",
    "refuse_free_text",
    "refuse_unmapped",
    "unnamed_columns",
]

#: A level name longer than this (characters) reads as free text.
FREE_TEXT_MAX_LENGTH = 40
#: A level name with more digits than this reads as a number that names someone (a
#: phone, record or NHS number, a full date).
FREE_TEXT_MAX_DIGITS = 6
#: A level name with more words (runs of non-space characters) than this reads as prose.
FREE_TEXT_MAX_WORDS = 5
#: A column reads as free text when at least this share of its levels, and at least
#: :data:`FREE_TEXT_MIN_SINGLETONS` of them, hold a single patient each (one-off values:
#: notes, names).
FREE_TEXT_SINGLETON_SHARE = 0.25
FREE_TEXT_MIN_SINGLETONS = 3
#: A person's title, in any case, before a word (a letter of any alphabet) after a dot
#: or a space: "Dr Who", "seen by Mrs. Jones", "Dr.Smith", "DR JONES", "dr jones", "Dr Øst".
_TITLE = re.compile(r"\b(?:dr|mr|mrs|ms|miss|mx|prof|sir|dame)(?:\.\s*|\s+)[^\W\d_]", re.IGNORECASE)
#: The generic name of the level that pools a covariate's small levels.
POOLED_LEVEL = "other"


def free_text_reason(levels: Sequence[str], counts: Sequence[float] | None = None) -> str | None:
    """Why a categorical's levels read as free text (rule ``free_text_levels``), or
    ``None``: a level longer than :data:`FREE_TEXT_MAX_LENGTH` characters, with more than
    :data:`FREE_TEXT_MAX_DIGITS` digits or :data:`FREE_TEXT_MAX_WORDS` words, or with a
    person's title before a name, in any case and alphabet (``Dr Who``, ``seen by Mrs.
    Jones``, ``Dr.Smith``, ``DR JONES``, ``Dr Øst``); or, with the
    level ``counts``, at least :data:`FREE_TEXT_MIN_SINGLETONS` levels and
    :data:`FREE_TEXT_SINGLETON_SHARE` of them held by one patient each. The reason names
    no level (the level is what must not leave).

    Known limits: a free-text column whose every value is short, common and title-free
    passes (its levels are then released only with ``min_cell`` patients each); a
    legitimate level with a long code or a date, or one that reads as a title ("MS
    relapsing"), is refused (recode it)."""
    for level in map(str, levels):
        if len(level) > FREE_TEXT_MAX_LENGTH:
            return f"a level of {len(level)} characters (more than {FREE_TEXT_MAX_LENGTH})"
        digits = sum(ch.isdigit() for ch in level)
        if digits > FREE_TEXT_MAX_DIGITS:
            return f"a level with {digits} digits (more than {FREE_TEXT_MAX_DIGITS})"
        words = len(level.split())
        if words > FREE_TEXT_MAX_WORDS:
            return f"a level of {words} words (more than {FREE_TEXT_MAX_WORDS})"
        if _TITLE.search(level):
            return "a level with a person's title"
    if counts is not None:
        ones = sum(1 for c in counts if round(c) == 1)
        if ones >= FREE_TEXT_MIN_SINGLETONS and ones >= FREE_TEXT_SINGLETON_SHARE * len(counts):
            return f"{ones} of its {len(counts)} levels held by one patient each"
    return None


def refuse_free_text(
    levels: Mapping[str, Sequence[str]],
    counts: Mapping[str, Sequence[float]] | None,
    policy: Policy,
    where: str,
) -> None:
    """Refuse (``free_text_levels``) a categorical whose levels read as free text
    (:func:`free_text_reason`), when the policy forbids the ``free_text`` role: its
    levels would leave as names, and its common values (a repeated note, a clinician's
    name) are no safer than its one-off ones."""
    if "free_text" not in policy.forbidden_roles:
        return
    for v, values in levels.items():
        why = free_text_reason(values, None if counts is None else counts.get(v))
        if why is not None:
            raise DisclosureError(
                f"covariate {v!r} of {where} reads as free text: {why} (rule: "
                "free_text_levels); code it into a few categories before releasing"
            )


def pooled_name(kept: Sequence[str]) -> str:
    """A generic name for the pool of a covariate's small levels that no kept level
    has: :data:`POOLED_LEVEL`, else ``"other 2"``, ``"other 3"`` ..."""
    name, k = POOLED_LEVEL, 1
    while name in kept:
        k += 1
        name = f"{POOLED_LEVEL} {k}"
    return name


def unnamed_columns(design: Any, policy: Policy) -> dict[int, str]:
    """Design columns of a :class:`~transport.Design` whose names may not be shown, and
    why: they name a level (``ecog[T.3]``, ``C(ecog, Sum)[S.3]``, ``age:ecog[3]``:
    :meth:`~transport.Design.column_levels`) that fewer than ``min_cell`` of the design's
    patients have (:attr:`~transport.Design.level_counts`; every level, without them),
    or their levels cannot be read back from their names (rule ``level_coding``:
    :func:`refuse_unmapped`)."""
    counts = design.level_counts
    out = {j: "its levels cannot be read back from its name" for j in design.unmapped_columns}
    for j in range(len(design.columns)):
        pairs = design.column_levels(j)
        if j not in out and any(
            counts is None or counts[v].get(lv, 0) < policy.min_cell for v, lv in pairs
        ):
            out[j] = f"it names a level with fewer than {policy.min_cell} patients"
    return out


def refuse_unmapped(design: Any, where: str) -> None:
    """Refuse (``level_coding``) a :class:`~transport.Design` with a column whose levels
    cannot be read back from its name (``C()`` of a continuous covariate, whose levels
    are its values, say): the level rules could not be checked on what it releases. The
    refusal names the covariates, never the column (which may name a value)."""
    bad = design.unmapped_columns
    if bad:
        raise DisclosureError(
            f"{len(bad)} design column(s) of {where}, of covariate(s) "
            f"{design.covariates_of(bad)}, code levels the gate cannot read back to one of "
            "the covariate's levels (rule: level_coding); C() of a continuous covariate "
            "names its values: code it as a categorical covariate"
        )


def design_level_counts(design: Any) -> dict[str, list[float]]:
    """Patients at each level of the categoricals of a :class:`~transport.Design`, in
    level order (:attr:`~transport.Design.level_counts`: the cohort it was fitted on),
    whatever the coding of their columns; empty for a design rebuilt without rows."""
    counts = design.level_counts or {}
    return {v: [float(k) for k in c.values()] for v, c in counts.items()}
