import numpy as np
import pandas as pd
import pytest
import torch

from ciss_vae.classes.cluster_dataset import ClusterDataset


def test_inputs_of_every_type_give_the_same_tensors(table):
    data, _, clusters = table
    a = ClusterDataset(data, clusters)
    b = ClusterDataset(data.to_numpy(), clusters)
    c = ClusterDataset(torch.tensor(data.to_numpy()), torch.tensor(clusters))
    obj = data.astype(object).where(data.notna(), None)
    d = ClusterDataset(obj, list(clusters))
    for other in (b, c, d):
        assert torch.equal(a.data, other.data)
        assert torch.equal(a.val_mask, other.val_mask)
    assert b.feature_names == [f"V{i}" for i in range(1, 7)]


def test_validation_hold_out_per_cluster_and_unit(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters, val_proportion=0.25, val_seed=3)
    observed = ~ds.missing_mask
    assert not (ds.val_mask & ds.missing_mask).any()
    assert torch.equal(ds.masks, observed & ~ds.val_mask)
    for k in range(3):
        rows = torch.as_tensor(clusters == k)
        for j in range(6):
            cand = int(observed[rows, j].sum())
            assert int(ds.val_mask[rows, j].sum()) == int(np.floor(cand * 0.25))
    same = ClusterDataset(data, clusters, val_proportion=0.25, val_seed=3)
    other = ClusterDataset(data, clusters, val_proportion=0.25, val_seed=4)
    assert torch.equal(ds.val_mask, same.val_mask) and not torch.equal(ds.val_mask, other.val_mask)
    vals = ds.val_data[ds.val_mask]
    assert torch.equal(vals, ds.raw_data[ds.val_mask]) and ds.val_data[~ds.val_mask].isnan().all()


@pytest.mark.parametrize("form", ["sequence", "array", "mapping", "series"])
def test_per_cluster_proportions_are_keyed_by_the_callers_labels(table, form):
    data, _, clusters = table
    labels = np.array(["b", "c", "a"])[clusters]
    props = {"a": 0.0, "b": 0.5, "c": 0.2}
    value = {"sequence": [0.0, 0.5, 0.2], "array": np.array([0.0, 0.5, 0.2]), "mapping": props,
             "series": pd.Series(props)}[form]
    ds = ClusterDataset(data, labels, val_proportion=value)
    held = [int(ds.val_mask[torch.as_tensor(labels == g)].sum()) for g in "abc"]
    assert held[0] == 0 and held[1] > held[2] > 0
    assert list(ds.cluster_names) == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [-0.1, 1.5, [0.1, 0.2], {"a": 0.1}, float("nan")])
def test_bad_proportions_raise(table, bad):
    data, _, clusters = table
    labels = np.array(["a", "b", "c"])[clusters]
    with pytest.raises(ValueError, match="val_proportion"):
        ClusterDataset(data, labels, val_proportion=bad)


def test_cluster_labels_are_relabelled_and_mapped_back(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters + 1)
    assert ds.cluster_labels.min() == 0 and ds.cluster_labels.max() == 2
    assert np.array_equal(ds.clusters, clusters + 1)
    shuffled = pd.Series(clusters[::-1], index=data.index[::-1])
    assert np.array_equal(ClusterDataset(data, shuffled).clusters, clusters)
    with pytest.raises(ValueError, match="index"):
        ClusterDataset(data, pd.Series(clusters, index=data.index + 1000))


@pytest.mark.parametrize("clusters, message", [
    (np.zeros(5), "labels"),
    (np.r_[np.nan, np.zeros(239)], "missing label"),
])
def test_bad_cluster_labels_raise(table, clusters, message):
    with pytest.raises(ValueError, match=message):
        ClusterDataset(table[0], clusters)


