# Settings are declared once, in the Python package (ciss_vae.settings); R reads
# each face's names and types from that declaration and converts R values to what
# Python expects: whole numbers to int where the type is int, vectors to lists where
# it is a list or sequence, named lists to dicts, NULL to None.

settings_of <- function(face) {
  S <- reticulate::import("ciss_vae.settings", convert = TRUE)
  decl <- S$of(face)
  stats::setNames(vapply(decl, function(s) s$type, character(1)), vapply(decl, function(s) s$name_in(face), character(1)))
}

as_python_setting <- function(value, type) {
  if (is.null(value)) return(NULL)
  if (is.data.frame(value)) return(to_pandas(value))
  if (is.factor(value)) value <- as.character(value)
  if (is.list(value)) return(lapply(value, function(v) if (length(v) > 1 || grepl("^dict", type)) as.list(v) else v))
  if (is.na(type)) return(value)
  if (is.numeric(value) && grepl("^(int|list of int|array-like)", type) && all(is.na(value) | value == round(value))) {
    storage.mode(value) <- "integer"
  }
  if (is.matrix(value)) return(numpy$array(as.vector(t(value)))$reshape(reticulate::tuple(as.list(dim(value)))))
  if (grepl("^(list|sequence)", type) || (length(value) > 1 && !grepl("^array-like", type))) return(as.list(value))
  if (grepl("^array-like", type)) return(numpy$array(value))
  value
}

python_settings <- function(args, face) {
  types <- settings_of(face)
  unknown <- setdiff(names(args), names(types))
  if (length(unknown)) {
    stop(errorCondition(sprintf("unknown argument%s %s; the arguments are the Python %s's: %s",
                                if (length(unknown) > 1) "s" else "", paste0("`", unknown, "`", collapse = ", "),
                                face, paste(names(types), collapse = ", ")),
                        class = "cissvae_error", call = sys.call(-1)))
  }
  out <- lapply(names(args), function(n) as_python_setting(args[[n]], types[[n]]))
  stats::setNames(out, names(args))
}

#' The settings of each cissvae function, from the Python declaration
#'
#' Every setting is declared once, in the Python package; this lists those a
#' function takes, with their type, default and help text. The R functions take
#' them under the same names (vectors where Python takes a list; whole numbers
#' are passed as integers for you).
#'
#' @param face `"run_cissvae"`, `"CISSVAEImputer"` (for [cissvae_fit()] and
#'   [cissvae_mids()]), `"cluster_on_missing"`, `"autotune"` or `"SearchSpace"`.
#' @return A data.frame with columns `name`, `type`, `default` and `help`.
#' @export
#' @examples
#' if (cissvae_available()) head(cissvae_settings())
cissvae_settings <- function(face = "run_cissvae") {
  require_python()
  S <- reticulate::import("ciss_vae.settings", convert = TRUE)
  decl <- py_call(S$of(face))
  data.frame(name = vapply(decl, function(s) s$name_in(face), character(1)),
             type = vapply(decl, function(s) s$type, character(1)),
             default = vapply(decl, function(s) paste(format(reticulate::py_str(reticulate::r_to_py(s$default_in(face)))),
                                                      collapse = ""), character(1)),
             help = vapply(decl, function(s) s$help, character(1)), stringsAsFactors = FALSE)
}
