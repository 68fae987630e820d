"""The ``steep_transform`` rule: a summary formula, which the source chooses for the
target's rows, may not make one patient's value dominate what is released, nor turn
the target's data into a yes/no answer to a question the source picks.

The dominance and p% rules (:func:`~transport.policy.dominance_rule`) bound the largest
contributions' share of a released mean in the scale of the released column. A formula
from another environment chooses that scale: ``I((age / 100) ** 40)`` makes the oldest
patient 85% of its SD's total, which those rules let pass, and the SD read back through
the transform gives that patient's age to within months. So each term of a summary
formula has bounded growth (:func:`formula_growth`):

- a polynomial of degree at most :data:`MAX_GROWTH` in the continuous covariates (an
  interaction's degrees add), with whole, non-negative exponents;
- no ``exp``, no covariate in an exponent, no division by an expression of the
  covariates (a pole placed next to one patient's value);
- no comparison (``(age > 90) * age`` keeps the tail only, and two thresholds the
  source picks difference into a cell of any size, ``I(age > 80) + I(age > 80.5)``) and
  no ``abs`` of a covariate (``abs(age - 90) + age`` cuts it at 90 as well);
- ``log`` and ``sqrt`` only of an unshifted expression (``log(age - 97)`` is finite
  exactly when every patient is older than 97: a threshold the source would move);
- numbers at most :data:`MAX_CONSTANT` in size (``I((age * 1e153) ** 2)`` overflows
  exactly above a chosen age).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Collection
from typing import Any

from transport.exceptions import DisclosureError

__all__ = [
    "MAX_CONSTANT",
    "MAX_GROWTH",
    "formula_growth",
    "refuse_steep_formula",
    "steep_columns",
]

#: Highest polynomial degree of a term of a summary formula in the continuous covariates.
MAX_GROWTH = 2.0
#: Largest number (in size) a summary formula may use.
MAX_CONSTANT = 1e6

_QUOTED = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"")
_ROOTS = frozenset({"log", "log2", "log10", "log1p", "sqrt"})
_SAME = frozenset({"I", "center", "scale", "standardize"})


class _Steep(Exception):
    """A term without bounded growth, and why."""


class _Growth:
    """The polynomial degree of a parsed expression in the continuous covariates, and
    whether it cuts a covariate at a threshold (``abs``)."""

    def __init__(self, continuous: Collection[str], names: dict[str, str]) -> None:
        self.continuous, self.names = continuous, names

    def __call__(self, node: ast.AST) -> tuple[float, bool]:
        if isinstance(node, ast.Name):
            return (1.0 if self.names.get(node.id, node.id) in self.continuous else 0.0), False
        if isinstance(node, ast.Constant):
            if isinstance(node.value, int | float) and abs(node.value) > MAX_CONSTANT:
                raise _Steep(f"the number {node.value!r} (larger than {MAX_CONSTANT:g})")
            return 0.0, False
        if isinstance(node, ast.List):
            return 0.0, False
        if isinstance(node, ast.UnaryOp):
            return self(node.operand)
        if isinstance(node, ast.Compare):
            raise _Steep(
                "a comparison (a threshold the source picks: two of them difference into a "
                "cell of any size)"
            )
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _Steep("a construct the rule does not know")

    def _binary(self, node: ast.BinOp) -> tuple[float, bool]:
        (gl, tl), (gr, tr) = self(node.left), self(node.right)
        truncated = tl or tr
        if isinstance(node.op, ast.Add | ast.Sub):
            return max(gl, gr), truncated
        if isinstance(node.op, ast.Mult):
            return gl + gr, truncated
        if isinstance(node.op, ast.Div):
            if gr > 0:
                raise _Steep("a division by an expression of the covariates (a pole)")
            return gl, truncated
        if isinstance(node.op, ast.Pow):
            exponent = _number(node.right)
            if gl == 0 and gr == 0:
                return 0.0, truncated
            if gr > 0:
                raise _Steep("a covariate in an exponent")
            if exponent is None or exponent < 0 or exponent != int(exponent):
                raise _Steep("a power that is not a whole, non-negative number")
            return gl * exponent, truncated
        raise _Steep("an operator the rule does not know")

    def _call(self, node: ast.Call) -> tuple[float, bool]:
        fn = ast.unparse(node.func).removeprefix("np.")
        if fn == "C" or not node.args:
            return 0.0, False
        arg = node.args[0]
        g, t = self(arg)
        if fn in _SAME:
            return g, t
        if fn in _ROOTS:
            if t or any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add | ast.Sub)
                for n in ast.walk(arg)
            ):
                raise _Steep(f"{fn} of a shifted or cut expression (its domain is a threshold)")
            return min(g, 1.0) if fn != "sqrt" else g / 2, False
        if fn == "abs":
            return g, t or g > 0
        if fn == "exp":
            if g > 0:
                raise _Steep("exp of a covariate")
            return 0.0, t
        if fn == "poly":
            degree = _number(node.args[1]) if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "degree":
                    degree = _number(kw.value)
            return g * (1.0 if degree is None else degree), t
        return 3 * g, t  # the cubic splines


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    return None


def formula_growth(text: str, continuous: Collection[str]) -> list[tuple[str, float, str]]:
    """Each term of a formula read in the closed grammar (:mod:`transport.formula`):
    its text, its growth (its polynomial degree in the ``continuous`` covariates, or
    ``inf`` for a term the module docstring excludes) and why it is excluded (``""``
    when it is not). The text is parsed, never run."""
    names: dict[str, str] = {}

    def hide(m: re.Match[str]) -> str:
        key = f"_q{len(names)}"
        names[key] = m.group()[1:-1]
        return key

    plain = _QUOTED.sub(hide, text).replace(":", "*")
    growth = _Growth(continuous, names)
    terms: list[ast.AST] = []
    stack = [ast.parse(plain, mode="eval").body]
    while stack:  # the formula's top-level terms: its + are not arithmetic
        node = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            stack += [node.right, node.left]
        else:
            terms.append(node)
    out = []
    for term in terms:
        term_text = ast.unparse(term)
        for key in sorted(names, key=len, reverse=True):
            term_text = term_text.replace(key, names[key])
        try:
            g, truncated = growth(term)
        except _Steep as exc:
            out.append((term_text, math.inf, str(exc)))
            continue
        if truncated and g > 0:
            out.append((term_text, math.inf, "a covariate cut at a threshold (its tail kept)"))
        else:
            out.append((term_text, g, "" if g <= MAX_GROWTH else f"polynomial degree {g:g}"))
    return out


def refuse_steep_formula(text: str, continuous: Collection[str], where: str) -> None:
    """Refuse (``steep_transform``) a summary formula with a term the module docstring
    excludes (:func:`formula_growth`)."""
    for term, _, why in formula_growth(text, continuous):
        if why:
            raise DisclosureError(
                f"the formula of {where} has term {term!r} with {why} (rule: "
                f"steep_transform): a summary formula chosen by another environment keeps "
                f"to degree {MAX_GROWTH:g} in the covariates, without poles, tails or "
                "thresholds, so that no transform makes one patient's value dominate a "
                "released mean or SD"
            )


def steep_columns(design: Any) -> dict[int, str]:
    """Columns of a :class:`~transport.Design` whose term the module docstring excludes
    (:func:`formula_growth` of each of :attr:`~transport.Design.column_terms`), and why:
    where a design's means are released for the rows of a cohort whose formula another
    environment chose (a weighting's balance table, source and target alike), the same
    ``steep_transform`` rule withholds them that refuses such a summary formula. A term
    the rule cannot read (a formulaic construct outside the closed grammar) counts as
    steep."""
    continuous = [v for v in design.covariates if v not in design.levels]
    why: dict[str, str] = {}
    for term in dict.fromkeys(design.column_terms):
        try:
            found = [w for _, _, w in formula_growth(term, continuous) if w]
        except (SyntaxError, ValueError):
            found = ["a construct the rule does not know"]
        if found:
            why[term] = found[0]
    return {j: why[t] for j, t in enumerate(design.column_terms) if t in why}
