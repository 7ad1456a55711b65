#' Multiple imputation as a mice `mids` object
#'
#' Draws `m` proper multiple imputations of `data` with CISS-VAE (the Python
#' `multiple_impute()`: one fit, then `m` bootstrap refits, imputation `i`
#' drawn from refit `i`) and returns them as a `mids` object built by
#' [mice::as.mids()] from the long table, so that mice's analysis tools work
#' unchanged: `with(imp, lm(y ~ x))`, `pool()`, `summary()`, `complete()`.
#'
#' @param data A data.frame with `NA` for missing cells.
#' @param m Number of imputations.
#' @param ... Any setting of the Python `CISSVAEImputer` (see
#'   `cissvae_settings("CISSVAEImputer")`).
#' @param clusters Optional cluster label of each row.
#' @param return_fit Also return the fitted imputer (to draw for new rows, or save).
#' @return A `mids` object, or `list(mids = , fit = )` with `return_fit = TRUE`.
#' @export
#' @examples
#' if (cissvae_available()) {
#'   data(nhanes2, package = "mice")
#'   imp <- cissvae_mids(nhanes2, m = 3, epochs = 50, max_loops = 2, seed = 1)
#'   fit <- with(imp, lm(chl ~ age + bmi))
#'   summary(mice::pool(fit))
#' }
cissvae_mids <- function(data, m = 5, ..., clusters = NULL, return_fit = FALSE) {
  require_python()
  frame <- to_pandas(data)
  settings <- python_settings(list(...), "CISSVAEImputer")
  clusters <- as_python_setting(clusters, "array-like of shape (n_rows,)")
  result <- py_call(do.call(ciss_vae$multiple_impute,
                            c(list(frame, m = as.integer(m), clusters = clusters, return_imputer = TRUE), settings)))
  parts <- py_items(result)
  long <- from_pandas(py_call(ciss_vae$stack_draws(parts[[1]], original = frame)))
  long$.id <- long$.id + 1L
  imp <- mice::as.mids(long, .imp = ".imp", .id = ".id")
  if (return_fit) list(mids = imp, fit = new_fit(parts[[2]])) else imp
}
