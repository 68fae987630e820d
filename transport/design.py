"""Covariate design: an encoding fitted on the source cohort, reused on every target.

A :class:`Design` holds a formulaic right-hand side and the ``ModelSpec`` it produced on
the source, so the same columns (same levels, same reference categories, same stateful
transforms) are built for any target. The default is main effects of every covariate,
categoricals one-hot against their first level (:attr:`Cohort.levels` order).

Design matrices never carry the intercept; models add their own.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from formulaic import model_matrix
from formulaic.errors import FactorEvaluationError
from scipy.linalg import qr

from transport.cohort import Cohort
from transport.columns import CODINGS, QUOTED_LEVEL_ROWS, mentions, quoted_levels, read_column
from transport.encoding import (
    evaluate,
    level_counts,
    pandas_frame,
    plain_columns,
    plain_matrix,
)
from transport.exceptions import DataError
from transport.formula import ClosedFormula, check_transform_state, closed_formula

# re-exported: the names callers import from here
__all__ = ["CODINGS", "QUOTED_LEVEL_ROWS", "Design", "quoted_levels", "read_column"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Reference level added by ``every_level`` designs; its columns are dropped.
PHANTOM = "\u2205reference"
_DUMMY = re.compile(r"^(.*)\[T\.(.*)\]$")


def _quote(name: str) -> str:
    return name if _IDENTIFIER.match(name) else f"`{name}`"


def default_formula(covariates: Sequence[str]) -> str:
    """Main effects of every covariate: ``"age + sex + ecog"``."""
    return " + ".join(_quote(c) for c in covariates)


#: Specs and columns of plain designs seen (:mod:`transport.encoding`), at most 256.
_PLAIN_SPECS: dict[tuple[Any, ...], tuple[Any, list[str]]] = {}


def closed_text(text: str, covariates: Sequence[str], where: str) -> str:
    """``text`` read in the closed grammar, every name it uses a covariate."""
    return _closed(text, covariates, where).text


def _closed(text: str, covariates: Sequence[str], where: str) -> ClosedFormula:
    parsed = closed_formula(text, where)
    unknown = [v for v in parsed.variables if v not in covariates]
    if unknown:
        raise DataError(
            f"{where} {text!r} uses {unknown}, which are not covariates (rule: formulas are "
            f"over the declared covariates {list(covariates)})"
        )
    return parsed


def _given_levels(
    cohort: Cohort, every_level: bool, references: Sequence[tuple[str, str]]
) -> dict[str, tuple[str, ...]]:
    """The categoricals' levels formulaic is given: the cohort's; for ``every_level``, a
    phantom reference first, and a reference the formula names that the cohort lacks as
    an empty level (it has no column: its presence is no answer the design gives)."""
    out = {v: cohort.levels[v] for v, t in cohort.covariate_types.items() if t == "categorical"}
    if not every_level:
        return out
    return {
        v: tuple(dict.fromkeys((PHANTOM, *lv, *(r for u, r in references if u == v))))
        for v, lv in out.items()
    }


def _plain(x: Any) -> Any:
    """A transform's state as JSON types (numpy scalars and arrays to floats and lists)."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_plain(v) for v in (x.tolist() if isinstance(x, np.ndarray) else x)]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x


def _shipped_state(state: Any, model_spec: Any, text: str) -> Mapping[str, Any]:
    """The source's transform state of a shipped spec, checked before formulaic uses it
    (rule ``transform_state``, :func:`~transport.formula.check_transform_state`): one
    entry per stateful transform of the formula, each of the structure formulaic writes
    for it on the placeholder rows, so of the formula's sizes and so its columns (which
    :meth:`Design.from_dict` then checks against the spec's)."""
    expected = {str(k): v for k, v in model_spec.transform_state.items() if v}
    if not isinstance(state, Mapping) or set(state) != set(expected):
        got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise DataError(
            f"design spec of {text!r} carries the state of transforms {got}, but "
            f"its formula has {sorted(expected)} (rule: the source's "
            "state of every stateful transform travels with the spec)"
        )
    for term, want in expected.items():
        check_transform_state(term, state[term], want)
    return state


