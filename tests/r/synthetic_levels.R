# Shared by iow_reference.R, entropy_reference.R and cox_reference.R: read a CSV of the
# synthetic cohorts with the factor levels of transport.datasets.LEVELS (typed here; the
# first level is the reference of R's treatment contrasts).
levels_of <- list(
  sex = c("male", "female"), ecog = c("0", "1", "2+"), stage = c("IV", "III", "I-II"),
  histology = c("non-squamous", "squamous"), smoking = c("never", "former", "current"),
  egfr_alk = c("negative", "positive"), pdl1 = c("<50%", ">=50%"),
  regimen = c("chemo", "io", "chemo-io", "targeted"))
read_synthetic <- function(root, f) {
  d <- read.csv(file.path(root, "data", f), stringsAsFactors = FALSE,
                colClasses = c(age = "numeric", ecog = "character"))
  for (v in names(levels_of)) d[[v]] <- factor(d[[v]], levels = levels_of[[v]])
  d
}
