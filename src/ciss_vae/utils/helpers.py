"""Import path of the user guide for the imputation and plotting helpers."""

from ciss_vae.plots import plot_vae_architecture
from ciss_vae.stepwise import compute_val_mse, evaluate_imputation, get_imputed, get_imputed_df

__all__ = ["compute_val_mse", "evaluate_imputation", "get_imputed", "get_imputed_df", "plot_vae_architecture"]
