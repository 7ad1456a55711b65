"""Seeded generator of the example cohort shipped with ``ciss_vae``.

The cohort mimics the design of the example cohort published with the original
CISS-VAE implementation: 8000 rows, two continuous covariates (``Age``,
``Salary``), a one-hot zip code with three levels and 25 biomarker columns
``Y11`` .. ``Y55`` (first digit: biomarker 1-5, second digit: visit 1-5).
Each row belongs to one of four hidden groups of equal size.  The biomarker
trajectories depend on the covariates, on the hidden group and on row-level
latent factors shared by all biomarkers; the missingness depends on the hidden
group and on the values themselves (missing not at random).

Running ``python -m ciss_vae.data.generate`` rewrites the four shipped files
``df_missing.csv.gz``, ``df_complete.csv.gz``, ``clusters.csv.gz`` and
``dni.csv.gz`` next to this module.  Their bytes depend only on the seed.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_SEED",
    "DESIGN_MISSING_RATES",
    "ExampleCohort",
    "FILE_NAMES",
    "main",
    "simulate_cohort",
    "write_cohort",
]

DEFAULT_SEED = 20251127
"""Seed of the shipped example cohort."""

N_GROUPS = 4
N_BIOMARKERS = 5
N_VISITS = 5

COVARIATE_COLUMNS = ["Age", "Salary", "ZipCode10001", "ZipCode20002", "ZipCode30003"]
Y_COLUMNS = [f"Y{b}{v}" for b in range(1, N_BIOMARKERS + 1) for v in range(1, N_VISITS + 1)]
COLUMNS = COVARIATE_COLUMNS + Y_COLUMNS

FILE_NAMES = {
    "df_missing": "df_missing.csv.gz",
    "df_complete": "df_complete.csv.gz",
    "clusters": "clusters.csv.gz",
    "dni": "dni.csv.gz",
}
"""Name of the shipped file of each part of the cohort."""

DESIGN_MISSING_RATES = np.array(
    [
        [0.61, 0.61, 0.10, 0.10, 0.10],
        [0.61, 0.61, 0.61, 0.61, 0.61],
        [0.00, 0.00, 0.00, 0.00, 0.00],
        [0.26, 0.26, 0.26, 0.26, 0.26],
    ]
)
"""Target probability that a biomarker cell is missing, by cluster (rows) and
biomarker (columns); identical for the five visits of a biomarker.