class Design:
    """A covariate design fitted on a source cohort.

    Parameters
    ----------
    cohort
        The source cohort the encoding is fitted on.
    formula
        A formulaic right-hand side over the cohort's covariates, e.g.
        ``"age + C(ecog) + stage + age:sex"``. ``None``: main effects of every covariate,
        categoricals one-hot against their first level. The intercept is implied and
        dropped from the matrices.
    source
        Apply the rules a source must meet (every covariate varies, full-rank columns).
        ``False`` for describing a target, which may be homogeneous or small.
    every_level
        Give every categorical a phantom reference level, so that each real level (and
        each interaction of real levels) has its own treatment dummy: the columns any
        source's treatment coding can ask for, whatever its reference. For summaries.
    closed
        Read ``formula`` in the closed grammar of :mod:`transport.formula` (as data,
        never run as code), for a formula that came from, or will go to, another
        environment; the design's :attr:`formula` is then the text written back from
        the parse. ``False``: full formulaic, for a user's own analysis.

    Raises
    ------
    DataError
        The formula uses a name that is not a covariate; a covariate has zero variance in
        the source (a constant number or a single level); design columns are collinear
        in the source.

    Examples
    --------
    >>> import polars as pl
    >>> import transport as tp
    >>> df = pl.DataFrame({"t": [5.0, 8.0, 3.0, 9.0], "d": [1, 0, 1, 1],
    ...                    "age": [60.0, 72.0, 55.0, 66.0], "ecog": ["0", "1", "2+", "1"]})
    >>> src = tp.Cohort(df, time="t", event="d", covariates=["age", "ecog"])
    >>> tp.Design(src).columns
    ('age', 'ecog[T.1]', 'ecog[T.2+]')
    """

    _plain_ok: bool | None

    def __init__(
        self,
        cohort: Cohort,
        formula: str | None = None,
        *,
        source: bool = True,
        every_level: bool = False,
        closed: bool = False,
    ) -> None:
        if not isinstance(cohort, Cohort):
            raise TypeError(
                f"The 'cohort' parameter of Design must be a transport.Cohort. "
                f"Got {type(cohort).__name__} instead."
            )
        if formula is not None and not isinstance(formula, str):
            raise TypeError(f"The 'formula' parameter must be a string or None. Got {formula!r}.")
        if not cohort.covariates:
            raise DataError(f"cohort {cohort.name!r} has no covariates to build a design from")
        text = default_formula(cohort.covariates) if formula is None else formula
        references: tuple[tuple[str, str], ...] = ()
        if closed:
            parsed = _closed(text, cohort.covariates, f"formula over cohort {cohort.name!r}")
            text, references = parsed.text, parsed.references
        if "~" in text or "|" in text:
            raise DataError(
                f"formula {text!r} has a left-hand side or parts (rule: a right-hand side "
                "only, such as 'age + ecog + age:sex')"
            )
        types = cohort.covariate_types
        all_levels = _given_levels(cohort, every_level, references)
        key = (text, tuple(cohort.covariates), tuple(types.items()), tuple(all_levels.items()))
        mm = (
            None
            if key in _PLAIN_SPECS
            else evaluate(text, cohort.covariate_frame, cohort.covariates, all_levels, cohort.name)
        )
        spec, names = (
            _PLAIN_SPECS[key] if mm is None else (mm.model_spec, list(map(str, mm.columns)))
        )
        used = sorted(set(spec.required_variables) & set(cohort.covariates))
        levels = {v: all_levels[v] for v in used if v in all_levels}
        for v in used if source else ():
            if v in levels and len(levels[v]) < 2:
                raise DataError(
                    f"covariate {v!r} has zero variance in cohort {cohort.name!r}: a single "
                    f"level {levels[v][0]!r} in all {cohort.n} rows (rule: every covariate "
                    "in the design varies in the source)"
                )
            if v not in levels:
                x = cohort.covariate_frame[v].to_numpy()
                if np.all(x == x[0]):
                    raise DataError(
                        f"covariate {v!r} has zero variance in cohort {cohort.name!r}: "
                        f"{float(x[0])!r} in all {cohort.n} rows (rule: every covariate in "
                        "the design varies in the source)"
                    )
        if "Intercept" not in names:
            raise DataError(
                f"formula {text!r} removes the intercept (rule: designs keep it; models add "
                "their own intercept and categoricals are coded against a reference level)"
            )
        self._setup(
            text,
            spec,
            names,
            tuple(used),
            {v: types[v] for v in used},
            levels,
            cohort.name,
        )
        frame = cohort.covariate_frame
        self._level_counts: dict[str, dict[str, int]] | None = {
            v: level_counts(frame[v], [u for u in lv if u != PHANTOM]) for v, lv in levels.items()
        }
        plain = np.zeros(0) if self._plain is None else plain_matrix(frame, self._plain, levels)
        given = plain if mm is None else np.asarray(mm, dtype=np.float64)[:, self._keep]
        self._plain_ok = bool(np.array_equal(plain, given))  # a cached spec is a plain design's
        matrix = plain if self._plain_ok else given  # one path always, once it is exact
        if self._plain_ok and len(_PLAIN_SPECS) < 256:  # kept only where it is exact
            _PLAIN_SPECS[key] = (spec, names)
        if source:
            self._check_rank(matrix)
        self._source_matrix: np.ndarray | None = matrix

    def _setup(
        self,
        text: str,
        spec: Any,
        names: list[str],
        used: tuple[str, ...],
        types: dict[str, str],
        levels: dict[str, tuple[str, ...]],
        source: str,
    ) -> None:
        """The attributes every design has, from its formula and formulaic ModelSpec."""
        self._formula = text
        self._spec = spec
        self._used = used
        self._types = types
        self._levels = levels
        self._keep = [i for i, c in enumerate(names) if c != "Intercept" and PHANTOM not in c]
        if not self._keep:
            raise DataError(
                f"formula {text!r} has no covariate terms (rule: a design has at least one "
                "column besides the intercept)"
            )
        self._columns = tuple(names[i] for i in self._keep)
        by_index: dict[int, set[str]] = {}
        term_of: dict[int, str] = {}
        for term, idx in self._spec.term_indices.items():
            for i in idx:
                by_index[i] = set(self._spec.term_variables[term]) & set(used)
                term_of[i] = str(term)
        self._column_covariates = tuple(tuple(sorted(by_index.get(i, ()))) for i in self._keep)
        self._column_terms = tuple(term_of.get(i, names[i]) for i in self._keep)
        self._source = source
        self._plain = plain_columns(self._columns, types, levels)
        self._plain_ok = None  # the fast path's exactness, once checked

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Design:
        """A design rebuilt from :meth:`to_dict`, without the source's rows (model
        shipping: the source's encoding applied in a target's environment).

        The formula is evaluated on a few placeholder rows holding every source level of
        each categorical covariate, and the source's state of any stateful transform
        (``center``, ``scale``...) replaces the placeholders' own; :meth:`matrix` then
        gives the columns the source design gives, with the same checks and errors.
        The rebuilt design has no :attr:`source_matrix`. The formula is read in the
        closed grammar of :mod:`transport.formula` (a spec comes from another
        environment: its text is data, never run as code).

        Raises
        ------
        DataError
            ``spec`` lacks a key, its formula is outside the closed grammar or uses a name
            that is not one of its covariates, or it does not give back its columns (an
            encoding that depends on the source's values, such as ``C()`` of a continuous
            covariate, cannot be rebuilt from levels), or the state of a transform is not
            of the keys, kinds and sizes the formula gives it (rule ``transform_state``:
            a crafted spline state of 400,000 knots would make :meth:`matrix` build a
            basis of 400,000 columns of the target's rows).
        """
        keys = ("formula", "columns", "covariates", "types", "levels")
        missing = [k for k in keys if k not in spec]
        if missing:
            raise DataError(
                f"design spec lacks {missing} (rule: a spec written by Design.to_dict has "
                f"{list(keys)})"
            )
        used = tuple(str(v) for v in spec["covariates"])
        # the spec came from another environment: its formula is data, read in the
        # closed grammar and written back, never given to formulaic as it came
        text = closed_text(spec["formula"], used, "design spec formula")
        types = {str(k): str(v) for k, v in dict(spec["types"]).items()}
        levels = {str(k): tuple(str(x) for x in v) for k, v in dict(spec["levels"]).items()}
        bad = [
            v
            for v in used
            if types.get(v) not in ("continuous", "categorical")
            or (types[v] == "categorical") != (v in levels)
        ]
        bad = sorted(set(bad) | (set(levels) - set(used)))
        if bad:
            raise DataError(
                f"design spec of {text!r} has covariates {bad} "
                "without a type or with levels that do not match it (rule: every covariate is "
                "'continuous' or 'categorical', and categoricals list their levels)"
            )
        rows = max([3, *(len(lv) for lv in levels.values())])
        cols: dict[str, Any] = {}
        for v in used:
            if v in levels:
                lv = list(levels[v])
                cols[v] = pd.Categorical([lv[i % len(lv)] for i in range(rows)], categories=lv)
            else:
                cols[v] = np.arange(1.0, rows + 1.0)
        try:
            # only the structure is kept: a transform undefined at the placeholder values
            # (np.log(age - 17) at age 1) gives nan there, not an error
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                mm = model_matrix(text, pd.DataFrame(cols), na_action="ignore")
        except Exception as exc:
            raise DataError(
                f"design spec formula {text!r} cannot be evaluated on its covariates "
                f"({type(exc).__name__}: {exc})"
            ) from None
        model_spec = mm.model_spec
        state = _shipped_state(spec.get("transform_state") or {}, model_spec, text)
        if state:
            model_spec = model_spec.update(transform_state={k: dict(v) for k, v in state.items()})
        names = [str(c) for c in mm.columns]
        design = cls.__new__(cls)
        design._setup(text, model_spec, names, used, types, levels, str(spec.get("source", "")))
        design._source_matrix = None
        design._level_counts = None
        if list(design._columns) != [str(c) for c in spec["columns"]]:
            raise DataError(
                f"design spec formula {text!r} gives columns {list(design._columns)}, not the "
                f"source's {list(spec['columns'])} (rule: the encoding must follow from the "
                "formula, the covariate types and the source's levels; C() of a continuous "
                "covariate, say, depends on its values)"
            )
        return design

    def _check_rank(self, matrix: np.ndarray) -> None:
        """Collinear columns (with the intercept) in the source are an error naming them."""
        # centred columns: collinearity with the intercept shows as a dependent column
        centred = matrix - matrix.mean(axis=0)
        sd = centred.std(axis=0)
        constant = np.flatnonzero(sd == 0)
        if constant.size:
            raise DataError(
                f"design columns {[self._columns[i] for i in constant]} are constant in cohort "
                f"{self._source!r} (rule: every design column varies in the source)"
            )
        _, r, piv = qr(centred / sd, mode="economic", pivoting=True)
        diag = np.abs(np.diag(r))
        rank = int(np.sum(diag > diag[0] * 1e-10)) if diag.size else 0
        if rank < matrix.shape[1]:
            bad = [self._columns[i] for i in piv[rank:]]
            raise DataError(
                f"design columns {bad} are collinear with the others in cohort "
                f"{self._source!r} (rule: a full-rank design; drop a term from the formula)"
            )

    # -- attributes -------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        """The formula's right-hand side as given (or the default one)."""
        return self._formula

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the design columns (no intercept)."""
        return self._columns

    @property
    def covariates(self) -> tuple[str, ...]:
        """Covariates the formula uses."""
        return self._used

    @property
    def column_terms(self) -> tuple[str, ...]:
        """The formula term behind each design column, as formulaic writes it
        (``I((age / 100) ** 2)``, ``C(ecog, Sum):age``)."""
        return self._column_terms

    @property
    def stateful(self) -> tuple[str, ...]:
        """Terms whose encoding depends on the data it was fitted on (``center``,
        ``scale``, splines...): their state is the source's."""
        return tuple(str(k) for k, v in self._spec.transform_state.items() if v)

    def absent_level_column(self, j: int, target_levels: Mapping[str, Sequence[str]]) -> bool:
        """Whether design column ``j`` is identically 0 in a target with these levels:
        it is a dummy (or an interaction with one) of a level the target lacks."""
        for part in self._columns[j].split(":"):
            match = _DUMMY.match(part)
            if match is None:
                continue
            name, level = match.group(1), match.group(2)
            for v in self._column_covariates[j]:
                if (
                    v in self._levels
                    and mentions(name, v)
                    and level not in target_levels.get(v, ())
                ):
                    return True
        return False

    def column_coding(self, j: int) -> tuple[tuple[str, str, str], ...] | None:
        """The (covariate, level, coding) triples design column ``j`` is built from
        (:func:`read_column`: ``T`` a treatment dummy, ``S`` a sum contrast, ``I`` a
        full-rank indicator), or ``None`` when it codes a covariate in a way that cannot
        be read back to a level (``C()`` of a continuous covariate)."""
        return read_column(self._columns[j], self._column_covariates[j], self._levels)

    def column_levels(self, j: int) -> tuple[tuple[str, str], ...]:
        """The (covariate, level) pairs design column ``j`` names, whatever its coding:
        ``age:ecog[T.2]`` and ``C(ecog, Sum)[S.2]`` give ``(("ecog", "2"),)``; a name
        that could be read two ways gives both pairs (:meth:`column_coding`)."""
        return tuple(
            dict.fromkeys((v, lv) for v, lv, _ in self.column_coding(j) or () if lv != PHANTOM)
        )

    @property
    def unmapped_columns(self) -> tuple[int, ...]:
        """Columns whose levels cannot be read back from their names (:meth:`column_coding`
        is ``None``): the rules on levels cannot be checked on them."""
        return tuple(j for j in range(len(self._columns)) if self.column_coding(j) is None)

    @property
    def level_counts(self) -> dict[str, dict[str, int]] | None:
        """Patients of the cohort the design was fitted on at each level of its
        categoricals (``None`` for a design rebuilt from a spec, without rows)."""
        counts = self._level_counts
        return None if counts is None else {v: dict(c) for v, c in counts.items()}

    @property
    def treatment_coded(self) -> bool:
        """Whether every categorical enters as 0/1 dummies against a reference level
        (formulaic's default): then a column means the same whatever levels a target has."""
        codings = [self.column_coding(j) for j in range(len(self._columns))]
        return all(c is not None and all(code == "T" for *_, code in c) for c in codings)

    def covariates_of(self, columns: Sequence[int]) -> list[str]:
        """The covariates behind the design columns with these indices, sorted."""
        return sorted({v for i in columns for v in self._column_covariates[i]})

    @property
    def levels(self) -> dict[str, tuple[str, ...]]:
        """Source levels of the categorical covariates the formula uses."""
        return dict(self._levels)

    @property
    def source_matrix(self) -> np.ndarray:
        """The source's design matrix (n x p, no intercept)."""
        if self._source_matrix is None:
            raise DataError(
                f"design {self._formula!r} was rebuilt from a spec (Design.from_dict) and has "
                f"no rows of its source {self._source!r} (rule: source rows stay in the "
                "source's environment)"
            )
        out = self._source_matrix.view()
        out.flags.writeable = False
        return out

    # -- applying the design --------------------------------------------------------------
    def matrix(self, cohort: Cohort) -> np.ndarray:
        """The design matrix of another cohort, with the source's encoding (read-only).

        Raises
        ------
        DataError
            A covariate of the design is missing from the cohort or of another type, or a
            categorical has a level the source never saw (named, with its row count, when it
            has at least :data:`QUOTED_LEVEL_ROWS` rows: :func:`quoted_levels`).
        """
        last = self.__dict__.get("_last")
        if last is None or last[0] is not cohort:
            last = self._last = (cohort, self._encode(cohort))  # a local: safe across threads
            last[1].flags.writeable = False
        return last[1]

    def __getstate__(self) -> dict[str, Any]:  # a worker gets no cached matrix, no cohort
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def _encode(self, cohort: Cohort) -> np.ndarray:
        missing = [v for v in self._used if v not in cohort.covariates]
        if missing:
            raise DataError(
                f"covariates {missing} of the design (fitted on {self._source!r}) are not "
                f"covariates of cohort {cohort.name!r} (rule: every target carries the "
                "source's covariates)"
            )
        types = cohort.covariate_types
        for v in self._used:
            if types[v] != self._types[v]:
                raise DataError(
                    f"covariate {v!r} is {types[v]} in cohort {cohort.name!r} but "
                    f"{self._types[v]} in the source {self._source!r} (rule: same type)"
                )
        frame = cohort.covariate_frame
        for v, lv in self._levels.items():
            unseen = sorted(set(frame[v].unique().cast(pl.String).to_list()) - set(lv))
            if unseen:
                values = frame[v].cast(pl.String)
                counts = {u: int((values == u).sum()) for u in unseen}
                known = self._level_counts
                # a rare level's name is not quoted (the message may reach a log that leaves)
                theirs = str(list(lv)) if known is None else quoted_levels(known[v])
                raise DataError(
                    f"covariate {v!r} of cohort {cohort.name!r} has {len(unseen)} level(s) "
                    f"that the source {self._source!r} never saw: {quoted_levels(counts)} "
                    f"(rule: target levels are among the source's {len(lv)}: {theirs})"
                )
        plain, ok = self._plain, self._plain_ok
        fast = None if plain is None or ok is False else plain_matrix(frame, plain, self._levels)
        if fast is not None and ok:
            return np.ascontiguousarray(fast)
        slow = self._formulaic(cohort)
        if fast is not None:  # the first matrix decides: the fast path only where it is exact
            self._plain_ok = bool(np.array_equal(fast, slow))
        return np.ascontiguousarray(fast) if self._plain_ok else slow

    def _formulaic(self, cohort: Cohort) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                mm = self._spec.get_model_matrix(
                    pandas_frame(cohort.covariate_frame, self._used, self._levels),
                    na_action="raise",
                )
        except Warning as w:  # its text quotes the cohort's values: never passed on
            raise DataError(
                f"formula {self.formula!r} (fitted on {self._source!r}) does not encode cohort "
                f"{cohort.name!r} as it encoded the source: {type(w).__name__} (rule: a term "
                "that treats a continuous covariate as categories, C(x), needs the source's "
                "values in every cohort; declare the covariate categorical instead)"
            ) from None
        except FactorEvaluationError as exc:  # a spline asked to reach past its bounds, say
            term = re.search(r"`([^`]*)`", str(exc))
            raise DataError(
                f"formula {self.formula!r} (fitted on {self._source!r}) cannot encode cohort "
                f"{cohort.name!r} ({cohort.n} rows): term "
                f"{term.group(1) if term else '?'!r} fails on its values (rule: a stateful "
                "term keeps the source's state, a spline its knots and bounds: target values "
                "outside the source's range need bs(x, extrapolation='clip'), or a "
                "polynomial)"
            ) from None
        return np.ascontiguousarray(np.asarray(mm, dtype=np.float64)[:, self._keep])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: formula, columns, the source's levels and name, and
        the source's state of any stateful transform (a ``center``'s mean...), enough for
        :meth:`from_dict` to rebuild the encoding."""
        return {
            "formula": self._formula,
            "columns": list(self._columns),
            "covariates": list(self._used),
            "types": dict(self._types),
            "levels": {k: list(v) for k, v in self._levels.items()},
            "source": self._source,
            "transform_state": {
                str(k): _plain(v) for k, v in self._spec.transform_state.items() if v
            },
        }

    def __repr__(self) -> str:
        return (
            f"Design({self._formula!r}: {len(self._columns)} columns, fitted on {self._source!r})"
        )
