"""Formulas that cross an environment boundary, read as data in a closed grammar.

A formula written in one environment and used in another (a shipped model's design, a
summary's formula chosen by the source, an analysis plan, a command-line flag) must
never run as code where it arrives: formulaic evaluates a formula's terms as Python, so
``I(__import__('os').system(...))`` would run inside a trusted research environment.
:func:`closed_formula` reads such text as data: it tokenises it, parses it in the
grammar below, refuses anything else with a :class:`~transport.DataError` naming the
token, and writes the formula back from its parse. Only that text, made of covariate
names, numbers, the operators and the named transforms, ever reaches formulaic.

The grammar (a right-hand side)::

    formula   := term ('+' term)*
    term      := factor ((':' | '*') factor)*
    factor    := '(' formula ')' | name | transform
    transform := 'C' '(' name [',' contrast] ')'
               | 'I' '(' expr ')'
               | ('center' | 'scale' | 'standardize') '(' expr ')'
               | 'poly' '(' expr [',' int] [',' 'degree' '=' int] [',' 'raw' '=' bool] ')'
               | ('bs' | 'cr' | 'cs') '(' expr (',' key '=' number | numbers)* ')'
               | math '(' expr ')'
    contrast  := ('Treatment' | 'contr.treatment') '(' ['reference' '='] level ')'
               | 'Treatment' | 'contr.treatment' | 'Sum' | 'contr.sum'
    expr      := arithmetic on names and numbers: + - * / **, unary -, parentheses,
                 one comparison (< <= > >=), math functions; a power's base holds a
                 covariate and its exponent is a number of at most MAX_POWER
    math      := log | log2 | log10 | exp | np.log | np.log2 | np.log10 | np.log1p
               | np.exp | np.sqrt | np.abs

with ``name`` a Python identifier or a backquoted column name (no backquote, quote,
backslash or line break inside), never a dunder, keyword or transform name; ``level`` a
quoted string or a number; spline keys ``df``, ``degree``, ``knots`` (a list of numbers),
``lower_bound``, ``upper_bound``; whole-number arguments (``df``, ``degree``) at most
``MAX_DEGREE``, a knots list at most ``MAX_DEGREE`` numbers; and the whole expanding
to at most ``MAX_TERMS`` terms (``a * b`` is ``a + b + a:b``). The Python API keeps full
formulaic for a user's own analysis in their own environment (:class:`~transport.Design`
with ``closed=False``).

A shipped design also carries the source's state of its stateful transforms (a
``center``'s mean, a spline's knots), which formulaic uses as it comes: 400,000 knots
would make the target build a basis of 400,000 columns of its rows. So a state read from
another environment is checked against the state formulaic writes for the same formula
(:func:`check_transform_state`, rule ``transform_state``): the same keys, values of the
same kinds (numbers finite), lists and mappings of the same lengths (which the formula's
bounded ``df``, ``degree`` and ``knots`` set), and none longer than :data:`MAX_STATE`.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transport.exceptions import DataError

__all__ = [
    "MAX_DEGREE",
    "MAX_LENGTH",
    "MAX_POWER",
    "MAX_STATE",
    "MAX_TERMS",
    "ClosedFormula",
    "check_transform_state",
    "closed_formula",
]

#: Longest formula text read from another environment, and deepest nesting.
MAX_LENGTH = 4000
_MAX_DEPTH = 32
#: Largest exponent of a power, and largest degree or degrees of freedom of a transform
#: (a formula from elsewhere must not make the target's environment compute for ever).
MAX_POWER = 100
MAX_DEGREE = 50
#: Most terms a formula from elsewhere may expand to (``a * b * c`` is seven terms):
#: formulaic expands interactions before any check, and 24 factors make 16.7 million.
MAX_TERMS = 200
#: Longest list or mapping in a transform's state: a spline of degree ``MAX_DEGREE`` with
#: ``MAX_DEGREE`` interior knots lists its two bounds ``degree + 1`` times each.
MAX_STATE = 3 * MAX_DEGREE + 2

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'[^'"`\\\n]*'|"[^'"`\\\n]*")
  | (?P<quoted>`[^`'"\\\n]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
  | (?P<op>\*\*|<=|>=|[-+*/:(),=<>\[\]])
    """,
    re.VERBOSE,
)

