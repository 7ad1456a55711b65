#' Draw the network of a CISS-VAE model
#'
#' The Python `plot_vae_architecture()` figure (shared layers in one colour,
#' each cluster's own layers in another), saved as a PNG file.
#'
#' @param model A `cissvae_fit`, or the `model` returned by [run_cissvae()]
#'   with `return_model = TRUE`.
#' @param file The PNG file to write (a temporary file by default).
#' @param show Open the file in the viewer (in interactive sessions by default).
#' @param ... Further arguments of the Python function (`title`,
#'   `color_shared`, `figsize = c(16, 8)`, ...).
#' @return The path of the PNG file.
#' @export
#' @examples
#' if (cissvae_available()) {
#'   data(nhanes2, package = "mice")
#'   fit <- cissvae_fit(nhanes2, epochs = 20, max_loops = 1, bootstrap_models = 0)
#'   png <- plot_vae_architecture(fit, show = FALSE)
#'   file.exists(png)
#' }
plot_vae_architecture <- function(model, file = tempfile(fileext = ".png"), show = interactive(), ...) {
  require_python()
  if (inherits(model, "cissvae_fit")) model <- model$py$model_
  args <- lapply(list(...), function(v) if (length(v) > 1) reticulate::tuple(as.list(v)) else v)
  helpers <- reticulate::import("ciss_vae.utils.helpers", convert = FALSE)
  fig <- py_call(do.call(helpers$plot_vae_architecture, c(list(model, return_fig = TRUE), args)))
  py_call(fig$savefig(path.expand(file), dpi = 100L, bbox_inches = "tight"))
  reticulate::import("matplotlib.pyplot", convert = FALSE)$close(fig)
  if (show) utils::browseURL(file)
  file
}
