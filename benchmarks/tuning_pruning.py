"""autotune on the package's example cohort: a tiny search reproduced by run_cissvae, and pruning's saving.

1. tiny: 3 trials with a few epochs; wall time, and whether
   ``run_cissvae(df, clusters=..., **best_trial.user_attrs["run_cissvae_kwargs"])``
   returns exactly ``best_imputed_df``.
2. pruning: the same 20-trial search (same seed, same search space) with the
   median pruner and with pruning off; wall time, trials pruned, epochs trained,
   best validation error.

Everything runs in this process on the CPU with ``--threads`` torch threads. Run::

    .venv/bin/python benchmarks/tuning_pruning.py            # both parts
    .venv/bin/python benchmarks/tuning_pruning.py --skip-pruning
"""

from __future__ import annotations

import argparse
import time

import optuna
import pandas as pd
import torch

from ciss_vae.data import load_example_dataset
from ciss_vae.dataset import ClusterDataset
from ciss_vae.pipeline import run_cissvae
from ciss_vae.training.autotune import SearchSpace, autotune

TINY = dict(num_hidden_layers=(1, 2), hidden_dims=[32, 64], latent_dim=[5, 10], num_epochs=5, batch_size=500,
            refit_loops=2, epochs_per_loop=3)
SEARCH = dict(num_hidden_layers=(1, 3), hidden_dims=[32, 64, 128], latent_dim=[5, 10, 15], lr=(1e-3, 1e-2),
              decay_factor=(0.9, 0.999), num_epochs=30, batch_size=1000, num_shared_encode=[0, 1, 2],
              num_shared_decode=[0, 1, 2], refit_patience=2, refit_loops=8, epochs_per_loop=10)


def cohort():
    df, _, clusters = load_example_dataset()
    return df, clusters, ClusterDataset(df, clusters, columns_ignore=list(df.columns[:5]))


def tiny(df, clusters, ds, seed):
    t0 = time.perf_counter()
    best_df, model, study, results = autotune(SearchSpace(**TINY), ds, n_trials=3, device_preference="cpu", seed=seed)
    wall = time.perf_counter() - t0
    kwargs = study.best_trial.user_attrs["run_cissvae_kwargs"]
    t0 = time.perf_counter()
    again, _, history = run_cissvae(df, clusters=clusters, device="cpu", return_history=True, **kwargs)
    rerun = time.perf_counter() - t0
    same = again.equals(best_df)
    print(f"\n## tiny search: 3 trials on the example ({len(df)} rows x {df.shape[1]} columns)\n")
    print(results[["trial_number", "state", "imputation_error", "num_hidden_layers", "latent_dim",
                   "layer_order_enc_used", "layer_order_dec_used"]].to_string(index=False))
    print(f"\nwall time of autotune (3 trials): {wall:.1f} s")
    print(f"best trial {study.best_trial.number}: validation error {study.best_value:.6g}")
    print(f"run_cissvae(**run_cissvae_kwargs): {rerun:.1f} s, validation error "
          f"{history.loc[history.selected, 'imputation_error'].item():.6g}, imputed table identical: {same}")
    print(f"run_cissvae_kwargs = {kwargs}")
    return same


def pruning(ds, seed, n_trials):
    rows = []
    for label, pruner in (("median pruner", "median"), ("no pruning", None)):
        t0 = time.perf_counter()
        _, _, study, results = autotune(SearchSpace(**SEARCH), ds, n_trials=n_trials, device_preference="cpu",
                                        seed=seed, pruner=pruner)
        wall = time.perf_counter() - t0
        states = results["state"].value_counts()
        epochs = sum(sum(1 for _ in t.intermediate_values) for t in study.trials)
        rows.append(dict(run=label, trials=n_trials, wall_s=round(wall, 1), complete=int(states.get("COMPLETE", 0)),
                         pruned=int(states.get("PRUNED", 0)), reports=epochs,
                         best_error=round(study.best_value, 5), best_trial=study.best_trial.number))
    table = pd.DataFrame(rows)
    table["speed-up"] = (table["wall_s"].iloc[1] / table["wall_s"]).round(2)
    print(f"\n## {n_trials} trials, same search space and seed: median pruner vs none\n")
    print(table.to_string(index=False))
    print("\n(reports = validation errors reported to Optuna: initial model + one per refit loop run)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--skip-pruning", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    df, clusters, ds = cohort()
    print(f"torch {torch.__version__}, optuna {optuna.__version__}, {torch.get_num_threads()} thread(s), CPU")
    if not args.skip_tiny:
        tiny(df, clusters, ds, args.seed)
    if not args.skip_pruning:
        pruning(ds, args.seed, args.trials)


if __name__ == "__main__":
    main()
