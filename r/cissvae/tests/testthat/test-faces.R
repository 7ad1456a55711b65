test_that("run_cissvae returns what is asked for: model, clusters, silhouette, history", {
  skip_without_python()
  t <- typed_table()
  r <- quick(run_cissvae, t$holes, return_model = TRUE, return_clusters = TRUE, return_silhouettes = TRUE,
             return_history = TRUE, hidden_dims = c(32, 16), layer_order_enc = c("s", "u"),
             layer_order_dec = c("u", "s"), latent_dim = 4)
  expect_named(r, c("imputed", "model", "clusters", "silhouette", "history"))
  expect_s3_class(r$imputed, "data.frame")
  expect_type(r$clusters, "integer")
  expect_length(r$clusters, nrow(t$holes))
  expect_s3_class(r$history, "data.frame")
  expect_true(all(c("phase", "epoch", "train_loss", "imputation_error") %in% names(r$history)))
  expect_equal(sort(unique(r$history$fit)), 0:2)  # a small table: the mean of three fits
  expect_equal(sum(r$history$phase == "initial"), 40 * 3)
  png <- plot_vae_architecture(r$model, show = FALSE, title = "test")
  expect_identical(readBin(png, "raw", 4), as.raw(c(0x89, 0x50, 0x4e, 0x47)))
})

test_that("the same seed gives the same imputation; given clusters are used", {
  skip_without_python()
  t <- typed_table()
  a <- quick(run_cissvae, t$holes)
  b <- quick(run_cissvae, t$holes)
  expect_identical(a, b)
  cl <- rep(c(0L, 1L), length.out = nrow(t$holes))
  r <- quick(run_cissvae, t$holes, clusters = cl, return_clusters = TRUE)
  expect_identical(r$clusters, cl)
})

test_that("cluster_on_missing finds the missingness groups", {
  skip_without_python()
  set.seed(2)
  n <- 300
  df <- data.frame(a = rnorm(n), b = rnorm(n), c = rnorm(n), d = rnorm(n))
  group <- rep(1:3, length.out = n)
  df$a[group == 1] <- NA
  df$b[group == 2] <- NA
  df$c[group == 2] <- NA
  cl <- cluster_on_missing(df, seed = 1)
  expect_type(cl$clusters, "integer")
  expect_length(cl$clusters, n)
  expect_equal(unname(rowSums(table(group, cl$clusters) > 0)), c(1, 1, 1))  # a pattern is never split
  three <- cluster_on_missing(df, n_clusters = 3)$clusters
  expect_equal(unname(rowSums(table(group, three) > 0)), c(1, 1, 1))
  expect_equal(length(unique(three)), 3)
})

test_that("cissvae_fit, predict, save and load: new rows, draws, the same model back", {
  skip_without_python()
  t <- typed_table()
  fit <- quick(cissvae_fit, t$holes, bootstrap_models = 2)
  expect_output(print(fit), "CISS-VAE imputer: 7 columns")
  new <- typed_table(n = 30, seed = 9)$holes
  out <- predict(fit, new)
  expect_identical(rownames(out), rownames(new))
  expect_false(anyNA(out))
  draws <- predict(fit, new, n_draws = 3)
  expect_length(draws, 3)
  miss <- is.na(new$x) | is.na(new$y)
  expect_false(identical(draws[[1]]$y, draws[[2]]$y))
  for (d in draws) expect_identical(d$y[!is.na(new$y)], new$y[!is.na(new$y)])
  dir <- tempfile()
  cissvae_save(fit, dir)
  again <- cissvae_load(dir)
  expect_identical(predict(again, new), out)
  expect_identical(predict(again, new, n_draws = 3), draws)
  expect_error(predict(fit, new[, -1]), class = "cissvae_error")
})

test_that("cissvae_settings lists the Python declaration", {
  skip_without_python()
  s <- cissvae_settings()
  expect_true(all(c("epochs", "hidden_dims", "seed") %in% s$name))
  expect_identical(s$default[s$name == "seed"], "42")
  expect_true("bootstrap_models" %in% cissvae_settings("CISSVAEImputer")$name)
})

test_that("autotune searches a search_space and returns its trials", {
  skip_without_python()
  t <- typed_table()
  space <- search_space(num_hidden_layers = tune_range(1, 2), hidden_dims = c(16, 32), latent_dim = 4,
                        num_epochs = 10, refit_loops = 1, epochs_per_loop = 5, batch_size = 64)
  tuned <- autotune(t$holes, space, n_trials = 2, seed = 1)
  expect_s3_class(tuned$imputed, "data.frame")
  expect_false(anyNA(tuned$imputed))
  expect_equal(nrow(tuned$results), 2)
})

test_that("a do-not-impute matrix keeps its cells missing", {
  skip_without_python()
  t <- typed_table()
  keep <- matrix(TRUE, nrow(t$holes), ncol(t$holes))
  hole <- which(is.na(t$holes$y))[1]
  keep[hole, match("y", names(t$holes))] <- FALSE
  out <- quick(run_cissvae, t$holes, imputable_matrix = keep)
  expect_true(is.na(out$y[hole]))
  expect_equal(sum(is.na(out)), 1)
})
