test_that("cissvae_mids gives a mids object that with() and pool() analyse", {
  skip_without_python()
  data(nhanes2, package = "mice")
  imp <- quick(cissvae_mids, nhanes2, m = 3)
  expect_s3_class(imp, "mids")
  expect_equal(imp$m, 3)
  expect_identical(mice::complete(imp, 0)$chl, nhanes2$chl)
  for (i in 1:3) {
    done <- mice::complete(imp, i)
    expect_false(anyNA(done))
    expect_identical(levels(done$age), levels(nhanes2$age))
    expect_identical(done$bmi[!is.na(nhanes2$bmi)], nhanes2$bmi[!is.na(nhanes2$bmi)])
  }
  expect_false(identical(mice::complete(imp, 1)$chl, mice::complete(imp, 2)$chl))
  pooled <- summary(mice::pool(with(imp, lm(chl ~ age + bmi))))
  expect_setequal(as.character(pooled$term), c("(Intercept)", "age40-59", "age60-99", "bmi"))
  expect_true(all(is.finite(pooled$std.error)))
  r <- quick(cissvae_mids, nhanes2, m = 2, return_fit = TRUE)
  expect_s3_class(r$fit, "cissvae_fit")
})

test_that("on mice::boys, the pooled growth regression agrees with mice's", {
  skip_without_python()
  data(boys, package = "mice")
  ours <- summary(mice::pool(with(cissvae_mids(boys, m = 5, seed = 1, print_dataset = FALSE), lm(hgt ~ age + reg))))
  theirs <- summary(mice::pool(with(mice::mice(boys, m = 5, seed = 1, printFlag = FALSE), lm(hgt ~ age + reg))))
  age <- c(ours$estimate[ours$term == "age"], theirs$estimate[theirs$term == "age"])
  se <- theirs$std.error[theirs$term == "age"]
  expect_lt(abs(age[1] - age[2]), 3 * se)
})
