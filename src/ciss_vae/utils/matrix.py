"""Import path of the user guide: ``ciss_vae.utils.matrix.create_missingness_prop_matrix``."""

from ..proportions import MissingnessMatrix, create_missingness_prop_matrix

__all__ = ["MissingnessMatrix", "create_missingness_prop_matrix"]
