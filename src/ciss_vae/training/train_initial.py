"""Import path: ``from ciss_vae.training.train_initial import train_vae_initial``."""

from ciss_vae.stepwise import train_vae_initial

__all__ = ["train_vae_initial"]
