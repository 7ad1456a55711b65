"""Import path of the user guide: ``from ciss_vae.utils.run_cissvae import run_cissvae``."""

from ciss_vae.pipeline import run_cissvae

__all__ = ["run_cissvae"]
