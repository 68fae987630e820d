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
# This vignette estimates overall survival (OS) in the bundled synthetic US cohort of
# patients starting first-line therapy for advanced non-small-cell lung cancer: the
# Kaplan–Meier curve with its risk table, the median, survival at landmark times and the
# restricted mean survival time (RMST), each with a confidence interval. The synthetic
# data come with their true curves, so every estimate can be checked against the truth.
#
# Run it as a plain script: `python 01_getting_started.py` writes its figures to
# `figures/`.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

import transport as tp

FIGURES = Path("figures")
FIGURES.mkdir(exist_ok=True)

# %% [markdown]
# ## A cohort
#
# `load_synthetic` returns a `Cohort` with its roles set: time `os_days`, event
# `os_event`, nine covariates, and the patient and practice identifiers. Building a
# `Cohort` yourself from a frame with a few missing ECOG scores shows what happens to
# incomplete rows.

# %%
cohort = tp.datasets.load_synthetic("US")
print(cohort)

frame = pl.read_parquet(tp.datasets.data_dir() / "US.parquet").with_columns(
    pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise(pl.col("ecog")).alias("ecog")
)
incomplete = tp.Cohort(frame, time="os_days", event="os_event", covariates=["age", "ecog"],
                       identifiers=["patient_id", "practice_id"], name="US (incomplete)",
                       na_action="drop")  # fmt: skip
print(incomplete.exclusions)

# %% [markdown]
# Rows with a missing ECOG score were dropped and counted: nothing disappears silently.
# The identifier columns are kept for linkage inside this environment and never appear
# in a table or a figure. Work in months from here (a month is 365.25 / 12 days).

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
# ## Against the truth
#
# The true US curve is known (`load_truth`, in days). Each estimate's interval holds it.

# %%
truth = tp.datasets.load_truth().filter(
    (pl.col("source") == "US")
    & (pl.col("target") == "US")
    & (pl.col("quantity") == "target")
    & (pl.col("outcome") == "os")
)
true_median = truth.filter(pl.col("estimand") == "median")["value"][0] / (365.25 / 12)
true_1y = truth.filter((pl.col("estimand") == "survival") & (pl.col("time") == 365.0))["value"][0]
km_1y = tp.kaplan_meier(cohort).at([365.0])
print(
    f"true median OS {true_median:.1f} months; estimate {median.value:.1f} "
    f"({median.ci_lower:.1f} to {median.ci_upper:.1f})"
)
print(
    f"true 1-year OS {true_1y:.3f}; estimate {km_1y['survival'][0]:.3f} "
    f"({km_1y['ci_lower'][0]:.3f} to {km_1y['ci_upper'][0]:.3f})"
)

# %% [markdown]
# ## The curve with its risk table

# %%
fig, ax = plt.subplots(figsize=(7, 4.8))
km.plot(ax=ax, risk_times=[0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60])
ax.set_title("Overall survival, synthetic US cohort")
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
        event="os_event",
        name=f"ECOG {level}",
        time_unit="months",
    )
    tp.kaplan_meier(sub).plot(ax=ax, risk_times=[0, 12, 24, 36, 48, 60])
ax.legend()
fig.subplots_adjust(bottom=0.4, left=0.2)
fig.savefig(FIGURES / "01_km_by_ecog.png", dpi=120)
print(f"wrote {FIGURES / '01_km_by_ecog.png'}")
