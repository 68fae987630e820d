# Reference numbers for the piecewise exponential model, from R's glm(poisson).
#
#   Rscript tests/r/pwexp_reference.R tests/r
#
# Reads tests/r/data/cox_source.csv, cox_newdata.csv and pwexp_breaks.csv (interior cut
# points, make_pwexp_cases.py). Splits every row at the cuts with survival::survSplit,
# so each person-interval row has exposure tstop - tstart and an event if the patient
# dies in it, and fits
#   glm(event ~ 0 + interval + covariates [+ covariates:s], poisson, offset = log(exposure))
# with s = log(m_k) - center: m_k the midpoint of a finite interval, the mean time at risk
# in the open last one, center the exposure-weighted mean of log(m_k). Cases: "tv" and
# "ph" (with and without the covariates:s terms), each unweighted and with weights w
# (case weights, "_weighted"). Convergence well below glm's default tolerance. Writes
# tests/r/pwexp_reference/:
#   coef.csv       case, term, estimate, se (inverse information), robust_se
#                  (sandwich::vcovCL clustered by patient, HC0, no small-sample factor)
#   loglik.csv     case, loglik (Poisson log-likelihood), center
#   intervals.csv  case, interval, mid, events, exposure (weighted)
#   survival.csv   case, time, patient, surv = exp(-sum_k h_k(x) |(0, t] & interval k|)
suppressPackageStartupMessages({library(survival); library(sandwich)})
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "pwexp_reference")
dir.create(outdir, showWarnings = FALSE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "synthetic_levels.R"))
src <- read_synthetic(root, "cox_source.csv"); newdata <- read_synthetic(root, "cox_newdata.csv")
cuts <- read.csv(file.path(root, "data", "pwexp_breaks.csv"))$cut
src$id <- seq_len(nrow(src))
long <- survSplit(Surv(os_days, os_event) ~ ., data = src, cut = cuts, start = "tstart",
                  end = "tstop", event = "event")
long$interval <- factor(findInterval(long$tstart, c(0, cuts)), levels = seq_len(length(cuts) + 1))
long$exposure <- long$tstop - long$tstart
stopifnot(all(long$exposure > 0))
lower <- c(0, cuts); upper <- c(cuts, Inf); K <- length(lower)
labels <- paste0("interval(", lower, ",", ifelse(is.finite(upper), paste0(upper, "]"), "inf)"))
covs <- "age + sex + ecog + stage + histology + smoking + egfr_alk + pdl1 + regimen"
times <- c(1, 30, 91, 183, 365, 548, 730, 1096, 2000)
coef_rows <- list(); ll_rows <- list(); iv_rows <- list(); s_rows <- list()
for (tv in c(TRUE, FALSE)) {
  for (weighted in c(FALSE, TRUE)) {
    case <- paste0(if (tv) "tv" else "ph", if (weighted) "_weighted" else "")
    long$wt <- if (weighted) long$w else 1
    wrow <- if (weighted) src$w else rep(1, nrow(src))
    # representative times and the centring constant
    last <- pmax(src$os_days - lower[K], 0)
    mid <- c((lower[-K] + upper[-K]) / 2, lower[K] + sum(wrow * last^2) / (2 * sum(wrow * last)))
    expo <- tapply(long$wt * long$exposure, long$interval, sum)
    center <- sum(expo * log(mid)) / sum(expo)
    long$s <- log(mid)[as.integer(long$interval)] - center
    f <- as.formula(paste("event ~ 0 + interval +", covs,
                          if (tv) paste("+ (", covs, "):s") else ""))
    fit <- glm(f, family = poisson, data = long, weights = wt, offset = log(exposure),
               control = glm.control(epsilon = 1e-15, maxit = 100))
    b <- coef(fit)
    p <- (length(b) - K) / (if (tv) 2 else 1)
    names_x <- names(b)[K + seq_len(p)]
    terms <- c(labels, names_x, if (tv) paste0("log(t):", names_x))
    coef_rows[[case]] <- data.frame(
      case = case, term = terms, estimate = unname(b), se = sqrt(diag(vcov(fit))),
      robust_se = sqrt(diag(vcovCL(fit, cluster = ~id, type = "HC0", cadjust = FALSE))))
    ll_rows[[case]] <- data.frame(case = case, loglik = as.numeric(logLik(fit)), center = center)
    events <- tapply(long$wt * long$event, long$interval, sum)
    iv_rows[[case]] <- data.frame(case = case, interval = labels, mid = mid,
                                  events = as.vector(events), exposure = as.vector(expo))
    # predictions by hand
    Xn <- model.matrix(as.formula(paste("~", covs)), newdata)[, -1, drop = FALSE]
    stopifnot(identical(colnames(Xn), names_x))
    beta <- b[K + seq_len(p)]
    gamma <- if (tv) b[K + p + seq_len(p)] else rep(0, p)
    s <- log(mid) - center
    logh <- outer(rep(1, nrow(Xn)), b[seq_len(K)]) + as.vector(Xn %*% beta) +
      outer(as.vector(Xn %*% gamma), s)
    overlap <- sapply(times, function(t) pmax(pmin(t, upper) - lower, 0))  # K x times
    surv <- exp(-exp(logh) %*% overlap)  # patients x times
    s_rows[[case]] <- data.frame(case = case, time = rep(times, each = nrow(surv)),
                                 patient = rep(seq_len(nrow(surv)), length(times)),
                                 surv = as.vector(surv))
  }
}
fmt <- function(df) { for (j in names(df)) if (is.numeric(df[[j]])) df[[j]] <- format(df[[j]], digits = 17, trim = TRUE); df }
write.csv(fmt(do.call(rbind, coef_rows)), file.path(outdir, "coef.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, ll_rows)), file.path(outdir, "loglik.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, iv_rows)), file.path(outdir, "intervals.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, s_rows)), file.path(outdir, "survival.csv"), row.names = FALSE)
