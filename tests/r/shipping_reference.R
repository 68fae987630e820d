# Reference numbers for model shipping (transport/shipping.py), from R's survival package.
#
#   Rscript tests/r/shipping_reference.R tests/r
#
# Source: tests/r/data/cox_source.csv (2,000 US rows); target: shipping_target.csv (400 JP
# rows with outcomes, make_shipping_cases.py). The grid is that of transport's default
# disclosure policy: multiples of 30.4375 days, the last at or after the source's last
# time. Writes tests/r/shipping_reference/:
#   gformula.csv     case, time, surv: the g-formula, the mean over the target's patients
#                    of survfit(coxph, newdata = target) at every grid time. Cases
#                    "breslow" and "efron" (main effects), "efron_interaction"
#                    (+ age:sex), and "pwexp_tv": the piecewise exponential model with
#                    log-time-varying effects (glm poisson on survSplit rows, as in
#                    pwexp_reference.R) at the shipped cut points shipping_breaks.csv.
#   functionals.csv  case, quantity, time, value: for "efron" and "pwexp_tv", the mean
#                    curve off the grid (S at 100, 365 and 500 days), its median
#                    (uniroot) and RMST(730.5) (integrate). For Cox the curve between grid
#                    times is read as shipping.py documents it: each patient's cumulative
#                    hazard -log S(t | x) from survfit, linear between grid times (a
#                    constant hazard within each step); the pwexp curve is exact.
#   observed.csv     time, surv, std_err, n_risk: the target's Kaplan-Meier curve at the
#                    grid times (summary(survfit, times =)).
# Convergence well below the defaults (coxph eps 1e-14; glm epsilon 1e-15).
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "shipping_reference")
dir.create(outdir, showWarnings = FALSE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "synthetic_levels.R"))
src <- read_synthetic(root, "cox_source.csv"); target <- read_synthetic(root, "shipping_target.csv")
step <- 30.4375
grid <- step * seq_len(ceiling(max(src$os_days) / step - 1e-9))
covs <- "age + sex + ecog + stage + histology + smoking + egfr_alk + pdl1 + regimen"
off_grid <- c(100, 365, 500); tau <- 730.5
g_rows <- list(); f_rows <- list()

# a curve from each patient's cumulative hazard at the knots, linear in between
mean_curve <- function(knots, H) {  # H: patients x knots (H = 0 at time 0 prepended here)
  k0 <- c(0, knots); H0 <- cbind(0, H)
  function(t) sapply(t, function(u) {
    h <- apply(H0, 1, function(row) approx(k0, row, xout = u)$y)
    mean(exp(-h))
  })
}
functionals <- function(case, curve, knots) {
  s <- curve(off_grid)
  med <- uniroot(function(t) curve(t) - 0.5, c(knots[1] / 10, max(knots)), tol = 1e-12)$root
  segs <- c(0, knots[knots < tau], tau)
  rmst <- sum(sapply(seq_len(length(segs) - 1), function(j)
    integrate(curve, segs[j], segs[j + 1], rel.tol = 1e-12, subdivisions = 1000L)$value))
  data.frame(case = case, quantity = c(rep("survival", length(off_grid)), "median", "rmst"),
             time = c(off_grid, NA, tau), value = c(s, med, rmst))
}

for (case in c("breslow", "efron", "efron_interaction")) {
  ties <- sub("_.*", "", case)
  rhs <- if (case == "efron_interaction") paste(covs, "+ age:sex") else covs
  fit <- coxph(as.formula(paste("Surv(os_days, os_event) ~", rhs)), data = src, ties = ties,
               control = coxph.control(eps = 1e-14, iter.max = 100, toler.chol = 1e-15))
  S <- summary(survfit(fit, newdata = target), times = grid, extend = TRUE)$surv  # times x patients
  g_rows[[case]] <- data.frame(case = case, time = grid, surv = rowMeans(S))
  if (case == "efron") {
    H <- t(-log(S))
    f_rows[[case]] <- functionals(case, mean_curve(grid, H), grid)
  }
}

# piecewise exponential, log-time-varying effects, at the shipped cut points
cuts <- read.csv(file.path(root, "data", "shipping_breaks.csv"))$cut
long <- survSplit(Surv(os_days, os_event) ~ ., data = src, cut = cuts, start = "tstart",
                  end = "tstop", event = "event")
long$interval <- factor(findInterval(long$tstart, c(0, cuts)), levels = seq_len(length(cuts) + 1))
long$exposure <- long$tstop - long$tstart
lower <- c(0, cuts); upper <- c(cuts, Inf); K <- length(lower)
last <- pmax(src$os_days - lower[K], 0)
mid <- c((lower[-K] + upper[-K]) / 2, lower[K] + sum(last^2) / (2 * sum(last)))
expo <- tapply(long$exposure, long$interval, sum)
center <- sum(expo * log(mid)) / sum(expo)
long$s <- log(mid)[as.integer(long$interval)] - center
fit <- glm(as.formula(paste("event ~ 0 + interval +", covs, "+ (", covs, "):s")),
           family = poisson, data = long, offset = log(exposure),
           control = glm.control(epsilon = 1e-15, maxit = 100))
b <- coef(fit)
p <- (length(b) - K) / 2
Xn <- model.matrix(as.formula(paste("~", covs)), target)[, -1, drop = FALSE]
logh <- outer(rep(1, nrow(Xn)), b[seq_len(K)]) + as.vector(Xn %*% b[K + seq_len(p)]) +
  outer(as.vector(Xn %*% b[K + p + seq_len(p)]), log(mid) - center)
cumhaz <- function(t) exp(logh) %*% sapply(t, function(u) pmax(pmin(u, upper) - lower, 0))
pw_curve <- function(t) colMeans(exp(-cumhaz(t)))
g_rows[["pwexp_tv"]] <- data.frame(case = "pwexp_tv", time = grid, surv = pw_curve(grid))
f_rows[["pwexp_tv"]] <- functionals("pwexp_tv", pw_curve, grid)

km <- summary(survfit(Surv(os_days, os_event) ~ 1, data = target), times = grid[grid <= max(target$os_days)])
obs <- data.frame(time = km$time, surv = km$surv, std_err = km$std.err, n_risk = km$n.risk)

fmt <- function(df) { for (j in names(df)) if (is.numeric(df[[j]])) df[[j]] <- format(df[[j]], digits = 17, trim = TRUE); df }
write.csv(fmt(do.call(rbind, g_rows)), file.path(outdir, "gformula.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, f_rows)), file.path(outdir, "functionals.csv"), row.names = FALSE)
write.csv(fmt(obs), file.path(outdir, "observed.csv"), row.names = FALSE)
