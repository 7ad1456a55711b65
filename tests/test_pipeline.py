import logging

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

import ciss_vae
from ciss_vae.classes.vae import CISSVAE
from ciss_vae.utils.helpers import compute_val_mse, get_imputed_df
from ciss_vae.utils.run_cissvae import run_cissvae
from tests.conftest import make_table


def std_rmse(imputed, complete, missing):
    mask = missing.isna().to_numpy()
    err = (imputed.to_numpy(float) - complete.to_numpy(float)) / complete.std(ddof=0).to_numpy()
    return float(np.sqrt(np.mean(err[mask] ** 2)))


def test_every_documented_import_path_is_the_same_function():
    from ciss_vae.training.run_cissvae import run_cissvae as a
    from ciss_vae.utils.run_cissvae import run_cissvae as b
    assert ciss_vae.run_cissvae is a is b


def test_imputes_far_better_than_the_column_mean(table, fast):
    data, complete, clusters = table
    fast.update(epochs=150, epochs_per_loop=40, max_loops=4, hidden_dims=[32, 16])
    imputed = run_cissvae(data, clusters=clusters, return_model=False, **fast)
    mean_fill = data.fillna(data.mean())
    ours, baseline = std_rmse(imputed, complete, data), std_rmse(mean_fill, complete, data)
    assert ours < 0.35 * baseline, (ours, baseline)


def test_output_contract_index_columns_dtypes_and_observed_cells(fast):
    data, _, clusters = make_table(seed=1)
    rng = np.random.default_rng(0)
    df = data.copy()
    df.index = [f"r{i}" for i in rng.permutation(len(df))]
    df["x1"] = df["x1"].astype("float32")
    df["count"] = rng.integers(0, 9, len(df))
    df["flag"] = rng.random(len(df)) < 0.5
    df["note"] = "text"
    df["ign"] = np.where(rng.random(len(df)) < 0.2, np.nan, 1.0)
    df = df[["note", "x0", "flag", "x1", "count", "x2", "ign", "x3", "x4", "x5"]]
    before = df.copy()
    out = run_cissvae(df, clusters=clusters, columns_ignore=["note", "ign"], return_model=False, **fast)
    pd.testing.assert_frame_equal(df, before)
    assert out.index.equals(df.index) and list(out.columns) == list(df.columns)
    assert (out.dtypes == df.dtypes).all()
    observed = df.notna().to_numpy()
    for c in df.columns:
        a, b = out[c].to_numpy(), df[c].to_numpy()
        m = df[c].notna().to_numpy()
        assert np.array_equal(a[m], b[m]), c
    pd.testing.assert_series_equal(out["note"], df["note"])
    pd.testing.assert_series_equal(out["ign"], df["ign"])
    model_cols = ["x0", "x1", "x2", "x3", "x4", "x5"]
    assert not out[model_cols].isna().any().any()
    assert observed.sum() < out.notna().to_numpy().sum()


@pytest.mark.parametrize("binary_output", ["label", "probability"])
def test_binary_and_categorical_outputs(binary_output, fast):
    data, _, clusters = make_table(seed=2)
    rng = np.random.default_rng(5)
    cls = (data["x0"].fillna(0) > 0).astype(int) + (data["x2"].fillna(0) > 0).astype(int)
    dummies = pd.DataFrame(np.eye(3)[cls], columns=["c0", "c1", "c2"], index=data.index)
    dummies[rng.random(len(data)) < 0.2] = np.nan
    dummies.loc[3, "c1"] = np.nan
    dummies.loc[3, ["c0", "c2"]] = [1.0, 0.0]
    flag = pd.Series((data["x3"].fillna(100) > 100).astype(float), index=data.index)
    flag[rng.random(len(data)) < 0.2] = np.nan
    df = pd.concat([data, dummies, flag.rename("flag")], axis=1)
    out = run_cissvae(df, clusters=clusters, binary_feature_mask=["flag"],
                      categorical_column_map={"c": ["c0", "c1", "c2"]}, binary_output=binary_output,
                      return_model=False, **fast)
    block = out[["c0", "c1", "c2"]].to_numpy()
    assert set(np.unique(block)) <= {0.0, 1.0} and (block.sum(1) == 1).all()
    assert out.loc[3, "c1"] == 0.0
    filled = out["flag"][df["flag"].isna()]
    if binary_output == "label":
        assert set(filled.unique()) <= {0.0, 1.0}
    else:
        assert ((filled > 0) & (filled < 1)).all() and filled.nunique() > 1


