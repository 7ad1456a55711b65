# The tests need the Python side (RETICULATE_PYTHON pointing at a Python with
# ciss_vae). Outside CI they skip without it; under CI=true they fail.
skip_without_python <- function() {
  if (cissvae_available()) return(invisible(TRUE))
  if (identical(Sys.getenv("CI"), "true")) {
    stop("CI=true but the Python package ciss_vae is not available to reticulate; set RETICULATE_PYTHON")
  }
  skip("the Python package ciss_vae is not available (set RETICULATE_PYTHON or run cissvae_install())")
}

QUICK <- list(epochs = 40, max_loops = 2, epochs_per_loop = 10, seed = 1, print_dataset = FALSE)

quick <- function(f, ...) do.call(f, c(list(...), QUICK))

typed_table <- function(n = 150, seed = 1) {
  set.seed(seed)
  x <- rnorm(n)
  df <- data.frame(
    x = x,
    count = as.integer(round(5 + 2 * x + rnorm(n))),
    flag = x + rnorm(n) > 0,
    grp = factor(ifelse(x > 0.5, "high", ifelse(x < -0.5, "low", "mid")), levels = c("low", "mid", "high")),
    stage = factor(sample(c("I", "II", "III"), n, replace = TRUE), levels = c("I", "II", "III"), ordered = TRUE),
    site = sample(c("north", "south"), n, replace = TRUE),
    y = 2 * x + rnorm(n),
    stringsAsFactors = FALSE
  )
  rownames(df) <- paste0("patient", seq_len(n))
  holes <- df
  for (col in names(df)[-1]) holes[[col]][runif(n) < 0.2] <- NA
  list(full = df, holes = holes)
}
