"""Tests of the shipped example cohort, its loaders and its generator."""

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ciss_vae.data as data
from ciss_vae.data import generate

COVARIATES = ["Age", "Salary", "ZipCode10001", "ZipCode20002", "ZipCode30003"]
Y_COLUMNS = [f"Y{b}{v}" for b in range(1, 6) for v in range(1, 6)]


@pytest.fixture(scope="module")
def shipped():
    df_missing, df_complete, clusters = data.load_example_dataset()
    return generate.ExampleCohort(df_missing, df_complete, clusters, data.load_dni())


@pytest.fixture(scope="module")
def regenerated():
    return data.simulate_cohort()


def test_shapes_columns_and_dtypes(shipped):
    df_missing, df_complete, clusters, dni = shipped
    for frame in (df_missing, df_complete, dni):
        assert frame.shape == (8000, 30)
        assert list(frame.columns) == COVARIATES + Y_COLUMNS
        assert isinstance(frame.index, pd.RangeIndex)
        assert frame.index.equals(pd.RangeIndex(8000))
    assert (df_missing.dtypes == np.float64).all()
    assert (df_complete.dtypes == np.float64).all()
    assert (dni.dtypes == np.int64).all()
    assert clusters.shape == (8000,)
    assert clusters.dtype == np.int64


def test_single_loaders_match_example_dataset(shipped):
    assert data.load_missing_data().equals(shipped.df_missing)
    assert data.load_complete_data().equals(shipped.df_complete)
    np.testing.assert_array_equal(data.load_clusters(), shipped.clusters)


def test_covariates(shipped):
    df = shipped.df_complete
    assert (df["Age"] > 0).all() and (df["Salary"] > 0).all()
    zips = df[COVARIATES[2:]].to_numpy()
    assert set(np.unique(zips)) == {0.0, 1.0}
    assert (zips.sum(axis=1) == 1.0).all()


def test_missing_only_in_biomarkers_at_design_rate(shipped):
    na = shipped.df_missing.isna()
    assert not na[COVARIATES].any().any()
    assert not shipped.df_complete.isna().any().any()
    assert 0.25 <= na[Y_COLUMNS].to_numpy().mean() <= 0.30


def test_clusters_and_per_cluster_missing_rates(shipped):
    clusters = shipped.clusters
    np.testing.assert_array_equal(np.bincount(clusters), [2000, 2000, 2000, 2000])
    na = shipped.df_missing[Y_COLUMNS].isna().to_numpy()
    assert not na[clusters == 2].any()
    for k in range(4):
        for b in range(5):
            rate = na[clusters == k][:, 5 * b : 5 * b + 5].mean()
            assert abs(rate - generate.DESIGN_MISSING_RATES[k, b]) < 0.02, (k, b, rate)


def test_design_follows_published_pattern():
    rates = generate.DESIGN_MISSING_RATES
    high, low = rates[1, 0], rates[0, 2]
    np.testing.assert_array_equal(rates[0], [high, high, low, low, low])
    assert (rates[1] == high).all() and (rates[2] == 0.0).all()
    assert (rates[3] == rates[3, 0]).all()
    assert abs(high - 0.64) <= 0.035
    assert abs(low - 0.10) <= 0.01
    assert abs(rates[3, 0] - 0.28) <= 0.025


def test_missing_data_equals_complete_data_where_observed(shipped):
    observed = shipped.df_missing.notna().to_numpy()
    missing = shipped.df_missing.to_numpy()
    complete = shipped.df_complete.to_numpy()
    np.testing.assert_array_equal(missing[observed], complete[observed])


def test_dni_matrix(shipped):
    dni = shipped.dni.to_numpy()
    na = shipped.df_missing.isna().to_numpy()
    assert set(np.unique(dni)) == {0, 1}
    assert (dni[~na] == 1).all()
    n_zero = int((dni == 0).sum())
    assert abs(n_zero - 0.1 * na.sum()) <= 0.5
    assert (dni[:, :5] == 1).all()


