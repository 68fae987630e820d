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
    where the risk set falls below ``min_cell``. The released curve is the Kaplan–Meier
    actuarial estimate on the kept grid times (:func:`coarsen_km`), so no
    exact event time is released: two cohorts that differ by one patient whose time
    moves within a step give byte-identical releases. A reweighted (transported) curve
    is released as the weighted actuarial estimate on the source's kept steps, with its
    infinitesimal-jackknife SE, which likewise depends on the rows only through their
    step and weight; a model-based one (g-formula, AIPW) at those step ends. S(t) and
    RMST(tau) at the analysis' own (pre-specified) times are released as estimated,
    when at least ``min_cell`` patients are at risk at t and the events and exits up
    to t or tau are none or at least ``min_km_step`` in each cohort.
``round_to``
    Released counts (patients, risk sets, events, censorings) are rounded to the nearest
    multiple of ``round_to``. Means, shares and SDs are released exact when every cell
    behind them has at least ``min_cell`` patients (so entropy balancing on a released
    summary equals the row-level analysis): an exact share implies its cell's count, which
    the cell rule has already judged safe.
``time_grid``
    A median (and the limits of its interval), which is one patient's event time, is
    released rounded outwards to the KM grid: the value and its upper limit up, the lower
    limit down.
``min_residual_df``
    A fitted model is released only with at least ``min_residual_df`` residual degrees of
    freedom (events minus parameters for a survival model).

Known limits (read before relying on a release): S(t) and RMST at the analysis' own
times are exact estimates, so two releases from cohorts differing by one patient differ
in them (by that patient's share of the estimate, not by an event time); means in a
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
