"""Measure the *published* CISS-VAE implementation (PyPI ``ciss-vae==1.1.2``) on the
reference example data, as a yardstick for this re-implementation.

What it measures, per repeat (one JSON line each, then a JSON summary line):

- ``wall_s``: wall-clock seconds of one ``run_cissvae(...)`` call (dataset build,
  initial training, impute-and-refit loops, final imputation). Loading CSVs and
  scoring are outside the timer.
- ``std_rmse``: "standardised RMSE" on the cells missing in ``df_missing.csv``:
  ``sqrt(mean over missing cells of ((imputed - true) / std_col) ** 2)`` where
  ``std_col`` is the population std (ddof=0) of that column in ``df_complete.csv``.
- ``epochs``: total training epochs actually run, counted from the returned history
  (initial epochs + refit epochs over all loops), ``initial_epochs``,
  ``refit_epochs`` and ``refit_loops`` separately.
- ``s_per_epoch``: ``wall_s / epochs`` (includes per-loop validation/imputation
  overhead, so it is slightly above the pure training cost).
- ``torch_version`` and ``torch_threads`` (``torch.get_num_threads()``).

Settings (from ``reference_example/README.md``): ``columns_ignore`` = first five
columns, clusters from ``clusters.csv``, hidden_dims [150, 120, 60], latent_dim 15,
encoder all "unshared", decoder all "shared", latent_shared/output_shared False,
batch_size 4000, initial_lr 0.01, decay_factor 0.999, beta 0.001, weight_decay 0.001,
epochs 500, epochs_per_loop 100, max_loops 20, patience 2, seed 42. The DNI matrix is
not used.

``--defaults`` instead uses the published quickstart defaults (epochs 1000,
epochs_per_loop None -> epochs, max_loops 100, patience 2); this takes ~16 minutes
or more on a 2-core CPU. ``--epochs/--epochs-per-loop/--max-loops`` override the
schedule. ``--time-initial N`` additionally times N epochs of the published
``train_vae_initial`` alone (same dataset, model and settings).
``--threads N`` calls ``torch.set_num_threads(N)`` first. On a shared 2-core machine
whose other users keep it busy, torch's default 2 threads were 4-18x slower per epoch
than 1 thread (observed 0.95-4.4 s vs 0.24 s per initial epoch), so record the load
(``uptime``) with every timing and prefer ``--threads 1`` for comparisons there.

The script only imports and calls the published package; it must be run with the
Python of a separate virtual environment that has it installed, e.g.::

    python3 -m venv /work/refvenv
    /work/refvenv/bin/pip install torch==2.13.0        # CPU wheel first
    /work/refvenv/bin/pip install ciss-vae==1.1.2
    /work/refvenv/bin/python benchmarks/published_reference.py \\
        --data /work/shared/data/reference_example --repeats 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


README_SETTINGS = dict(
    hidden_dims=[150, 120, 60],
    latent_dim=15,
    layer_order_enc=["unshared"] * 3,
    layer_order_dec=["shared"] * 3,
    latent_shared=False,
    output_shared=False,
    batch_size=4000,
    initial_lr=0.01,
    decay_factor=0.999,
    beta=0.001,
    weight_decay=0.001,
    epochs=500,
    epochs_per_loop=100,
    max_loops=20,
    patience=2,
    seed=42,
)

# Published quickstart defaults for the training schedule.
DEFAULT_SCHEDULE = dict(epochs=1000, epochs_per_loop=None, max_loops=100, patience=2)


def _import_published():
    try:
        from ciss_vae.training.run_cissvae import run_cissvae
    except ImportError:  # older layout
        from ciss_vae.utils.run_cissvae import run_cissvae  # type: ignore
    import ciss_vae

    try:
        from importlib.metadata import version

        ver = version("ciss-vae")
    except Exception:
        ver = getattr(ciss_vae, "__version__", "unknown")
    return run_cissvae, ver, os.path.dirname(ciss_vae.__file__)


def load_data(data_dir):
    import numpy as np
    import pandas as pd

    df_missing = pd.read_csv(os.path.join(data_dir, "df_missing.csv"), index_col=0)
    df_complete = pd.read_csv(os.path.join(data_dir, "df_complete.csv"), index_col=0)
    clusters = pd.read_csv(os.path.join(data_dir, "clusters.csv"), index_col=0)
    clusters = clusters.iloc[:, 0].to_numpy()
    assert list(df_missing.columns) == list(df_complete.columns)
    assert df_missing.shape == df_complete.shape and len(clusters) == len(df_missing)
    clusters = np.asarray(clusters).astype(int)
    return df_missing, df_complete, clusters


def standardised_rmse(imputed, df_missing, df_complete):
    """sqrt(mean over cells missing in df_missing of ((imputed-true)/std_col)^2)."""
    import numpy as np

    cols = list(df_complete.columns)
    # The published imputed frame may have a reset index; align by position.
    imp = imputed[cols].to_numpy(dtype=float) if all(c in imputed.columns for c in cols) \
        else imputed.to_numpy(dtype=float)
    true = df_complete.to_numpy(dtype=float)
    miss = df_missing.isna().to_numpy()
    assert imp.shape == true.shape, (imp.shape, true.shape)
    std = true.std(axis=0, ddof=0)
    z = (imp - true) / std[None, :]
    vals = z[miss]
    n_nan = int(np.isnan(vals).sum())
    return float(np.sqrt(np.nanmean(vals ** 2))), int(miss.sum()), n_nan


def count_epochs(history):
    """Initial epochs (rows without a phase) + refit epochs (phase 'refit_training')."""
    if "phase" in history.columns:
        phase = history["phase"]
        initial = int(phase.isna().sum())
        refit = int((phase == "refit_training").sum())
        loops = history.loc[phase == "refit", "loop"]
        n_loops = int((loops > 0).sum())
    else:
        initial, refit, n_loops = len(history), 0, 0
    return initial, refit, n_loops


def run_once(run_cissvae, df_missing, df_complete, clusters, settings):
    import torch

    cols_ignore = list(df_missing.columns[:5])
    t0 = time.perf_counter()
    out = run_cissvae(
        df_missing,
        columns_ignore=cols_ignore,
        clusters=clusters,
        print_dataset=False,
        verbose=False,
        return_history=True,
        **settings,
    )
    wall = time.perf_counter() - t0
    imputed, history = out[0], out[-1]
    rmse, n_missing, n_nan = standardised_rmse(imputed, df_missing, df_complete)
    initial, refit, n_loops = count_epochs(history)
    epochs = initial + refit
    return dict(
        wall_s=round(wall, 3),
        std_rmse=round(rmse, 6),
        n_missing_cells=n_missing,
        n_nan_imputed=n_nan,
        epochs=epochs,
        initial_epochs=initial,
        refit_epochs=refit,
        refit_loops=n_loops,
        s_per_epoch=round(wall / epochs, 4) if epochs else None,
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
    )


def time_initial(df_missing, clusters, settings, n_epochs):
    """Time n_epochs of the published train_vae_initial alone (same data/model/settings)."""
    import random

    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from ciss_vae.classes.cluster_dataset import ClusterDataset
    from ciss_vae.classes.vae import CISSVAE
    from ciss_vae.training.train_initial import train_vae_initial

    seed = settings["seed"]
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)  # as run_cissvae does with a seed
    ds = ClusterDataset(
        data=df_missing,
        cluster_labels=clusters,
        val_proportion=0.1,
        replacement_value=0.0,
        columns_ignore=[str(c) for c in df_missing.columns[:5]],
    )
    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(ds, batch_size=settings["batch_size"], shuffle=True, generator=g)
    model = CISSVAE(
        input_dim=ds.shape[1],
        hidden_dims=settings["hidden_dims"],
        latent_dim=settings["latent_dim"],
        layer_order_enc=settings["layer_order_enc"],
        layer_order_dec=settings["layer_order_dec"],
        latent_shared=settings["latent_shared"],
        output_shared=settings["output_shared"],
        num_clusters=ds.n_clusters,
        activation_groups=ds.activation_groups,
    )
    t0 = time.perf_counter()
    train_vae_initial(
        model=model,
        train_loader=loader,
        epochs=n_epochs,
        initial_lr=settings["initial_lr"],
        decay_factor=settings["decay_factor"],
        weight_decay=settings["weight_decay"],
        beta=settings["beta"],
        device="cpu",
        verbose=False,
    )
    wall = time.perf_counter() - t0
    return dict(
        mode="train_vae_initial_only",
        epochs=n_epochs,
        wall_s=round(wall, 3),
        s_per_epoch=round(wall / n_epochs, 4),
        torch_threads=torch.get_num_threads(),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data/reference_example")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--defaults", action="store_true",
                   help="published quickstart schedule: epochs 1000, epochs_per_loop None, "
                        "max_loops 100, patience 2 (slow)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--epochs-per-loop", type=int)
    p.add_argument("--max-loops", type=int)
    p.add_argument("--threads", type=int, help="torch.set_num_threads before running")
    p.add_argument("--time-initial", type=int, metavar="N", default=0,
                   help="also time N epochs of train_vae_initial alone")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    run_cissvae, pkg_version, pkg_path = _import_published()
    settings = dict(README_SETTINGS)
    if args.defaults:
        settings.update(DEFAULT_SCHEDULE)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.epochs_per_loop is not None:
        settings["epochs_per_loop"] = args.epochs_per_loop
    if args.max_loops is not None:
        settings["max_loops"] = args.max_loops

    df_missing, df_complete, clusters = load_data(args.data)
    mode = "defaults" if args.defaults else "readme"
    header = dict(package="ciss-vae", package_version=pkg_version, package_path=pkg_path,
                  python=sys.version.split()[0], mode=mode,
                  schedule={k: settings[k] for k in
                            ("epochs", "epochs_per_loop", "max_loops", "patience")})
    print(json.dumps({"config": header}), flush=True)

    results = []
    for i in range(args.repeats):
        r = run_once(run_cissvae, df_missing, df_complete, clusters, settings)
        r = dict(repeat=i, mode=mode, **r)
        results.append(r)
        print(json.dumps(r), flush=True)

    if results:
        def stats(key):
            v = [r[key] for r in results]
            m = sum(v) / len(v)
            sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
            return dict(mean=round(m, 6), sd=round(sd, 6), min=min(v), max=max(v))

        print(json.dumps({"summary": dict(
            mode=mode, repeats=len(results), wall_s=stats("wall_s"),
            std_rmse=stats("std_rmse"), epochs=stats("epochs"),
            s_per_epoch=stats("s_per_epoch"),
            torch_version=torch.__version__, torch_threads=torch.get_num_threads())}),
            flush=True)

    if args.time_initial:
        print(json.dumps(time_initial(df_missing, clusters, settings, args.time_initial)),
              flush=True)


if __name__ == "__main__":
    main()
