"""Import path of the user guide: ``from ciss_vae.classes.cluster_dataset import ClusterDataset``."""

from ciss_vae.dataset import ClusterDataset

__all__ = ["ClusterDataset"]
