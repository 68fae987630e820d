# Reference numbers for inverse odds weights, from R's glm.
#
#   Rscript tests/r/iow_reference.R tests/r
#
# Reads tests/r/data/iow_source.csv and iow_target.csv (make_iow_cases.py), stacks them
# with S = 1 for the source, fits glm(S ~ formula, binomial) to convergence well below
# the default tolerance, and writes tests/r/iow_reference/:
#   coef.csv     case, term, estimate, se
#   weights.csv  case, row, weight = exp(-linear predictor) for each source row
#   balance.csv  case, term, mean_source, mean_weighted, mean_target, smd_before,
#                smd_after (target SD, n - 1), smd_after_pooled, ess
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "iow_reference")
dir.create(outdir, showWarnings = FALSE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "synthetic_levels.R"))
src <- read_synthetic(root, "iow_source.csv"); tgt <- read_synthetic(root, "iow_target.csv")
stacked <- rbind(cbind(src, S = 1), cbind(tgt, S = 0))
cases <- list(
  main = ~ age + sex + ecog + stage + histology + smoking + egfr_alk + pdl1 + regimen,
  interactions = ~ age + sex + ecog + pdl1 + egfr_alk + regimen + age:sex + ecog:pdl1)
coef_rows <- list(); w_rows <- list(); b_rows <- list()
for (name in names(cases)) {
  f <- update(cases[[name]], S ~ .)
  fit <- glm(f, family = binomial, data = stacked,
             control = glm.control(epsilon = 1e-15, maxit = 100))
  co <- summary(fit)$coefficients
  coef_rows[[name]] <- data.frame(case = name, term = rownames(co), estimate = co[, 1],
                                  se = co[, 2])
  eta <- predict(fit, newdata = src, type = "link")
  w <- exp(-eta)
  w_rows[[name]] <- data.frame(case = name, row = seq_along(w), weight = w)
  Xs <- model.matrix(cases[[name]], src)[, -1, drop = FALSE]
  Xt <- model.matrix(cases[[name]], tgt)[, -1, drop = FALSE]
  ms <- colMeans(Xs); mt <- colMeans(Xt); mw <- colSums(Xs * w) / sum(w)
  sdt <- apply(Xt, 2, sd); pooled <- sqrt((apply(Xs, 2, var) + apply(Xt, 2, var)) / 2)
  b_rows[[name]] <- data.frame(case = name, term = colnames(Xs), mean_source = ms,
                               mean_weighted = mw, mean_target = mt,
                               smd_before = (ms - mt) / sdt, smd_after = (mw - mt) / sdt,
                               smd_after_pooled = (mw - mt) / pooled,
                               ess = sum(w)^2 / sum(w^2))
}
fmt <- function(df) { for (j in names(df)) if (is.numeric(df[[j]])) df[[j]] <- format(df[[j]], digits = 17, trim = TRUE); df }
write.csv(fmt(do.call(rbind, coef_rows)), file.path(outdir, "coef.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, w_rows)), file.path(outdir, "weights.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, b_rows)), file.path(outdir, "balance.csv"), row.names = FALSE)
