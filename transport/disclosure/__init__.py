"""Disclosure control: the policy and the release gate (DESIGN §5).

Patient rows never leave the environment they live in; what leaves is an aggregate that
went through :func:`release`. The gate applies a :class:`Policy` (each environment sets
its own, from a TOML file) and either makes an object safe or refuses it:

``patient_rows``
    A cohort, a data frame or an array of rows is refused outright.
``forbidden_column``
    A column whose role is an identifier, a practice, a physician or free text (declared
    identifiers, or names made of tokens such as ``id``, ``nhs``, ``practice``, ``gp``,
    ``notes``) is refused outright: it cannot be made safe by coarsening.
``min_cell``
    A count below ``min_cell`` patients (a category level, a design column's nonzero
    rows, a risk set, a cohort) is withheld, and so is enough of its complement (the next
    smallest levels) that it cannot be recovered by subtraction from the total. A cohort
    smaller than ``min_cell`` is refused.
``km_grid``, ``min_km_step``
    A survival curve is reported only on a fixed grid: multiples of ``km_grid_step`` (of
    a summary's own fixed times, those on that grid). A grid time is kept
    only when the events and exits (censorings) since the last reported time are none or
    at least ``min_km_step``; otherwise its step is merged into the next. Reporting stops
    where the risk set falls below ``min_cell``. Both are decided on the counts as
    released (rounded), so that a plan varying ``min_cell`` or ``min_km_step`` learns
    nothing beyond the rounding (values that are not a function of the released counts,
    a shipped model's baseline hazard, also need the exact counts to meet them). The
    released curve is the actuarial
    estimate of the released (rounded) counts on the kept grid times
    (:func:`coarsen_km`), with Greenwood's SE and the curve's interval computed from
    them too, so no exact event time is released (two cohorts that differ by one
    patient whose time moves within a step give byte-identical releases) and the exact
    counts cannot be solved back from S(t) or its SE. A reweighted (transported) curve
    is released as the weighted actuarial estimate on the source's kept steps, with its
    infinitesimal-jackknife SE, which likewise depends on the rows only through their
    step and weight; a model-based one (g-formula, AIPW) at those step ends; both
    rounded to the precision stated per row (``curve_precision``). S(t) and
    RMST(tau) at the analysis' own (pre-specified) times are released as estimated,
    when at least ``min_cell`` patients are at risk at t and the events and exits up
    to t or tau are none or at least ``min_km_step`` in each cohort (exact counts,
    decided on their rounding: :func:`~transport.policy.rounding_slack`).
``round_to``
    Released counts (patients, risk sets, events, censorings) are rounded to the nearest
    multiple of ``round_to``; those of a curve as an additive table (its ``n`` and
    cumulative events and censorings rounded, each step's counts their differences,
    :func:`~transport.policy.released_counts`), so that the table's identities pin no
    rounding error down. A piecewise exponential model's interval event counts are
    released exact: its information matrix holds them. Means, shares and SDs are
    released exact when every cell behind them has at least ``min_cell`` patients (so
    entropy balancing on a released summary equals the row-level analysis): an exact
    share implies its cell's count, which the cell rule has already judged safe.
``time_grid``
    A median (and the limits of its interval), which is one patient's event time, is
    released rounded outwards to the KM grid: the value and its upper limit up, the lower
    limit down.
``min_residual_df``
    A fitted model is released only with at least ``min_residual_df`` residual degrees of
    freedom (events minus parameters for a survival model).
``min_ess``
    A weighted result (reweighted curve, weights' balance table, transported S(t),
    median and RMST) is one patient's outcome when one patient carries the weight. Its
    whole weighted cohort needs an effective sample size, the smaller of Kish's
    ``(sum w)^2 / sum w^2`` and ``sum w / max w`` (so that no patient carries more than
    ``1 / min_ess`` of the weight; Kish's count alone allows ``1 / sqrt(min_ess)``), of
    at least ``min_ess`` (default ``min_cell``; larger tightens), or the release is
    refused; a reweighted curve stops at the first step whose weighted risk set has less
    (and the summary rows at or after it are withheld).
``curve_precision``
    A transported curve is not a function of the released counts, so its S(t) is
    rounded to the row's ``precision`` (the smallest of 0.001, 0.002, 0.005, 0.01, ...
    at least ``round_to / n_risk``, ``n_risk`` the step's released risk set, and for a
    reweighted curve at least the largest share of a weighted risk set's weight one
    patient carries up to the step), its SE to a tenth of it, its limits computed from
    the two; unrounded when ``round_to`` is 1.

Known limits (read before relying on a release): with two releases of cohorts
differing by one patient, the first step at which the released counts differ bounds
that patient's step from above (it is placed exactly only when it falls in the first
step and its cumulative count crosses a rounding boundary there, one chance in
``round_to``), and a step merged by ``min_km_step`` in one release and not in the other
places it within that step; weighted risk sets that pass ``min_ess`` still give each
patient a share of up to ``1 / min_ess`` of a step's hazard (a fall of about one unit
of the precision); a plan varying ``min_km_step`` reads the rounded cumulative counts at
merged grid times, as a release with smaller steps would state them. S(t) and RMST at the
analysis' own times are exact estimates, so two releases from cohorts differing by one
patient differ in them (by that patient's share of the estimate, not by an event
time); means in a
summary are exact (the summary-only transport needs them), so two summaries differing by
one patient give that patient's covariates. Release once per analysis from a fixed
cohort, as output checkers expect. The names of withheld levels are kept (the source
needs them to recognise the level); a model-based transported curve (g-formula, AIPW)
depends on exact times through the fitted model, so it moves (by about 1e-6) when one
source patient's time moves within a step, like any released model coefficient;
interaction columns are withheld when small but
without complementary suppression within their family. Curves with delayed entry are
refused. A weights' balance table withholds, besides small columns, enough of a
categorical's other levels that a small reference level (which has no row) cannot be
recovered by subtraction.

The rules themselves live in :mod:`transport.policy`, their one home, which the report
and model shipping call too; this package is the gate that applies them: ``gate``
(:func:`release` and its static table of handlers), ``record`` (what a release writes
and withholds), ``curves``, ``aggregates`` (summaries, weights), ``results`` (transport
results) and ``models`` (shipped models and their results).

``policy_floor``
    The environment's policy (the TOML file ``TRANSPORT_POLICY`` names) is a floor: the
    gate refuses a policy looser than it, and a plan's ``[disclosure]`` may only tighten
    it (:meth:`Policy.tightened`; each field's direction in
    :data:`transport.policy.TIGHTER`).

Every release writes its files and ``manifest.json``: the SHA-256 and size of each file,
the policy, and what was withheld and why (never the withheld value or its count), and,
when the environment holds a release key (``TRANSPORT_RELEASE_KEY`` or the policy's
``signing_key_file``, at least 16 bytes), its HMAC-SHA256 signature. The directory must
be empty, so that everything in it is in the manifest; :func:`verify` re-checks a
directory before it is exported: plain listed files only (``release_path``), unchanged
(``release_hash``), the manifest as the gate writes it (``release_manifest``), the
released counts consistent with its policy (``release_counts``), that policy no looser
than the environment's (``policy_floor``), and, with the key, the signature
(``release_signature``; without one it reports the signature "not checked").

Reference: Griffiths E. et al. (2019) *Handbook on Statistical Disclosure Control for
Outputs*, Safe Data Access Professionals Working Group (thresholds, dominance,
differencing, survival tables).
"""

from transport.disclosure.gate import release
from transport.manifest import MANIFEST
from transport.policy import (
    FORBIDDEN_TOKENS,
    Policy,
    coarsen_km,
    forbidden_role,
    guard_timed_rows,
    level_dummies,
)
from transport.policy import verify_release as verify

__all__ = [
    "FORBIDDEN_TOKENS",
    "MANIFEST",
    "Policy",
    "coarsen_km",
    "forbidden_role",
    "guard_timed_rows",
    "level_dummies",
    "release",
    "verify",
]
