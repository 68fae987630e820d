# Reference numbers for the Cox model, from R's survival package.
#
#   Rscript tests/r/cox_reference.R tests/r
#
# Fits coxph(Surv(os_days, os_event) ~ covariates) on tests/r/data/cox_source.csv with
# ties "breslow" and "efron", unweighted and with weights w, to a relative tolerance of
# 1e-14, and predicts survival for the 25 patients of cox_newdata.csv at fixed times with
# survfit(fit, newdata=). Writes tests/r/cox_reference/{coef,loglik,survival}.csv; coef
# holds R's reported SE (robust for weighted fits) and the inverse-information naive_se.
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args)) args[1] else "tests/r"
outdir <- file.path(root, "cox_reference")
dir.create(outdir, showWarnings = FALSE)
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "synthetic_levels.R"))
src <- read_synthetic(root, "cox_source.csv"); newdata <- read_synthetic(root, "cox_newdata.csv")
times <- c(30, 91, 183, 365, 548, 730, 1096)
form <- Surv(os_days, os_event) ~ age + sex + ecog + stage + histology + smoking +
  egfr_alk + pdl1 + regimen
coef_rows <- list(); ll_rows <- list(); s_rows <- list()
for (ties in c("breslow", "efron")) {
  for (weighted in c(FALSE, TRUE)) {
    case <- paste0(ties, if (weighted) "_weighted" else "")
    fit <- if (weighted) {
      coxph(form, data = src, ties = ties, weights = w,
            control = coxph.control(eps = 1e-14, iter.max = 100, toler.chol = 1e-15))
    } else {
      coxph(form, data = src, ties = ties,
            control = coxph.control(eps = 1e-14, iter.max = 100, toler.chol = 1e-15))
    }
    naive <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
    coef_rows[[case]] <- data.frame(case = case, term = names(coef(fit)), estimate = coef(fit),
                                    se = sqrt(diag(fit$var)), naive_se = sqrt(diag(naive)))
    ll_rows[[case]] <- data.frame(case = case, loglik = fit$loglik[2])
    sf <- summary(survfit(fit, newdata = newdata), times = times, extend = TRUE)
    s <- sf$surv  # times x patients
    s_rows[[case]] <- data.frame(case = case, time = rep(times, ncol(s)),
                                 patient = rep(seq_len(ncol(s)), each = length(times)),
                                 surv = as.vector(s))
  }
}
fmt <- function(df) { for (j in names(df)) if (is.numeric(df[[j]])) df[[j]] <- format(df[[j]], digits = 17, trim = TRUE); df }
write.csv(fmt(do.call(rbind, coef_rows)), file.path(outdir, "coef.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, ll_rows)), file.path(outdir, "loglik.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, s_rows)), file.path(outdir, "survival.csv"), row.names = FALSE)
