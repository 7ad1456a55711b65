"""Import path of the user guide: ``from ciss_vae.training.autotune import SearchSpace, autotune``."""

from ciss_vae.tuning import SearchSpace, autotune

__all__ = ["SearchSpace", "autotune"]
