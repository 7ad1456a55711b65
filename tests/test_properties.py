"""Property-based checks of run_cissvae's output contract on random tables and masks."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ciss_vae import run_cissvae

TINY = dict(hidden_dims=[8], latent_dim=2, layer_order_enc=["u"], layer_order_dec=["s"], epochs=2,
            epochs_per_loop=1, max_loops=1, batch_size=32, print_dataset=False, return_model=False)


@st.composite
def tables(draw):
    n = draw(st.integers(4, 40))
    p = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, p)) * rng.uniform(0.1, 100, size=p) + rng.uniform(-50, 50, size=p)
    mask = rng.random((n, p)) < draw(st.floats(0.0, 0.6))
    mask[0] = False  # every column keeps an observed value
    index = draw(st.sampled_from(["range", "shuffled", "strings"]))
    idx = {"range": pd.RangeIndex(n), "shuffled": pd.Index(rng.permutation(n) + 100),
           "strings": pd.Index([f"r{i}" for i in rng.permutation(n)])}[index]
    frame = pd.DataFrame(np.where(mask, np.nan, values), index=idx, columns=[f"c{j}" for j in range(p)])
    dni = np.ones((n, p), dtype=int)
    if draw(st.booleans()):
        dni[mask & (rng.random((n, p)) < 0.3)] = 0
    k = draw(st.integers(1, 3))
    clusters = rng.integers(0, k, n)
    return frame, dni, clusters


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.integers(0, 1000))
def test_output_contract_holds_on_random_tables(case, seed):
    frame, dni, clusters = case
    before = frame.copy()
    out = run_cissvae(frame, clusters=clusters, imputable_matrix=dni, seed=seed, **TINY)
    again = run_cissvae(frame, clusters=clusters, imputable_matrix=dni, seed=seed, **TINY)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(out, again)
    assert out.index.equals(frame.index) and list(out.columns) == list(frame.columns)
    observed = frame.notna().to_numpy()
    assert np.array_equal(out.to_numpy()[observed], frame.to_numpy()[observed])
    still_missing = out.isna().to_numpy()
    assert np.array_equal(still_missing, ~observed & (dni == 0))
