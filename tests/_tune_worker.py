"""One autotune worker on a shared study (used by test_postgres.py).

python tests/_tune_worker.py URL STUDY N_TRIALS OUT_PARQUET [HEARTBEAT_S GRACE_S]
"""

import logging
import sys
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import make_table  # noqa: E402

from ciss_vae.dataset import ClusterDataset  # noqa: E402
from ciss_vae.training.autotune import SearchSpace, autotune  # noqa: E402

SPACE = dict(num_hidden_layers=(1, 2), hidden_dims=[8, 16], latent_dim=[3, 4], lr=(1e-3, 1e-2), num_epochs=60,
             batch_size=32, refit_loops=3, epochs_per_loop=20, refit_patience=3, num_shared_encode=[0, 1],
             num_shared_decode=[0, 1])


def dataset():
    data, _, clusters = make_table(n=150)
    return ClusterDataset(data, clusters)


def main(url, study, n_trials, out, heartbeat=1, grace=3):
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()
    best_df, _, st, _ = autotune(SearchSpace(**SPACE), dataset(), n_trials=int(n_trials), study_name=study,
                                 storage=url, device_preference="cpu", pruner=None, seed=7,
                                 heartbeat_interval=int(heartbeat), grace_period=int(grace))
    best_df.to_parquet(out)
    logging.getLogger("worker").info("done; best trial %d", st.best_trial.number)


if __name__ == "__main__":
    main(*sys.argv[1:])
