#' Impute a data.frame with CISS-VAE
#'
#' Calls the Python `run_cissvae()`: rows are clustered by their pattern of
#' missingness (unless `clusters` are given), the autoencoder is trained on the
#' observed cells, refit on its own imputations while a held-out validation set
#' improves, and the missing cells are filled. Columns keep their R type:
#' numeric, integer (imputed values rounded), logical, factor and ordered
#' factor (imputed with one of their levels) and character (imputed with one of
#' the column's values). `Date`/`POSIXct` columns are refused with an error
#' naming the column; list them in `columns_ignore` to carry them through.
#'
#' @param data A data.frame with `NA` for missing cells.
#' @param ... Any setting of the Python `run_cissvae()`, under its name
#'   (`epochs`, `hidden_dims = c(64, 32)`, `layer_order_enc = c("s", "u")`,
#'   `columns_ignore = c("id", "age")`, `seed`, ...). [cissvae_settings()]
#'   lists them with types, defaults and help; whole numbers are passed as
#'   integers, vectors as lists.
#' @param clusters Optional cluster label of each row (then no clustering is run).
#' @param return_model,return_clusters,return_silhouettes,return_history Also
#'   return the trained model (a Python object, for [plot_vae_architecture()]),
#'   the cluster of each row, the clustering's silhouette score, the training
#'   history (a data.frame, one row per epoch and refit validation).
#' @return The imputed data.frame (same columns, types and row names; observed
#'   values unchanged) or, when anything else is asked for, a list with
#'   `imputed` and the elements asked for (`model`, `clusters`, `silhouette`,
#'   `history`).
#' @export
#' @examples
#' if (cissvae_available()) {
#'   data(nhanes2, package = "mice")
#'   imputed <- run_cissvae(nhanes2, epochs = 50, max_loops = 2, seed = 1, print_dataset = FALSE)
#'   summary(imputed)
#' }
run_cissvae <- function(data, ..., clusters = NULL, return_model = FALSE, return_clusters = FALSE,
                        return_silhouettes = FALSE, return_history = FALSE) {
  require_python()
  frame <- to_pandas(data)
  asked <- c(model = return_model, clusters = return_clusters, silhouette = return_silhouettes,
             history = return_history)
  args <- python_settings(c(list(...), list(clusters = clusters), as.list(stats::setNames(
    asked, c("return_model", "return_clusters", "return_silhouettes", "return_history")))), "run_cissvae")
  result <- py_call(do.call(ciss_vae$run_cissvae, c(list(frame), args)))
  if (!any(asked)) return(from_pandas(result, attr(data, "row.names")))
  parts <- py_items(result)
  out <- list(imputed = from_pandas(parts[[1]], attr(data, "row.names")))
  k <- 1
  for (name in names(asked)[asked]) {
    k <- k + 1
    value <- parts[[k]]
    out[name] <- list(switch(name,
      model = value,
      clusters = as.integer(unlist(reticulate::py_to_r(numpy$asarray(value)$tolist()))),
      silhouette = reticulate::py_to_r(value),
      history = from_pandas(value)))
  }
  out
}
