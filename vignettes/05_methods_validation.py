# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Methods validation: which transport methods can be trusted, and when
#
# Before trusting a transport method on real data, the consortium checks it by
# simulation: data with a known truth, many replicates, and performance measures with
# their Monte Carlo standard errors (Morris, White & Crowther 2019), so that "unbiased"
# means "within a couple of Monte Carlo SEs of zero" rather than "looked fine once".
#
# This vignette runs a small study: five methods (naive, iow, entropy, gformula, aipw)
# across four built-in scenarios, in the study's time unit (months): S(12), the median
# and RMST(24) of the target population under the source's outcome mechanism. Run as a
# plain script: `python 05_methods_validation.py` (about a minute on two cores). The
# same study runs from the command line (`transport simulate study.toml`) and on a Dask
# cluster (`study.run(backend="dask", client=client)`), with identical numbers for the
# same seed.

# %%
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

import transport as tp
from transport.plotting import plot_study_coverage, plot_study_estimates

FIGURES = Path("figures")
FIGURES.mkdir(exist_ok=True)

print("built-in scenarios:", tp.simulate.scenarios())

# %% [markdown]
# ## The study
#
# * `correct`: every analysis model is right;
# * `participation_misspecified`: the participation (weighting) model omits a term;
# * `outcome_misspecified`: the outcome model omits it;
# * `both_misspecified`: both do.
#
# Influence-function intervals (no bootstrap) keep it quick; g-formula and AIPW have
# none without a bootstrap, so their coverage is blank here (`n_boot=200` gives them).

# %%
study = tp.simulate.Study(
    scenario=["correct", "participation_misspecified", "outcome_misspecified", "both_misspecified"],
    methods=["naive", "iow", "entropy", "gformula", "aipw"],
    n_reps=60,
    seed=20261122,
    times=[12.0],
    tau=24.0,
)
print(study.truth())
result = study.run(backend="processes", n_jobs=2)
metrics = result.metrics()

# %% [markdown]
# ## Performance, with Monte Carlo SEs
#
# Bias of S(12) in each scenario, and how many Monte Carlo SEs it is from zero:

# %%
s12 = metrics.filter((pl.col("estimand") == "survival") & (pl.col("time") == 12.0))
table = s12.select(
    "scenario",
    "method",
    "n_reps",
    pl.col("bias").round(4),
    pl.col("bias_mcse").round(4),
    (pl.col("bias") / pl.col("bias_mcse")).round(1).alias("bias_in_mcse"),
    pl.col("empirical_se").round(4),
    pl.col("coverage").round(3),
)
with pl.Config(tbl_rows=30, tbl_cols=10, tbl_width_chars=120):
    print(table)

# %% [markdown]
# What to read from it: the naive estimate is biased everywhere (it does not transport);
# the weighting methods are unbiased when the participation model is right, g-formula
# when the outcome model is right, and AIPW when either is, which is what "doubly
# robust" promises. With both wrong, nothing saves the estimate.


# %%
def within(scenario: str, method: str, k: float = 2.5) -> bool:
    row = s12.filter((pl.col("scenario") == scenario) & (pl.col("method") == method)).row(
        0, named=True
    )
    return abs(row["bias"]) <= k * row["bias_mcse"]


checks = {
    "aipw unbiased with the participation model wrong": within(
        "participation_misspecified", "aipw"
    ),
    "aipw unbiased with the outcome model wrong": within("outcome_misspecified", "aipw"),
    "gformula unbiased when its model is right": within("participation_misspecified", "gformula"),
    "naive biased": not within("correct", "naive", 5.0),
}
for what, ok in checks.items():
    print(f"{what}: {ok}")

# %% [markdown]
# ## Figures
#
# The estimates of every replicate against the truth, and coverage with its Monte Carlo
# interval against the nominal 95%.

# %%
fig, ax = plt.subplots(figsize=(10, 6))
plot_study_estimates(result, ax=ax, estimand="survival", time=12.0)
fig.tight_layout()
fig.savefig(FIGURES / "05_estimates.png", dpi=110)
plt.close(fig)

fig, ax = plt.subplots(figsize=(8, 5))
plot_study_coverage(metrics, ax=ax, estimand="survival", time=12.0)
fig.tight_layout()
fig.savefig(FIGURES / "05_coverage.png", dpi=110)
plt.close(fig)
print("failed replicates:", result.failures().height)
