"""Catalogue of bad or unusual inputs to run_cissvae: each gives a clear error or a documented result."""

import numpy as np
import pandas as pd
import pytest
import torch

from ciss_vae import run_cissvae
from tests.conftest import FAST, make_table

DATA, _, CLUSTERS = make_table(n=90)


def run(data, **kw):
    args = dict(FAST, clusters=CLUSTERS, return_model=False)
    args.update(kw)
    return run_cissvae(data, **args)


def all_missing_row():
    d = DATA.copy()
    d.loc[3] = np.nan
    return d


RESULTS = {
    "nullable Float64 with NA": lambda: run(DATA.astype("Float64")),
    "nullable Int64 binary column": lambda: run(DATA.assign(i=pd.array([0, 1, None] * 30, dtype="Int64")),
                                                 binary_feature_mask=["i"]),
    "boolean column with NA": lambda: run(DATA.assign(b=pd.array([True, None, False] * 30, dtype="boolean"))),
    "bool column": lambda: run(DATA.assign(b=[True, False] * 45)),
    "category column with one label": lambda: run(DATA.assign(c=pd.Categorical(["a"] * 90))),
    "text column with missing labels": lambda: run(DATA.assign(t=["a", None, "b"] * 30)),
    "values near float32 limits": lambda: run(DATA.assign(x0=DATA.x0 * 1e37)),
    "constant column": lambda: run(DATA.assign(c=1.0)),
    "all-missing row": lambda: run(all_missing_row()),
    "no missing values": lambda: run(DATA.fillna(0.0)),
    "one column": lambda: run(DATA[["x0"]]),
    "integer column names": lambda: run(DATA.set_axis(range(6), axis=1)),
    "duplicated index": lambda: run(DATA.set_axis([0] * 90)),
    "string cluster labels": lambda: run(DATA, clusters=np.array(["a", "b", "c"])[CLUSTERS]),
    "list cluster labels": lambda: run(DATA, clusters=list(CLUSTERS)),
    "a cluster with one row": lambda: run(DATA, clusters=np.r_[CLUSTERS[:-1], 7]),
    "batch_size larger than the table": lambda: run(DATA, batch_size=10_000),
    "zero epochs": lambda: run(DATA, epochs=0, epochs_per_loop=0),
    "tensor input": lambda: run(torch.tensor(DATA.to_numpy())),
    "one complete row": lambda: run(DATA.fillna(1.0).iloc[:1], clusters=[0]),
}


@pytest.mark.parametrize("case", sorted(RESULTS))
def test_unusual_input_gives_a_complete_table_with_observed_cells_kept(case):
    data_in = {"all-missing row": all_missing_row()}.get(case)
    out = RESULTS[case]()
    assert not out.isna().any().any(), case
    if data_in is not None:
        assert out.loc[3].notna().all()


def test_nullable_dtypes_are_kept():
    out = RESULTS["boolean column with NA"]()
    assert out["b"].dtype == "boolean" and out["b"].iloc[0] == True  # noqa: E712
    out = RESULTS["nullable Int64 binary column"]()
    assert out["i"].dtype == "Int64" and set(out["i"].unique()) <= {0, 1}


ERRORS = [
    ("datetime column", lambda: run(DATA.assign(t=pd.Timestamp("2020-01-01"))), TypeError, "'t'.*dates"),
    ("mixed object column", lambda: run(DATA.assign(m=["1", 2, "x"] * 30)), TypeError,
     r"'m' mixes numbers and text \(row 2 holds 'x'\)"),
    ("identifier column", lambda: run(DATA.assign(id=[f"p{i}" for i in range(90)])), ValueError,
     "'id' holds 90 distinct labels.*identifier.*columns_ignore"),
    ("too many labels", lambda: run(DATA.assign(z=[f"z{i % 60}" for i in range(90)])), ValueError,
     "'z' holds 60 distinct labels"),
    ("+inf", lambda: run(DATA.assign(x1=np.r_[np.inf, DATA.x1.to_numpy()[1:]])), ValueError, "'x1'.*infinite"),
    ("-inf", lambda: run(DATA.assign(x1=np.r_[-np.inf, DATA.x1.to_numpy()[1:]])), ValueError, "'x1'.*infinite"),
    ("all-missing column", lambda: run(DATA.assign(x2=np.nan)), ValueError, "'x2'.*no observed"),
    ("duplicate column names", lambda: run(DATA.set_axis(list("aabcde"), axis=1)), ValueError, "duplicated"),
    ("empty table", lambda: run(DATA.iloc[:0], clusters=[]), ValueError, "empty"),
    ("NaN cluster label", lambda: run(DATA, clusters=np.r_[np.nan, CLUSTERS[1:]]), ValueError, "missing label"),
    ("clusters of the wrong length", lambda: run(DATA, clusters=CLUSTERS[:10]), ValueError, "10 labels"),
    ("Series of labels with another index",
     lambda: run(DATA, clusters=pd.Series(CLUSTERS, index=DATA.index + 500)), ValueError, "index"),
    ("proportion above 1", lambda: run(DATA, val_proportion=1.5), ValueError, "val_proportion"),
    ("proportion below 0", lambda: run(DATA, val_proportion=-0.1), ValueError, "val_proportion"),
    ("DNI matrix of the wrong size", lambda: run(DATA, imputable_matrix=np.ones((5, 6))), ValueError, "shape"),
    ("binary mask of the wrong size", lambda: run(DATA, binary_feature_mask=[True, False]), ValueError,
     "binary_feature_mask"),
    ("overlapping categorical groups",
     lambda: run(DATA.assign(a=[1.0, 0.0] * 45, b=[0.0, 1.0] * 45, c=0.0),
                 categorical_column_map={"g": ["a", "b"], "h": ["b", "c"]}), ValueError, "'b'"),
    ("unknown column in columns_ignore", lambda: run(DATA, columns_ignore=["nope"]), ValueError, "nope"),
    ("negative epochs", lambda: run(DATA, epochs=-1), ValueError, "epochs"),
    ("unavailable device", lambda: run(DATA, device="cuda:0") if not torch.cuda.is_available()
     else pytest.skip("CUDA present"), ValueError, "CUDA is not available"),
    ("non-table data", lambda: run("a.csv"), TypeError, "DataFrame"),
    ("one row with a missing cell", lambda: run(DATA.iloc[[1]].assign(x0=np.nan), clusters=[0]), ValueError,
     "'x0'.*no observed"),
]