The published cohort uses 0.64 where this table has 0.61 and 0.28 where it has
0.26, which puts 30.9 % of its biomarker cells missing; the rates are lowered
slightly so that about 29 % are missing here."""

DNI_FRACTION = 0.10
"""Fraction of the missing cells marked "do not impute" in the DNI matrix."""

# Visit-time profile of the slopes: smooth, concave growth over the visits.
_VISIT_PROFILE = np.log1p(np.arange(N_VISITS)) / np.log1p(N_VISITS - 1)

# Per-biomarker scales: level at visit 1, spread of the intercepts, spread of
# the change from visit 1 to visit 5, and measurement-noise standard deviation.
_BASE = np.array([-8.0, -18.0, -4.0, -2.0, 0.5])
_INTERCEPT_SCALE = np.array([12.0, 14.0, 13.0, 5.5, 4.8])
_SLOPE_SCALE = np.array([60.0, 78.0, 62.0, 27.0, 23.0])
_NOISE_SD = np.array([0.8, 0.95, 0.85, 0.38, 0.33])

# Group means of the standardised intercepts and slopes (groups x biomarkers).
_GROUP_INTERCEPT = np.array(
    [
        [0.6, 0.4, -0.3, 0.2, -0.5],
        [-0.5, -0.2, 0.5, -0.4, 0.3],
        [0.0, 0.3, 0.0, 0.6, 0.4],
        [-0.2, -0.6, -0.3, -0.4, -0.2],
    ]
)
_GROUP_SLOPE = np.array(
    [
        [1.6, 1.3, 0.2, 0.5, 0.9],
        [0.1, 0.4, 1.7, 1.3, 0.3],
        [0.9, 1.0, 1.1, 0.2, 1.5],
        [-0.2, -0.1, 0.5, 1.0, 0.6],
    ]
)

# Covariate effects on the standardised intercepts and slopes (biomarkers).
_AGE_INTERCEPT = np.array([0.35, 0.25, -0.20, 0.30, 0.15])
_SALARY_INTERCEPT = np.array([-0.20, 0.15, 0.25, -0.10, 0.20])
_AGE_SLOPE = np.array([0.25, 0.20, -0.15, 0.20, -0.10])
_AGE2_SLOPE = np.array([0.00, 0.00, 0.20, 0.15, 0.00])
_SALARY_SLOPE = np.array([-0.15, -0.10, 0.20, 0.10, 0.15])
_ZIP_INTERCEPT = np.array(
    [
        [0.2, -0.1, 0.0, 0.1, -0.2],
        [0.0, 0.2, -0.2, 0.0, 0.1],
        [-0.2, -0.1, 0.2, -0.1, 0.1],
    ]
)
_ZIP_SLOPE = np.array(
    [
        [0.15, 0.0, -0.1, 0.1, 0.0],
        [-0.1, 0.1, 0.1, -0.1, 0.1],
        [0.0, -0.1, 0.0, 0.0, -0.1],
    ]
)

# Loadings of the standardised intercepts and slopes on two row-level
# factors shared by all biomarkers, and the spread of their unique parts.
_LOADING_INTERCEPT = np.array(
    [
        [0.9, 0.2],
        [0.8, 0.35],
        [0.5, 0.7],
        [0.75, 0.5],
        [0.3, 0.85],
    ]
)
_LOADING_SLOPE = np.array(
    [
        [0.5, 0.25],
        [0.45, 0.3],
        [0.3, 0.5],
        [0.4, 0.35],
        [0.2, 0.55],
    ]
)
_UNIQUE_INTERCEPT_SD = 0.06
_UNIQUE_SLOPE_SD = 0.04

# Group-dependent mean and mixing of the covariates.
_AGE_MEAN = np.array([46.0, 52.0, 49.0, 55.0])
_ZIP_PROBABILITIES = np.array(
    [
        [0.40, 0.30, 0.30],
        [0.30, 0.40, 0.30],
        [0.30, 0.30, 0.40],
        [0.34, 0.33, 0.33],
    ]
)

# Missingness model: logit P(missing) = c[cluster, column] + value effect
# + row propensity + row-and-biomarker propensity.
_MNAR_VALUE_EFFECT = 0.6
_ROW_PROPENSITY_SD = 0.25
_ROW_BIOMARKER_PROPENSITY_SD = 0.25


class ExampleCohort(NamedTuple):
    """A simulated cohort with its ground truth.

    Attributes
    ----------
    df_missing : pandas.DataFrame
        The data with missing biomarker cells (NaN).
    df_complete : pandas.DataFrame
        The same data without missing values.
    clusters : numpy.ndarray
        True missingness cluster (0-3) of each row, ``int64``.
    dni : pandas.DataFrame
        "Do not impute" matrix, ``int64``: 1 where a cell is observed or is to
        be imputed, 0 where a missing cell is to be left missing.
    """

    df_missing: pd.DataFrame
    df_complete: pd.DataFrame
    clusters: np.ndarray
    dni: pd.DataFrame


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _calibrate_intercept(eta: np.ndarray, target: float) -> float:
    """Intercept ``c`` such that ``mean(sigmoid(c + eta)) == target``.

    Parameters
    ----------
    eta : numpy.ndarray
        Linear predictors without the intercept.
    target : float
        Wanted mean probability, strictly between 0 and 1.

    Returns
    -------
    float
        The intercept, found by bisection.
    """
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + eta).mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def simulate_cohort(n_rows: int = 8000, seed: int = DEFAULT_SEED) -> ExampleCohort:
    """Simulate the example cohort.

    Parameters
    ----------
    n_rows : int, default 8000
        Number of rows; a multiple of 4 (the rows are split evenly over the
        four hidden groups).
    seed : int, default 20251127
        Seed of :func:`numpy.random.default_rng`; the shipped files use the
        default.

    Returns
    -------
    ExampleCohort
        ``df_missing`` and ``df_complete`` with columns ``Age``, ``Salary``,
        ``ZipCode10001``, ``ZipCode20002``, ``ZipCode30003``, ``Y11`` ..
        ``Y55`` (float64, RangeIndex), ``clusters`` (int64, 0-3) and ``dni``.

    Notes
    -----
    Row ``i`` has a hidden group ``g`` (also its missingness cluster), an age,
    a salary and a zip code whose distributions depend on ``g``, and two
    standard normal latent factors ``F``.  Biomarker ``b`` at visit ``t`` is

    .. math::

        Y_{ibt} = \\mu_b + s_b a_{ib} + r_b d_{ib} h(t) + \\sigma_b \\varepsilon_{ibt},

    with :math:`h(t) = \\log(1+t)/\\log 5` for visits ``t = 0..4``, and the
    standardised intercept :math:`a_{ib}` and slope :math:`d_{ib}` each the sum
    of a group mean, covariate effects, loadings on ``F`` and a unique normal
    part.  Biomarker cells go missing with probability
    ``sigmoid(c + 0.6 z + u_i + v_ib)``, where ``z`` is the cell's own
    standardised value (higher values are more often missing), ``u_i`` and ``v_ib`` are
    row-level and row-and-biomarker-level propensities (cells of a row go
    missing together), and ``c`` is calibrated per cluster and column to the
    rates in :data:`DESIGN_MISSING_RATES`.  Covariates are never missing.
    Finally 10 % (rounded) of the missing cells, drawn at random, are set to 0
    in the DNI matrix.

    Examples
    --------
    >>> from ciss_vae.data import simulate_cohort
    >>> cohort = simulate_cohort(n_rows=400, seed=1)
    >>> cohort.df_missing.shape
    (400, 30)
    >>> sorted(set(cohort.clusters.tolist()))
    [0, 1, 2, 3]
    """
    if n_rows <= 0 or n_rows % N_GROUPS:
        raise ValueError(f"n_rows must be a positive multiple of {N_GROUPS}, got {n_rows}")
    rng = np.random.default_rng(seed)

    group = rng.permutation(np.repeat(np.arange(N_GROUPS, dtype=np.int64), n_rows // N_GROUPS))

    age = np.clip(rng.normal(_AGE_MEAN[group], 12.0), 18.0, 90.0).round(1)
    age_z = (age - 50.0) / 12.0
    zip_u = rng.random(n_rows)
    zip_level = (zip_u[:, None] > np.cumsum(_ZIP_PROBABILITIES[group], axis=1)[:, :-1]).sum(axis=1)
    zip_onehot = np.eye(3)[zip_level]
    zip_salary = np.array([0.15, 0.0, -0.1])[zip_level]
    log_salary_z = 0.3 * age_z + zip_salary + rng.normal(0.0, 1.0, n_rows)
    salary = np.round(np.exp(np.log(55_000.0) + 0.35 * log_salary_z), -1)
    salary_z = (np.log(salary) - np.log(55_000.0)) / 0.35

    factors = rng.normal(size=(n_rows, _LOADING_INTERCEPT.shape[1]))
    intercept = (
        _GROUP_INTERCEPT[group]
        + age_z[:, None] * _AGE_INTERCEPT
        + salary_z[:, None] * _SALARY_INTERCEPT
        + _ZIP_INTERCEPT[zip_level]
        + factors @ _LOADING_INTERCEPT.T
        + rng.normal(0.0, _UNIQUE_INTERCEPT_SD, (n_rows, N_BIOMARKERS))
    )
    slope = (
        _GROUP_SLOPE[group]
        + age_z[:, None] * _AGE_SLOPE
        + (age_z[:, None] ** 2 - 1.0) * _AGE2_SLOPE
        + salary_z[:, None] * _SALARY_SLOPE
        + _ZIP_SLOPE[zip_level]
        + factors @ _LOADING_SLOPE.T
        + rng.normal(0.0, _UNIQUE_SLOPE_SD, (n_rows, N_BIOMARKERS))
    )
    trajectory = (
        (_BASE + _INTERCEPT_SCALE * intercept)[:, :, None]
        + (_SLOPE_SCALE * slope)[:, :, None] * _VISIT_PROFILE
    )
    noise = rng.normal(size=(n_rows, N_BIOMARKERS, N_VISITS)) * _NOISE_SD[None, :, None]
    y = np.round(trajectory + noise, 3).reshape(n_rows, N_BIOMARKERS * N_VISITS)

    z = (y - y.mean(axis=0)) / y.std(axis=0)
    row_propensity = rng.normal(0.0, _ROW_PROPENSITY_SD, n_rows)
    row_biomarker_propensity = rng.normal(0.0, _ROW_BIOMARKER_PROPENSITY_SD, (n_rows, N_BIOMARKERS))
    eta = (
        _MNAR_VALUE_EFFECT * z
        + row_propensity[:, None]
        + np.repeat(row_biomarker_propensity, N_VISITS, axis=1)
    )
    prob = np.zeros_like(eta)
    for k in range(N_GROUPS):
        rows = group == k
        for j in range(N_BIOMARKERS * N_VISITS):
            target = DESIGN_MISSING_RATES[k, j // N_VISITS]
            if target > 0.0:
                c = _calibrate_intercept(eta[rows, j], target)
                prob[rows, j] = _sigmoid(c + eta[rows, j])
    missing = rng.random(eta.shape) < prob

    covariates = np.column_stack([age, salary, zip_onehot])
    df_complete = pd.DataFrame(np.column_stack([covariates, y]), columns=COLUMNS, dtype=np.float64)
    y_missing = np.where(missing, np.nan, y)
    df_missing = pd.DataFrame(
        np.column_stack([covariates, y_missing]), columns=COLUMNS, dtype=np.float64
    )

    missing_cells = np.flatnonzero(missing)
    n_dni = int(round(DNI_FRACTION * missing_cells.size))
    dni_y = np.ones(missing.size, dtype=np.int64)
    dni_y[rng.choice(missing_cells, size=n_dni, replace=False)] = 0
    dni = pd.DataFrame(np.ones((n_rows, len(COLUMNS)), dtype=np.int64), columns=COLUMNS)
    dni[Y_COLUMNS] = dni_y.reshape(missing.shape)

    return ExampleCohort(df_missing=df_missing, df_complete=df_complete, clusters=group, dni=dni)


def _gzip_csv(frame: pd.DataFrame) -> bytes:
    """CSV text of ``frame`` (index first), gzip-compressed with a fixed header."""
    text = frame.to_csv(index=True, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_cohort(cohort: ExampleCohort, out_dir: str | Path) -> list[Path]:
    """Write a cohort as the four gzip-compressed CSV files.

    Parameters
    ----------
    cohort : ExampleCohort
        The cohort, e.g. from :func:`simulate_cohort`.
    out_dir : str or pathlib.Path
        Existing folder to write into.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of :data:`FILE_NAMES`.

    Notes
    -----
    Floats are written in their shortest round-trip representation and the
    gzip header carries no time stamp nor file name, so the bytes depend only
    on the cohort.
    """
    out_dir = Path(out_dir)
    frames = {
        "df_missing": cohort.df_missing,
        "df_complete": cohort.df_complete,
        "clusters": pd.DataFrame({"clusters": cohort.clusters}),
        "dni": cohort.dni,
    }
    written = []
    for key, name in FILE_NAMES.items():
        path = out_dir / name
        path.write_bytes(_gzip_csv(frames[key]))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Regenerate the shipped example files.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments; ``--out-dir`` (default: the folder of this
        module) and ``--seed`` (default :data:`DEFAULT_SEED`).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    for path in write_cohort(simulate_cohort(seed=args.seed), args.out_dir):
        print(path)


if __name__ == "__main__":
    main()
