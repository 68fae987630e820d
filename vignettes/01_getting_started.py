# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Getting started: real-world overall survival in one cohort
#
# This vignette estimates overall survival (OS) in a cohort of patients with advanced
# non-small-cell lung cancer on first-line treatment: the Kaplan–Meier curve with its
# risk table, the median, survival at landmark times and the restricted mean survival
# time (RMST), each with a confidence interval.
#
# The cohort is simulated inline (seeded) until the bundled synthetic cohorts exist.
# Run it as a plain script: `python 01_getting_started.py` writes its figures to
# `figures/`.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

import transport as tp

FIGURES = Path("figures")
FIGURES.mkdir(exist_ok=True)

# %% [markdown]
# ## A cohort
#
# 1,200 patients; OS in days from the start of first-line therapy, Weibull with a worse
# prognosis for older patients and poorer ECOG performance status; administrative
# censoring at the data cut-off and some loss to follow-up. A few rows have a missing
# ECOG score, as real-world data do.

# %%
rng = np.random.default_rng(2026)
n = 1200
age = rng.normal(66, 9, n).round(0)
ecog = rng.choice(["0", "1", "2+"], n, p=[0.35, 0.45, 0.20])
lp = 0.02 * (age - 66) + np.select([ecog == "1", ecog == "2+"], [0.35, 0.9], 0.0)
t_event = 420 * rng.weibull(1.0, n) * np.exp(-lp / 1.15)
t_admin = rng.uniform(180, 1800, n)  # staggered entry before the data cut-off
t_lost = rng.exponential(4000, n)
os_days = np.minimum.reduce([t_event, t_admin, t_lost]).round(0) + 1
death = (t_event <= np.minimum(t_admin, t_lost)).astype(int)
ecog_obs = np.where(rng.uniform(size=n) < 0.02, None, ecog)
frame = pl.DataFrame(
    {"patient_id": np.arange(n), "os_days": os_days, "death": death, "age": age, "ecog": ecog_obs}
)

cohort = tp.Cohort(
    frame,
    time="os_days",
    event="death",
    covariates=["age", "ecog"],
    identifiers=["patient_id"],
    name="Cohort A",
    time_unit="days",
    na_action="drop",
)
print(cohort)
print(cohort.exclusions)

# %% [markdown]
# Rows with a missing ECOG score were dropped and counted: nothing disappears silently.
# The identifier column is kept for linkage inside this environment and never appears in
# a table or a figure. Work in months from here (a month is 365.25 / 12 days).

# %%
cohort_m = cohort.in_unit("months")
km = tp.kaplan_meier(cohort_m)  # log-log intervals, Greenwood standard errors
print(km)

# %% [markdown]
# ## Median, landmark survival and RMST

# %%
median = km.median()
print(
    f"median OS: {median.value:.1f} months (95% CI {median.ci_lower:.1f} to {median.ci_upper:.1f})"
)
landmarks = km.at([6.0, 12.0, 24.0])
print(landmarks)
rmst = km.rmst(24.0)
print(
    f"RMST to 24 months: {rmst.value:.2f} months (SE {rmst.se:.2f}, "
    f"95% CI {rmst.ci_lower:.2f} to {rmst.ci_upper:.2f})"
)

# %% [markdown]
# ## The curve with its risk table

# %%
fig, ax = plt.subplots(figsize=(7, 4.8))
km.plot(ax=ax, risk_times=[0, 6, 12, 18, 24, 30, 36, 42, 48, 54])
ax.set_title("Overall survival, Cohort A")
fig.subplots_adjust(bottom=0.3, left=0.2)
fig.savefig(FIGURES / "01_km.png", dpi=120)
print(f"wrote {FIGURES / '01_km.png'}")

# %% [markdown]
# ## By ECOG performance status
#
# One curve per level, on the same axes; each curve brings its own risk row.

# %%
fig, ax = plt.subplots(figsize=(7, 5.2))
full = cohort_m.to_frame()
for level in cohort_m.levels["ecog"]:
    sub = tp.Cohort(
        full.filter(pl.col("ecog") == level),
        time="os_days",
        event="death",
        name=f"ECOG {level}",
        time_unit="months",
    )
    tp.kaplan_meier(sub).plot(ax=ax, risk_times=[0, 12, 24, 36, 48])
ax.legend()
fig.subplots_adjust(bottom=0.4, left=0.2)
fig.savefig(FIGURES / "01_km_by_ecog.png", dpi=120)
print(f"wrote {FIGURES / '01_km_by_ecog.png'}")
