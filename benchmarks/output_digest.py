"""SHA-256 digests of the documented API's outputs, to show that a refactor changed nothing.

Runs the README's examples, the user guide's step-by-step path, the estimator,
autotune, clustering, the command line and the published-settings run (the
published example from ../shared/data/reference_example, 500 epochs + refit
loops of 100, as benchmarks/engine_speed.py) and prints one line per output:
its name and the digest of its values, dtypes, index and columns. Run it on two
commits and diff the outputs:

    python benchmarks/output_digest.py > after.txt
    PYTHONPATH=/path/to/old/checkout/src python benchmarks/output_digest.py > before.txt
    diff before.txt after.txt

``--quick`` leaves out the published-settings run (about 25 s).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference_example"


def digest(obj) -> str:
    h = hashlib.sha256()
    if isinstance(obj, pd.DataFrame):
        h.update(repr(list(obj.columns)).encode() + repr([str(t) for t in obj.dtypes]).encode())
        h.update(repr(list(obj.index)).encode())
        for c in range(obj.shape[1]):
            col = obj.iloc[:, c]
            h.update(col.astype(object).where(col.notna(), None).to_numpy().tobytes()
                     if col.dtype == object else col.to_numpy(dtype=float, na_value=np.nan).tobytes())
    elif isinstance(obj, torch.Tensor):
        h.update(obj.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj):
            h.update(k.encode() + digest(obj[k]).encode())
    else:
        h.update(np.asarray(obj).tobytes())
    return h.hexdigest()[:16]


def show(name, obj):
    print(f"{name:<40} {digest(obj)}", flush=True)


def readme_quickstart():
    from ciss_vae.data import load_example_dataset
    from ciss_vae.utils.run_cissvae import run_cissvae

    df_missing, _, clusters = load_example_dataset()
    imputed, model, history = run_cissvae(df_missing, clusters=clusters, epochs=40, epochs_per_loop=20, max_loops=3,
                                          print_dataset=False, return_history=True)
    show("readme quickstart: imputed", imputed)
    show("readme quickstart: weights", model.state_dict())
    show("readme quickstart: history", history.drop(columns=["phase"]).astype(float))


def default_call_with_clustering():
    from ciss_vae import run_cissvae
    from ciss_vae.data import load_example_dataset

    df_missing, _, _ = load_example_dataset()
    imputed, model, clusters, sil = run_cissvae(df_missing.iloc[:2000], epochs=30, epochs_per_loop=10, max_loops=2,
                                                print_dataset=False, return_clusters=True, return_silhouettes=True)
    show("clustered call: clusters", clusters)
    show("clustered call: silhouette", np.float64(sil))
    show("clustered call: imputed", imputed)


def mixed_types_array_input():
    from ciss_vae import run_cissvae

    rng = np.random.default_rng(3)
    n = 300
    z = rng.normal(size=(n, 2))
    df = pd.DataFrame({"id": np.arange(n), "a": z[:, 0], "b": z @ [1.0, 0.5] + rng.normal(0, 0.1, n),
                       "flag": (z[:, 1] > 0).astype(float), "c1": 0.0, "c2": 0.0, "c3": 0.0,
                       "cnt": pd.array(rng.integers(0, 9, n), dtype="Int64")})
    df.loc[np.arange(n), ["c1", "c2", "c3"][0]] = (z[:, 0] < -0.5).astype(float)
    df["c2"] = ((z[:, 0] >= -0.5) & (z[:, 0] < 0.5)).astype(float)
    df["c3"] = (z[:, 0] >= 0.5).astype(float)
    df.index = [f"r{i}" for i in range(n)]
    miss = df.mask(rng.random(df.shape) < 0.2)
    miss["id"] = df["id"]
    miss.loc[miss[["c1", "c2", "c3"]].isna().any(axis=1), ["c1", "c2", "c3"]] = np.nan
    labels = np.where(z[:, 1] > 0, "hi", "lo")
    out = run_cissvae(miss, clusters=labels, columns_ignore=["id"], binary_feature_mask=["flag"],
                      categorical_column_map={"c": ["c1", "c2", "c3"]}, hidden_dims=[16, 8], latent_dim=3,
                      layer_order_enc=["u", "s"], layer_order_dec=["s", "u"], epochs=20, epochs_per_loop=5,
                      max_loops=2, batch_size=64, print_dataset=False, return_model=False)
    show("mixed types: imputed frame", out)
    arr = miss.drop(columns=["id", "cnt"]).to_numpy(dtype=float)
    out = run_cissvae(torch.tensor(arr), clusters=labels, columns_ignore=[0], hidden_dims=[16], latent_dim=3,
                      layer_order_enc=["u"], layer_order_dec=["s"], epochs=10, epochs_per_loop=5, max_loops=1,
                      batch_size=64, print_dataset=False, return_model=False, clip_to_observed=True)
    show("tensor input: imputed", out)


def imputer_example():
    from ciss_vae import CISSVAEImputer
    from ciss_vae.data import load_example_dataset

    df_missing, _, _ = load_example_dataset()
    train, new = df_missing.iloc[:1500], df_missing.iloc[1500:1800]
    imputer = CISSVAEImputer(epochs=20, epochs_per_loop=10, max_loops=2, columns_ignore=list(df_missing.columns[:5]))
    imputer.fit(train)
    show("imputer: fit output", imputer.fit_output_)
    show("imputer: transform", imputer.transform(new))
    for i, d in enumerate(imputer.transform(new, n_draws=3)):
        show(f"imputer: draw {i}", d)
    with tempfile.TemporaryDirectory() as tmp:
        imputer.save(tmp)
        show("imputer: reloaded transform", type(imputer).load(tmp).transform(new))


def autotune_example():
    from ciss_vae.classes.cluster_dataset import ClusterDataset
    from ciss_vae.data import load_example_dataset
    from ciss_vae.training.autotune import SearchSpace, autotune

    df_missing, _, clusters = load_example_dataset()
    dataset = ClusterDataset(df_missing.iloc[:800], clusters[:800], columns_ignore=list(df_missing.columns[:5]))
    space = SearchSpace(num_hidden_layers=(1, 2), hidden_dims=[32, 64], latent_dim=[5, 10], lr=(1e-3, 1e-2),
                        num_epochs=5, epochs_per_loop=3, refit_loops=2, batch_size=400)
    best_imputed, best_model, study, results = autotune(space, dataset, n_trials=3, device_preference="cpu")
    show("autotune: best imputed", best_imputed)
    show("autotune: trial values", np.array([t.value for t in study.trials]))
    show("autotune: dataset untouched", dataset.data)


def stepwise_path():
    from torch.utils.data import DataLoader

    from ciss_vae.classes.cluster_dataset import ClusterDataset
    from ciss_vae.classes.vae import CISSVAE
    from ciss_vae.data import load_example_dataset
    from ciss_vae.training import impute_and_refit_loop, train_vae_initial
    from ciss_vae.utils.helpers import get_imputed_df

    df_missing, _, clusters = load_example_dataset()
    ds = ClusterDataset(df_missing.iloc[:600], clusters[:600], columns_ignore=list(df_missing.columns[:5]))
    model = CISSVAE(ds.n_features, [32, 16], ["u", "s"], ["s", "u"], False, 5, False, ds.n_clusters)
    torch.manual_seed(0)
    model.load_state_dict({k: torch.randn_like(v) * 0.1 for k, v in model.state_dict().items()})
    model = train_vae_initial(model, ds, epochs=5)
    imputed, best, best_ds = impute_and_refit_loop(model, DataLoader(ds, batch_size=300), max_loops=2,
                                                   epochs_per_loop=3)
    show("stepwise: refit imputed", imputed)
    show("stepwise: get_imputed_df", get_imputed_df(best, DataLoader(best_ds, batch_size=300)))


def clustering():
    from ciss_vae.data import load_example_dataset
    from ciss_vae.utils import cluster_on_missing, cluster_on_missing_prop, create_missingness_prop_matrix

    df_missing, _, _ = load_example_dataset()
    labels, sil = cluster_on_missing(df_missing, cols_ignore=list(df_missing.columns[:5]), seed=42)
    show("cluster_on_missing: labels", labels)
    prop = create_missingness_prop_matrix(df_missing.iloc[:, 5:], repeat_feature_names=["Y1", "Y2", "Y3", "Y4", "Y5"])
    labels, sil = cluster_on_missing_prop(prop, seed=42)
    show("cluster_on_missing_prop: labels", labels)
    labels, _ = cluster_on_missing(df_missing.iloc[:1000], n_clusters=3, seed=1)
    show("cluster_on_missing kmeans: labels", labels)


def command_line():
    from ciss_vae.data import load_example_dataset

    df_missing, _, _ = load_example_dataset()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.csv")
        dst = os.path.join(tmp, "out.csv")
        df_missing.iloc[:500].to_csv(src, index=False)
        subprocess.run([sys.executable, "-m", "ciss_vae.cli", "impute", src, "-o", dst, "--ignore", "Age,Salary",
                        "--epochs", "10", "--epochs-per-loop", "5", "--max-loops", "2", "--hidden-dims", "32,16",
                        "--no-progress"], check=True, capture_output=True)
        show("cli impute: output file", pd.read_csv(dst))


def published_settings():
    from ciss_vae import run_cissvae

    if not REFERENCE.exists():
        print(f"{'published settings':<40} skipped: {REFERENCE} not found")
        return
    read = lambda name: pd.read_csv(REFERENCE / name, index_col=0)  # noqa: E731
    df_missing, clusters = read("df_missing.csv"), read("clusters.csv")["clusters"].to_numpy()
    imputed, model = run_cissvae(df_missing, clusters=clusters, columns_ignore=list(df_missing.columns[:5]),
                                 print_dataset=False, hidden_dims=[150, 120, 60], latent_dim=15,
                                 layer_order_enc=["unshared"] * 3, layer_order_dec=["shared"] * 3,
                                 latent_shared=False, output_shared=False, batch_size=4000, initial_lr=0.01,
                                 decay_factor=0.999, beta=0.001, weight_decay=0.001, epochs=500, epochs_per_loop=100,
                                 max_loops=20, patience=2, seed=42)
    show("published settings: imputed", imputed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the published-settings run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    for step in (readme_quickstart, default_call_with_clustering, mixed_types_array_input, imputer_example,
                 autotune_example, stepwise_path, clustering, command_line):
        step()
    if not args.quick:
        published_settings()


if __name__ == "__main__":
    main()
