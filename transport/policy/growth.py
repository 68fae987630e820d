"""The ``steep_transform`` rule: a summary formula, which the source chooses for the
target's rows, may not make one patient's value dominate what is released by a steep
or tail-isolating transform.

The dominance and p% rules (:func:`~transport.policy.dominance_rule`) bound the largest
contributions' share of a released mean in the scale of the released column. A formula
from another environment chooses that scale: ``I((age / 100) ** 40)`` makes the oldest
patient 85% of its SD's total, which those rules let pass, and the SD read back through
the transform gives that patient's age to within months. So a summary formula's terms
have bounded growth (:func:`formula_growth`): polynomials of degree at most
:data:`MAX_GROWTH` in the continuous covariates (an interaction's degrees add; ``log``
and ``sqrt`` do not raise them), no ``exp`` or power with a covariate in the exponent,
no division by an expression of the covariates (a pole placed next to one patient's
value), no negative powers, and no comparison or ``abs`` combined with a covariate
(``(age > 90) * age`` keeps the tail only; a comparison alone is a 0/1 column, which the
cell rule covers).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Collection

from transport.exceptions import DisclosureError

__all__ = ["MAX_GROWTH", "formula_growth", "refuse_steep_formula"]

#: Highest polynomial degree of a term of a summary formula in the continuous covariates.
MAX_GROWTH = 2.0

_QUOTED = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"")
_LOGS = frozenset({"log", "log2", "log10", "log1p"})
_SAME = frozenset({"I", "center", "scale", "standardize"})


class _Growth:
    """The growth of a parsed expression: (degree, whether it truncates a covariate)."""

    def __init__(self, continuous: Collection[str], names: dict[str, str]) -> None:
        self.continuous, self.names = continuous, names

    def __call__(self, node: ast.AST) -> tuple[float, bool]:
        if isinstance(node, ast.Name):
            name = self.names.get(node.id, node.id)
            return (1.0 if name in self.continuous else 0.0), False
        if isinstance(node, ast.Constant | ast.List):
            return 0.0, False
        if isinstance(node, ast.UnaryOp):
            return self(node.operand)
        if isinstance(node, ast.Compare):
            parts = [self(node.left), *(self(c) for c in node.comparators)]
            return 0.0, any(g > 0 or t for g, t in parts)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        return math.inf, False  # nothing else is written back by the closed grammar

    def _binary(self, node: ast.BinOp) -> tuple[float, bool]:
        (gl, tl), (gr, tr) = self(node.left), self(node.right)
        truncated = tl or tr
        if isinstance(node.op, ast.Add | ast.Sub):
            return max(gl, gr), truncated
        if isinstance(node.op, ast.Mult):
            return gl + gr, truncated
        if isinstance(node.op, ast.Div):
            return (gl if gr == 0 else math.inf), truncated
        if isinstance(node.op, ast.Pow):
            exponent = _number(node.right)
            if gl == 0 and gr == 0:
                return 0.0, truncated
            if exponent is None or exponent < 0:
                return math.inf, truncated  # exp-like, or a pole
            return gl * exponent, truncated
        return math.inf, truncated

    def _call(self, node: ast.Call) -> tuple[float, bool]:
        fn = ast.unparse(node.func).removeprefix("np.")
        if fn == "C" or not node.args:
            return 0.0, False
        g, t = self(node.args[0])
        if fn in _SAME:
            return g, t
        if fn in _LOGS:
            return min(g, 1.0), t
        if fn == "sqrt":
            return g / 2, t
        if fn == "abs":
            return g, t or g > 0
        if fn == "exp":
            return (0.0 if g == 0 else math.inf), t
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


def formula_growth(text: str, continuous: Collection[str]) -> list[tuple[str, float]]:
    """Each term of a formula read in the closed grammar (:mod:`transport.formula`),
    with its growth: its polynomial degree in the ``continuous`` covariates, ``inf`` for
    a transform without one (``exp``, a pole) or one that keeps a covariate's tail only
    (a comparison or ``abs`` combined with a covariate). The text is parsed, never run."""
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
        g, truncated = growth(term)
        term_text = ast.unparse(term)
        for key in sorted(names, key=len, reverse=True):
            term_text = term_text.replace(key, names[key])
        out.append((term_text, math.inf if truncated and g > 0 else g))
    return out


def refuse_steep_formula(text: str, continuous: Collection[str], where: str) -> None:
    """Refuse (``steep_transform``) a summary formula with a term whose growth exceeds
    :data:`MAX_GROWTH` (:func:`formula_growth`)."""
    for term, g in formula_growth(text, continuous):
        if g > MAX_GROWTH:
            what = (
                f"polynomial degree {g:g}"
                if math.isfinite(g)
                else "exp, a pole, or a covariate's tail kept by a comparison or abs"
            )
            raise DisclosureError(
                f"the formula of {where} has term {term!r} ({what}; rule: steep_transform): "
                f"a summary formula chosen by another environment keeps to degree "
                f"{MAX_GROWTH:g} in the covariates without poles or tails, so that no "
                "transform makes one patient's value dominate a released mean or SD"
            )
