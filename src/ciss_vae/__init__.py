"""CISS-VAE: Clustering-Informed Shared-Structure VAE for imputing missing values in tables."""

from importlib.metadata import PackageNotFoundError, version

from ciss_vae.clustering import MissingnessClusterer, cluster_on_missing, cluster_on_missing_prop
from ciss_vae.dataset import ClusterDataset
from ciss_vae.imputer import CISSVAEImputer
from ciss_vae.losses import loss_function
from ciss_vae.model import CISSVAE
from ciss_vae.multiple import multiple_impute, stack_draws
from ciss_vae.pipeline import run_cissvae
from ciss_vae.plots import plot_vae_architecture
from ciss_vae.pooling import PooledEstimate, pool
from ciss_vae.proportions import MissingnessMatrix, create_missingness_prop_matrix
from ciss_vae.tuning import SearchSpace, autotune
from ciss_vae.stepwise import (
    compute_val_mse,
    get_imputed,
    get_imputed_df,
    impute_and_refit_loop,
    train_vae_initial,
    train_vae_refit,
)

try:
    __version__ = version("ciss-vae")
except PackageNotFoundError:
    __version__ = "0.0.0"

__all__ = [
    "CISSVAE",
    "CISSVAEImputer",
    "ClusterDataset",
    "MissingnessClusterer",
    "MissingnessMatrix",
    "PooledEstimate",
    "SearchSpace",
    "autotune",
    "cluster_on_missing",
    "cluster_on_missing_prop",
    "compute_val_mse",
    "create_missingness_prop_matrix",
    "get_imputed",
    "get_imputed_df",
    "impute_and_refit_loop",
    "loss_function",
    "multiple_impute",
    "plot_vae_architecture",
    "pool",
    "run_cissvae",
    "stack_draws",
    "train_vae_initial",
    "train_vae_refit",
    "__version__",
]
