import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(*parts) -> Path:
    """A file of the project's shared folder (user guide, published example data).

    Missing outside CI: the test is skipped with the path. Missing under CI
    (``CI=true``, as ``.ci/run`` runs): the test fails, since CI lays shared/
    beside the clone and a silent skip would hide what the test checks.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found (the shared folder beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " under CI=true")
        pytest.skip(message)
    return path


def make_table(n=240, seed=0, missing=0.2):
    """A low-rank table with 3 planted missingness clusters; returns (missing, complete, clusters)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    w = rng.normal(size=(2, 6))
    complete = pd.DataFrame(z @ w * [1, 2, 5, 10, 0.5, 3] + [0, 10, -5, 100, 1, 0] + 0.05 * rng.normal(size=(n, 6)),
                            columns=[f"x{i}" for i in range(6)])
    clusters = np.repeat([0, 1, 2], n // 3)
    rates = np.array([[missing, 0, 0, missing, 0, 0], [0, missing, missing, 0, 0, 0], [0, 0, 0, 0, missing, missing]])
    mask = rng.random((n, 6)) < rates[clusters]
    data = complete.mask(mask)
    return data, complete, clusters


@pytest.fixture
def table():
    return make_table()


FAST = dict(hidden_dims=[16, 8], latent_dim=3, layer_order_enc=["u", "s"], layer_order_dec=["s", "u"],
            epochs=6, epochs_per_loop=3, max_loops=2, batch_size=64, print_dataset=False, ensemble_size=1)


@pytest.fixture
def fast():
    return dict(FAST)
