# R data.frame <-> pandas DataFrame, column by column, keeping each column's type:
#   numeric -> float64, integer -> Int64, logical -> boolean, factor / ordered ->
#   category (same levels, ordered kept), character -> text (imputed as labels by
#   the Python side), Date / POSIXct -> datetime (refused by the Python side, which
#   names the column). NA is missing in every type.

to_pandas <- function(data, arg = "data") {
  if (!is.data.frame(data)) {
    stop(errorCondition(sprintf("`%s` must be a data.frame, not %s", arg, class(data)[1]),
                        class = "cissvae_error", call = sys.call(-1)))
  }
  if (anyDuplicated(names(data))) {
    stop(errorCondition(sprintf("`%s` has duplicated column names: %s", arg,
                                paste(unique(names(data)[duplicated(names(data))]), collapse = ", ")),
                        class = "cissvae_error", call = sys.call(-1)))
  }
  columns <- lapply(names(data), function(name) python_column(data[[name]], name))
  frame <- pandas$DataFrame(reticulate::py_dict(as.list(names(data)), columns, convert = FALSE))
  frame
}

# R's NA_real_ is a signalling NaN: arithmetic on it raises numpy's "invalid value"
# warning, so missing numbers cross over as R's (quiet) NaN.
quiet_nan <- function(v) {
  v <- as.double(v)
  v[is.na(v)] <- NaN
  v
}

python_column <- function(x, name) {
  missing <- numpy$array(is.na(x), dtype = "bool")
  if (is.factor(x)) {
    codes <- ifelse(is.na(x), -1L, as.integer(x) - 1L)
    return(pandas$Series(pandas$Categorical$from_codes(numpy$array(codes, dtype = "int64"),
                                                       categories = as.list(levels(x)),
                                                       ordered = is.ordered(x))))
  }
  if (is.logical(x)) return(pandas$Series(pandas$array(quiet_nan(x), dtype = "boolean")))
  if (is.integer(x)) return(pandas$Series(pandas$array(quiet_nan(x), dtype = "Int64")))
  if (inherits(x, "Date")) {
    return(pandas$to_datetime(pandas$Series(numpy$array(quiet_nan(x), dtype = "float64")), unit = "D"))
  }
  if (inherits(x, "POSIXt")) {
    return(pandas$to_datetime(pandas$Series(numpy$array(quiet_nan(as.POSIXct(x)), dtype = "float64")),
                              unit = "s"))
  }
  if (is.numeric(x)) return(pandas$Series(numpy$array(quiet_nan(x), dtype = "float64")))
  if (is.character(x)) {
    return(pandas$Series(numpy$array(ifelse(is.na(x), "", x), dtype = "object"))$mask(missing))
  }
  stop(errorCondition(sprintf("column '%s' is of R class '%s', which cannot be imputed; convert it to numeric, integer, logical, factor or character",
                              name, class(x)[1]), class = "cissvae_error", call = NULL))
}

from_pandas <- function(frame, row_names = NULL) {
  names <- reticulate::py_to_r(frame$columns$astype("str")$tolist())
  columns <- lapply(names, function(name) r_column(reticulate::py_get_item(frame, name)))
  out <- as.data.frame(stats::setNames(columns, names), stringsAsFactors = FALSE, check.names = FALSE,
                       optional = TRUE)
  if (!is.null(row_names)) attr(out, "row.names") <- row_names
  out
}

r_column <- function(col) {
  dtype <- reticulate::py_to_r(col$dtype$name)
  if (identical(dtype, "category")) {
    levels <- reticulate::py_to_r(col$cat$categories$astype("str")$tolist())
    codes <- as.integer(unlist(reticulate::py_to_r(col$cat$codes$tolist())))
    return(factor(levels[ifelse(codes < 0, NA, codes + 1)], levels = levels,
                  ordered = reticulate::py_to_r(col$cat$ordered)))
  }
  as_float <- function() {
    as.double(unlist(reticulate::py_to_r(col$astype("float64")$tolist())))
  }
  if (dtype %in% c("bool", "boolean")) return(as.logical(as_float()))
  if (grepl("^u?int", dtype, ignore.case = TRUE)) return(as.integer(as_float()))
  if (grepl("^float", dtype, ignore.case = TRUE)) return(as_float())
  values <- reticulate::py_to_r(col$astype("object")$where(col$notna(), NULL)$tolist())
  vapply(values, function(v) if (is.null(v)) NA_character_ else as.character(v), character(1), USE.NAMES = FALSE)
}
