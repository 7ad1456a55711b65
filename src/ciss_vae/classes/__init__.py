"""Import paths of the user guide for the model and dataset classes."""

from ciss_vae.classes.cluster_dataset import ClusterDataset
from ciss_vae.classes.vae import CISSVAE

__all__ = ["CISSVAE", "ClusterDataset"]
