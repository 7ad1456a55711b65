"""Example data shipped with ``ciss_vae``.

A simulated cohort of 8000 rows and 30 columns: ``Age``, ``Salary``, a one-hot
zip code (``ZipCode10001``, ``ZipCode20002``, ``ZipCode30003``) and 25
biomarker columns ``Y11`` .. ``Y55`` (biomarker 1-5, visit 1-5), about 29 % of
whose cells are missing.  The rows fall into four missingness clusters of 2000
rows each; cluster 2 has no missing values.  The files are produced by
:func:`ciss_vae.data.generate.simulate_cohort` with its default seed and can be
rebuilt with ``python -m ciss_vae.data.generate``.
"""

from __future__ import annotations

import re
from importlib import import_module, resources
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ExampleCohort",
    "load_clusters",
    "load_complete_data",
    "load_dni",
    "load_example_dataset",
    "load_missing_data",
    "simulate_cohort",
    "simulate_registry",
    "SimulatedRegistry",
]


_LAZY = {"ExampleCohort": "generate", "simulate_cohort": "generate", "SimulatedRegistry": "registry",
         "simulate_registry": "registry"}

# pandas >= 3.1 always parses floats exactly and deprecates ``float_precision``;
# older versions need "round_trip" to read back exactly the values written.
_PANDAS_VERSION = tuple(int(part) for part in re.findall(r"\d+", pd.__version__)[:2])
_CSV_OPTIONS = {} if _PANDAS_VERSION >= (3, 1) else {"float_precision": "round_trip"}


def __getattr__(name: str) -> Any:
    # The generator is imported on first use, so that running it with
    # ``python -m ciss_vae.data.generate`` does not import it twice.
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _read_table(key: str) -> pd.DataFrame:
    """Read one shipped file, its first column being the row index."""
    file_names = import_module(f"{__name__}.generate").FILE_NAMES
    resource = resources.files(__name__).joinpath(file_names[key])
    with resource.open("rb") as handle:
        frame = pd.read_csv(handle, compression="gzip", index_col=0, **_CSV_OPTIONS)
    frame.index = pd.RangeIndex(len(frame))
    return frame


def load_missing_data() -> pd.DataFrame:
    """Load the example data with its missing values.

    Returns
    -------
    pandas.DataFrame
        8000 rows (RangeIndex) by 30 float64 columns; only the biomarker
        columns ``Y11`` .. ``Y55`` contain NaN.

    Examples
    --------
    >>> from ciss_vae.data import load_missing_data
    >>> df = load_missing_data()
    >>> df.shape
    (8000, 30)
    >>> int(df["Age"].isna().sum())
    0
    """
    return _read_table("df_missing").astype(np.float64)


def load_complete_data() -> pd.DataFrame:
    """Load the example data without missing values (the ground truth).

    Returns
    -------
    pandas.DataFrame
        8000 rows (RangeIndex) by 30 float64 columns, equal to
        :func:`load_missing_data` on every observed cell.

    Examples
    --------
    >>> from ciss_vae.data import load_complete_data
    >>> df = load_complete_data()
    >>> int(df.isna().sum().sum())
    0
    """
    return _read_table("df_complete").astype(np.float64)


def load_clusters() -> np.ndarray:
    """Load the true missingness cluster of each row of the example data.

    Returns
    -------
    numpy.ndarray
        1-D ``int64`` array of length 8000 with values 0-3.

    Examples
    --------
    >>> import numpy as np
    >>> from ciss_vae.data import load_clusters
    >>> clusters = load_clusters()
    >>> clusters.shape, clusters.dtype.name
    ((8000,), 'int64')
    >>> np.bincount(clusters).tolist()
    [2000, 2000, 2000, 2000]
    """
    return _read_table("clusters")["clusters"].to_numpy(dtype=np.int64)


def load_dni() -> pd.DataFrame:
    """Load the "do not impute" matrix of the example data.

    Returns
    -------
    pandas.DataFrame
        ``int64`` frame with the columns of the data: 1 where a cell is
        observed or is to be imputed, 0 where a missing cell is to be left
        missing (10 % of the missing cells).

    Examples
    --------
    >>> from ciss_vae.data import load_dni, load_missing_data
    >>> dni = load_dni()
    >>> bool(load_missing_data()[dni == 0].isna().all().all())
    True
    """
    return _read_table("dni").astype(np.int64)


def load_example_dataset() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Load the example data, its ground truth and its missingness clusters.

    Returns
    -------
    df_missing : pandas.DataFrame
        The data with missing values, see :func:`load_missing_data`.
    df_complete : pandas.DataFrame
        The data without missing values, see :func:`load_complete_data`.
    clusters : numpy.ndarray
        The true missingness cluster of each row, see :func:`load_clusters`.

    Examples
    --------
    >>> from ciss_vae.data import load_example_dataset
    >>> df_missing, df_complete, clusters = load_example_dataset()
    >>> df_missing.shape == df_complete.shape == (8000, 30)
    True
    >>> sorted(int(n) for n in set(clusters.tolist()))
    [0, 1, 2, 3]
    """
    return load_missing_data(), load_complete_data(), load_clusters()
