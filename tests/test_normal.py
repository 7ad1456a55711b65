"""The normal blended into the imputations: EM, conditional means, the weights chosen on validation."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer

from ciss_vae import CISSVAEImputer, run_cissvae
from ciss_vae.evaluation import standardised_rmse
from ciss_vae.normal import ClusterNormal, _shrunk_weight, fit_normal

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
    assert "blended the network with" in caplog.text and "network weight per continuous column" in caplog.text
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


def test_the_network_earns_its_weight_only_where_the_cells_can_tell():
    rng = np.random.default_rng(3)
    shrunk, least_squares = [], []
    for _ in range(200):  # a network no better than the normal: its weight is noise, and mostly shrunk away
        v = torch.tensor(rng.normal(size=40))
        q = v + torch.tensor(rng.normal(size=40))  # the normal: right on average, noisy
        d = 0.3 * torch.tensor(rng.normal(size=40))
        shrunk.append(_shrunk_weight(q + d, q, v).item())
        least_squares.append(float(((v - q) @ d / (d @ d)).clamp(0, 1)))
    assert np.mean(np.array(shrunk) == 0) > 0.6 and np.mean(shrunk) < 0.1 < 0.2 < np.mean(least_squares)
    v = torch.tensor(rng.normal(size=40))
    q = v + torch.tensor(rng.normal(size=40))
    exact = v + 0.01 * torch.tensor(rng.normal(size=40))  # a network that is nearly exact
    assert _shrunk_weight(exact, q, v) > 0.97
    p = 2 * v - q + 0.5 * torch.tensor(rng.normal(size=40))  # w near 0.5: least squares, shrunk by its SE
    d = p - q
    w = float((v - q) @ d / (d @ d))
    se2 = float(((v - q - w * d) ** 2).sum() / 39 / (d @ d))
    assert 0 < se2 < w**2
    assert _shrunk_weight(p, q, v).item() == pytest.approx(w * (1 - se2 / w**2), rel=1e-12)
    assert _shrunk_weight(q, q, v) == 1.0  # the two agree: the weight does not matter


def _groups_table(n, seed):
    """Three groups that shift x and y; x missing for 10 / 30 / 60 % of the groups' rows at random."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    x = g - 1.0 + rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n)
    X = np.column_stack([x, y])
    X[rng.random(n) < np.array([0.1, 0.3, 0.6])[g], 0] = np.nan
    return x, X, g


def test_clusters_sharing_a_covariance_keep_their_own_means():
    """Missing not at random given y, at random given the group: each group's mean of x is recovered."""
    x, X, g = _groups_table(6000, 4)
    shared = fit_normal(torch.tensor(X), torch.tensor(g), 3, shared=True)
    assert shared.covariances.shape == (1, 2, 2)
    np.testing.assert_allclose(shared.means[:, 0].numpy(), [-1, 0, 1], atol=0.06)
    labels = torch.tensor(g)
    filled = shared.conditional_mean(torch.tensor(X), labels)[:, 0].numpy()
    one = fit_normal(torch.tensor(X), None, 1).conditional_mean(torch.tensor(X), labels)[:, 0].numpy()
    assert abs(filled.mean() - x.mean()) < 0.02 < 0.1 < abs(one.mean() - x.mean())


def test_a_cluster_that_never_observes_a_column_keeps_the_shift_the_others_imply():
    """Under MAR with the rows missing x as their own cluster, its x is what one normal for all rows implies."""
    rng = np.random.default_rng(5)
    X = rng.multivariate_normal(np.zeros(3), COV, size=4000)
    gone = rng.random(4000) < 1 / (1 + np.exp(-(-1.0 + 1.5 * X[:, 1])))
    X[gone, 0] = np.nan
    labels = torch.tensor(gone.astype(np.int64))
    shared = fit_normal(torch.tensor(X), labels, 2, shared=True)
    one = fit_normal(torch.tensor(X), None, 1)
    a = shared.conditional_mean(torch.tensor(X), labels)[gone, 0].numpy()
    b = one.conditional_mean(torch.tensor(X), labels)[gone, 0].numpy()
    assert np.abs(a - b).mean() < 0.03 and abs(a.mean() - b.mean()) < 0.02


def test_drawn_deviations_have_the_conditional_covariance():
    mean = np.array([0.5, -1.0, 2.0])
    normal = ClusterNormal(torch.tensor(mean)[None], torch.tensor(COV)[None])
    Z = torch.full((20000, 3), torch.nan, dtype=torch.float64)
    Z[:, 2] = 1.0
    Z[:10000, 0] = 0.0  # half the rows miss one cell, half two
    mu, noise = normal.conditional(Z, torch.zeros(20000, dtype=torch.int64), torch.Generator().manual_seed(0))
    assert (noise[:, 2] == 0).all() and (noise[:10000, 0] == 0).all()
    two = np.cov(noise[10000:, :2].numpy().T)
    expected = COV[:2, :2] - np.outer(COV[:2, 2], COV[2, :2]) / COV[2, 2]
    np.testing.assert_allclose(two, expected, atol=0.03)
    one = noise[:10000, 1].numpy().var()
    o = [0, 2]
    assert one == pytest.approx(COV[1, 1] - COV[1, o] @ np.linalg.solve(COV[np.ix_(o, o)], COV[o, 1]), rel=0.05)
    np.testing.assert_array_equal(mu.numpy(), normal.conditional_mean(Z, torch.zeros(20000, dtype=torch.int64)))


