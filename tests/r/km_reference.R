# Reference numbers for the Kaplan-Meier kernel, from R's survival package.
#
#   Rscript tests/r/km_reference.R tests/r
#
# Reads tests/r/km_cases.csv and tests/r/data/<case>.csv (written by make_km_cases.py) and
# writes tests/r/km_reference/{curve,at,quantile,rmst,session}.csv. For every case and
# conf.type ("log-log", "log", "plain"):
#   curve     survfit(...) table: time, n.risk, n.event, n.censor, surv, std.err of S, lower, upper
#   at        summary(fit, times=, extend=TRUE): the same at requested times
#   quantile  quantile(fit, probs=c(.25, .5, .75)) with its band-inversion limits, and the
#             same quantities by first_cross() below: the first time each curve reaches
#             the level. The two agree when the bands are monotone; quantile.survfit's
#             approx() sorts a band that is not, and can then return a later time.
#   rmst      rmean and its standard error at each tau
# Unweighted cases use Greenwood's variance; "sampling" weights survfit(robust=TRUE) (the
# infinitesimal jackknife); "frequency" weights robust=FALSE (Greenwood on weighted counts).
# The RMST standard error for sampling weights integrates fit$influence.surv over time:
# se = sqrt(sum_i (int_0^tau U_i(t) dt)^2); otherwise it is print.survfit's se(rmean).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "km_reference")
dir.create(outdir, showWarnings = FALSE)
cases <- read.csv(file.path(root, "km_cases.csv"), stringsAsFactors = FALSE)
num <- function(s) as.numeric(strsplit(s, ";")[[1]])

# First time 1 - S (or 1 - band) reaches p, with quantile.survfit's tolerance and
# midpoint rules: the reference for the package's rule on bands of any shape.
first_cross <- function(time, surv, p, tol = sqrt(.Machine$double.eps)) {
  x <- c(0, time); y <- c(0, 1 - surv)
  i1 <- which(!is.na(y) & y + tol >= p)[1]
  i2 <- which(!is.na(y) & y - tol >= p)[1]
  if (is.na(i1)) return(NA_real_)
  if (!is.na(i2)) return((x[i1] + x[i2]) / 2)
  n <- length(y)
  if (!is.na(y[n]) && abs(p - y[n]) < tol) return((x[i1] + x[n]) / 2)
  NA_real_
}

curve_rows <- list(); at_rows <- list(); q_rows <- list(); r_rows <- list()
for (i in seq_len(nrow(cases))) {
  cs <- cases[i, ]
  d <- read.csv(file.path(root, "data", paste0(cs$case, ".csv")))
  d$id <- seq_len(nrow(d))
  y <- if (cs$has_entry == 1) Surv(d$entry, d$time, d$event) else Surv(d$time, d$event)
  for (ct in c("log-log", "log", "plain")) {
    fit <- switch(cs$weight_type,
      none = survfit(y ~ 1, conf.type = ct),
      sampling = survfit(y ~ 1, weights = d$weight, robust = TRUE, id = d$id,
                         influence = TRUE, conf.type = ct),
      frequency = survfit(y ~ 1, weights = d$weight, robust = FALSE, conf.type = ct))
    se_s <- if (isTRUE(fit$logse)) fit$std.err * fit$surv else fit$std.err
    curve_rows[[length(curve_rows) + 1]] <- data.frame(
      case = cs$case, conf_type = ct, time = fit$time, n_risk = fit$n.risk,
      n_event = fit$n.event, n_censor = fit$n.censor, surv = fit$surv, se = se_s,
      lower = fit$lower, upper = fit$upper)
    s <- summary(fit, times = num(cs$times), extend = TRUE)
    at_rows[[length(at_rows) + 1]] <- data.frame(
      case = cs$case, conf_type = ct, time = s$time, n_risk = s$n.risk, n_event = s$n.event,
      n_censor = s$n.censor, surv = s$surv, se = s$std.err, lower = s$lower, upper = s$upper)
    probs <- c(0.25, 0.5, 0.75)
    q <- quantile(fit, probs = probs)
    fc <- function(band) sapply(probs, function(p) first_cross(fit$time, band, p))
    q_rows[[length(q_rows) + 1]] <- data.frame(
      case = cs$case, conf_type = ct, p = probs, quantile = as.numeric(q$quantile),
      lower = as.numeric(q$lower), upper = as.numeric(q$upper),
      fc_quantile = fc(fit$surv), fc_lower = fc(fit$lower), fc_upper = fc(fit$upper))
    if (ct == "log-log") {
      for (tau in num(cs$taus)) {
        tab <- summary(fit, rmean = tau)$table
        est <- unname(tab["rmean"])
        if (cs$weight_type == "sampling") {
          tt <- fit$time
          right <- pmin(c(tt[-1], Inf), tau)
          width <- pmax(right - tt, 0)
          area <- as.vector(fit$influence.surv %*% width)
          se <- sqrt(sum(area^2))
        } else {
          se <- unname(tab["se(rmean)"])
        }
        r_rows[[length(r_rows) + 1]] <- data.frame(case = cs$case, tau = tau, rmst = est, se = se)
      }
    }
  }
}
w <- function(x, f) write.csv(do.call(rbind, x), file.path(outdir, f), row.names = FALSE)
options(digits = 17)
fmt <- function(df) { for (j in names(df)) if (is.numeric(df[[j]])) df[[j]] <- format(df[[j]], digits = 17, trim = TRUE, scientific = FALSE); df }
w(lapply(curve_rows, fmt), "curve.csv")
w(lapply(at_rows, fmt), "at.csv")
w(lapply(q_rows, fmt), "quantile.csv")
w(lapply(r_rows, fmt), "rmst.csv")
writeLines(c(R.version.string, paste("survival", as.character(packageVersion("survival")))),
           file.path(outdir, "session.txt"))