def test_regeneration_is_exact(shipped, regenerated):
    assert regenerated.df_missing.equals(shipped.df_missing)
    assert regenerated.df_complete.equals(shipped.df_complete)
    np.testing.assert_array_equal(regenerated.clusters, shipped.clusters)
    assert regenerated.dni.equals(shipped.dni)


def test_written_files_are_byte_identical(regenerated, tmp_path):
    package_dir = Path(generate.__file__).parent
    for path in generate.write_cohort(regenerated, tmp_path):
        assert path.read_bytes() == (package_dir / path.name).read_bytes(), path.name


def test_seed_matters(regenerated):
    other = data.simulate_cohort(seed=1)
    assert not other.df_complete.equals(regenerated.df_complete)
    assert not other.df_missing.isna().equals(regenerated.df_missing.isna())
    assert not np.array_equal(other.clusters, regenerated.clusters)


def test_simulate_cohort_rejects_uneven_rows():
    with pytest.raises(ValueError):
        data.simulate_cohort(n_rows=10)


def test_missingness_is_informative(shipped):
    """Within each cluster with missing cells, missing values are higher."""
    complete = shipped.df_complete[Y_COLUMNS].to_numpy()
    na = shipped.df_missing[Y_COLUMNS].isna().to_numpy()
    for k in (0, 1, 3):
        rows = shipped.clusters == k
        for j, column in enumerate(Y_COLUMNS):
            values, missing = complete[rows, j], na[rows, j]
            assert values[missing].mean() > values[~missing].mean(), (k, column)


def test_missingness_shift_is_moderate(shipped):
    """Missing values are on average 0.2-0.45 within-cluster std above observed ones."""
    complete = shipped.df_complete[Y_COLUMNS].to_numpy()
    na = shipped.df_missing[Y_COLUMNS].isna().to_numpy()
    shifts = []
    for k in (0, 1, 3):
        rows = shipped.clusters == k
        for j in range(len(Y_COLUMNS)):
            values, missing = complete[rows, j], na[rows, j]
            shifts.append((values[missing].mean() - values[~missing].mean()) / values.std())
    assert 0.2 <= np.mean(shifts) <= 0.45


def test_missingness_clusters_are_recoverable(shipped):
    """The default missingness clustering finds the four true clusters."""
    from sklearn.metrics import adjusted_rand_score

    from ciss_vae.utils import cluster_on_missing

    df = shipped.df_missing
    labels, _ = cluster_on_missing(df, cols_ignore=list(df.columns[:5]))
    assert len(np.unique(labels)) == 4
    assert adjusted_rand_score(shipped.clusters, labels) >= 0.9


def test_spread_grows_moderately_over_visits(shipped):
    stds = shipped.df_complete[Y_COLUMNS].std().to_numpy().reshape(5, 5)
    ratio = stds[:, -1] / stds[:, 0]
    assert (ratio > 0.5).all() and (ratio < 3.0).all()


def test_structure_is_learnable(shipped):
    """Linear regression of each biomarker column on all other columns.

    Solved through the normal equations of the standardised data (one zip
    column dropped, it is collinear with the intercept), which gives the same
    R^2 as ``lstsq`` on the raw design matrix but is much cheaper.
    """
    frame = shipped.df_complete.drop(columns="ZipCode30003")
    x = frame.to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    corr = z.T @ z / len(z)
    r2 = []
    for column in Y_COLUMNS:
        j = frame.columns.get_loc(column)
        others = np.delete(np.arange(corr.shape[0]), j)
        coef, *_ = np.linalg.lstsq(corr[np.ix_(others, others)], corr[others, j], rcond=None)
        r2.append(float(corr[others, j] @ coef))
    assert np.mean(r2) > 0.8


def test_biomarker_scales_differ(shipped):
    stds = shipped.df_complete[Y_COLUMNS].std()
    assert stds.min() < 10 and stds.max() > 50


@pytest.mark.parametrize("module", [data, generate])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
