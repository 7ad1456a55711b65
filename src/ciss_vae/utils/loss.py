"""Import path: ``from ciss_vae.utils.loss import loss_function``."""

from ciss_vae.losses import kl_divergence, loss_function

__all__ = ["kl_divergence", "loss_function"]