_MATH = frozenset(
    {"log", "log2", "log10", "exp"}
    | {f"np.{f}" for f in ("log", "log2", "log10", "log1p", "exp", "sqrt", "abs")}
)
_CENTRING = frozenset({"center", "scale", "standardize"})
_SPLINES = frozenset({"bs", "cr", "cs"})
_SPLINE_KEYS = frozenset({"df", "degree", "knots", "lower_bound", "upper_bound"})
_TREATMENT = frozenset({"Treatment", "contr.treatment"})
_SUM = frozenset({"Sum", "contr.sum"})
_RESERVED = frozenset(
    {"C", "I", "np", "contr", "poly", "True", "False", "None"}
    | _MATH
    | _CENTRING
    | _SPLINES
    | _TREATMENT
    | _SUM
)

_NAMED = "C, I, center, scale, standardize, poly, bs, cr, cs, " + ", ".join(sorted(_MATH))


@dataclass(frozen=True)
class ClosedFormula:
    """A formula read in the closed grammar: its text as written back from the parse
    (what formulaic is given), the column names it uses, and the reference levels its
    treatment contrasts name as strings, ``(covariate, level)``."""

    text: str
    variables: tuple[str, ...]
    references: tuple[tuple[str, str], ...] = ()


def closed_formula(text: object, where: str = "formula") -> ClosedFormula:
    """Read ``text`` in the closed grammar of this module (never evaluating it).

    Raises
    ------
    DataError
        ``text`` is not a string, is too long or too deeply nested, or has a token or a
        construct outside the grammar (named, with its position).

    Examples
    --------
    >>> closed_formula("center(age) + C(ecog, Treatment('1')) + age:sex").text
    "center(age) + C(ecog, Treatment('1')) + age:sex"
    >>> closed_formula("I(__import__('os').system('id'))")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    transport.exceptions.DataError: formula "I(__import__('os').system('id'))": '__import__' ...
    """
    if not isinstance(text, str):
        raise DataError(f"{where} must be a string; got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise DataError(
            f"{where} has {len(text)} characters, more than {MAX_LENGTH} (rule: a formula "
            "from another environment is a short right-hand side)"
        )
    parser = _Parser(text, where)
    out = parser.formula()
    if parser.peek() is not None:
        parser.fail(parser.peek(), "is not expected here (rule: terms joined by +, : or *)")
    if not parser.variables:
        raise DataError(f"{where} {text!r} names no covariate (rule: a right-hand side)")
    return ClosedFormula(
        out, tuple(dict.fromkeys(parser.variables)), tuple(dict.fromkeys(parser.references))
    )


