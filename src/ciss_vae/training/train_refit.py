"""Import path: ``from ciss_vae.training.train_refit import impute_and_refit_loop, train_vae_refit``."""

from ciss_vae.stepwise import impute_and_refit_loop, train_vae_refit

__all__ = ["impute_and_refit_loop", "train_vae_refit"]
