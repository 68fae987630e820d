# Reference numbers for transport.simulate.performance, in plain R from the formulas of
# Morris, White & Crowther (2019), Statistics in Medicine 38:2074-2102, Table 6.
# (rsimsum is not packaged in Debian; this script is written from the paper, not from
# the Python code.)
#
#   Rscript tests/r/metrics_reference.R tests/r
#
# Reads tests/r/data/metrics_replicates.csv (make_metrics_cases.py): one row per
# replicate, columns scenario, method, estimand, time, rep, estimate, se, ci_lower,
# ci_upper, truth. Writes tests/r/metrics_reference/metrics.csv: one row per
# scenario x method x estimand x time, numbers to 17 significant digits, NA as "".
#
# Conventions (the ones documented in transport.simulate.metrics):
#   n_reps      replicates with a finite estimate; n_failed the others (NA, NaN, +-Inf)
#   n_model_se  of these, replicates with a finite se
#   n_ci        of these, replicates with both interval limits present (not NA/NaN);
#               an infinite limit is an unbounded interval
#   a measure is NA when the replicates it needs are absent, an MCSE when it rests on
#   fewer than 2 replicates; relative bias is NA for truth 0, the relative error of the
#   model SE when EmpSE is 0; an MCSE from a zero variance is 0 (model SE when all
#   se^2 are equal, RMSE when MSE is 0).
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "metrics_reference")
dir.create(outdir, showWarnings = FALSE)

reps <- read.csv(file.path(root, "data", "metrics_replicates.csv"), na.strings = "",
                 stringsAsFactors = FALSE)
keys <- c("scenario", "method", "estimand", "time")

measures <- function(d) {
  theta <- unique(d$truth)
  stopifnot(length(theta) == 1, is.finite(theta))
  ok <- is.finite(d$estimate)
  est <- d$estimate[ok]
  n <- length(est)
  se <- d$se[ok]
  se <- se[is.finite(se)]
  m <- length(se)
  lo <- d$ci_lower[ok]; hi <- d$ci_upper[ok]
  has <- !is.na(lo) & !is.na(hi)
  lo <- lo[has]; hi <- hi[has]
  k <- length(lo)
  r <- list(n_reps = n, n_failed = nrow(d) - n, n_model_se = m, n_ci = k)
  for (nm in c("bias", "relative_bias", "empirical_se", "model_se",
               "relative_error_model_se", "coverage", "be_coverage", "mse", "rmse")) {
    r[[nm]] <- NA_real_
    r[[paste0(nm, "_mcse")]] <- NA_real_
  }
  if (n == 0) return(r)

  thetabar <- mean(est)
  # Bias: (1/n) sum(est) - theta; MCSE sqrt(sum((est - thetabar)^2) / (n (n - 1)))
  r$bias <- thetabar - theta
  if (theta != 0) r$relative_bias <- r$bias / theta
  # MSE: (1/n) sum((est - theta)^2); MCSE sqrt(sum(((est-theta)^2 - MSE)^2) / (n (n-1)))
  sq <- (est - theta)^2
  r$mse <- mean(sq)
  r$rmse <- sqrt(r$mse)
  if (n >= 2) {
    r$bias_mcse <- sqrt(sum((est - thetabar)^2) / (n * (n - 1)))
    if (theta != 0) r$relative_bias_mcse <- r$bias_mcse / abs(theta)
    # EmpSE: sqrt(sum((est - thetabar)^2) / (n - 1)); MCSE EmpSE / sqrt(2 (n - 1))
    r$empirical_se <- sd(est)
    r$empirical_se_mcse <- r$empirical_se / sqrt(2 * (n - 1))
    r$mse_mcse <- sqrt(sum((sq - r$mse)^2) / (n * (n - 1)))
    # RMSE: delta method, MCSE(MSE) / (2 RMSE)
    r$rmse_mcse <- if (r$mse == 0) 0 else r$mse_mcse / (2 * r$rmse)
  }
  if (m >= 1) {
    # ModSE: sqrt((1/m) sum(se^2)); MCSE sqrt(Var(se^2) / (4 m ModSE^2))
    r$model_se <- sqrt(mean(se^2))
    if (m >= 2) {
      v <- var(se^2)
      r$model_se_mcse <- if (v == 0) 0 else sqrt(v / (4 * m * r$model_se^2))
    }
    if (n >= 2 && r$empirical_se > 0) {
      # relative error: ModSE / EmpSE - 1;
      # MCSE (ModSE/EmpSE) sqrt(Var(se^2) / (4 m ModSE^4) + 1 / (2 (n - 1)))
      ratio <- r$model_se / r$empirical_se
      r$relative_error_model_se <- ratio - 1
      if (m >= 2) {
        term <- if (v == 0) 0 else v / (4 * m * r$model_se^4)
        r$relative_error_model_se_mcse <- ratio * sqrt(term + 1 / (2 * (n - 1)))
      }
    }
  }
  if (k >= 1) {
    # coverage: (1/k) sum(lo <= theta <= hi); bias-eliminated with thetabar for theta;
    # MCSE sqrt(C (1 - C) / k)
    r$coverage <- mean(lo <= theta & theta <= hi)
    r$be_coverage <- mean(lo <= thetabar & thetabar <= hi)
    if (k >= 2) {
      r$coverage_mcse <- sqrt(r$coverage * (1 - r$coverage) / k)
      r$be_coverage_mcse <- sqrt(r$be_coverage * (1 - r$be_coverage) / k)
    }
  }
  r
}

group_id <- do.call(paste, c(lapply(reps[keys], function(x) ifelse(is.na(x), "<NA>", x)),
                             sep = "\r"))
rows <- lapply(split(reps, group_id), function(d) {
  c(as.list(d[1, keys]), measures(d))
})
out <- do.call(rbind, lapply(rows, as.data.frame, stringsAsFactors = FALSE))
out <- out[order(out$scenario, out$method, out$estimand, out$time, na.last = FALSE), ]

fmt <- function(x) {
  if (is.character(x)) return(x)
  s <- sprintf("%.17g", x)
  s[is.na(x)] <- ""
  s
}
out[] <- lapply(out, fmt)
write.csv(out, file.path(outdir, "metrics.csv"), row.names = FALSE, quote = FALSE)
