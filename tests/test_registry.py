"""The registry simulator of benchmarks/scale.py: types, missingness clusters, MNAR, seeds."""

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ciss_vae import MissingnessClusterer
from ciss_vae.data import simulate_registry


def test_registry_has_the_asked_shape_types_and_observed_covariates():
    reg = simulate_registry(n_rows=3000, n_columns=100, n_clusters=5, seed=0)
    df, full = reg.df_missing, reg.df_complete
    assert df.shape == full.shape == (3000, 100)
    kinds = df.dtypes.astype(str).value_counts().to_dict()
    assert kinds == {"float64": 89, "Int8": 10, "category": 1}
    assert list(df["region"].cat.categories) == ["R1", "R2", "R3", "R4", "R5"]
    assert df[["x1", "x2", "x3", "x4"]].notna().all().all() and full.notna().all().all()
    observed = df.notna()
    for c in df.columns:  # observed cells are the truth
        assert (df[c][observed[c]].astype(str) == full[c][observed[c]].astype(str)).all()
    assert 0.15 < df.isna().to_numpy().mean() < 0.45
    assert set(np.unique(reg.clusters)) == set(range(5))


def test_missingness_clusters_are_recoverable_and_missingness_depends_on_the_value():
    reg = simulate_registry(n_rows=4000, n_columns=60, n_clusters=5, seed=1)
    df, full = reg.df_missing, reg.df_complete
    assert not df[reg.clusters == 0].isna().any().any()  # one group is complete
    labels = MissingnessClusterer(n_clusters=5, seed=0).fit(df).labels_
    assert adjusted_rand_score(reg.clusters, labels) > 0.9
    gaps = []  # MNAR: within a cluster, the missing values of a column are higher than the observed ones
    for c in [c for c in df.columns if c.startswith("x")]:
        for k in range(5):
            rows = reg.clusters == k
            miss = df[c][rows].isna()
            if 20 <= miss.sum() <= rows.sum() - 20:
                z = (full[c][rows] - full[c][rows].mean()) / full[c][rows].std()
                gaps.append(z[miss].mean() - z[~miss].mean())
    assert len(gaps) > 20 and np.median(gaps) > 0.4


def test_same_seed_same_table_other_seed_other_table():
    a = simulate_registry(n_rows=500, n_columns=20, seed=3)
    b = simulate_registry(n_rows=500, n_columns=20, seed=3)
    c = simulate_registry(n_rows=500, n_columns=20, seed=4)
    pd.testing.assert_frame_equal(a.df_missing, b.df_missing)
    assert not a.df_complete.equals(c.df_complete)


def test_design_seed_gives_fresh_rows_of_the_same_population():
    a = simulate_registry(n_rows=4000, n_columns=20, seed=0)
    b = simulate_registry(n_rows=4000, n_columns=20, seed=7, design_seed=0)
    c = simulate_registry(n_rows=4000, n_columns=20, seed=7)
    pd.testing.assert_frame_equal(simulate_registry(n_rows=500, n_columns=20, seed=3, design_seed=3).df_missing,
                                  simulate_registry(n_rows=500, n_columns=20, seed=3).df_missing)
    xs = [k for k in a.df_complete if k.startswith("x")]
    sd = a.df_complete[xs].std()

    def shift(other):  # largest gap between column means, in standard deviations
        return float(((a.df_complete[xs].mean() - other.df_complete[xs].mean()).abs() / sd).max())

    assert not a.df_complete.equals(b.df_complete)
    assert shift(b) < 0.15 < 1.0 < shift(c)
    rates = a.df_missing.isna().mean() - b.df_missing.isna().mean()
    assert rates.abs().max() < 0.05
