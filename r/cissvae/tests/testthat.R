library(testthat)
library(cissvae)

test_check("cissvae")
