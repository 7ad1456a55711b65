#' Cluster rows by their pattern of missingness
#'
#' The Python `cluster_on_missing()`: Leiden on a nearest-neighbour graph of the
#' rows' missingness patterns with an automatically chosen resolution, or
#' KMeans when `n_clusters` is given.
#'
#' @param data A data.frame with `NA` for missing cells.
#' @param cols_ignore Columns left out of the patterns (names or positions).
#' @param n_clusters Number of clusters (KMeans); `NULL` chooses it.
#' @param seed Random seed.
#' @param ... Further arguments of the Python function (`k_neighbors`,
#'   `leiden_resolution`, `min_cluster_size`, ...).
#' @return A list: `clusters`, an integer vector with one label per row
#'   (0, 1, ..., numbered by decreasing cluster size; pass it as `clusters` to
#'   the other functions), and `silhouette`, the clustering's silhouette score
#'   (`NULL` when it has none).
#' @export
#' @examples
#' if (cissvae_available()) {
#'   data(boys, package = "mice")
#'   cl <- cluster_on_missing(boys)
#'   table(cl$clusters)
#' }
cluster_on_missing <- function(data, cols_ignore = NULL, n_clusters = NULL, seed = 42, ...) {
  require_python()
  frame <- to_pandas(data)
  if (is.numeric(cols_ignore)) cols_ignore <- names(data)[cols_ignore]
  args <- list(...)
  args <- c(args, python_settings(list(n_clusters = n_clusters, seed = seed), "cluster_on_missing"))
  args <- lapply(args, function(v) if (is.numeric(v) && length(v) == 1 && v == round(v)) as.integer(v) else v)
  result <- py_call(do.call(ciss_vae$cluster_on_missing,
                            c(list(frame, cols_ignore = if (!is.null(cols_ignore)) as.list(cols_ignore)), args)))
  parts <- py_items(result)
  list(clusters = as.integer(unlist(reticulate::py_to_r(parts[[1]]$tolist()))),
       silhouette = reticulate::py_to_r(parts[[2]]))
}
