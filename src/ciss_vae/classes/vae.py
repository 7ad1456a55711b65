"""Import path of the user guide: ``from ciss_vae.classes.vae import CISSVAE``."""

from ciss_vae.model import CISSVAE, ClusterLinear

__all__ = ["CISSVAE", "ClusterLinear"]