def test_a_blend_saved_before_noise_scale_draws_independent_residual_noise(tmp_path):
    _, missing = _linear_table(300, 6)
    imputer = CISSVAEImputer(seed=0, epochs=20, epochs_per_loop=5, max_loops=1, ensemble_size=1,
                             bootstrap_models=0).fit(missing)
    imputer.save(tmp_path)
    desc = json.loads((tmp_path / "model.json").read_text())
    assert desc["format_version"] == 7 and "noise_scale" in desc["fitted"]["blend"]
    del desc["fitted"]["blend"]["noise_scale"]
    (tmp_path / "model.json").write_text(json.dumps(dict(desc, format_version=5)))
    old = CISSVAEImputer.load(tmp_path)
    assert old.blend_.noise_scale is None
    point = imputer.transform(missing)
    pd.testing.assert_frame_equal(old.transform(missing), point)
    y = missing["y"].isna().to_numpy()
    z = np.concatenate([(d.loc[y, "y"] - point.loc[y, "y"]) / (old.residual_std_[4] * old.stds_[4])
                        for d in old.transform(missing, n_draws=20)])
    assert abs(z.std() - 1) < 0.05
    new_draw = imputer.transform(missing, n_draws=1)[0]
    assert not np.allclose(new_draw.loc[y, "y"], old.transform(missing, n_draws=1)[0].loc[y, "y"])


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_a_binary_column_gets_the_logistic_regression_on_the_others():
    rng = np.random.default_rng(7)
    n = 8000
    x = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    b = (rng.random(n) < _sigmoid(0.3 + 1.0 * x[:, 0] - 0.8 * x[:, 1])).astype(float)
    Z = np.column_stack([x, b])
    Z[rng.random(n) < _sigmoid(-1 + x[:, 0]), 2] = np.nan  # b missing at random on x0
    Z[rng.random(n) < 0.1, 1] = np.nan
    normal = fit_normal(torch.tensor(Z), None, 1, binary=[2])
    coef = normal.logistic.numpy()
    assert np.isnan(coef[:2]).all() and coef[2, 3] == 0
    linear = ClusterNormal(normal.means, normal.covariances).conditional_mean(torch.tensor(Z), None).numpy()
    fit = ~np.isnan(Z[:, 2])  # the maximum-likelihood fit on the rows that observe b, as the normal completes them
    A, beta = np.column_stack([np.ones(fit.sum()), linear[fit, :2]]), np.zeros(3)
    for _ in range(30):
        p = _sigmoid(A @ beta)
        beta += np.linalg.solve(A.T @ (A * (p * (1 - p))[:, None]), A.T @ (Z[fit, 2] - p))
    np.testing.assert_allclose(coef[2, :3], beta, atol=0.01)  # the ridge barely shrinks at this size
    np.testing.assert_allclose(beta, [0.3, 1.0, -0.8], atol=0.15)
    rows = np.isnan(Z[:, 2]) & ~np.isnan(Z[:, 1])
    got = normal.conditional_mean(torch.tensor(Z), None).numpy()
    np.testing.assert_allclose(got[rows, 2], _sigmoid(coef[2, 0] + Z[rows, :2] @ coef[2, 1:3]), rtol=1e-12)


def _binary_table(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = 0.7 * x + 0.7 * rng.normal(size=n)
    b = (rng.random(n) < _sigmoid(1.5 * x)).astype(int)
    complete = pd.DataFrame({"x": x, "z": z, "b": pd.array(b, dtype="Int64")})
    miss = rng.random(n) < _sigmoid(-1 + z)
    return complete, complete.assign(b=complete.b.mask(miss))


def test_binary_columns_are_imputed_by_a_logistic_refitted_for_each_draw(tmp_path):
    complete, missing = _binary_table(600, 8)
    imputer = CISSVAEImputer(seed=0, epochs=30, epochs_per_loop=5, max_loops=1, ensemble_size=1,
                             bootstrap_models=3).fit(missing)
    assert imputer.blend_.weights[2] == 0 and imputer.blend_.binary.tolist() == [False, False, True]
    holes = missing.b.isna().to_numpy()
    truth = complete.b[holes].to_numpy(dtype=int)
    accuracy = (imputer.transform(missing).b[holes].to_numpy(dtype=int) == truth).mean()
    network = CISSVAEImputer(seed=0, epochs=30, epochs_per_loop=5, max_loops=1, ensemble_size=1,
                             bootstrap_models=0, normal_blend=False).fit(missing)
    assert accuracy >= (network.transform(missing).b[holes].to_numpy(dtype=int) == truth).mean() - 0.01
    assert accuracy > 0.7
    coefs = np.stack([n.logistic[2].numpy() for n in imputer.bootstrap_normals_])
    assert coefs.std(axis=0)[1] > 0.02  # each refit's logistic is fitted to its resample
    draws = imputer.transform(missing, n_draws=6)
    labels = np.stack([d.b[holes].to_numpy(dtype=int) for d in draws])
    assert set(np.unique(labels)) == {0, 1} and all(str(d.b.dtype) == "Int64" for d in draws)
    assert abs(labels.mean() - _sigmoid(1.5 * complete.x[holes]).mean()) < 0.06  # 0.6: their true probability
    imputer.save(tmp_path)
    again = CISSVAEImputer.load(tmp_path)
    for a, b in zip(draws, again.transform(missing, n_draws=6)):
        pd.testing.assert_frame_equal(a, b)
