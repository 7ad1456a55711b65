"""Import path of the user guide: ``from ciss_vae.utils.clustering import cluster_on_missing``."""

from ..clustering import MissingnessClusterer, cluster_on_missing, cluster_on_missing_prop

__all__ = ["MissingnessClusterer", "cluster_on_missing", "cluster_on_missing_prop"]
