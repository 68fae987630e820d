"""Model shipping (DESIGN §5): fit the outcome model in the source's environment, release
it through the gate, and run the g-formula inside the target's environment, so that no
patient row crosses a border in either direction; only aggregates come back.

Estimand (Dahabreh et al. 2020): the target population's survival under the source's
outcome mechanism, ``S_T(t) = E_T[S_source(t | X)]``, estimated by the g-formula
``(1 / n_T) sum_{i in target} S_source(t | x_i)``, with its median and RMST(tau); compared
with the target's own Kaplan–Meier curve (the transportability test: differences, ratios,
equivalence against a margin fixed in advance).

Two steps, two environments:

1. **Source** — :meth:`ShippedModel.fit` fits a Cox model (Breslow or Efron baseline;
   Breslow 1972) or a piecewise exponential model on the source cohort and keeps what the
   target needs: the design spec (formula, covariate types, the source's levels, the state
   of stateful transforms: :meth:`~transport.Design.from_dict` rebuilds the encoding
   without the source rows), coefficients, their covariance, and

   * Cox: the baseline cumulative hazard ``H0(t)`` at the covariate means ``center``
     (released rounded to a lattice, the baseline moved to it: rule ``centre_lattice``), on
     the policy's fixed grid (:meth:`~transport.disclosure.Policy.grid`: multiples of
     ``km_grid_step``), never at event times;
   * piecewise exponential: interior cut points **snapped to the grid** (the default cut
     points are event-time quantiles, which would reveal event times) and merged until
     every interval holds ``min_km_step`` events and starts with ``min_cell`` patients at
     risk, then the model is refitted on them;

   and optionally ``n_boot`` bootstrap refits on resamples of the source (replicate ``b``
   draws from child ``b`` of ``numpy.random.SeedSequence(seed)``), each kept as its
   coefficients and baseline on the grid in the source's own process, and released only
   as their summary (:mod:`transport.shipping.bootstrap`).

   ``tp.disclosure.release(model, directory, policy)`` checks and writes it (rules below);
   :meth:`ShippedModel.from_release` reads the released directory back.

2. **Target** — :meth:`ShippedModel.from_release` checks the model's numbers (finite
   coefficients, a symmetric positive semidefinite covariance, a finite, non-negative,
   non-decreasing baseline: rule ``model_bounds``), :meth:`ShippedModel.apply` checks
   that its linear predictor spreads over the target's rows by at most the target
   policy's ``max_log_hazard_ratio`` (``model_bounds``: a crafted extreme coefficient
   with a chosen baseline would count the target's patients above a threshold), rebuilds
   the design on the target's rows,
   predicts every patient's ``S(t | x_i)`` and averages them: the transported curve on the
   released grid. Between grid times the Cox baseline is read with a constant hazard
   within each released step (``H0`` linear between grid times), so that S(t), the median
   and RMST(tau) are defined at any time up to the last released grid time; at the grid
   times themselves the curve is exactly the Cox g-formula of
   :func:`~transport.transport` (``method="gformula"``). The piecewise exponential model's
   curve is exact at any time. The target's observed Kaplan–Meier curve and the
   comparison come with it in a :class:`ShippedResult`, itself releasable.

Inference (which one a number came from is in ``ci_method``): replicate ``b`` pairs a
model of the source's uncertainty with a resample of the target drawn inside the
target's environment (from ``SeedSequence(seed, spawn_key=(TARGET_STREAM, b))`` with the
``seed`` given to :meth:`apply`: a stream apart from the source's children ``(b,)``, so
that the same seed in both environments does not draw target row ``i`` as often as
source row ``i``), and reads the transported and observed estimands from them. In the
source's own process the model is the ``b``-th source refit: the nonparametric bootstrap
that :func:`~transport.transport` runs when it sees both cohorts (source and target
resampled separately, every model refitted). A released model carries no refits and no
seed (rule ``bootstrap_summary``: with both, every resample could be regenerated and the
refits regressed on them, giving each source row's influence back); the target draws the
model's parameters from the multivariate normal with the released bootstrap covariance
(Cox: coefficients and ``log H0`` on the released grid, the baseline kept
non-decreasing; piecewise exponential: the coefficients on the model's representative
times) with the same generator after the resample: a parametric bootstrap of the source
part, whose SEs are those of the refits within Monte Carlo error (within 25% on 150
source patients, a few percent on 600 or more). Every drawn model's spread is checked
as the estimate's is. Without a bootstrap the transported estimates have no interval
(as ``transport(method="gformula")`` without ``n_boot``).

Release rules for a model (rule names as in :mod:`transport.disclosure`):
``forbidden_column`` (a covariate, design column or level named as an identifier,
practice, physician or free text); ``min_cell`` (a source of fewer than ``min_cell``
patients; a categorical level, a value of a two-valued covariate (a 0/1 flag typed
continuous: centred, scaled or shifted, all its rows are nonzero, yet its mean gives its
count), or a design column's nonzero rows (by each combination of those levels and values
of its covariates) or their complement, resting on fewer than ``min_cell`` source
patients: merge levels before fitting; a stateful transform whose state holds
individual values, such as spline boundary knots at the minimum and maximum);
``min_residual_df`` (events minus parameters below
``min_residual_df``); ``km_grid`` and ``min_km_step`` (the baseline is released only at
grid times where the events and exits since the last released time are none or at least
``min_km_step``, merging the others into the next, as :func:`~transport.disclosure.coarsen_km`
does, and stops where the source's risk set falls below ``min_cell``; every piecewise
exponential interval needs ``min_km_step`` events). Released counts are rounded to
``round_to``; the bootstrap as its summary only (``bootstrap_summary``: ``n_boot``, the
failures, the covariance, SEs and 95% percentile limits of the coefficients and the
baseline at the released grid times). A result (:class:`ShippedResult`), a target-side
aggregate, is refused when the model's spread over the target exceeds the gate's
``max_log_hazard_ratio`` (``model_bounds``), and released with its S(t) rows only where
the target has ``min_cell`` patients at risk, its S(t) and RMST rows only where the
target's events and exits since the previous released time (from 0 for the first) are
none or at least ``min_km_step`` (as :class:`~transport.TransportResult`), its medians
rounded outwards to the grid (their equivalence p-value withheld), its transported S(t),
RMST and median rows only where ``min_cell`` effective target patients are behind them
(``min_contributors``: Kish counts of the patients' predicted survivors, deaths and
spread, computed from the target's rows when the model was applied, for the estimate and
every replicate; for a median, at the two knots it is read between) and S(t) and RMST
rounded (``round_to``: the expected survivors to ``round_to``, so
S(t) to multiples of ``round_to / n``; differences, ratios and p-values recomputed from
the released numbers), the transported curve at the model's grid times that are released
steps of the target's own curve, under the same two rules, and the target's observed
curve as the actuarial estimate of :func:`~transport.disclosure.coarsen_km`; it must
come from a released model. :mod:`transport.policy.shipped` gives these rules' reasons.

Known limits (read before releasing a model): the released grid, its counts, the
design and the covariate means depend on the source's times only through their grid
step (the default pwexp cut points almost so: an event-time quantile is snapped to the
nearest grid time, so which half of its step it lies in can matter), but the fitted
numbers do not. The Cox partial likelihood's risk sets
and its Breslow or Efron baseline (at every released grid time, through the coefficients
too), and the piecewise exponential model's exposures and last representative time, use
exact times: moving one patient's death from day 400 to day 410 (one step) changes the
coefficients (by up to 1e-3 among 300 patients), and whoever holds both releases and
every other row can refit over the step's days and find 410
(``test_moving_an_event_time_within_a_step`` does).
This is the price of the shipped model being the Cox g-formula of
:func:`~transport.transport` and R's ``coxph`` at the grid times (a model fitted to
grid-grouped times would be another estimator); it is the differencing the gate already
accepts for exact S(t) and RMST: release a model once per analysis from a fixed cohort.
A Cox model's ``center`` is released on a lattice (``centre_lattice``: each design
column's mean rounded to a power of ten at most its SD, the baseline moved to it), but a
``center()`` or ``scale()`` state is the exact mean (and SD) of its expression: with the
rounded ``n`` it gives the exact ``n`` and every level's count, each of which passed
the cell rule (as a summary's exact shares do), and two models from sources one patient
apart give that patient's value from it. The bootstrap summary's covariance and
percentile limits come from refits each fitted on a resample in which a level may rest
on fewer than ``min_cell`` distinct patients. A covariate typed continuous with three or
more distinct values is not a cell (a rare value of ECOG coded 0-3 as a number is not
checked: declare it categorical). The transported curve of a result is an average over
the target rounded as counts are, not noise: a crafted model under the bound that
gives a few target patients a value of their own while many others vary passes the
contributor counts, and with many released grid times the rounded values may pin the
few's number (:mod:`transport.policy.shipped`, "Known limits"); every model a target
applies is a query of its rows.

References
----------
Dahabreh IJ, Robertson SE, Steingrimsson JA, Stuart EA, Hernán MA (2020). Extending
    inferences from a randomized trial to a new target population. Stat Med 39:1999-2014.
Breslow NE (1972). Discussion of Professor Cox's paper. JRSS B 34:216-217.
Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from transport.shipping.codec import MODEL_FILE, SCHEMA, json_array, json_floats
from transport.shipping.model import TARGET_STREAM, ShippedModel
from transport.shipping.result import ShippedResult

__all__ = [
    "MODEL_FILE",
    "SCHEMA",
    "TARGET_STREAM",
    "ShippedModel",
    "ShippedResult",
    "json_array",
    "json_floats",
]
