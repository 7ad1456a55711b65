"""Seeded generator of the example cohort shipped with ``ciss_vae``.

The cohort mimics the design of the example cohort published with the original
CISS-VAE implementation: 8000 rows, two continuous covariates (``Age``,
``Salary``), a one-hot zip code with three levels and 25 biomarker columns
``Y11`` .. ``Y55`` (first digit: biomarker 1-5, second digit: visit 1-5).
Each row belongs to one of four hidden groups of equal size.  The biomarker
trajectories are straight lines over the visits whose intercept and slope
depend on the hidden group, on the covariates and on row-level latent factors
shared by all biomarkers; the missingness depends on the hidden group and on
the values themselves (missing not at random).

Running ``python -m ciss_vae.data.generate`` rewrites the four shipped files
``df_missing.csv.gz``, ``df_complete.csv.gz``, ``clusters.csv.gz`` and
``dni.csv.gz`` next to this module.  Their bytes depend only on the seed.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
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

# Visit times of the slopes: linear from 0 (visit 1) to 1 (visit 5).
_VISIT_TIME = np.arange(N_VISITS) / (N_VISITS - 1)

# Per-biomarker level at visit 1, unit of the intercepts and slopes below, and
# measurement-noise standard deviation (moderate: about 3-8 % of a column's
# standard deviation).
_BASE = np.array([-8.0, -18.0, -4.0, -2.0, 0.5])
_SCALE = np.array([8.5, 15.0, 7.8, 2.3, 2.0])
_NOISE_SD = 0.15 * _SCALE

# Group means of the intercepts and slopes (groups x biomarkers, in units of
# _SCALE); together with the covariates they carry most of the variance.
_GROUP_INTERCEPT = np.array(
    [
        [3.0, 2.1, -1.5, 1.2, -2.4],
        [-2.4, -1.2, 2.7, -2.1, 1.5],
        [0.3, 1.8, 0.3, 3.0, 2.1],
        [-1.2, -2.7, -1.8, -1.8, -0.9],
    ]
)
_GROUP_SLOPE = np.array(
    [
        [3.6, 2.7, -2.1, 1.2, 1.8],
        [-2.4, -1.2, 3.9, -0.6, -1.5],
        [1.2, 1.8, 2.1, 1.8, 3.3],
        [-2.7, -2.4, 0.0, -1.2, 0.3],
    ]
)

# Linear effects of the covariates (age and salary standardised, zip code
# levels) on the intercepts and slopes (biomarkers).
_AGE_INTERCEPT = np.array([0.9, 0.6, -0.5, 0.75, 0.4])
_SALARY_INTERCEPT = np.array([-0.5, 0.4, 0.6, -0.25, 0.5])
_AGE_SLOPE = np.array([0.75, 0.6, -0.5, 0.6, -0.4])
_SALARY_SLOPE = np.array([-0.5, -0.4, 0.6, 0.4, 0.5])
_ZIP_INTERCEPT = np.array(
    [
        [0.5, -0.25, 0.0, 0.25, -0.5],
        [0.0, 0.5, -0.5, 0.0, 0.25],
        [-0.5, -0.25, 0.5, -0.25, 0.25],
    ]
)
_ZIP_SLOPE = np.array(
    [
        [0.4, 0.0, -0.25, 0.25, 0.0],
        [-0.25, 0.25, 0.25, -0.25, 0.25],
        [0.0, -0.25, 0.0, 0.0, -0.25],
    ]
)

# Loadings of the intercepts and slopes on two row-level standard normal
# factors shared by all biomarkers (a level and a trend; they correlate the
# biomarkers within a group), and the spread of their unique parts.
_LOADING_INTERCEPT = np.array(
    [
        [0.20, 0.03],
        [0.19, 0.05],
        [0.15, 0.08],
        [0.18, 0.05],
        [0.13, 0.09],
    ]
)
_LOADING_SLOPE = np.array(
    [
        [0.08, 0.18],
        [0.06, 0.18],
        [0.05, 0.16],
        [0.08, 0.15],
        [0.04, 0.18],
    ]
)
_UNIQUE_INTERCEPT_SD = 0.05
_UNIQUE_SLOPE_SD = 0.05
_N_FACTORS = _LOADING_INTERCEPT.shape[1]


class _Effects(NamedTuple):
    """Effects on the row intercepts (or slopes) of the biomarkers, one field per source."""

    group: np.ndarray
    age: np.ndarray
    salary: np.ndarray
    zip: np.ndarray
    loading: np.ndarray
    unique_sd: float


_INTERCEPT_EFFECTS = _Effects(
    _GROUP_INTERCEPT, _AGE_INTERCEPT, _SALARY_INTERCEPT, _ZIP_INTERCEPT, _LOADING_INTERCEPT, _UNIQUE_INTERCEPT_SD
)
_SLOPE_EFFECTS = _Effects(_GROUP_SLOPE, _AGE_SLOPE, _SALARY_SLOPE, _ZIP_SLOPE, _LOADING_SLOPE, _UNIQUE_SLOPE_SD)

# Biomarker values are rounded to this many decimals.
_Y_DECIMALS = 3

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
_N_ZIP_LEVELS = _ZIP_PROBABILITIES.shape[1]

# Age: normal around the group mean, clipped and rounded; standardised with
# _AGE_CENTRE and _AGE_SD for its effects.
_AGE_SD = 12.0
_AGE_MIN, _AGE_MAX = 18.0, 90.0
_AGE_DECIMALS = 1
_AGE_CENTRE = 50.0

# Salary: log-normal, exp(_LOG_SALARY_MEAN + _LOG_SALARY_SD * s) with
# s = _AGE_LOG_SALARY * standardised age + zip level effect + N(0, 1), rounded
# to tens; standardised with _SALARY_CENTRE and _SALARY_SCALE for its effects.
_AGE_LOG_SALARY = 0.3
_ZIP_LOG_SALARY = np.array([0.15, 0.0, -0.1])
_LOG_SALARY_MEAN = np.log(55_000.0)
_LOG_SALARY_SD = 0.35
_SALARY_DECIMALS = -1
_SALARY_CENTRE = 58_000.0
_SALARY_SCALE = 21_000.0

# Missingness model (missing not at random): the number of missing visits of
# a row's biomarker is about N_VISITS * rate, plus _MNAR_COUNT_EFFECT * N_VISITS
# * rate * (1 - rate) per standard deviation of the row's mean value of that
# biomarker (within its cluster); the missing visits are drawn without
# replacement with weights exp(_MNAR_VISIT_EFFECT * standardised value).
# Fixing the count per row and biomarker (instead of independent cells) keeps
# every row close to its cluster's rates, so the clusters stay recoverable
# from the missingness pattern, as in the published cohort.
_MNAR_COUNT_EFFECT = 0.3
_MNAR_VISIT_EFFECT = 1.0

# Bisection steps of _calibrate_shift.
_SHIFT_STEPS = 80


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


def _calibrate_shift(effect: np.ndarray, mean_count: float, n_max: int) -> float:
    """Shift ``c`` such that ``mean(clip(mean_count + c + effect, 0, n_max)) == mean_count``.

    Parameters
    ----------
    effect : numpy.ndarray
        Row effects on the expected count, centred.
    mean_count : float
        Wanted mean count, strictly between 0 and ``n_max``.
    n_max : int
        Largest possible count.

    Returns
    -------
    float
        The shift, found by bisection.
    """
    lo, hi = -float(n_max), float(n_max)
    for _ in range(_SHIFT_STEPS):
        mid = 0.5 * (lo + hi)
        if np.clip(mean_count + mid + effect, 0.0, n_max).mean() < mean_count:
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

        Y_{ibt} = \\mu_b + s_b (a_{ib} + d_{ib} t / 4) + \\sigma_b \\varepsilon_{ibt},

    a straight line over the visits ``t = 0..4`` plus normal measurement noise
    (:math:`\\sigma_b = 0.15 s_b`).  The row's intercept :math:`a_{ib}` and
    slope :math:`d_{ib}` are each the sum of a group mean, linear effects of
    age, salary and zip code, loadings on ``F`` (which correlate the
    biomarkers) and a small unique normal part.  The group means and the
    covariates carry most of the variance, the row-level parts a few per cent
    of it; the spread of a biomarker grows at most about 2.2 times from visit 1
    to visit 5.

    Missingness is drawn per row and biomarker, which keeps the rows of a
    cluster close to its missingness rates: the number of missing visits is
    ``5 * rate + 0.3 * 5 * rate * (1 - rate) * L_ib + c``, rounded up or down
    at random to an integer in 0..5, where ``L_ib`` is the row's mean value of
    the biomarker standardised within its cluster and ``c`` is calibrated to
    the rates in :data:`DESIGN_MISSING_RATES`; the missing visits are then
    drawn without replacement with weights ``exp(z)``, ``z`` the cell's value
    standardised within its cluster.  Higher values are therefore missing
    more often (missing not at random), by about a third of a standard
    deviation within a cluster.  Covariates are never missing.  Finally 10 %
    (rounded) of the missing cells, drawn at random, are set to 0 in the DNI
    matrix.

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
    covariates = _simulate_covariates(group, rng)
    y = _simulate_biomarkers(group, covariates, rng)
    missing = _simulate_missingness(group, y, rng)
    zip_onehot = np.eye(_N_ZIP_LEVELS)[covariates.zip_level]
    covariate_table = np.column_stack([covariates.age, covariates.salary, zip_onehot])
    df_complete = pd.DataFrame(np.column_stack([covariate_table, y]), columns=COLUMNS, dtype=np.float64)
    y_missing = np.where(missing, np.nan, y)
    df_missing = pd.DataFrame(np.column_stack([covariate_table, y_missing]), columns=COLUMNS, dtype=np.float64)
    dni = _draw_dni(missing, rng)
    return ExampleCohort(df_missing=df_missing, df_complete=df_complete, clusters=group, dni=dni)


class _Covariates(NamedTuple):
    """Covariates of the rows, with the standardised age and salary their effects use."""

    age: np.ndarray
    salary: np.ndarray
    zip_level: np.ndarray
    age_z: np.ndarray
    salary_z: np.ndarray


def _simulate_covariates(group: np.ndarray, rng: np.random.Generator) -> _Covariates:
    """Draw the age, zip code level (0-2) and salary of each row, given its hidden group."""
    n_rows = len(group)
    age = np.clip(rng.normal(_AGE_MEAN[group], _AGE_SD), _AGE_MIN, _AGE_MAX).round(_AGE_DECIMALS)
    age_z = (age - _AGE_CENTRE) / _AGE_SD
    zip_u = rng.random(n_rows)
    zip_level = (zip_u[:, None] > np.cumsum(_ZIP_PROBABILITIES[group], axis=1)[:, :-1]).sum(axis=1)
    log_salary_z = _AGE_LOG_SALARY * age_z + _ZIP_LOG_SALARY[zip_level] + rng.normal(0.0, 1.0, n_rows)
    salary = np.round(np.exp(_LOG_SALARY_MEAN + _LOG_SALARY_SD * log_salary_z), _SALARY_DECIMALS)
    # The biomarkers depend linearly on the salary itself (not on its log).
    salary_z = (salary - _SALARY_CENTRE) / _SALARY_SCALE
    return _Covariates(age, salary, zip_level, age_z, salary_z)


def _row_coefficients(
    effects: _Effects, group: np.ndarray, covariates: _Covariates, factors: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Intercepts (or slopes) of each row (rows x biomarkers), in units of ``_SCALE``."""
    return (
        effects.group[group]
        + covariates.age_z[:, None] * effects.age
        + covariates.salary_z[:, None] * effects.salary
        + effects.zip[covariates.zip_level]
        + factors @ effects.loading.T
        + rng.normal(0.0, effects.unique_sd, (len(group), N_BIOMARKERS))
    )