class _Parser:
    """Recursive descent over the tokens, writing the formula back as it goes."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:  # refused when the parser reaches it, after what precedes it
                self.tokens.append(("bad", text[pos], pos))
                break
            kind = m.lastgroup
            assert kind is not None
            if kind != "ws":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0
        self.depth = 0
        self.variables: list[str] = []
        self.references: list[tuple[str, str]] = []

    # -- tokens -----------------------------------------------------------------------------
    def peek(self) -> tuple[str, str, int] | None:
        token = self.tokens[self.i] if self.i < len(self.tokens) else None
        if token is not None and token[0] == "bad":
            raise DataError(
                f"{self.where} {self.text!r}: character {token[1]!r} at position {token[2]} is "
                "outside the closed grammar of formulas from another environment (rule: "
                "names, numbers, + : * ( ) and the named transforms, never run as code)"
            )
        return token

    def fail(self, token: tuple[str, str, int] | None, why: str) -> None:
        what = "the end" if token is None else f"{token[1]!r} at position {token[2]}"
        raise DataError(
            f"{self.where} {self.text!r}: {what} {why}; formulas from another environment are "
            "read in a closed grammar, never run as code (see transport.formula)"
        )

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            self.fail(token, f"where {value!r} was expected")
        assert token is not None
        if kind is not None and token[0] != kind:
            self.fail(token, f"where a {kind} was expected")
        self.i += 1
        return token[1]

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[1] in values and token[0] == "op"

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail(self.peek(), f"is nested more than {_MAX_DEPTH} deep")

    # -- formula level ----------------------------------------------------------------------
    def formula(self) -> str:
        text, _ = self._sum()
        return text

    def _sum(self) -> tuple[str, int]:
        """Terms joined by ``+``, and how many terms they expand to (at most)."""
        text, count = self.term()
        parts = [text]
        while self.at("+"):
            self.take("+")
            text, more = self.term()
            parts.append(text)
            count = self._bounded(count + more)
        return " + ".join(parts), count

    def term(self) -> tuple[str, int]:
        """Factors joined by ``:`` or ``*``: ``a:b`` expands to the products of their
        terms, ``a * b`` to ``a + b + a:b``."""
        out, count = self.factor()
        while self.at(":", "*"):
            op = self.take()
            out += ":" if op == ":" else " * "
            text, more = self.factor()
            out += text
            count = self._bounded(count * more if op == ":" else count + more + count * more)
        return out, count

    def _bounded(self, count: int) -> int:
        if count > MAX_TERMS:
            self.fail(
                self.peek(),
                f"makes the formula expand to more than {MAX_TERMS} terms (rule: bounded designs)",
            )
        return count

    def factor(self) -> tuple[str, int]:
        token = self.peek()
        if self.at("("):
            self.take("(")
            self.nest()
            inner, count = self._sum()
            self.depth -= 1
            self.take(")")
            return f"({inner})", count
        if token is not None and token[0] == "name" and self._is_call():
            return self.transform(), 1
        return self.variable(), 1

    def _is_call(self) -> bool:
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        return nxt is not None and nxt[1] == "("

    def variable(self) -> str:
        token = self.peek()
        if token is None or token[0] not in ("name", "quoted"):
            self.fail(token, "where a covariate name was expected")
        assert token is not None
        name = token[1][1:-1] if token[0] == "quoted" else token[1]
        if (token[0] == "name" and "." in name) or (
            name.isidentifier()
            and (name.startswith("__") or keyword.iskeyword(name) or name in _RESERVED)
        ):
            self.fail(token, "is not a covariate name (rule: no dunder, keyword or transform)")
        if token[0] == "quoted" and (name.strip() != name or not name.isprintable()):
            self.fail(token, "is not a covariate name (rule: printable, no outer spaces)")
        self.i += 1
        self.variables.append(name)
        return token[1]

    def transform(self) -> str:
        token = self.peek()
        assert token is not None
        fn = token[1]
        self.i += 1
        self.take("(")
        self.nest()
        if fn == "C":
            body = self.variable() + (self.contrast() if self.at(",") else "")
        elif fn == "I" or fn in _MATH or fn in _CENTRING:
            body = self.expr()
        elif fn == "poly":
            body = self.expr() + self.keywords({"degree": "int", "raw": "bool"}, ("degree",))
        elif fn in _SPLINES:
            kinds = {"df": "int", "degree": "int", "knots": "list"}
            kinds |= {"lower_bound": "number", "upper_bound": "number"}
            body = self.expr() + self.keywords(kinds, ())
        else:
            self.i -= 2
            self.fail(token, f"is not a transform of the closed grammar (rule: {_NAMED})")
        self.depth -= 1
        self.take(")")
        return f"{fn}({body})"

    def contrast(self) -> str:
        self.take(",")
        token = self.peek()
        name = self.take(kind="name")
        if name in _SUM:
            return f", {name}"
        if name not in _TREATMENT:
            self.fail(token, "is not a contrast of the closed grammar (rule: Treatment or Sum)")
        if not self.at("("):
            return f", {name}"
        self.take("(")
        key = ""
        if self.peek() is not None and self.peek()[1] == "reference":  # type: ignore[index]
            self.take("reference")
            self.take("=")
            key = "reference="
        level = self.peek()
        if level is None or level[0] not in ("string", "number"):
            self.fail(level, "where a reference level (a quoted string or number) was expected")
        self.i += 1
        self.take(")")
        if level[0] == "string":  # type: ignore[index]
            self.references.append((self.variables[-1], level[1][1:-1]))  # type: ignore[index]
        return f", {name}({key}{level[1]})"  # type: ignore[index]

    def keywords(self, kinds: dict[str, str], positional: tuple[str, ...]) -> str:
        """``, key=value`` arguments of a transform, values numbers (or a list of them,
        or True/False), the first ones possibly given by position."""
        out = ""
        pos = 0
        while self.at(","):
            self.take(",")
            token = self.peek()
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if token is not None and token[0] == "name" and nxt is not None and nxt[1] == "=":
                key = token[1]
                if key not in kinds:
                    self.fail(token, f"is not an argument of the closed grammar ({sorted(kinds)})")
                self.i += 2
                out += f", {key}={self.value(kinds[key])}"
            elif pos < len(positional):
                out += f", {self.value(kinds[positional[pos]])}"
                pos += 1
            else:
                self.fail(token, "where a keyword argument (key=number) was expected")
        return out

    def value(self, kind: str) -> str:
        token = self.peek()
        if kind == "bool":
            if token is None or token[1] not in ("True", "False"):
                self.fail(token, "where True or False was expected")
            self.i += 1
            return token[1]  # type: ignore[index]
        if kind == "list":
            self.take("[")
            items = [self.number()]
            while self.at(","):
                self.take(",")
                items.append(self.number())
                if len(items) > MAX_DEGREE:
                    self.fail(token, f"lists more than {MAX_DEGREE} knots (rule: bounded bases)")
            self.take("]")
            return "[" + ", ".join(items) + "]"
        text = self.number()
        if kind == "int" and not re.fullmatch(r"-?\d+", text):
            self.fail(token, "where a whole number was expected")
        if kind == "int" and not 0 <= int(text) <= MAX_DEGREE:
            self.fail(token, f"is outside 0 to {MAX_DEGREE} (rule: bounded degrees of freedom)")
        return text

    def number(self) -> str:
        sign = ""
        if self.at("-"):
            self.take("-")
            sign = "-"
        return sign + self.take(kind="number")

    # -- arithmetic inside a transform ------------------------------------------------------
    def expr(self) -> str:
        out = self.arith()
        if self.at("<", "<=", ">", ">="):
            op = self.take()
            out = f"{out} {op} {self.arith()}"
        return out

    def arith(self) -> str:
        out = self.product()
        while self.at("+", "-"):
            op = self.take()
            out = f"{out} {op} {self.product()}"
        return out

    def product(self) -> str:
        out = self.unary()
        while self.at("*", "/"):
            op = self.take()
            out = f"{out} {op} {self.unary()}"
        return out

    def unary(self) -> str:
        if self.at("-", "+"):
            op = self.take()
            self.nest()
            inner = self.unary()
            self.depth -= 1
            return f"{op}{inner}"
        seen = len(self.variables)
        base = self.atom()
        if self.at("**"):
            # a power of numbers alone is evaluated as Python integers (9 ** 9 ** 9 would
            # never end): the base holds a covariate, the exponent is a bounded number
            power = self.peek()
            if len(self.variables) == seen:
                why = f"names no covariate (rule: powers of covariates, up to {MAX_POWER})"
                self.fail(power, f"follows {base!r}, which {why}")
            self.take("**")
            at = self.peek()
            exponent = self.number()
            if abs(float(exponent)) > MAX_POWER:
                self.fail(at, f"is a larger exponent than {MAX_POWER} (rule: bounded powers)")
            return f"{base} ** {exponent}"
        return base

    def atom(self) -> str:
        token = self.peek()
        if token is not None and token[0] == "number":
            self.i += 1
            return token[1]
        if self.at("("):
            self.take("(")
            self.nest()
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return f"({inner})"
        if token is not None and token[0] == "name" and self._is_call():
            if token[1] not in _MATH:
                self.fail(token, f"is not a function of the closed grammar (rule: {_NAMED})")
            self.i += 1
            self.take("(")
            self.nest()
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return f"{token[1]}({inner})"
        return self.variable()


# -- the state of a transform, read from another environment -----------------------------------
def _plain(x: Any) -> Any:
    """formulaic's state as JSON would carry it: mappings with string keys, lists, and
    Python numbers (numpy scalars and arrays converted)."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if hasattr(x, "tolist"):
        return _plain(x.tolist())
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _state_problem(got: Any, want: Any, at: str) -> str | None:
    """Why ``got`` (a shipped state, at key path ``at``) does not have the structure of
    ``want`` (the state formulaic writes for the same formula), or ``None``."""
    if isinstance(want, Mapping | list):
        size = len(got) if isinstance(got, Mapping | list) else -1
        if size > MAX_STATE:
            return f"{at} has {size} entries, more than {MAX_STATE} (MAX_STATE)"
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return f"{at} is a {type(got).__name__}, not a mapping of {sorted(want)}"
        if {str(k) for k in got} != set(want):
            keys = sorted(str(k) for k in got)
            return f"{at} has keys {keys}, not the {sorted(want)} formulaic writes"
        byname = {str(k): v for k, v in got.items()}
        for k in sorted(want):
            problem = _state_problem(byname[k], want[k], f"{at}[{k!r}]")
            if problem:
                return problem
        return None
    if isinstance(want, list):
        if not isinstance(got, list):
            return f"{at} is a {type(got).__name__}, not a list of {len(want)} entries"
        if len(got) != len(want):
            return f"{at} has {len(got)} entries, not the {len(want)} its formula gives"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            problem = _state_problem(g, w, f"{at}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(want, float):
        if not (_is_number(got) and math.isfinite(got)):
            return f"{at} is {got!r}, not a finite number"
        return None
    if isinstance(want, bool) or want is None or isinstance(want, int | str):
        # set by the transform or the formula (ddof, cyclic, a bound given in the formula)
        same = got is want if isinstance(want, bool) or want is None else got == want
        if not same or isinstance(got, bool) != isinstance(want, bool):
            return f"{at} is {got!r}, not the {want!r} its formula gives"
        return None
    return f"{at} holds a {type(want).__name__}, which no shipped state carries"


def check_transform_state(term: str, shipped: Any, expected: Mapping[str, Any]) -> None:
    """Refuse (:class:`~transport.DataError`, rule ``transform_state``) the shipped state
    of transform ``term`` unless it has the structure of ``expected``, the state formulaic
    writes for the same term on any rows: the same keys, numbers where it has numbers
    (finite), the same ``None``, flags and whole numbers that the transform or the
    formula sets (``ddof``, ``cyclic``, a bound given in the formula), lists and mappings
    of the same lengths, none longer than :data:`MAX_STATE`. A spline's basis has one
    column per knot beyond its degree, a ``poly()`` one per coefficient: a state of the
    formula's lengths gives the formula's columns, which the design checks against its
    spec before building any matrix of the target's rows."""
    problem = _state_problem(shipped, _plain(expected), "its state")
    if problem:
        raise DataError(
            f"transform {term!r} of a shipped design: {problem} (rule: transform_state; a "
            "state from another environment has the keys, kinds and sizes the formula "
            "gives it, finite numbers, and lists of at most MAX_STATE entries)"
        )
