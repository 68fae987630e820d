"""The rules on categorical levels, whose names are released as text: a column whose
levels read as free text is refused (``free_text_levels``), and a level with fewer than
``min_cell`` patients is pooled into a generic one whose name says nothing (``min_cell``),
so that no one-off string ("John Smith 943 476 5919 refused chemo") leaves as a name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError
from transport.policy.cells import level_dummies
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


def unnamed_columns(design: Any, counts: np.ndarray, policy: Policy) -> dict[int, str]:
    """Design columns of a :class:`~transport.Design` whose names may not be shown, and
    why: they name a level (``ecog[T.3]``) that fewer than ``min_cell`` of the design's
    patients are known to have, where ``counts`` (a column's nonzero rows) bound a
    level's patients from below by the largest count among the columns that name it."""
    pairs = [design.column_levels(j) for j in range(len(design.columns))]
    known: dict[tuple[str, str], float] = {}
    for j, ps in enumerate(pairs):
        for pair in ps:
            known[pair] = max(known.get(pair, 0.0), float(counts[j]))
    return {
        j: f"it names a level with fewer than {policy.min_cell} patients"
        for j, ps in enumerate(pairs)
        if any(known[pair] < policy.min_cell for pair in ps)
    }


def design_level_counts(design: Any, X: np.ndarray) -> dict[str, list[float]]:
    """Patients at each level of the categoricals of a :class:`~transport.Design` whose
    main-effect dummies cover every level but the reference (:func:`level_dummies`), from
    its matrix ``X`` (the reference's count is the rest)."""
    out: dict[str, list[float]] = {}
    for v, idx in level_dummies(design).items():
        k = [float(np.count_nonzero(X[:, j])) for j in idx]
        out[v] = [X.shape[0] - sum(k), *k]
    return out
