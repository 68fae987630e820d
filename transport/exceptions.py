"""Errors and warnings raised by ``transport``.

Exception tree::

    TransportError                       base of every error the package raises on purpose
     ├── DataError (also ValueError)     input data break a rule: names column, rule, row count
     └── DisclosureError                 an output cannot be made safe to release: names the rule

    TransportWarning (UserWarning)       statistical trouble that still allows an answer
     ├── ExtrapolationWarning            a quantity reaches past the last observed time
     └── PositivityWarning               source and target overlap poorly

Errors say which argument or column, which rule, what was received and how many rows.
Warnings say what to do about it.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DisclosureError",
    "ExtrapolationWarning",
    "PositivityWarning",
    "TransportError",
    "TransportWarning",
]


class TransportError(Exception):
    """Base class of every error raised on purpose by ``transport``."""


class DataError(TransportError, ValueError):
    """Input data break a validation rule.

    The message names the column (or argument), the rule and the number of rows involved.
    """


class DisclosureError(TransportError):
    """An object cannot be released under the disclosure-control policy.

    The message names the rule (``patient_rows``, ``forbidden_column``, ``min_cell``, ...)
    and what broke it, never a patient's value.
    """


class TransportWarning(UserWarning):
    """Base class of warnings: the answer stands, but read the message."""


class ExtrapolationWarning(TransportWarning):
    """A quantity was computed beyond the last observed time of a curve."""


class PositivityWarning(TransportWarning):
    """Some patients have almost no counterpart in the other cohort (poor overlap)."""
