"""Data-generating process of the synthetic first-line advanced NSCLC cohorts.

Four countries ("US", "UK", "DE", "JP") share one outcome model and differ in their
covariate distributions, a "setting" effect on the hazard that no covariate explains, and
the prevalence of an unmeasured effect modifier ``U``. Every knob is a field of a frozen
dataclass; the defaults are the values behind the shipped cohorts in ``data/synthetic``.
The equations are written out in ``data/synthetic/README.md``.

Covariates are drawn in sequence, each from an explicit conditional distribution, so the
exact covariate density of every country (and hence the true participation model, a
density ratio) is available: :func:`covariate_log_pmf`.

Times are generated in continuous days and recorded as whole days, ``ceil(T)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import polars as pl
from scipy.special import expit
from scipy.stats import norm

from transport.simulate.arguments import (
    check_codes,
    check_country,
    check_flags,
    check_instances,
    check_missing,
    check_patients,
    check_strength,
    generator,
)
from transport.simulate.codes import (
    AGE_MAX,
    AGE_MIN,
    CODE_RANGES,
    ECOG,
    REGIMENS,
    SMOKING,
    STAGES,
    covariate_codes,
    covariate_frame,
)

__all__ = [
    "COUNTRIES",
    "ECOG",
    "PROFILES",
    "REGIMENS",
    "SMOKING",
    "STAGES",
    "CensoringModel",
    "CountryProfile",
    "OutcomeModel",
    "covariate_codes",
    "covariate_log_pmf",
    "sample_covariates",
    "simulate_cohort",
]

COUNTRIES: tuple[str, ...] = ("US", "UK", "DE", "JP")
MissingMode = Literal["mcar", "mar"]


@dataclass(frozen=True)
class CountryProfile:
    """Covariate distribution and setting of one country (see the README for equations).

    Attributes
    ----------
    n
        Cohort size shipped in ``data/synthetic``.
    age_mean, age_sd
        Age at the start of first-line therapy: ``round(Normal(age_mean, age_sd))``,
        clipped to [35, 90] years.
    p_female
        P(female).
    never_logit, never_female_logor, current_logit, current_female_logor
        Smoking: multinomial logit against "former", ``log P(never)/P(former) =
        never_logit + never_female_logor * female`` and likewise for "current".
    squamous_logit
        Histology: ``logit P(squamous) = squamous_logit + 1.3 [ever smoker] +
        0.3 [current] - 0.3 female``.
    driver_logit
        EGFR/ALK alteration: ``logit P(positive) = driver_logit + 2.0 [never] +
        0.5 female - 2.5 squamous``.
    pdl1_logit
        PD-L1 >= 50%: ``logit P = pdl1_logit - 1.0 driver + 0.2 [current]``.
    ecog1_logit, ecog2_logit
        ECOG, cumulative logit: ``logit P(ECOG >= 1) = ecog1_logit + 0.03 (age - 65)``,
        ``logit P(ECOG 2+) = ecog2_logit + 0.03 (age - 65)``.
    stage_probs
        P(stage at initial diagnosis I-II, III, IV).
    io_logit, chemo_io_logit, targeted_logit
        Regimen, multinomial logit against chemotherapy (see the README).
    setting_loghr
        Country effect on the log hazard of death and of progression, explained by no
        covariate.
    u_prevalence
        P(U = 1) for the unmeasured effect modifier ``U`` (independent of the
        covariates).
    n_practices
        Number of practices (sites); patients are spread over them unevenly.
    """

    n: int
    age_mean: float
    age_sd: float
    p_female: float
    never_logit: float
    never_female_logor: float
    current_logit: float
    current_female_logor: float
    squamous_logit: float
    driver_logit: float
    pdl1_logit: float
    ecog1_logit: float
    ecog2_logit: float
    stage_probs: tuple[float, float, float]
    io_logit: float
    chemo_io_logit: float
    targeted_logit: float
    setting_loghr: float
    u_prevalence: float
    n_practices: int


#: The four countries. Directions of the differences (documented in the README):
#: DE oldest and most male; UK most ECOG 2+ and most chemotherapy; JP most never-smokers
#: (women especially), EGFR/ALK-positive and targeted therapy, with a better setting and
#: fewer U = 1; US largest with the most chemo-immunotherapy.
PROFILES: dict[str, CountryProfile] = {
    "US": CountryProfile(
        n=10_000,
        age_mean=68.0,
        age_sd=9.0,
        p_female=0.49,
        never_logit=-1.9,
        never_female_logor=0.6,
        current_logit=-0.6,
        current_female_logor=-0.2,
        squamous_logit=-2.3,
        driver_logit=-2.9,
        pdl1_logit=-0.85,
        ecog1_logit=0.1,
        ecog2_logit=-1.9,
        stage_probs=(0.14, 0.16, 0.70),
        io_logit=-1.2,
        chemo_io_logit=0.9,
        targeted_logit=-4.0,
        setting_loghr=0.0,
        u_prevalence=0.25,
        n_practices=120,
    ),
    "UK": CountryProfile(
        n=1_000,
        age_mean=70.0,
        age_sd=9.0,
        p_female=0.47,
        never_logit=-2.1,
        never_female_logor=0.6,
        current_logit=-0.5,
        current_female_logor=-0.2,
        squamous_logit=-2.0,
        driver_logit=-3.0,
        pdl1_logit=-0.85,
        ecog1_logit=0.4,
        ecog2_logit=-1.1,
        stage_probs=(0.10, 0.15, 0.75),
        io_logit=-1.5,
        chemo_io_logit=0.2,
        targeted_logit=-4.0,
        setting_loghr=0.10,
        u_prevalence=0.25,
        n_practices=30,
    ),
    "DE": CountryProfile(
        n=500,
        age_mean=71.5,
        age_sd=8.5,
        p_female=0.36,
        never_logit=-2.0,
        never_female_logor=0.6,
        current_logit=-0.2,
        current_female_logor=-0.2,
        squamous_logit=-1.8,
        driver_logit=-2.9,
        pdl1_logit=-0.85,
        ecog1_logit=0.0,
        ecog2_logit=-1.9,
        stage_probs=(0.12, 0.18, 0.70),
        io_logit=-1.3,
        chemo_io_logit=0.8,
        targeted_logit=-4.0,
        setting_loghr=0.0,
        u_prevalence=0.25,
        n_practices=20,
    ),
    "JP": CountryProfile(
        n=800,
        age_mean=69.5,
        age_sd=8.5,
        p_female=0.31,
        never_logit=-1.6,
        never_female_logor=2.2,
        current_logit=-0.4,
        current_female_logor=-0.5,
        squamous_logit=-2.2,
        driver_logit=-1.7,
        pdl1_logit=-0.95,
        ecog1_logit=-0.6,
        ecog2_logit=-2.4,
        stage_probs=(0.18, 0.17, 0.65),
        io_logit=-1.6,
        chemo_io_logit=0.3,
        targeted_logit=-3.7,
        setting_loghr=-0.15,
        u_prevalence=0.10,
        n_practices=25,
    ),
}


@dataclass(frozen=True)
class OutcomeModel:
    """Weibull hazards of death (OS) and progression (PFS = min(OS, progression)).

    ``S_OS(t | x, U) = exp(-(t / scale_os) ** shape[regimen] * exp(lp(x) + setting +
    u_main U + u_io U [io or chemo-io]))``; progression likewise with ``scale_prog``,
    ``shape_prog`` and ``prog_attenuation * lp(x)``. The shape differs by regimen, so
    hazards are not proportional. ``lp(x)`` is written out in the README; its
    coefficients are the fields below.
    """

    scale_os: float = 400.0
    shape: dict[str, float] = field(
        default_factory=lambda: {"chemo": 1.25, "io": 1.0, "chemo-io": 1.05, "targeted": 1.35}
    )
    scale_prog: float = 330.0
    shape_prog: float = 1.15
    prog_attenuation: float = 0.8
    age_per_year: float = 0.015
    female: float = -0.15
    ecog1: float = 0.30
    ecog2: float = 0.85
    stage_early: float = -0.30
    stage_iii: float = -0.10
    squamous: float = 0.10
    current_smoker: float = 0.10
    driver: float = -0.25
    pdl1_high: float = -0.10
    io: float = -0.25
    chemo_io: float = -0.35
    targeted: float = -0.10
    io_x_pdl1: float = -0.45
    chemo_io_x_pdl1: float = -0.15
    targeted_x_driver: float = -0.80
    targeted_x_no_driver: float = 0.40
    immuno_x_ecog2: float = 0.25
    immuno_x_driver: float = 0.30
    u_main: float = 0.10
    u_immuno: float = 0.50


@dataclass(frozen=True)
class CensoringModel:
    """Administrative censoring (uniform follow-up until the data cut-off) and loss to
    follow-up (exponential), independent of everything else; times in days."""

    admin_min: float = 90.0
    admin_max: float = 2190.0
    loss_rate: float = 0.00015


def _cdf_age(p: CountryProfile) -> np.ndarray:
    """P(age = a) for a = 35..90: a normal rounded to whole years, clipped."""
    edges = np.arange(AGE_MIN, AGE_MAX) + 0.5
    cdf = norm.cdf(edges, p.age_mean, p.age_sd)
    return np.diff(np.concatenate(([0.0], cdf, [1.0])))


def _smoking_probs(p: CountryProfile, female: np.ndarray) -> np.ndarray:
    """n x 3 probabilities of never, former, current."""
    never = np.exp(p.never_logit + p.never_female_logor * female)
    current = np.exp(p.current_logit + p.current_female_logor * female)
    total = 1.0 + never + current
    return np.column_stack((never / total, 1.0 / total, current / total))


def _regimen_probs(
    p: CountryProfile, driver: np.ndarray, pdl1: np.ndarray, ecog2: np.ndarray
) -> np.ndarray:
    """n x 4 probabilities of chemo, io, chemo-io, targeted."""
    io = np.exp(p.io_logit + 1.6 * pdl1 + 0.6 * ecog2 - 2.5 * driver)
    cio = np.exp(p.chemo_io_logit + 0.3 * pdl1 - 1.0 * ecog2 - 2.5 * driver)
    tgt = np.exp(p.targeted_logit + 6.0 * driver)
    total = 1.0 + io + cio + tgt
    return np.column_stack((1.0 / total, io / total, cio / total, tgt / total))


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of an n x k probability matrix."""
    u = np.asarray(rng.uniform(size=int(probs.shape[0])), dtype=np.float64)
    return (u[:, None] > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1)