def test_do_not_impute_cells_stay_missing_and_observed_cells_are_never_erased(table, fast):
    data, _, clusters = table
    dni = pd.DataFrame(1, index=data.index, columns=data.columns)
    missing = data.isna()
    first = np.argwhere(missing.to_numpy())[:10]
    for r, c in first:
        dni.iat[r, c] = 0
    dni.iat[0, 1] = 0
    assert not missing.iat[0, 1]
    out = run_cissvae(data, clusters=clusters, imputable_matrix=dni, return_model=False, **fast)
    assert out.isna().sum().sum() == 10
    assert all(np.isnan(out.iat[r, c]) for r, c in first)
    assert out.iat[0, 1] == data.iat[0, 1]


@pytest.mark.parametrize("convert", [lambda d: d.to_numpy(), lambda d: torch.tensor(d.to_numpy())])
def test_array_and_tensor_input_give_a_v_named_frame(table, fast, convert):
    data, _, clusters = table
    out = run_cissvae(convert(data), clusters=clusters, columns_ignore=[0], return_model=False, **fast)
    assert list(out.columns) == [f"V{i}" for i in range(1, 7)]
    assert isinstance(out.index, pd.RangeIndex)
    m = data.notna().to_numpy()
    assert np.array_equal(out.to_numpy()[m], data.to_numpy()[m])


def test_return_order_matches_the_published_one(table, fast):
    data, _, clusters = table
    res = run_cissvae(data, clusters=clusters + 5, return_dataset=True, return_clusters=True,
                      return_silhouettes=True, return_history=True, **fast)
    imputed, model, dataset, labels, silhouette, history = res
    assert isinstance(imputed, pd.DataFrame) and isinstance(model, CISSVAE)
    assert isinstance(dataset, ciss_vae.ClusterDataset) and np.array_equal(labels, clusters + 5)
    assert silhouette is None and history["selected"].sum() == 1
    assert isinstance(run_cissvae(data, clusters=clusters, return_model=False, **fast), pd.DataFrame)
    assert len(run_cissvae(data, clusters=clusters, **fast)) == 2


def test_same_seed_same_output_and_seed_none_works(table, fast, caplog):
    data, _, clusters = table
    a = run_cissvae(data, clusters=clusters, seed=7, return_model=False, **fast)
    b = run_cissvae(data, clusters=clusters, seed=7, return_model=False, **fast)
    c = run_cissvae(data, clusters=clusters, seed=8, return_model=False, **fast)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    with caplog.at_level(logging.INFO, logger="ciss_vae"):
        d = run_cissvae(data, clusters=clusters, seed=None, return_model=False, **fast)
    assert not d.isna().any().any() and "seed=None: drew seed" in caplog.text


def test_no_process_wide_torch_state_is_changed(table, fast):
    data, _, clusters = table
    det = torch.are_deterministic_algorithms_enabled()
    bench, cudnn_det = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.manual_seed(123)
    state = torch.get_rng_state()
    run_cissvae(data, clusters=clusters, seed=1, **fast)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.are_deterministic_algorithms_enabled() == det
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (bench, cudnn_det)


def test_the_initial_model_is_the_baseline_and_the_output_is_the_best_model_on_its_fill(table, fast):
    data, _, clusters = table
    fast.update(epochs=40, max_loops=3, patience=1, normal_blend=False)  # the network's own output
    imputed, model, dataset, history = run_cissvae(data, clusters=clusters, initial_lr_refit=0.5,
                                                   return_dataset=True, return_history=True, **fast)
    refit = history[history.phase.eq("refit") & history.train_loss.isna()]
    assert refit.iloc[0]["loop"] == 0 and refit.iloc[0]["selected"]
    assert (refit.iloc[1:]["imputation_error"] > refit.iloc[0]["imputation_error"]).all()
    again = get_imputed_df(model, DataLoader(dataset, batch_size=100))
    pd.testing.assert_frame_equal(again, imputed)
    total, *_ = compute_val_mse(model, dataset)
    assert total == pytest.approx(history.loc[history.selected, "imputation_error"].item(), rel=1e-6)


def test_refit_improves_and_selects_the_best_loop(table, fast):
    data, _, clusters = table
    fast.update(epochs=30, epochs_per_loop=20, max_loops=6, patience=2)
    _, model, history = run_cissvae(data, clusters=clusters, return_history=True, **fast)
    checks = history[history.phase.eq("refit") & history.train_loss.isna()]
    best = checks.loc[checks.selected, "imputation_error"].item()
    assert best == checks["imputation_error"].min()
    assert history["epoch"].is_monotonic_increasing