@pytest.mark.parametrize("case, call, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_gives_a_clear_error(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------- the other faces
def _imputer():
    from ciss_vae import CISSVAEImputer

    settings = {k: v for k, v in FAST.items() if k != "print_dataset"}
    return CISSVAEImputer(**settings).fit(DATA, clusters=CLUSTERS)


def _tiny_space():
    from ciss_vae import SearchSpace

    return SearchSpace(num_epochs=1, epochs_per_loop=1, refit_loops=1, hidden_dims=[8], latent_dim=2,
                       num_hidden_layers=1, batch_size=64)


def _cli(tmp_path, text):
    import subprocess
    import sys

    path = tmp_path / "in.csv"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "ciss_vae.cli", "impute", str(path), "-o", str(tmp_path / "o.csv")],
                          capture_output=True, text=True)


OTHER_ERRORS = [
    ("clustering: empty table", lambda: __import__("ciss_vae").cluster_on_missing(DATA.iloc[:0]), ValueError,
     "no rows"),
    ("clustering: n_clusters above the distinct patterns",
     lambda: __import__("ciss_vae").cluster_on_missing(DATA, n_clusters=500), ValueError, "distinct"),
    ("clustering: unknown cols_ignore", lambda: __import__("ciss_vae").cluster_on_missing(DATA, cols_ignore=["zz"]),
     ValueError, "zz"),
    ("imputer: extra column", lambda: _imputer().transform(DATA.assign(extra=1.0)), ValueError, "extra"),
    ("imputer: missing column", lambda: _imputer().transform(DATA.drop(columns="x1")), ValueError, "x1"),
    ("imputer: text in a column", lambda: _imputer().transform(DATA.assign(x1="a")), TypeError,
     "'x1' was numeric in fit but holds labels"),
    ("search space: reversed range", lambda: __import__("ciss_vae").SearchSpace(lr=(1e-2, 1e-4)), ValueError, "lr"),
    ("search space: unknown placement",
     lambda: __import__("ciss_vae").SearchSpace(encoder_shared_placement="middle"), ValueError, "middle"),
    ("autotune: a DataFrame instead of a dataset",
     lambda: __import__("ciss_vae").autotune(_tiny_space(), DATA, n_trials=1), TypeError, "ClusterDataset"),
    ("autotune: negative trials",
     lambda: __import__("ciss_vae").autotune(_tiny_space(), __import__("ciss_vae").ClusterDataset(DATA, CLUSTERS),
                                             n_trials=-1), ValueError, "n_trials"),
    ("autotune: zero trials on a new study",
     lambda: __import__("ciss_vae").autotune(_tiny_space(), __import__("ciss_vae").ClusterDataset(DATA, CLUSTERS),
                                             n_trials=0, device_preference="cpu"), RuntimeError, "no trial"),
]


@pytest.mark.parametrize("case, call, error, message", OTHER_ERRORS, ids=[e[0] for e in OTHER_ERRORS])
def test_bad_input_to_the_other_faces_gives_a_clear_error(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_clustering_without_missing_values_or_with_one_row_gives_one_cluster():
    from ciss_vae import cluster_on_missing

    labels, silhouette = cluster_on_missing(DATA.fillna(0.0))
    assert set(labels) == {0} and silhouette is None
    assert cluster_on_missing(DATA.iloc[:1])[0].tolist() == [0]


def test_imputer_keeps_dtypes_and_fills_an_all_missing_row():
    imputer = _imputer()
    rows = DATA.astype("float32")
    rows.iloc[0] = np.nan
    out = imputer.transform(rows)
    assert (out.dtypes == "float32").all() and out.iloc[0].notna().all()


@pytest.mark.parametrize("text, message", [("", "empty"), ('a,b\n1,2,3\n"x\n', "cannot read")])
def test_cli_rejects_an_empty_or_malformed_file_in_one_line(tmp_path, text, message):
    result = _cli(tmp_path, text)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ciss-vae: error:") and message in lines[0]
