#' A hyperparameter search space for autotune()
#'
#' Builds the Python `SearchSpace`. Each argument is fixed (one value), a set of
#' choices (a vector, `c(64, 128, 256)`), or a range ([tune_range()]). See
#' `cissvae_settings("SearchSpace")` for the tunable settings and their
#' defaults; arguments not given keep the Python defaults.
#'
#' @param ... Arguments of the Python `SearchSpace`: `num_hidden_layers`,
#'   `hidden_dims`, `latent_dim`, `lr`, `beta`, `num_epochs`, `batch_size`, ...
#' @return The Python `SearchSpace` object.
#' @export
#' @examples
#' if (cissvae_available()) {
#'   space <- search_space(num_hidden_layers = tune_range(1, 2), hidden_dims = c(32, 64),
#'                         latent_dim = 8, num_epochs = 30, refit_loops = 2)
#' }
search_space <- function(...) {
  require_python()
  args <- lapply(list(...), function(v) {
    if (inherits(v, "cissvae_range")) return(v$py)
    if (is.numeric(v) && all(v == round(v))) v <- as.integer(v)
    if (length(v) > 1) as.list(v) else v
  })
  py_call(do.call(ciss_vae$SearchSpace, args))
}

#' A range to search between, for search_space()
#'
#' @param min,max Bounds (whole numbers give an integer range).
#' @param step Optional step.
#' @return An object that [search_space()] passes to Python as a range.
#' @export
tune_range <- function(min, max, step = NULL) {
  values <- c(min, max, step)
  if (all(values == round(values))) values <- as.integer(values)
  structure(list(py = reticulate::tuple(as.list(values))), class = "cissvae_range")
}

#' Tune CISS-VAE's hyperparameters with Optuna
#'
#' Clusters `data` by missingness (unless `clusters` are given), builds the
#' Python `ClusterDataset`, and runs the Python `autotune()` over
#' `search_space` for `n_trials` trials.
#'
#' @param data A data.frame with `NA` for missing cells.
#' @param search_space From [search_space()].
#' @param n_trials Number of Optuna trials.
#' @param ... Further arguments of the Python `autotune()` (`seed`, `timeout`,
#'   `show_progress`, `device_preference`, ...).
#' @param clusters Optional cluster label of each row.
#' @param dataset_args A list of arguments of the Python `ClusterDataset`
#'   (`val_proportion`, `columns_ignore`, `binary_feature_mask`, ...).
#' @return A list: `imputed` (the best trial's imputed data.frame), `model` and
#'   `study` (Python objects), `results` (one row per trial, a data.frame).
#' @export
#' @examples
#' \donttest{
#' if (cissvae_available()) {
#'   data(nhanes2, package = "mice")
#'   space <- search_space(num_hidden_layers = tune_range(1, 2), hidden_dims = c(16, 32),
#'                         latent_dim = 4, num_epochs = 20, refit_loops = 1, epochs_per_loop = 10)
#'   tuned <- autotune(nhanes2, space, n_trials = 2, seed = 1)
#'   tuned$results
#' }
#' }
autotune <- function(data, search_space, n_trials = 20, ..., clusters = NULL, dataset_args = list()) {
  require_python()
  frame <- to_pandas(data)
  if (is.null(clusters)) clusters <- cluster_on_missing(data)$clusters
  dataset_settings <- python_settings(dataset_args, "run_cissvae")
  dataset <- py_call(do.call(ciss_vae$ClusterDataset,
                             c(list(frame, as_python_setting(clusters, "array-like of shape (n_rows,)")),
                               dataset_settings)))
  args <- lapply(list(...), function(v) if (is.numeric(v) && length(v) == 1 && v == round(v)) as.integer(v) else v)
  result <- py_call(do.call(ciss_vae$autotune, c(list(search_space, dataset, n_trials = as.integer(n_trials)), args)))
  parts <- py_items(result)
  list(imputed = from_pandas(parts[[1]], attr(data, "row.names")), model = parts[[2]], study = parts[[3]],
       results = from_pandas(parts[[4]]))
}