def _simulate_biomarkers(group: np.ndarray, covariates: _Covariates, rng: np.random.Generator) -> np.ndarray:
    """Complete biomarker values, rows x (biomarker, visit) in the order of ``Y_COLUMNS``."""
    n_rows = len(group)
    factors = rng.normal(size=(n_rows, _N_FACTORS))
    intercept = _row_coefficients(_INTERCEPT_EFFECTS, group, covariates, factors, rng)
    slope = _row_coefficients(_SLOPE_EFFECTS, group, covariates, factors, rng)
    trajectory = _BASE[:, None] + _SCALE[:, None] * (
        intercept[:, :, None] + slope[:, :, None] * _VISIT_TIME
    )
    noise = rng.normal(size=(n_rows, N_BIOMARKERS, N_VISITS)) * _NOISE_SD[None, :, None]
    return np.round(trajectory + noise, _Y_DECIMALS).reshape(n_rows, N_BIOMARKERS * N_VISITS)


def _simulate_missingness(group: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Missing biomarker cells (bool, same shape as ``y``), drawn cluster by cluster.

    For each row and biomarker, first the number of missing visits (close to
    ``N_VISITS * rate``, larger for rows whose biomarker is high), then which
    visits (preferably the higher values).
    """
    n_rows = len(group)
    count_u = rng.random((n_rows, N_BIOMARKERS))
    visit_gumbel = rng.gumbel(size=(n_rows, N_BIOMARKERS, N_VISITS))
    y3 = y.reshape(n_rows, N_BIOMARKERS, N_VISITS)
    missing = np.zeros((n_rows, N_BIOMARKERS, N_VISITS), dtype=bool)
    for k in range(N_GROUPS):
        rows = np.flatnonzero(group == k)
        z, level = _standardise_within_cluster(y3[rows])
        for b in range(N_BIOMARKERS):
            rate = DESIGN_MISSING_RATES[k, b]
            if rate == 0.0:
                continue
            missing[rows, b, :] = _missing_visits(
                rate, level[:, b], z[:, b, :], count_u[rows, b], visit_gumbel[rows, b, :]
            )
    return missing.reshape(n_rows, N_BIOMARKERS * N_VISITS)


def _standardise_within_cluster(y_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardised values and levels of the rows of one cluster.

    Parameters
    ----------
    y_k : numpy.ndarray of shape (n, N_BIOMARKERS, N_VISITS)
        The cluster's biomarker values.

    Returns
    -------
    z : numpy.ndarray of shape (n, N_BIOMARKERS, N_VISITS)
        Each value standardised within the cluster (per biomarker and visit).
    level : numpy.ndarray of shape (n, N_BIOMARKERS)
        Each row's mean of ``z`` over the visits, standardised within the cluster.
    """
    z = (y_k - y_k.mean(axis=0)) / y_k.std(axis=0)
    level = z.mean(axis=2)
    level = (level - level.mean(axis=0)) / level.std(axis=0)
    return z, level


def _missing_visits(
    rate: float, level: np.ndarray, z: np.ndarray, count_u: np.ndarray, visit_gumbel: np.ndarray
) -> np.ndarray:
    """Missing visits of one biomarker for the rows of one cluster (rows x visits, bool).

    Parameters
    ----------
    rate : float
        The cluster's design missing rate of the biomarker, above 0.
    level : numpy.ndarray of shape (n,)
        Each row's level of the biomarker (see :func:`_standardise_within_cluster`).
    z : numpy.ndarray of shape (n, N_VISITS)
        The biomarker's values standardised within the cluster.
    count_u : numpy.ndarray of shape (n,)
        Uniform draws that round each row's expected count up or down.
    visit_gumbel : numpy.ndarray of shape (n, N_VISITS)
        Gumbel draws that pick the missing visits without replacement, with
        weights ``exp(_MNAR_VISIT_EFFECT * z)``.

    Returns
    -------
    numpy.ndarray of bool, shape (n, N_VISITS)
        True at the missing visits.
    """
    mean_count = N_VISITS * rate
    gamma = _MNAR_COUNT_EFFECT * N_VISITS * rate * (1.0 - rate)
    shift = _calibrate_shift(gamma * level, mean_count, N_VISITS)
    target = np.clip(mean_count + shift + gamma * level, 0.0, N_VISITS)
    count = np.floor(target) + (count_u < target - np.floor(target))
    key = _MNAR_VISIT_EFFECT * z + visit_gumbel
    rank = np.argsort(np.argsort(-key, axis=1, kind="stable"), axis=1, kind="stable")
    return rank < count[:, None]


def _draw_dni(missing: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """DNI matrix: 1 everywhere but in ``DNI_FRACTION`` of the missing biomarker cells, drawn at random."""
    missing_cells = np.flatnonzero(missing)
    n_dni = int(round(DNI_FRACTION * missing_cells.size))
    dni_y = np.ones(missing.size, dtype=np.int64)
    dni_y[rng.choice(missing_cells, size=n_dni, replace=False)] = 0
    dni = pd.DataFrame(np.ones((len(missing), len(COLUMNS)), dtype=np.int64), columns=COLUMNS)
    dni[Y_COLUMNS] = dni_y.reshape(missing.shape)
    return dni


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
    written = write_cohort(simulate_cohort(seed=args.seed), args.out_dir)
    sys.stdout.write("".join(f"{path}\n" for path in written))


if __name__ == "__main__":
    main()
