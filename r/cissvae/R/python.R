#' @importFrom stats predict
NULL

ciss_vae <- NULL
pandas <- NULL
numpy <- NULL

.onLoad <- function(libname, pkgname) {
  if (!nzchar(Sys.getenv("RETICULATE_PYTHON")) && reticulate::virtualenv_exists("r-cissvae")) {
    try(reticulate::use_virtualenv("r-cissvae", required = FALSE), silent = TRUE)
  }
  ciss_vae <<- reticulate::import("ciss_vae", delay_load = TRUE, convert = FALSE)
  pandas <<- reticulate::import("pandas", delay_load = TRUE, convert = FALSE)
  numpy <<- reticulate::import("numpy", delay_load = TRUE, convert = FALSE)
}

#' Is the Python side of cissvae available?
#'
#' `TRUE` when the Python that reticulate uses can import `ciss_vae` (see
#' [cissvae_install()]).
#'
#' @return A single logical.
#' @export
#' @examples
#' cissvae_available()
cissvae_available <- function() {
  reticulate::py_available(initialize = TRUE) && reticulate::py_module_available("ciss_vae")
}

#' Install the Python side of cissvae in a virtual environment
#'
#' Creates the Python virtual environment `envname` (reticulate's
#' `virtualenv_create()`), installs PyTorch and then `ciss-vae` with its
#' clustering extras into it. `library(cissvae)` uses the environment named
#' `"r-cissvae"` on its own when `RETICULATE_PYTHON` is not set; for another
#' name call `reticulate::use_virtualenv(envname)` before the first call.
#'
#' @param envname Name (or path) of the virtual environment.
#' @param package Where to install `ciss-vae` from: a local checkout of the
#'   Python package (a directory holding its `pyproject.toml`), or a
#'   requirement understood by pip (default: the package index).
#' @param torch The PyTorch requirement, installed first (a CPU build can be
#'   chosen with `pip_options`, for example
#'   `"--index-url https://download.pytorch.org/whl/cpu"`).
#' @param python The Python interpreter to create the environment with
#'   (default: the one reticulate finds).
#' @param pip_options Extra options passed to pip.
#' @return The environment's name, invisibly.
#' @export
#' @examples
#' \dontrun{
#' cissvae_install()                                # from the package index
#' cissvae_install(package = "~/src/ciss-vae")      # from a checkout
#' }
cissvae_install <- function(envname = "r-cissvae", package = "ciss-vae", torch = "torch>=2.4",
                            python = NULL, pip_options = character()) {
  if (dir.exists(package)) {
    package <- paste0(normalizePath(package), "[clustering]")
  } else if (!grepl("[", package, fixed = TRUE)) {
    package <- paste0(package, "[clustering]")
  }
  message("Creating the Python environment ", envname)
  reticulate::virtualenv_create(envname, python = python)
  message("Installing ", torch)
  reticulate::virtualenv_install(envname, torch, pip_options = pip_options, ignore_installed = FALSE)
  message("Installing ", package)
  reticulate::virtualenv_install(envname, package, pip_options = pip_options, ignore_installed = FALSE)
  invisible(envname)
}

# Evaluate `expr` (which calls Python); a Python exception becomes an R error of
# class "cissvae_error" carrying the Python message (no reticulate traceback).
py_call <- function(expr, call = sys.call(-1)) {
  tryCatch(expr, error = function(e) {
    if (inherits(e, "cissvae_error")) stop(e)
    msg <- conditionMessage(e)
    msg <- sub("\\n+(Run `reticulate::py_last_error\\(\\)`|Detailed traceback|See `reticulate::py_last_error).*$",
               "", msg)
    stop(errorCondition(trimws(msg), class = "cissvae_error", call = call))
  })
}

require_python <- function() {
  if (!cissvae_available()) {
    stop(errorCondition(paste0(
      "the Python package ciss_vae is not available to reticulate (Python: ",
      tryCatch(reticulate::py_config()$python, error = function(e) "none"),
      "); run cissvae_install(), or point RETICULATE_PYTHON at a Python that has it"),
      class = "cissvae_error", call = sys.call(-1)))
  }
}

# The elements of a Python tuple or list, each left a Python object.
py_items <- function(x) {
  lapply(seq_len(reticulate::py_len(x)) - 1L, function(i) reticulate::py_get_item(x, i))
}
