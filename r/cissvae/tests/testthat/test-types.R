test_that("every R column type comes back as itself, observed values and row names kept", {
  skip_without_python()
  t <- typed_table()
  out <- quick(run_cissvae, t$holes)
  expect_identical(names(out), names(t$holes))
  expect_identical(rownames(out), rownames(t$holes))
  expect_identical(vapply(out, function(v) class(v)[1], ""), vapply(t$holes, function(v) class(v)[1], ""))
  expect_false(anyNA(out))
  for (col in names(out)) {
    seen <- !is.na(t$holes[[col]])
    expect_identical(out[[col]][seen], t$holes[[col]][seen], info = col)
  }
  expect_identical(levels(out$grp), levels(t$holes$grp))
  expect_true(is.ordered(out$stage))
  expect_identical(levels(out$stage), c("I", "II", "III"))
  expect_true(all(out$site %in% c("north", "south")))
  expect_type(out$count, "integer")
  expect_type(out$flag, "logical")
})

test_that("imputed values follow the other columns", {
  skip_without_python()
  t <- typed_table(n = 400)
  out <- run_cissvae(t$holes, seed = 1, print_dataset = FALSE)
  miss <- is.na(t$holes$y)
  expect_gt(cor(out$y[miss], t$full$y[miss]), 0.7)
  miss <- is.na(t$holes$grp)
  expect_gt(mean(out$grp[miss] == t$full$grp[miss]), 0.6)
})

test_that("integer_output = 'float' returns the model's numbers", {
  skip_without_python()
  t <- typed_table()
  out <- quick(run_cissvae, t$holes, integer_output = "float")
  expect_type(out$count, "double")
  expect_true(any(out$count[is.na(t$holes$count)] %% 1 != 0))
})

test_that("columns the Python side cannot impute give an R error naming them", {
  skip_without_python()
  df <- data.frame(day = as.Date("2020-01-01") + c(0, NA, 5, 9), x = c(1, NA, 2, 3))
  expect_error(run_cissvae(df), class = "cissvae_error", regexp = "column 'day' holds dates")
  df <- data.frame(when = as.POSIXct("2020-01-01 10:00", tz = "UTC") + c(0, 60, NA, 5), x = c(1, NA, 2, 3))
  expect_error(run_cissvae(df), class = "cissvae_error", regexp = "column 'when'")
  df$when <- I(list(1, 2, 3, 4))
  expect_error(run_cissvae(df), class = "cissvae_error", regexp = "column 'when' is of R class 'AsIs'")
  expect_error(run_cissvae(matrix(1:4, 2)), class = "cissvae_error", regexp = "must be a data.frame")
})

test_that("Python's errors arrive as R conditions with the Python message", {
  skip_without_python()
  t <- typed_table()
  err <- expect_error(run_cissvae(t$holes, epochs = -1), class = "cissvae_error")
  expect_match(conditionMessage(err), "^ValueError: `epochs` must be an integer >= 0")
  expect_false(grepl("Traceback|py_last_error", conditionMessage(err)))
  expect_error(run_cissvae(t$holes, epoch = 3), class = "cissvae_error", regexp = "unknown argument `epoch`")
})