def test_columns_ignore_by_name_or_position_for_every_input(table):
    data, _, clusters = table
    by_name = ClusterDataset(data, clusters, columns_ignore=["x0", "x3"])
    by_pos = ClusterDataset(data, clusters, columns_ignore=[0, 3])
    arr = ClusterDataset(data.to_numpy(), clusters, columns_ignore=[0, 3])
    arr_names = ClusterDataset(data.to_numpy(), clusters, columns_ignore=["V1", "V4"])
    ten = ClusterDataset(torch.tensor(data.to_numpy()), clusters, columns_ignore=(0, 3))
    for ds in (by_name, by_pos, arr, arr_names, ten):
        assert not ds.val_mask[:, [0, 3]].any() and ds.val_mask.any()
        assert torch.equal(ds.val_mask, by_name.val_mask)
    int_cols = data.set_axis(range(6), axis=1)
    assert not ClusterDataset(int_cols, clusters, columns_ignore=[0, 3]).val_mask[:, [0, 3]].any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(columns_ignore=["nope"]), "columns_ignore.*nope"),
    (dict(binary_feature_mask=[True]), "binary_feature_mask"),
    (dict(categorical_column_map={"g": ["x0", "zz"]}), "zz"),
    (dict(replacement_value=float("nan")), "replacement_value"),
])
def test_bad_arguments_name_the_culprit(table, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClusterDataset(table[0], table[2], **kwargs)


def test_bad_columns_name_the_column(table):
    data, _, clusters = table
    mixed = data.assign(name=np.r_[np.arange(len(data) - 1).astype(object), ["abc"]])
    with pytest.raises(TypeError, match=f"'name' mixes numbers and text \\(row {len(data) - 1} holds 'abc'\\)"):
        ClusterDataset(mixed, clusters)
    ok = ClusterDataset(mixed, clusters, columns_ignore=["name"])
    assert ok.n_features == 6
    with pytest.raises(ValueError, match="'x2'.*infinite"):
        ClusterDataset(data.assign(x2=np.r_[np.inf, data.x2.to_numpy()[1:]]), clusters)
    with pytest.raises(ValueError, match="'x5'.*no observed"):
        ClusterDataset(data.assign(x5=np.nan), clusters)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(data)), unit="D")
    with pytest.raises(TypeError, match="'day' holds dates.*days since an origin"):
        ClusterDataset(data.assign(day=when), clusters)


def test_binary_and_categorical_columns(table):
    data, _, clusters = table
    rng = np.random.default_rng(1)
    cls = rng.integers(0, 3, len(data))
    extra = pd.DataFrame(np.eye(3)[cls], columns=["c0", "c1", "c2"], index=data.index)
    extra["flag"] = rng.integers(0, 2, len(data)).astype(float)
    extra.loc[::7, ["c0", "c1", "c2"]] = np.nan
    extra.loc[::5, "flag"] = np.nan
    df = pd.concat([data, extra], axis=1)
    ds = ClusterDataset(df, clusters, binary_feature_mask=["flag"], categorical_column_map={"c": ["c0", "c1", "c2"]})
    units = {u[0]: u for u in ds.validation_units()}
    assert units["c"][1] == "categorical" and units["flag"][1] == "binary"
    held = ds.val_mask[:, 6:9]
    assert torch.equal(held.any(1), held.all(1))
    assert torch.equal(ds.data[:, 9][ds.masks[:, 9]], ds.raw_data[:, 9][ds.masks[:, 9]])
    with pytest.raises(ValueError, match="'flag'.*0/1"):
        ClusterDataset(df.assign(flag=df.flag * 2), clusters, binary_feature_mask=["flag"])
    bad = df.copy()
    bad.loc[1, ["c0", "c1", "c2"]] = [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="one-hot"):
        ClusterDataset(bad, clusters, categorical_column_map={"c": ["c0", "c1", "c2"]})


def test_dni_matrix_shape_columns_and_hold_out(table):
    data, _, clusters = table
    dni = pd.DataFrame(1, index=data.index, columns=data.columns)
    dni.iloc[:, 0] = 0
    ds = ClusterDataset(data, clusters, imputable=dni, val_proportion=0.5)
    assert not ds.val_mask[:, 0].any()
    assert torch.equal(ds.imputable[:, 0], ~ds.missing_mask[:, 0])
    with pytest.raises(ValueError, match="shape"):
        ClusterDataset(data, clusters, imputable=np.ones((3, 6)))
    with pytest.raises(ValueError, match="columns"):
        ClusterDataset(data, clusters, imputable=dni.set_axis(list("abcdef"), axis=1))


def test_normalisation_uses_training_cells_only(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters, val_proportion=0.3)
    train = np.where(ds.masks.numpy(), ds.raw_data.numpy(), np.nan)
    assert np.allclose(ds.feature_means.numpy(), np.nanmean(train, 0), rtol=1e-5)
    assert np.allclose(ds.feature_stds.numpy(), np.nanstd(train, 0), rtol=1e-4)
    assert (ds.data[~ds.masks] == 0).all()


def test_caller_objects_are_not_modified(table):
    data, _, clusters = table
    before, labels = data.copy(), clusters.copy()
    arr = data.to_numpy().copy()
    ClusterDataset(data, clusters, columns_ignore=["x0"])
    ClusterDataset(arr, clusters)
    pd.testing.assert_frame_equal(data, before)
    assert np.array_equal(labels, clusters) and np.array_equal(arr, data.to_numpy(), equal_nan=True)


def test_works_with_a_dataloader(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    x, c, m, i = next(iter(torch.utils.data.DataLoader(ds, batch_size=10)))
    assert x.shape == (10, 6) and c.dtype == torch.int64 and m.dtype == torch.bool and i.tolist() == list(range(10))
    assert "n_clusters=3" in repr(ds)