def sample_covariates(
    profile: CountryProfile, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw ``n`` patients' covariates, as integer codes (see :func:`covariate_frame`).

    Codes: ``age`` in years; ``female`` 0/1; ``smoking`` index into :data:`SMOKING`;
    ``squamous``, ``driver`` (EGFR/ALK), ``pdl1`` (>= 50%) 0/1; ``ecog`` index into
    :data:`ECOG`; ``stage`` index into :data:`STAGES`; ``regimen`` index into
    :data:`REGIMENS`.
    """
    check_instances("sample_covariates", False, profile=(profile, CountryProfile))
    n = check_patients(n, "sample_covariates")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("The 'rng' parameter of sample_covariates must be a numpy Generator.")
    p = profile
    age = AGE_MIN + _pick(rng, np.broadcast_to(_cdf_age(p), (n, AGE_MAX - AGE_MIN + 1)))
    female = (rng.uniform(size=n) < p.p_female).astype(np.int64)
    smoking = _pick(rng, _smoking_probs(p, female))
    ever, current = (smoking > 0).astype(float), (smoking == 2).astype(float)
    squamous = (
        rng.uniform(size=n) < expit(p.squamous_logit + 1.3 * ever + 0.3 * current - 0.3 * female)
    ).astype(np.int64)
    driver = (
        rng.uniform(size=n)
        < expit(p.driver_logit + 2.0 * (smoking == 0) + 0.5 * female - 2.5 * squamous)
    ).astype(np.int64)
    pdl1 = (rng.uniform(size=n) < expit(p.pdl1_logit - 1.0 * driver + 0.2 * current)).astype(
        np.int64
    )
    u = rng.uniform(size=n)
    ge1 = expit(p.ecog1_logit + 0.03 * (age - 65))
    ge2 = expit(p.ecog2_logit + 0.03 * (age - 65))
    ecog = (u < ge1).astype(np.int64) + (u < ge2).astype(np.int64)
    stage = _pick(rng, np.broadcast_to(np.asarray(p.stage_probs), (n, 3)))
    regimen = _pick(rng, _regimen_probs(p, driver, pdl1, (ecog == 2).astype(float)))
    return {
        "age": age,
        "female": female,
        "smoking": smoking,
        "squamous": squamous,
        "driver": driver,
        "pdl1": pdl1,
        "ecog": ecog,
        "stage": stage,
        "regimen": regimen,
    }


def covariate_log_pmf(profile: CountryProfile, cov: dict[str, np.ndarray]) -> np.ndarray:
    """Exact log probability of each patient's covariate pattern in a country.

    The product of the conditional probabilities of :func:`sample_covariates`. The
    difference of two countries' values is the log density ratio: the true participation
    model ``log P(target | x) / P(source | x) = log_pmf_target - log_pmf_source +
    log(n_target / n_source)``.
    """
    check_instances("covariate_log_pmf", False, profile=(profile, CountryProfile))
    cov = check_codes(cov, CODE_RANGES, "covariate_log_pmf")
    p = profile
    age, female = cov["age"], cov["female"]
    lp = np.log(_cdf_age(p))[age - AGE_MIN]
    lp += np.log(np.where(female == 1, p.p_female, 1.0 - p.p_female))
    sm = _smoking_probs(p, female)
    lp += np.log(sm[np.arange(age.size), cov["smoking"]])
    ever, current = (cov["smoking"] > 0).astype(float), (cov["smoking"] == 2).astype(float)

    def bern(prob: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.log(np.where(x == 1, prob, 1.0 - prob))

    lp += bern(expit(p.squamous_logit + 1.3 * ever + 0.3 * current - 0.3 * female), cov["squamous"])
    lp += bern(
        expit(p.driver_logit + 2.0 * (cov["smoking"] == 0) + 0.5 * female - 2.5 * cov["squamous"]),
        cov["driver"],
    )
    lp += bern(expit(p.pdl1_logit - 1.0 * cov["driver"] + 0.2 * current), cov["pdl1"])
    ge1 = expit(p.ecog1_logit + 0.03 * (age - 65))
    ge2 = expit(p.ecog2_logit + 0.03 * (age - 65))
    ecog_p = np.column_stack((1.0 - ge1, ge1 - ge2, ge2))
    lp += np.log(ecog_p[np.arange(age.size), cov["ecog"]])
    lp += np.log(np.asarray(p.stage_probs))[cov["stage"]]
    reg = _regimen_probs(p, cov["driver"], cov["pdl1"], (cov["ecog"] == 2).astype(float))
    lp += np.log(reg[np.arange(age.size), cov["regimen"]])
    return lp


def linear_predictor(cov: dict[str, np.ndarray], m: OutcomeModel) -> np.ndarray:
    """``lp(x)``: the log hazard ratio of death for measured covariates (no setting, no U)."""
    reg = cov["regimen"]
    io, cio, tgt = (reg == 1), (reg == 2), (reg == 3)
    immuno = io | cio
    d, pd1 = cov["driver"], cov["pdl1"]
    return (
        m.age_per_year * (cov["age"] - 65)
        + m.female * cov["female"]
        + m.ecog1 * (cov["ecog"] == 1)
        + m.ecog2 * (cov["ecog"] == 2)
        + m.stage_early * (cov["stage"] == 0)
        + m.stage_iii * (cov["stage"] == 1)
        + m.squamous * cov["squamous"]
        + m.current_smoker * (cov["smoking"] == 2)
        + m.driver * d
        + m.pdl1_high * pd1
        + m.io * io
        + m.chemo_io * cio
        + m.targeted * tgt
        + m.io_x_pdl1 * io * pd1
        + m.chemo_io_x_pdl1 * cio * pd1
        + m.targeted_x_driver * tgt * d
        + m.targeted_x_no_driver * tgt * (1 - d)
        + m.immuno_x_ecog2 * immuno * (cov["ecog"] == 2)
        + m.immuno_x_driver * immuno * d
    )


def hazard_multipliers(
    cov: dict[str, np.ndarray], m: OutcomeModel, setting: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per patient: ``exp`` of the log hazard of death and of progression, for U = 0 and
    U = 1, and the Weibull shape of death (by regimen).

    Returns ``(death_u0, death_u1, prog_u0, prog_u1)`` multipliers; the shape array is
    obtained from :func:`death_shape`.
    """
    lp = linear_predictor(cov, m)
    immuno = ((cov["regimen"] == 1) | (cov["regimen"] == 2)).astype(float)
    u_shift = m.u_main + m.u_immuno * immuno
    death0 = np.exp(lp + setting)
    death1 = death0 * np.exp(u_shift)
    prog0 = np.exp(m.prog_attenuation * lp + setting)
    prog1 = prog0 * np.exp(m.prog_attenuation * u_shift)
    return death0, death1, prog0, prog1


def death_shape(cov: dict[str, np.ndarray], m: OutcomeModel) -> np.ndarray:
    """Weibull shape of the hazard of death for each patient (by regimen)."""
    return np.asarray([m.shape[r] for r in REGIMENS])[cov["regimen"]]


def _weibull_draw(
    rng: np.random.Generator, scale: float, shape: np.ndarray, mult: np.ndarray
) -> np.ndarray:
    """T with S(t) = exp(-(t / scale) ** shape * mult), by inversion."""
    e = rng.exponential(size=mult.size)
    return scale * (e / mult) ** (1.0 / shape)


def simulate_cohort(
    country: str,
    n: int | None = None,
    *,
    seed: int | np.random.Generator = 0,
    profile: CountryProfile | None = None,
    outcome: OutcomeModel | None = None,
    censoring: CensoringModel | None = None,
    setting_effect: bool = True,
    unmeasured_strength: float | None = None,
    missing: MissingMode | None = None,
    missing_rate: float = 0.2,
    return_truth_columns: bool = False,
) -> pl.DataFrame:
    """Simulate one country's cohort: identifiers, covariates, OS and PFS in whole days.

    Parameters
    ----------
    country
        One of :data:`COUNTRIES` (its :data:`PROFILES` entry), or any label when
        ``profile`` is given.
    n
        Number of patients (default: the profile's ``n``).
    seed
        Seed or ``numpy.random.Generator``; the same seed gives the same cohort.
    profile, outcome, censoring
        Override the country profile, the outcome model or the censoring model.
    setting_effect
        Include the country's ``setting_loghr`` (``False`` sets it to 0).
    unmeasured_strength
        Log hazard ratio of ``U`` among patients on immunotherapy (``io`` or
        ``chemo-io``); default the outcome model's ``u_immuno``. 0 switches the
        unmeasured modifier off.
    missing, missing_rate
        Make PD-L1 missing: ``"mcar"`` with probability ``missing_rate`` in every row;
        ``"mar"`` with probability ``expit(logit(missing_rate) - 0.4 + 1.0 [chemo] +
        0.8 [ECOG 2+])``, which depends on measured covariates only (its mean is near
        ``missing_rate``: 0.21 to 0.25 across the countries at 0.2).
    return_truth_columns
        Also return the unmeasured ``u`` and the latent event times (for validation
        only: never in a shipped file).

    Returns
    -------
    polars.DataFrame
        ``patient_id``, ``practice_id``, the covariates (:func:`covariate_frame`),
        ``os_days``, ``os_event``, ``pfs_days``, ``pfs_event``.
    """
    where = "simulate_cohort"
    check_country(country, list(PROFILES), where, any_label=profile is not None)
    check_instances(
        where,
        profile=(profile, CountryProfile),
        outcome=(outcome, OutcomeModel),
        censoring=(censoring, CensoringModel),
    )
    check_flags(where, setting_effect=setting_effect, return_truth_columns=return_truth_columns)
    missing_rate = check_missing(missing, missing_rate, where)
    p = profile if profile is not None else PROFILES[country]
    m = outcome if outcome is not None else OutcomeModel()
    if unmeasured_strength is not None:
        m = replace(m, u_immuno=check_strength(unmeasured_strength, where))
    cens = censoring if censoring is not None else CensoringModel()
    n = p.n if n is None else check_patients(n, where)
    rng = generator(seed)

    cov = sample_covariates(p, n, rng)
    u = (rng.uniform(size=n) < p.u_prevalence).astype(np.int64)
    setting = p.setting_loghr if setting_effect else 0.0
    d0, d1, p0, p1 = hazard_multipliers(cov, m, setting)
    t_death = _weibull_draw(rng, m.scale_os, death_shape(cov, m), np.where(u == 1, d1, d0))
    t_prog = _weibull_draw(rng, m.scale_prog, np.full(n, m.shape_prog), np.where(u == 1, p1, p0))
    admin = rng.uniform(cens.admin_min, cens.admin_max, n)
    lost = rng.exponential(1.0 / cens.loss_rate, n) if cens.loss_rate > 0 else np.full(n, np.inf)
    c = np.minimum(admin, lost)
    t_pfs = np.minimum(t_death, t_prog)
    os_days = np.ceil(np.minimum(t_death, c))
    pfs_days = np.ceil(np.minimum(t_pfs, c))

    practice_sizes = rng.dirichlet(np.full(p.n_practices, 2.0))
    practice = rng.choice(p.n_practices, size=n, p=practice_sizes)
    width = len(str(n))
    frame = pl.DataFrame(
        {
            "patient_id": [f"{country}-{i + 1:0{width}d}" for i in range(n)],
            "practice_id": [f"{country}-P{k + 1:03d}" for k in practice],
            **covariate_frame(cov),
            "os_days": os_days.astype(np.int64),
            "os_event": (t_death <= c).astype(np.int64),
            "pfs_days": pfs_days.astype(np.int64),
            "pfs_event": (t_pfs <= c).astype(np.int64),
        }
    )
    if missing is not None:
        if missing == "mcar":
            prob = np.full(n, missing_rate)
        else:  # "mar"
            base = np.log(missing_rate / (1 - missing_rate))
            prob = expit(base - 0.4 + 1.0 * (cov["regimen"] == 0) + 0.8 * (cov["ecog"] == 2))
        drop = rng.uniform(size=n) < prob
        frame = frame.with_columns(
            pl.when(pl.Series(drop)).then(None).otherwise(pl.col("pdl1")).alias("pdl1")
        )
    if return_truth_columns:
        frame = frame.with_columns(
            pl.Series("u", u), pl.Series("t_death", t_death), pl.Series("t_pfs", t_pfs)
        )
    return frame
