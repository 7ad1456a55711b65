# Pooled regressions on R's own incomplete tables: cissvae's mids (default call, m = 5) beside
# mice's own (its defaults: pmm, logreg, polyreg, polr; m = 5, maxit = 5) and complete cases.
# Prints a markdown table. Run from the repository root after `make test-r`:
#   RETICULATE_PYTHON=.venv/bin/python R_LIBS=.r-lib Rscript benchmarks/r_pooled.R
suppressPackageStartupMessages({library(cissvae); library(mice)})
analyses <- list(
  list(data = "nhanes2", formula = quote(chl ~ age + bmi)),
  list(data = "boys", formula = quote(tv ~ age + hgt)),
  list(data = "boys", formula = quote(wgt ~ age + hgt + reg))
)
row <- function(s, term) {
  i <- which(as.character(s$term) == term)
  sprintf("%.3f (%.3f)", s$estimate[i], s$std.error[i])
}
lines <- c("| table | model | term | CISS-VAE | mice | complete cases |", "|---|---|---|---|---|---|")
seconds <- c(cissvae = 0, mice = 0)
for (a in analyses) {
  data <- get(a$data, envir = asNamespace("mice"))
  t0 <- proc.time()[["elapsed"]]
  fit <- call("lm", a$formula)  # lm(<formula>) evaluated in each completed table
  imp <- cissvae_mids(data, m = 5, seed = 1, print_dataset = FALSE)
  ours <- summary(pool(eval(bquote(with(imp, .(fit))))))
  t1 <- proc.time()[["elapsed"]]
  imp <- mice(data, m = 5, seed = 1, printFlag = FALSE)
  theirs <- summary(pool(eval(bquote(with(imp, .(fit))))))
  t2 <- proc.time()[["elapsed"]]
  seconds <- seconds + c(t1 - t0, t2 - t1)
  cc <- summary(lm(eval(a$formula), data = data))$coefficients
  cc <- data.frame(term = rownames(cc), estimate = cc[, 1], std.error = cc[, 2])
  for (term in as.character(theirs$term)) {
    lines <- c(lines, sprintf("| %s (n = %d) | `%s` | %s | %s | %s | %s |", a$data, nrow(data), deparse(a$formula), term,
                              row(ours, term), row(theirs, term), row(cc, term)))
  }
}
cat(lines, sep = "\n")
cat(sprintf("\nwall time: cissvae_mids %.0f s, mice %.1f s (all three analyses)\n", seconds[["cissvae"]], seconds[["mice"]]))
