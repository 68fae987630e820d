"""What the figures read from the objects they draw, as :class:`typing.Protocol` classes.

:mod:`transport.plotting` is a leaf layer: it may not import the classes it draws
(``SurvivalCurve``, ``ModelCurve``, ``Weights``, ``TransportResult``, ``StudyResult``),
which import it for their ``.plot*()`` methods. It names instead exactly the attributes
and methods it reads; those classes satisfy the protocols structurally, which mypy
checks wherever they are passed to a plotting function.

Two protocols are checked at run time too: :class:`CurveLike` tells a Kaplan–Meier
curve (with a band and numbers at risk) from a model-based curve, and
:class:`StudyLike` tells a study's result from anything else.

>>> import numpy as np
>>> import polars as pl
>>> import transport as tp
>>> from transport.survival.model_curve import ModelCurve
>>> frame = pl.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]})
>>> km = tp.kaplan_meier(tp.Cohort(frame, time="t", event="e", name="toy"))
>>> model = ModelCurve(km.time, km.survival, method="gformula", name="toy", time_unit="days")
>>> isinstance(km, CurveLike), isinstance(model, CurveLike)
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from matplotlib.axes import Axes

__all__ = [
    "BalanceLike",
    "CurveLike",
    "ModelCurveLike",
    "ResultLike",
    "StepCurveLike",
    "StudyLike",
    "WeightsLike",
]


class StepCurveLike(Protocol):
    """A right-continuous survival step curve: S(t) at increasing times, S = 1 before
    the first (a Kaplan–Meier or a model-based curve)."""

    @property
    def time(self) -> np.ndarray: ...

    @property
    def survival(self) -> np.ndarray: ...


class ModelCurveLike(StepCurveLike, Protocol):
    """A model-based curve (``ModelCurve``): no band, no risk sets; it draws itself."""

    def plot(
        self, ax: Axes | None = None, *, label: str | None = None, color: str | None = None
    ) -> Axes: ...


@runtime_checkable
class CurveLike(StepCurveLike, Protocol):
    """A (weighted) Kaplan–Meier curve (``SurvivalCurve``): a pointwise band, a label,
    a time unit and numbers at risk."""

    @property
    def ci_lower(self) -> np.ndarray: ...

    @property
    def ci_upper(self) -> np.ndarray: ...

    @property
    def name(self) -> str: ...

    @property
    def time_unit(self) -> str: ...

    @property
    def weighted(self) -> bool: ...

    def risk_table(self, times: np.ndarray) -> pl.DataFrame:
        """Columns ``n_risk`` (weighted) and ``n_risk_unweighted`` at ``times``."""
        ...


class BalanceLike(Protocol):
    """What a Love plot reads from ``Weights``: the balance table and the names."""

    @property
    def method(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...

    def balance(self) -> pl.DataFrame:
        """Columns ``covariate``, ``smd_before``, ``smd_after``."""
        ...


class WeightsLike(BalanceLike, Protocol):
    """``Weights``: one weight per source row, their effective sample size and the
    participation scores."""

    @property
    def values(self) -> np.ndarray: ...

    @property
    def ess(self) -> float: ...

    @property
    def n(self) -> int: ...

    def scores(self) -> pl.DataFrame:
        """Columns ``cohort`` (the source's or the target's name) and ``score``."""
        ...


class ResultLike(Protocol):
    """A ``TransportResult``: one source, one target, one method, three curves."""

    @property
    def method(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def time_unit(self) -> str: ...

    @property
    def naive(self) -> CurveLike: ...

    @property
    def transported(self) -> CurveLike | ModelCurveLike: ...

    @property
    def observed(self) -> CurveLike | None: ...

    def summary(self) -> pl.DataFrame:
        """One row per estimand (and time): ``estimand``, ``time``, ``observed``,
        ``observed_ci_lower``, ``observed_ci_upper``, ..."""
        ...

    def decomposition(self) -> pl.DataFrame:
        """One row per estimand (and time) and component: ``estimand``, ``time``,
        ``component``, ``value``, ``ci_lower``, ``ci_upper``."""
        ...


@runtime_checkable
class StudyLike(Protocol):
    """A methods study's result (``StudyResult``): its configuration, its replicates
    and their performance measures."""

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def replicates(self) -> pl.DataFrame: ...

    def metrics(self) -> pl.DataFrame: ...
