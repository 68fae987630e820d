# Reference entropy-balancing weights, computed in R independently of the package.
#
#   Rscript tests/r/entropy_reference.R tests/r
#
# Reads tests/r/data/iow_source.csv and iow_target.csv, builds the design with R's
# model.matrix (treatment contrasts, first level = reference), and solves the dual of
# entropy balancing, min_lambda log sum_i exp(lambda' (c_i - m)), by damped Newton steps
# on standardised columns until the largest standardised imbalance is below 1e-13.
# Writes tests/r/entropy_reference/weights.csv (case, row, weight; weights sum to n).
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "entropy_reference")
dir.create(outdir, showWarnings = FALSE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "synthetic_levels.R"))
src <- read_synthetic(root, "iow_source.csv"); tgt <- read_synthetic(root, "iow_target.csv")
solve_dual <- function(C, m) {
  s <- apply(C, 2, function(x) sqrt(mean((x - mean(x))^2)))
  s[s == 0] <- 1
  Z <- sweep(sweep(C, 2, m), 2, s, "/")
  lam <- rep(0, ncol(Z))
  for (it in 1:200) {
    e <- as.vector(Z %*% lam); p <- exp(e - max(e)); p <- p / sum(p)
    g <- colSums(Z * p)
    if (max(abs(g)) < 1e-13) break
    H <- crossprod(Z * sqrt(p)) - tcrossprod(g)
    step <- solve(H, g)
    f0 <- log(sum(exp(e - max(e)))) + max(e)
    t <- 1
    repeat {
      e1 <- as.vector(Z %*% (lam - t * step))
      if (log(sum(exp(e1 - max(e1)))) + max(e1) <= f0 || t < 1e-10) break
      t <- t / 2
    }
    lam <- lam - t * step
  }
  e <- as.vector(Z %*% lam); p <- exp(e - max(e)); p / sum(p)
}
cases <- list(
  main = ~ age + sex + ecog + stage + histology + smoking + egfr_alk + pdl1 + regimen,
  interactions = ~ age + sex + ecog + pdl1 + egfr_alk + regimen + age:sex + ecog:pdl1)
rows <- list()
for (name in names(cases)) {
  Cs <- model.matrix(cases[[name]], src)[, -1, drop = FALSE]
  Ct <- model.matrix(cases[[name]], tgt)[, -1, drop = FALSE]
  w <- solve_dual(Cs, colMeans(Ct)) * nrow(Cs)
  rows[[name]] <- data.frame(case = name, row = seq_along(w), weight = w)
}
# second moments: the squares of the non-binary columns (age) as well
Cs <- model.matrix(cases$main, src)[, -1, drop = FALSE]
Ct <- model.matrix(cases$main, tgt)[, -1, drop = FALSE]
w <- solve_dual(cbind(Cs, age2 = Cs[, "age"]^2),
                c(colMeans(Ct), mean(Ct[, "age"]^2))) * nrow(Cs)
rows$moments2 <- data.frame(case = "moments2", row = seq_along(w), weight = w)
out <- do.call(rbind, rows)
out$weight <- format(out$weight, digits = 17, trim = TRUE)
write.csv(out, file.path(outdir, "weights.csv"), row.names = FALSE)
