"""Import path: ``from ciss_vae.training.run_cissvae import run_cissvae``."""

from ciss_vae.pipeline import run_cissvae

__all__ = ["run_cissvae"]
