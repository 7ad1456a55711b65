"""Import paths of the user guide for helpers and clustering."""

from ciss_vae.clustering import MissingnessClusterer, cluster_on_missing, cluster_on_missing_prop
from ciss_vae.pipeline import run_cissvae
from ciss_vae.proportions import MissingnessMatrix, create_missingness_prop_matrix
from ciss_vae.stepwise import compute_val_mse, evaluate_imputation, get_imputed, get_imputed_df

__all__ = [
    "MissingnessClusterer",
    "MissingnessMatrix",
    "cluster_on_missing",
    "cluster_on_missing_prop",
    "compute_val_mse",
    "create_missingness_prop_matrix",
    "evaluate_imputation",
    "get_imputed",
    "get_imputed_df",
    "run_cissvae",
]
