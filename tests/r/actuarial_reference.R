# Reference numbers for the released (coarsened) survival curve: the actuarial
# (life-table, Cutler & Ederer 1958) estimate on a fixed grid.
#
#   Rscript tests/r/actuarial_reference.R tests/r
#
# Reads tests/r/data/actuarial.csv (time, event; whole days) and actuarial_grid.csv (the
# grid: multiples of 30.4375 days covering the last time). For each grid interval
# (t_{j-1}, t_j]: Y the patients with time > t_{j-1}, d the events and c the censorings
# in it; S(t_j) = prod (1 - d / (Y - c/2)), Greenwood's SE S sqrt(sum d / (Y'(Y' - d)))
# with Y' = Y - c/2, and the log-log 95% interval. The same S is then checked with
# survival::survfit on a construction of the data: every event moved to the end of its
# interval, every censored patient split into two halves of weight 1/2, one censored just
# after the start of its interval (out of every risk set of the interval) and one at its
# end (after the events, in every risk set), so that survfit's weighted product-limit
# estimate is the actuarial one. Writes tests/r/actuarial_reference/actuarial.csv:
# time, survival, se, ci_lower, ci_upper, n_risk, n_event, n_censor.
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "actuarial_reference")
dir.create(outdir, showWarnings = FALSE)
d <- read.csv(file.path(root, "data", "actuarial.csv"))
grid <- read.csv(file.path(root, "data", "actuarial_grid.csv"))$time
start <- c(0, head(grid, -1))
Y <- sapply(start, function(a) sum(d$time > a))
ev <- mapply(function(a, b) sum(d$time > a & d$time <= b & d$event == 1), start, grid)
ce <- mapply(function(a, b) sum(d$time > a & d$time <= b & d$event == 0), start, grid)
Ye <- Y - ce / 2
S <- cumprod(1 - ev / Ye)
se <- S * sqrt(cumsum(ifelse(ev > 0, ev / (Ye * (Ye - ev)), 0)))
z <- qnorm(0.975)
lower <- S^exp(-z * se / (S * log(S)))
upper <- S^exp(z * se / (S * log(S)))
# the same S from survfit on the half-weight construction
j <- findInterval(d$time, grid, left.open = TRUE) + 1
end <- grid[j]
ev_rows <- data.frame(t = end[d$event == 1], e = 1, w = 1)
c_rows <- d$event == 0
early <- data.frame(t = start[j[c_rows]] + 1e-3, e = 0, w = 0.5)
late <- data.frame(t = end[c_rows], e = 0, w = 0.5)
long <- rbind(ev_rows, early, late)
fit <- survfit(Surv(t, e) ~ 1, data = long, weights = w)
S_fit <- summary(fit, times = grid, extend = TRUE)$surv
stopifnot(max(abs(S_fit - S)) < 1e-12)
out <- data.frame(time = grid, survival = S, se = se, ci_lower = lower, ci_upper = upper,
                  n_risk = Y, n_event = ev, n_censor = ce)
write.csv(out, file.path(outdir, "actuarial.csv"), row.names = FALSE)
cat(sprintf("actuarial: %d grid times, survfit construction agrees to %.1e\n",
            length(grid), max(abs(S_fit - S))))

# The weighted actuarial estimate (how a reweighted, transported curve is released) and
# its infinitesimal-jackknife SE: survfit with robust = TRUE, clustered on the patient,
# on the same half-weight construction with every row's weight multiplied by the
# patient's. Reads tests/r/data/actuarial_weighted.csv (time, event, weight; with rows
# leaving at time 0, exactly at a grid time and after the last grid time) and writes
# tests/r/actuarial_reference/actuarial_weighted.csv: time, survival, se.
dw <- read.csv(file.path(root, "data", "actuarial_weighted.csv"))
dw$id <- seq_len(nrow(dw))
j <- findInterval(dw$time, grid, left.open = TRUE) + 1
beyond <- j > length(grid)
end <- c(grid, Inf)[j]
e_rows <- dw$event == 1 & !beyond
c_rows <- dw$event == 0 & !beyond
longw <- rbind(
  data.frame(t = end[e_rows], e = 1, w = dw$weight[e_rows], id = dw$id[e_rows]),
  data.frame(t = start[j[c_rows]] + 1e-3, e = 0, w = dw$weight[c_rows] / 2, id = dw$id[c_rows]),
  data.frame(t = end[c_rows], e = 0, w = dw$weight[c_rows] / 2, id = dw$id[c_rows]),
  data.frame(t = dw$time[beyond], e = dw$event[beyond], w = dw$weight[beyond], id = dw$id[beyond])
)
fitw <- survfit(Surv(t, e) ~ 1, data = longw, weights = w, id = id, robust = TRUE)
sw <- summary(fitw, times = grid, extend = TRUE)
# the same S by direct arithmetic on the weighted counts
# the first interval is closed at 0: a row leaving at time 0 is in it (as in survfit)
after <- function(a) dw$time > a | (a == 0 & dw$time >= 0)
Yw <- sapply(start, function(a) sum(dw$weight[after(a)]))
evw <- mapply(function(a, b) sum(dw$weight[after(a) & dw$time <= b & dw$event == 1]), start, grid)
cew <- mapply(function(a, b) sum(dw$weight[after(a) & dw$time <= b & dw$event == 0]), start, grid)
Sw <- cumprod(1 - evw / (Yw - cew / 2))
stopifnot(max(abs(sw$surv - Sw)) < 1e-12)
write.csv(data.frame(time = grid, survival = sw$surv, se = sw$std.err),
          file.path(outdir, "actuarial_weighted.csv"), row.names = FALSE)
cat(sprintf("weighted actuarial: %d grid times, direct arithmetic agrees to %.1e\n",
            length(grid), max(abs(sw$surv - Sw))))