def test_saving_and_loading_as_documented(tmp_path, table, fast):
    data, _, clusters = table
    imputed, model, dataset = run_cissvae(data, clusters=clusters, return_dataset=True, normal_blend=False, **fast)
    torch.save(model.state_dict(), tmp_path / "trained_vae.pt")
    rebuilt = CISSVAE(input_dim=6, hidden_dims=[16, 8], layer_order_enc=["u", "s"], layer_order_dec=["s", "u"],
                      latent_shared=False, num_clusters=3, latent_dim=3, output_shared=False)
    rebuilt.load_state_dict(torch.load(tmp_path / "trained_vae.pt"))
    data_loader = DataLoader(dataset, batch_size=4000)
    pd.testing.assert_frame_equal(get_imputed_df(rebuilt, data_loader), imputed)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(clusters=np.zeros(3)), ValueError, "3 labels"),
    (dict(columns_ignore=["nope"]), ValueError, "nope"),
    (dict(layer_order_enc=["u", "q"]), ValueError, "'q'"),
    (dict(layer_order_dec=["s"]), ValueError, "layer_order_dec"),
    (dict(val_proportion=2.0), ValueError, "val_proportion"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(binary_output="soft"), ValueError, "binary_output"),
    pytest.param(dict(device="cuda:0"), ValueError, "CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")),
])
def test_bad_arguments_fail_before_training(table, fast, kwargs, error, message):
    data, _, clusters = table
    args = dict(fast, clusters=clusters)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        run_cissvae(data, **args)


def test_clusters_none_clusters_on_missingness_and_reports_it(fast):
    from sklearn.metrics import adjusted_rand_score

    from ciss_vae.data import load_example_dataset

    df, _, truth = load_example_dataset()
    rows = slice(0, 1600)
    out, model, labels, silhouette = run_cissvae(df.iloc[rows], columns_ignore=list(df.columns[:5]),
                                                 return_clusters=True, return_silhouettes=True, **fast)
    assert adjusted_rand_score(truth[rows], labels) > 0.9
    assert model.num_clusters == len(np.unique(labels)) and 0 < silhouette <= 1
    assert not out.isna().any().any()


def test_clusters_from_a_missingness_proportion_matrix(fast):
    from sklearn.metrics import adjusted_rand_score

    from ciss_vae.data import load_example_dataset
    from ciss_vae.utils import create_missingness_prop_matrix

    df, _, truth = load_example_dataset()
    part = df.iloc[:1600]
    props = create_missingness_prop_matrix(part, cols_ignore=list(df.columns[:5]),
                                           repeat_feature_names=["Y1", "Y2", "Y3", "Y4", "Y5"])
    assert props.shape == (1600, 5)
    _, labels = run_cissvae(part, missingness_proportion_matrix=props, n_clusters=4, return_model=False,
                            return_clusters=True, **fast)
    assert adjusted_rand_score(truth[:1600], labels) > 0.95


def test_clip_to_observed_clips_continuous_imputations_to_the_observed_range(fast):
    # x0 is censored from above: its missing cells lie beyond every observed x0, and the other columns say so.
    rng = np.random.default_rng(0)
    z = rng.normal(size=400)
    data = pd.DataFrame({"x0": 2 * z, "x1": z, "x2": -z + 0.1 * rng.normal(size=400), "x3": rng.normal(size=400),
                         "flag": (z > 0).astype(float)})
    data.loc[z > 0.8, "x0"] = np.nan
    data.loc[::7, "x3"] = np.nan
    data.loc[::9, "flag"] = np.nan
    kw = dict(fast, clusters=np.zeros(400, dtype=int), binary_feature_mask=["flag"], seed=0, return_model=False,
              epochs=60, max_loops=1, epochs_per_loop=20)
    free = run_cissvae(data, **kw)
    clipped = run_cissvae(data, clip_to_observed=True, **kw)
    cont = ["x0", "x1", "x2", "x3"]
    lo, hi = data[cont].min(), data[cont].max()
    assert (free["x0"] > hi["x0"]).any()  # the model extrapolates, so clipping has work to do
    pd.testing.assert_frame_equal(clipped[cont], free[cont].clip(lower=lo, upper=hi, axis=1))
    pd.testing.assert_series_equal(clipped["flag"], free["flag"])
    with pytest.raises(TypeError, match="clip_to_observed"):
        run_cissvae(data, clip_to_observed="yes", **kw)
