"""Import paths of the user guide for training."""

from ciss_vae.pipeline import run_cissvae
from ciss_vae.stepwise import impute_and_refit_loop, train_vae_initial, train_vae_refit
from ciss_vae.tuning import SearchSpace, autotune

run_autotune = autotune

__all__ = ["SearchSpace", "autotune", "run_autotune", "run_cissvae", "train_vae_initial", "train_vae_refit",
           "impute_and_refit_loop"]
