"""Clustering on missingness: planted structure, determinism, guards, new rows, proportions."""

import doctest
import importlib.util
import json
import logging
import pathlib
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

if importlib.util.find_spec("ciss_vae") is None:  # not installed: use the source tree
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))

from conftest import shared_file  # noqa: E402

from ciss_vae import clustering as clustering_module  # noqa: E402
from ciss_vae import proportions as proportions_module  # noqa: E402
from ciss_vae.clustering import (  # noqa: E402
    MissingnessClusterer,
    cluster_on_missing,
    cluster_on_missing_prop,
)
from ciss_vae.patterns import detect_repeated_measures as _detect_repeated_measures  # noqa: E402
from ciss_vae.proportions import (  # noqa: E402
    MissingnessMatrix,
    create_missingness_prop_matrix,
)



def planted(n_per=150, seed=0, p=12, rate=0.6):
    """Three clusters missing in different column blocks (plus a little noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3 * n_per, p))
    y = np.repeat([0, 1, 2], n_per)
    block = p // 3
    miss = rng.random(X.shape) < 0.03
    for c in range(3):
        rows = y == c
        cols = slice(c * block, (c + 1) * block)
        miss[rows, cols] |= rng.random((n_per, block)) < rate
    X[miss] = np.nan
    return X, y


def frame(X):
    return pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])


# --------------------------------------------------------------------------- planted structure
def test_default_leiden_finds_planted_clusters():
    X, y = planted()
    labels, sil = cluster_on_missing(X)
    assert labels.dtype == np.int64 and labels.shape == (len(y),)
    assert adjusted_rand_score(y, labels) >= 0.9
    assert labels.max() + 1 == 3
    assert sil is not None and 0.2 < sil <= 1


def test_kmeans_when_n_clusters_given():
    X, y = planted(seed=1)
    labels, sil = cluster_on_missing(frame(X), n_clusters=3)
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert adjusted_rand_score(y, labels) >= 0.9
    assert sil is not None


def test_dataframe_ndarray_tensor_agree():
    torch = pytest.importorskip("torch")
    X, _ = planted(seed=2)
    a, _ = cluster_on_missing(X)
    b, _ = cluster_on_missing(frame(X))
    c, _ = cluster_on_missing(torch.tensor(X))
    assert (a == b).all() and (a == c).all()


def test_labels_numbered_by_decreasing_size():
    X, _ = planted(seed=3)
    X = np.vstack([X, X[:100]])  # cluster of the first rows becomes the largest
    labels, _ = cluster_on_missing(X)
    sizes = np.bincount(labels)
    assert (np.diff(sizes) <= 0).all()
    assert labels[0] == 0


@pytest.mark.parametrize("n_clusters", [None, 3])
def test_same_seed_same_labels(n_clusters):
    X, _ = planted(seed=4)
    runs = [cluster_on_missing(X, n_clusters=n_clusters, seed=7) for _ in range(3)]
    for labels, sil in runs[1:]:
        assert (labels == runs[0][0]).all() and sil == runs[0][1]


def test_fixed_resolution_and_objectives():
    X, y = planted(seed=5)
    for obj, res in [("RB", 1.0), ("CPM", "auto"), ("modularity", "auto"), ("RB", [0.5, 2.0])]:
        labels, _ = cluster_on_missing(X, leiden_objective=obj, leiden_resolution=res)
        assert adjusted_rand_score(y, labels) >= 0.8, (obj, res)
    labels, _ = cluster_on_missing(X, use_snn=False, k_neighbors=10)
    assert adjusted_rand_score(y, labels) >= 0.8


def test_silhouette_matches_scikit_learn_and_sample_is_seeded():
    from sklearn.base import clone
    from sklearn.metrics import silhouette_score

    X, _ = planted(seed=15)
    model = MissingnessClusterer(feature_groups=None).fit(X)
    expected = silhouette_score(np.isnan(X).astype(float), model.labels_)
    assert model.silhouette_ == pytest.approx(expected, abs=1e-9)
    small = clone(model).set_params(sample_size=200)
    a = small.fit(X).labels_.copy()
    assert (small.fit(X).labels_ == a).all() and small.silhouette_ is not None


def test_no_structure_gives_one_cluster():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 10))
    X[rng.random(X.shape) < 0.3] = np.nan
    labels, sil = cluster_on_missing(X)
    assert (labels == 0).all() and sil is None


def test_caller_data_not_modified():
    X, _ = planted(seed=6)
    df = frame(X)
    before = df.copy()
    Xc = X.copy()
    cluster_on_missing(df, cols_ignore=["c0"])
    cluster_on_missing(X, cols_ignore=[0])
    pd.testing.assert_frame_equal(df, before)
    np.testing.assert_array_equal(X, Xc)


# --------------------------------------------------------------------------- columns
def test_cols_ignore_by_name_position_and_int_labels():
    X, y = planted(seed=7)
    X = np.column_stack([X, np.where(np.arange(len(X)) % 2, np.nan, 1.0)])  # noise column
    df = frame(X)
    by_name, _ = cluster_on_missing(df, cols_ignore=["c12"])
    by_pos, _ = cluster_on_missing(X, cols_ignore=[12])
    by_neg, _ = cluster_on_missing(X, cols_ignore=[-1])
    int_cols = pd.DataFrame(X)
    by_int, _ = cluster_on_missing(int_cols, cols_ignore=[12])
    by_str, _ = cluster_on_missing(int_cols, cols_ignore=["12"])
    for other in (by_pos, by_neg, by_int, by_str):
        assert (other == by_name).all()
    assert adjusted_rand_score(y, by_name) >= 0.9


def test_unknown_cols_ignore_raise_naming_them():
    X, _ = planted()
    with pytest.raises(ValueError, match="nope"):
        cluster_on_missing(frame(X), cols_ignore=["c1", "nope"])
    with pytest.raises(ValueError, match="positions"):
        cluster_on_missing(X, cols_ignore=[40])
    with pytest.raises(ValueError, match="positions"):
        cluster_on_missing(X, cols_ignore=["c1"])


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    X, _ = planted()
    with pytest.raises(ValueError, match="no rows"):
        cluster_on_missing(pd.DataFrame(columns=["a", "b"]))
    with pytest.raises(ValueError, match="no rows"):
        cluster_on_missing(np.empty((0, 3)))
    with pytest.raises(ValueError, match="2-D"):
        cluster_on_missing(np.array([1.0, np.nan]))
    with pytest.raises(TypeError, match="DataFrame"):
        cluster_on_missing("not data")
    with pytest.raises(ValueError, match="no columns left"):
        cluster_on_missing(X[:, :2], cols_ignore=[0, 1])
    with pytest.raises(ValueError, match="leiden_objective"):
        cluster_on_missing(X, leiden_objective="louvain")
    with pytest.raises(ValueError, match="leiden_resolution"):
        cluster_on_missing(X, leiden_resolution=-1)
    with pytest.raises(ValueError, match="n_clusters"):
        cluster_on_missing(X, n_clusters=0)
    with pytest.raises(ValueError, match="k_neighbors"):
        cluster_on_missing(X, k_neighbors=0)
    with pytest.raises(ValueError, match="small_clusters"):
        cluster_on_missing(X, small_clusters="drop")
    with pytest.raises(TypeError, match="seed"):
        cluster_on_missing(X, seed="x")


def test_single_row_and_no_missing_give_one_cluster():
    labels, sil = cluster_on_missing(np.array([[1.0, np.nan, 3.0]]))
    assert labels.tolist() == [0] and sil is None
    full = np.arange(20.0).reshape(5, 4)
    for n_clusters in (None, 1):
        labels, sil = cluster_on_missing(full, n_clusters=n_clusters)
        assert labels.tolist() == [0] * 5 and sil is None


def test_n_clusters_above_distinct_patterns_raises():
    X = np.ones((50, 3))
    X[:25, 0] = np.nan  # two distinct patterns
    with pytest.raises(ValueError, match="2 distinct"):
        cluster_on_missing(X, n_clusters=3)
    labels, _ = cluster_on_missing(X, n_clusters=2, min_cluster_size=1)
    assert np.bincount(labels).tolist() == [25, 25]


def test_missing_leiden_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "leidenalg", None)
    X, _ = planted()
    with pytest.raises(ImportError, match=r"pip install ciss-vae\[clustering\]"):
        cluster_on_missing(X)
    cluster_on_missing(X, n_clusters=3)  # KMeans needs no Leiden


# --------------------------------------------------------------------------- small clusters
def tiny_cluster_data():
    """Two patterns of 100 rows and a third of 4 rows."""
    X = np.ones((204, 5))
    X[:100, 0] = np.nan
    X[100:200, 1] = np.nan
    X[200:, 2:] = np.nan
    return X, np.repeat([0, 1, 2], [100, 100, 4])


def test_small_clusters_merged_into_nearest(caplog):
    X, y = tiny_cluster_data()
    with caplog.at_level(logging.WARNING, logger="ciss_vae.clustering"):
        labels, _ = cluster_on_missing(X, n_clusters=3)
    assert np.bincount(labels).tolist() == [104, 100]
    assert "merged 1" in caplog.text and "min_cluster_size=10" in caplog.text
    kept, _ = cluster_on_missing(X, n_clusters=3, min_cluster_size=4)
    assert adjusted_rand_score(y, kept) == 1
    with pytest.raises(ValueError, match="min_cluster_size"):
        cluster_on_missing(X, n_clusters=3, small_clusters="raise")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ciss_vae.clustering"):
        kept, _ = cluster_on_missing(X, n_clusters=3, small_clusters="keep")
    assert adjusted_rand_score(y, kept) == 1 and "kept" in caplog.text


def test_min_cluster_size_fraction_and_cap():
    X, _ = planted(seed=9)
    labels, _ = cluster_on_missing(X, min_cluster_size=0.4)  # 180 rows of 450
    assert np.bincount(labels).min() >= 180
    labels, _ = cluster_on_missing(X, n_clusters=3, min_cluster_size=len(X))
    assert (labels == 0).all()


def test_default_leiden_never_returns_tiny_clusters():
    X, y = planted(n_per=100, seed=8)
    X = np.vstack([X, np.full((4, X.shape[1]), np.nan)])
    for res in ("auto", 50.0):
        labels, _ = cluster_on_missing(X, leiden_resolution=res)
        assert np.bincount(labels).min() >= 10


# --------------------------------------------------------------------------- new rows
@pytest.mark.parametrize("n_clusters", [None, 3])
def test_predict_matches_labels_and_assigns_new_rows(n_clusters):
    X, y = planted(seed=10)
    model = MissingnessClusterer(n_clusters, seed=3)
    labels = model.fit_predict(frame(X))
    assert (labels == cluster_on_missing(frame(X), n_clusters=n_clusters, seed=3)[0]).all()
    assert (model.predict(frame(X)) == labels).all()
    assert (model.predict(frame(X).iloc[::-1]) == labels[::-1]).all()
    assert model.n_clusters_ == 3 and model.cluster_sizes_.sum() == len(X)
    assert model.silhouette_ is not None and model.cluster_centers_.shape[0] == 3
    Xn, yn = planted(seed=11)  # new rows, mostly unseen patterns
    new = model.predict(frame(Xn)[list(reversed(frame(Xn).columns))])  # column order free
    assert adjusted_rand_score(yn, new) >= 0.9


def test_predict_checks_its_input():
    X, _ = planted()
    model = MissingnessClusterer(n_clusters=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(X)
    model.fit(frame(X))
    with pytest.raises(ValueError, match="lacks columns"):
        model.predict(frame(X).drop(columns=["c3"]))
    with pytest.raises(TypeError, match="same kind"):
        model.predict(X)
    model.fit(X)
    with pytest.raises(ValueError, match="columns"):
        model.predict(X[:, :5])
    assert model.predict(X[:0]).shape == (0,)


@pytest.mark.parametrize("n_clusters", [None, 3])
def test_many_distinct_patterns_use_a_graph_sample(n_clusters):
    X, y = planted(n_per=200, seed=12, p=24, rate=0.5)
    model = MissingnessClusterer(n_clusters, max_graph_nodes=150).fit(X)
    assert model.n_patterns_ > 150
    assert adjusted_rand_score(y, model.labels_) >= 0.8
    # the sample is the reference predict votes against and the state keeps: the training rows get labels_
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    state = model.to_state()
    assert len(state["patterns"]) == 150
    rebuilt = MissingnessClusterer.from_state(json.loads(json.dumps(state)))
    np.testing.assert_array_equal(rebuilt.predict(X), model.labels_)
    X_new, y_new = planted(n_per=200, seed=13, p=24, rate=0.5)
    assert adjusted_rand_score(y_new, rebuilt.predict(X_new)) >= 0.8


def test_predict_votes_in_chunks_as_in_one_block(monkeypatch):
    import ciss_vae.clustering as clustering

    X, _ = planted(n_per=200, seed=12, p=24, rate=0.5)
    X_new, _ = planted(n_per=200, seed=14, p=24, rate=0.5)
    model = MissingnessClusterer(max_graph_nodes=150).fit(X)
    whole = model.predict(X_new)
    monkeypatch.setattr(clustering, "PREDICT_CHUNK", 7)
    np.testing.assert_array_equal(model.predict(X_new), whole)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**31 - 1), st.booleans())
def test_labels_always_valid(n, p, seed, kmeans):
    rng = np.random.default_rng(seed)
    X = np.where(rng.random((n, p)) < 0.4, np.nan, 1.0)
    n_distinct = len(np.unique(np.isnan(X), axis=0))
    n_clusters = min(2, n_distinct) if kmeans else None
    model = MissingnessClusterer(n_clusters, min_cluster_size=2).fit(X)
    labels = model.labels_
    assert labels.dtype == np.int64 and len(labels) == n
    assert set(labels.tolist()) == set(range(model.n_clusters_))
    assert (np.diff(model.cluster_sizes_) <= 0).all()
    assert (model.predict(X) == labels).all()


# --------------------------------------------------------------------------- proportions
def long_frame():
    return pd.DataFrame({
        "id": ["a", "b", "c"],
        "hb_1": [1.0, np.nan, np.nan], "hb_2": [np.nan, np.nan, 2.0],
        "hb_t1": [1.0, 1.0, np.nan], "hb_t2": [1.0, np.inf, np.nan],
        "bp_v1": [-999.0, 1.0, 1.0], "bp_x": [np.nan, 1.0, 1.0],
        "age": [30, np.nan, 50],
    })


def test_prop_matrix_repeat_names_and_order():
    m = create_missingness_prop_matrix(long_frame(), index_col="id", repeat_feature_names=["hb"])
    assert isinstance(m, MissingnessMatrix)
    assert m.feature_names == ["hb", "hb_t1", "hb_t2", "bp_v1", "bp_x", "age"]
    assert m.sample_names == ["a", "b", "c"]
    np.testing.assert_allclose(m.to_numpy()[:, 0], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(m.to_numpy()[:, 2], [0.0, 1.0, 1.0])  # inf counts as missing
    assert m.feature_columns_map["hb"] == ["hb_1", "hb_2"]


def test_prop_matrix_rules_and_precedence():
    df = long_frame()
    m = create_missingness_prop_matrix(df, index_col="id", repeat_feature_names=["hb"],
                                       timepoint_prefix="t")
    assert m.feature_columns_map["hb"] == ["hb_t1", "hb_t2"]
    m = create_missingness_prop_matrix(df, index_col="id", repeat_feature_names=["bp"],
                                       nonint_timepoint=True, na_values=[-999])
    assert m.feature_columns_map["bp"] == ["bp_v1", "bp_x"]
    np.testing.assert_allclose(m.to_dataframe()["bp"], [1.0, 0.0, 0.0])
    m = create_missingness_prop_matrix(df, index_col="id", repeat_feature_names=["hb"],
                                       loose=True, cols_ignore=["age"])
    assert len(m.feature_columns_map["hb"]) == 4 and "age" not in m.feature_names
    m = create_missingness_prop_matrix(df, index_col="id", repeat_feature_names=["hb", "bp"],
                                       nonint_timepoint=True,
                                       column_mapping={"hb": ["hb_1"], "blood": ["bp_v1"]})
    assert m.feature_names[:3] == ["hb", "blood", "bp"]
    assert m.feature_columns_map["hb"] == ["hb_1"]
    assert m.sample_names == ["a", "b", "c"]


def test_prop_matrix_errors():
    df = long_frame()
    with pytest.raises(ValueError, match="no column matches"):
        create_missingness_prop_matrix(df, repeat_feature_names=["zz"])
    with pytest.raises(ValueError, match="unknown columns"):
        create_missingness_prop_matrix(df, column_mapping={"x": ["nope"]})
    with pytest.raises(ValueError, match="nope"):
        create_missingness_prop_matrix(df, cols_ignore=["nope"])
    with pytest.raises(TypeError):
        create_missingness_prop_matrix("x")


def test_prop_matrix_fixed_width_codes_ndarray_and_api():
    df = pd.DataFrame(np.ones((2, 4)), columns=["Y11", "Y12", "Y21", "Y22"], index=[5, 6])
    df.iloc[0, 0] = np.nan
    m = create_missingness_prop_matrix(df, repeat_feature_names=["Y1", "Y2"])
    assert m.feature_columns_map == {"Y1": ["Y11", "Y12"], "Y2": ["Y21", "Y22"]}
    assert m.sample_names == ["5", "6"] and m.shape == (2, 2) and len(m) == 2
    np.testing.assert_allclose(np.asarray(m), [[0.5, 0], [0, 0]])
    assert m[0, 0] == 0.5 and m.head(1).shape == (1, 2) and "Y1" in repr(m)
    assert m.to_numpy(dtype=np.float32, copy=True).dtype == np.float32
    arr = create_missingness_prop_matrix(df.to_numpy(), cols_ignore=["3"])
    assert arr.feature_names == ["0", "1", "2"]


def test_cluster_on_missing_prop_paths():
    X, y = planted(seed=13)
    P = create_missingness_prop_matrix(frame(X), column_mapping={
        "a": ["c0", "c1", "c2", "c3"], "b": ["c4", "c5", "c6", "c7"],
        "c": ["c8", "c9", "c10", "c11"]})
    for kw in ({}, {"n_clusters": 3}, {"scale_features": True}, {"snn_mutual": False},
               {"metric": "cosine", "n_clusters": 3}):
        labels, sil = cluster_on_missing_prop(P, **kw)
        assert adjusted_rand_score(y, labels) >= 0.85, kw
    a = cluster_on_missing_prop(P.to_dataframe(), seed=1)[0]
    assert (a == cluster_on_missing_prop(P.to_numpy(), seed=1)[0]).all()
    with pytest.raises(ValueError, match="NaN"):
        cluster_on_missing_prop(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="metric"):
        cluster_on_missing_prop(P, metric="manhattan")
    with pytest.raises(ValueError, match="2-D"):
        cluster_on_missing_prop(np.array([0.1, 0.2]))


# --------------------------------------------------------------------------- name detection
@pytest.mark.parametrize("names, expected", [
    ([f"Y{i}{j}" for i in range(1, 4) for j in range(1, 4)], {"Y1", "Y2", "Y3"}),
    (["Age", "Zip10001", "Zip20002"] + [f"Y{i}{j}" for i in range(1, 3) for j in range(1, 4)],
     {"Y1", "Y2"}),
    (["age", "bmi_1", "bmi_2", "hb_t1", "hb_t2", "sex"], {"bmi", "hb"}),
    ([f"Y{i}_{j}" for i in range(1, 12) for j in range(1, 3)], {f"Y{i}" for i in range(1, 12)}),
    ([f"x{i}" for i in range(1, 21)], None),
    ([f"lab{i}" for i in range(10, 30)], None),
    ([f"feature_{i}" for i in range(30)], None),
    (["a", "b", "c", "d"], None),
    ([0, 1, 2, 3], None),
])
def test_detect_repeated_measures(names, expected):
    found = _detect_repeated_measures(names)
    assert (None if found is None else set(found)) == expected


def test_feature_groups_options():
    X, y = planted(seed=14)
    cols = [f"m{i // 4 + 1}_{i % 4 + 1}" for i in range(12)]  # m1_1..m3_4: three measures
    df = pd.DataFrame(X, columns=cols)
    model = MissingnessClusterer().fit(df)
    assert set(model.feature_groups_) == {"m1", "m2", "m3"}
    assert adjusted_rand_score(y, model.labels_) >= 0.8  # ~3 % of rows are ambiguous
    raw = MissingnessClusterer(feature_groups=None).fit(df)
    assert len(raw.feature_groups_) == 12
    manual = MissingnessClusterer(feature_groups={"g": [0, 1, 2, 3]}).fit(X)
    assert manual.feature_groups_["g"] == [0, 1, 2, 3] and len(manual.feature_groups_) == 9



def test_feature_groups_and_their_missing_fractions():
    from ciss_vae.patterns import feature_groups, group_fractions

    cols = ["Y11", "Y12", "Y21", "Y22", "Y1"]  # a column named like the stem Y1 gets "Y1'"
    groups = feature_groups("auto", cols, positional=False)
    assert groups == {"Y1": ["Y11", "Y12"], "Y2": ["Y21", "Y22"], "Y1'": ["Y1"]}
    assert feature_groups("auto", list(range(5)), positional=True) == {str(i): [i] for i in range(5)}
    assert feature_groups({"both": ["Y22", "Y11"]}, cols, positional=False)["both"] == ["Y11", "Y22"]
    with pytest.raises(ValueError, match="feature_groups must be 'auto'"):
        feature_groups("visits", cols, positional=False)
    with pytest.raises(TypeError, match="feature_groups must be"):
        feature_groups(3, cols, positional=False)
    mask = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(group_fractions(mask, cols, groups), [[0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])

# --------------------------------------------------------------------------- docs, imports
def test_docstring_examples_run():
    for module in (clustering_module, proportions_module):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0


def test_user_guide_import_paths():
    from ciss_vae.utils.clustering import cluster_on_missing as a
    from ciss_vae.utils.clustering import cluster_on_missing_prop as b
    from ciss_vae.utils.matrix import MissingnessMatrix as c
    from ciss_vae.utils.matrix import create_missingness_prop_matrix as d

    assert a is cluster_on_missing and b is cluster_on_missing_prop
    assert c is MissingnessMatrix and d is create_missingness_prop_matrix


# --------------------------------------------------------------------------- reference cohort
@pytest.fixture(scope="module")
def reference():
    REF = shared_file("data", "reference_example")
    df = pd.read_csv(REF / "df_missing.csv", index_col=0)
    truth = pd.read_csv(REF / "clusters.csv", index_col=0).iloc[:, 0].to_numpy().astype(int)
    return df, truth


def test_reference_default_call(reference):
    df, truth = reference
    labels, sil = cluster_on_missing(df, cols_ignore=list(df.columns[:5]))
    assert 3 <= labels.max() + 1 <= 12
    assert adjusted_rand_score(truth, labels) >= 0.9
    again, sil2 = cluster_on_missing(df, cols_ignore=list(df.columns[:5]))
    assert (again == labels).all() and sil == sil2


def test_reference_proportion_paths(reference):
    df, truth = reference
    P = create_missingness_prop_matrix(df, cols_ignore=list(df.columns[:5]),
                                       repeat_feature_names=[f"Y{i}" for i in range(1, 6)])
    assert P.shape == (len(df), 5)
    labels, _ = cluster_on_missing_prop(P)
    assert adjusted_rand_score(truth, labels) >= 0.9
    labels, _ = cluster_on_missing_prop(P, n_clusters=4)
    assert adjusted_rand_score(truth, labels) >= 0.98


def test_labels_do_not_depend_on_the_blas_and_openmp_thread_count():
    # On this table 1 and 2 threads once broke kNN distance ties differently and moved 2 rows.
    from sklearn.datasets import load_breast_cancer
    from threadpoolctl import threadpool_limits

    from ciss_vae.evaluation import ampute

    data = ampute(load_breast_cancer(as_frame=True).data, "MAR", p=0.3, seed=1)
    runs = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads):
            runs.append(cluster_on_missing(data, seed=1))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
