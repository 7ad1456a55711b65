#' Fit a CISS-VAE imputer for new rows, multiple imputation and saving
#'
#' Fits the Python `CISSVAEImputer` (the scikit-learn face of the same engine
#' as [run_cissvae()]) on `data`. [predict()] then imputes new rows (or the
#' training rows), or draws multiple imputations; [cissvae_save()] and
#' [cissvae_load()] keep it on disk.
#'
#' @param data A data.frame with `NA` for missing cells.
#' @param ... Any setting of the Python `CISSVAEImputer` (see
#'   `cissvae_settings("CISSVAEImputer")`), for example `epochs`, `seed`,
#'   `bootstrap_models` (refits for proper multiple imputation; 5 by default).
#' @param clusters Optional cluster label of each row.
#' @return An object of class `cissvae_fit`.
#' @export
#' @examples
#' if (cissvae_available()) {
#'   data(nhanes2, package = "mice")
#'   fit <- cissvae_fit(nhanes2, epochs = 50, max_loops = 2, bootstrap_models = 2, seed = 1)
#'   fit
#'   head(predict(fit, nhanes2))
#'   draws <- predict(fit, nhanes2, n_draws = 2)   # a list of two completed data.frames
#'   dir <- tempfile()
#'   cissvae_save(fit, dir)
#'   again <- cissvae_load(dir)
#'   all.equal(predict(again, nhanes2), predict(fit, nhanes2))
#' }
cissvae_fit <- function(data, ..., clusters = NULL) {
  require_python()
  frame <- to_pandas(data)
  settings <- python_settings(list(...), "CISSVAEImputer")
  imputer <- py_call(do.call(ciss_vae$CISSVAEImputer, settings))
  clusters <- as_python_setting(clusters, "array-like of shape (n_rows,)")
  py_call(imputer$fit(frame, clusters = clusters))
  new_fit(imputer)
}

new_fit <- function(imputer) structure(list(py = imputer), class = "cissvae_fit")

#' Impute new rows with a fitted CISS-VAE imputer
#'
#' @param object A `cissvae_fit` from [cissvae_fit()] or [cissvae_load()].
#' @param newdata A data.frame with the columns the imputer was fitted on.
#' @param n_draws `NULL` for one imputation; an integer `m` for a list of `m`
#'   completed data.frames drawn for multiple imputation (from the bootstrap
#'   refits: proper draws that carry the model's uncertainty).
#' @param ... Unused.
#' @return A data.frame like `newdata` with its missing cells filled, or a list
#'   of them.
#' @export
predict.cissvae_fit <- function(object, newdata, n_draws = NULL, ...) {
  frame <- to_pandas(newdata, "newdata")
  if (!is.null(n_draws)) n_draws <- as.integer(n_draws)
  out <- py_call(object$py$transform(frame, n_draws = n_draws))
  rows <- attr(newdata, "row.names")
  if (is.null(n_draws)) return(from_pandas(out, rows))
  lapply(py_items(out), from_pandas, row_names = rows)
}

#' @export
print.cissvae_fit <- function(x, ...) {
  s <- reticulate::py_to_r(x$py$fit_summary_)
  cat(sprintf("CISS-VAE imputer: %d columns, %d cluster(s), %s epochs, %d bootstrap refit(s)\n",
              length(reticulate::py_to_r(x$py$feature_names_in_$tolist())), reticulate::py_to_r(x$py$n_clusters_),
              format(s$epochs), length(reticulate::py_to_r(x$py$bootstrap_states_))))
  if (!is.null(s$validation_error)) cat(sprintf("validation error %.4g (%s)\n", s$validation_error, s$stop_reason))
  invisible(x)
}

#' Save and load a fitted CISS-VAE imputer
#'
#' `cissvae_save()` writes the weights (bootstrap refits included) and a JSON
#' description with a checksum to the directory `dir`; `cissvae_load()` reads
#' it back and refuses a corrupted or foreign directory. The files are those of
#' the Python `CISSVAEImputer.save()`, so Python can load them too.
#'
#' @param fit A `cissvae_fit`.
#' @param dir A directory (created if needed).
#' @return `cissvae_save()`: `dir`, invisibly. `cissvae_load()`: a `cissvae_fit`.
#' @export
cissvae_save <- function(fit, dir) {
  stopifnot(inherits(fit, "cissvae_fit"))
  py_call(fit$py$save(path.expand(dir)))
  invisible(dir)
}

#' @rdname cissvae_save
#' @export
cissvae_load <- function(dir) {
  require_python()
  new_fit(py_call(ciss_vae$CISSVAEImputer$load(path.expand(dir))))
}
