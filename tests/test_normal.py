"""The normal blended into the imputations: EM, conditional means, the weights chosen on validation."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from ciss_vae import CISSVAEImputer, run_cissvae
from ciss_vae.evaluation import standardised_rmse
from ciss_vae.normal import ClusterNormal, fit_normal

COV = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])


def _conditional_by_hand(x, mean, cov):
    m = np.isnan(x)
    out = x.copy()
    if m.all():
        out[:] = mean
    elif m.any():
        o = ~m
        out[m] = mean[m] + cov[np.ix_(m, o)] @ np.linalg.solve(cov[np.ix_(o, o)], x[o] - mean[o])
    return out


def test_conditional_means_match_the_textbook_formula_row_by_row():
    rng = np.random.default_rng(0)
    mean = np.array([0.5, -1.0, 2.0])
    X = rng.multivariate_normal(mean, COV, size=60)
    X[rng.random(X.shape) < 0.4] = np.nan
    X[0] = np.nan  # a row with nothing observed gets the mean
    normal = ClusterNormal(torch.tensor(mean)[None], torch.tensor(COV)[None])
    got = normal.conditional_mean(torch.tensor(X), torch.zeros(60, dtype=torch.int64)).numpy()
    expected = np.stack([_conditional_by_hand(x, mean, COV) for x in X])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    observed = ~np.isnan(X)
    assert np.array_equal(got[observed], X[observed])


def test_em_recovers_the_mean_and_covariance_under_missing_at_random():
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal(np.zeros(3), COV, size=5000)
    X[X[:, 0] > 0.3, 1] = np.nan  # MAR on column 0: the observed-cell mean of column 1 is biased
    X[rng.random(5000) < 0.2, 2] = np.nan
    assert np.nanmean(X[:, 1]) < -0.3
    normal = fit_normal(torch.tensor(X), None, 1, ridge=0.0, iterations=200, tol=1e-8)
    np.testing.assert_allclose(normal.means[0].numpy(), np.zeros(3), atol=0.05)
    np.testing.assert_allclose(normal.covariances[0].numpy(), COV, atol=0.06)


def test_each_cluster_is_completed_under_its_own_normal():
    rng = np.random.default_rng(2)
    a = rng.multivariate_normal([0, 0, 0], COV, size=800)
    b = rng.multivariate_normal([5, -5, 5], COV, size=800)
    X, labels = np.vstack([a, b]), np.repeat([0, 1], 800)
    X[rng.random(X.shape) < 0.2] = np.nan
    normal = fit_normal(torch.tensor(X), torch.tensor(labels), 2)
    np.testing.assert_allclose(normal.means.numpy(), [[0, 0, 0], [5, -5, 5]], atol=0.15)
    pooled = fit_normal(torch.tensor(X), torch.tensor(labels), 1)
    assert pooled.n_clusters == 1 and abs(pooled.means[0, 0].item() - 2.5) < 0.2


def _linear_table(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.0, -0.7, 0.5, 0.3]) + 0.3 * rng.normal(size=n)
    complete = pd.DataFrame(np.column_stack([x, y]), columns=["x1", "x2", "x3", "x4", "y"])
    missing = complete.copy()
    missing.loc[rng.random(n) < 0.3, "y"] = np.nan
    missing.loc[rng.random(n) < 0.2, "x1"] = np.nan
    return complete, missing


def test_the_blend_lowers_the_error_on_a_linear_table_and_is_logged(caplog):
    complete, missing = _linear_table(600, 0)
    fast = dict(seed=0, epochs=60, epochs_per_loop=20, max_loops=2, ensemble_size=1, print_dataset=False,
                return_model=False)
    with caplog.at_level("INFO", logger="ciss_vae"):
        blended = run_cissvae(missing, **fast)
    network = run_cissvae(missing, normal_blend=False, **fast)
    assert "blended the network with one normal" in caplog.text
    err_blend = standardised_rmse(blended, complete, missing)
    err_network = standardised_rmse(network, complete, missing)
    assert err_blend < 0.9 * err_network
    linear = IterativeImputer(random_state=0).fit_transform(missing)  # chained linear regressions: near the truth
    assert err_blend < 1.03 * standardised_rmse(linear, complete, missing)
    pd.testing.assert_frame_equal(blended[missing.notna()], missing[missing.notna()])


def test_published_defaults_do_not_blend():
    _, missing = _linear_table(200, 1)
    imputer = CISSVAEImputer(defaults="published", epochs=3, max_loops=0, seed=0, bootstrap_models=0).fit(missing)
    assert imputer.blend_ is None and imputer.fit_summary_["settings"]["normal_blend"] is False


def test_blended_imputer_saves_loads_and_draws_reproducibly(tmp_path):
    complete, missing = _linear_table(300, 2)
    imputer = CISSVAEImputer(seed=0, epochs=20, epochs_per_loop=5, max_loops=1, ensemble_size=1,
                             bootstrap_models=2).fit(missing)
    assert imputer.blend_ is not None and len(imputer.bootstrap_normals_) == 2
    w = imputer.blend_.weights.numpy()
    assert ((w >= 0) & (w <= 1)).all()
    imputer.save(tmp_path / "imp")
    again = CISSVAEImputer.load(tmp_path / "imp")
    new = missing.iloc[:50]
    pd.testing.assert_frame_equal(again.transform(new), imputer.transform(new))
    draws, redraws = imputer.transform(new, n_draws=3), again.transform(new, n_draws=3)
    for a, b in zip(draws, redraws):
        pd.testing.assert_frame_equal(a, b)
    y_missing = new["y"].isna().to_numpy()
    assert not np.allclose(draws[0].loc[y_missing, "y"], draws[1].loc[y_missing, "y"])
    linear = IterativeImputer(random_state=0).fit(missing).transform(new)
    err = standardised_rmse(imputer.transform(new), complete.iloc[:50], new)
    assert err < 1.1 * standardised_rmse(linear, complete.iloc[:50], new)
