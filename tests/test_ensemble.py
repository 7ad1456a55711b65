"""Averaged fits: the default on small tables, one CISSVAE that holds them side by side."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from ciss_vae import CISSVAEImputer, run_cissvae, sizing
from ciss_vae.evaluation import standardised_rmse
from ciss_vae.model import CISSVAE, average_of
from ciss_vae.utils.helpers import get_imputed_df
from tests.conftest import make_table

SMALL = dict(hidden_dims=[16, 8], latent_dim=3, epochs=40, epochs_per_loop=10, max_loops=2, print_dataset=False)


@pytest.mark.parametrize("enc, dec, latent_shared, output_shared, n", [
    (["u", "s"], ["s", "u"], False, False, 3),
    (["s", "s"], ["s", "s"], True, True, 2),
    (["u", "u"], ["u", "u"], True, False, 4),
])
def test_average_of_models_outputs_their_mean_exactly(enc, dec, latent_shared, output_shared, n):
    kw = dict(input_dim=7, hidden_dims=[6, 5], layer_order_enc=enc, layer_order_dec=dec,
              latent_shared=latent_shared, latent_dim=3, output_shared=output_shared, num_clusters=3)
    gen = torch.Generator().manual_seed(0)
    models = []
    for _ in range(n):
        m = CISSVAE(**kw)
        m.reset_parameters(gen)
        models.append(m)
    x, c = torch.randn(40, 7, generator=gen), torch.randint(0, 3, (40,), generator=gen)
    mean = torch.stack([m(x, c, deterministic=True)[0] for m in models]).mean(dim=0)
    merged = average_of(models)
    assert merged.hidden_dims == [6 * n, 5 * n] and merged.latent_dim == 3 * n
    torch.testing.assert_close(merged(x, c, deterministic=True)[0], mean, atol=1e-6, rtol=1e-5)
    mu = merged(x, c, deterministic=True)[1]
    torch.testing.assert_close(mu[:, 3:6], models[1](x, c, deterministic=True)[1])  # codes side by side
    with pytest.raises(ValueError, match="one architecture"):
        average_of([models[0], CISSVAE(**dict(kw, latent_dim=2))])


def test_small_tables_average_three_fits_and_larger_ones_fit_once():
    small, why = sizing.auto_values(sizing.ENSEMBLE_MAX_ROWS, 10, 2, [4096], None, False)
    large, _ = sizing.auto_values(sizing.ENSEMBLE_MAX_ROWS + 1, 10, 2, [4097], None, False)
    assert small["ensemble_size"] == sizing.ENSEMBLE_FITS == 3 and large["ensemble_size"] == 1
    assert why["ensemble_size"].startswith("ensemble_size=3 (the mean of 3 fits on 3 hold-outs")
    assert sizing.published_values(2)["ensemble_size"] == 1


def test_averaged_fits_beat_the_single_fit_on_known_truth_and_keep_every_contract():
    data, complete, _ = make_table(n=300, seed=5, missing=0.3)
    network = dict(SMALL, normal_blend=False)  # the ensemble of networks, and the table its model gives again
    single = run_cissvae(data, n_clusters=1, seed=0, ensemble_size=1, return_model=False, **network)
    out, model, dataset, history = run_cissvae(data, n_clusters=1, seed=0, return_dataset=True,
                                               return_history=True, **network)
    # 300 rows: three fits, each on its own hold-out and seed; the returned model is their average
    assert model.hidden_dims == [48, 24] and model.latent_dim == 9
    assert sorted(history["fit"].unique()) == [0, 1, 2] and history["selected"].sum() == 3
    err_single, err_mean = standardised_rmse(single, complete, data), standardised_rmse(out, complete, data)
    assert err_mean < 0.9 * err_single, (err_mean, err_single)
    # observed cells exactly as given, and the returned model on the returned dataset gives the table again
    observed = data.notna().to_numpy()
    np.testing.assert_array_equal(out.to_numpy()[observed], data.to_numpy()[observed])
    again = get_imputed_df(model, DataLoader(dataset, batch_size=64))
    np.testing.assert_allclose(again.to_numpy(), out.to_numpy(), rtol=1e-5, atol=1e-5)
    # the same seed gives the same table
    pd.testing.assert_frame_equal(run_cissvae(data, n_clusters=1, seed=0, return_model=False, **network), out)


def test_the_first_fit_of_an_ensemble_is_the_single_fit():
    data, _, _ = make_table(n=150, seed=2)
    one, h1 = run_cissvae(data, n_clusters=1, seed=3, ensemble_size=1, return_model=False, return_history=True,
                          **SMALL)
    _, h3 = run_cissvae(data, n_clusters=1, seed=3, ensemble_size=2, return_model=False, return_history=True,
                        **SMALL)
    first = h3[h3["fit"] == 0].drop(columns="fit").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, h1)


def test_the_imputer_saves_and_reloads_an_averaged_model(tmp_path):
    data, complete, _ = make_table(n=210, seed=4)
    imp = CISSVAEImputer(n_clusters=1, seed=1, **{k: v for k, v in SMALL.items() if k != "print_dataset"})
    imp.fit(data)
    assert imp.fit_summary_["settings"]["ensemble_size"] == 3 and len(imp.fit_summary_["fits"]) == 3
    imp.save(tmp_path / "m")
    back = CISSVAEImputer.load(tmp_path / "m")
    np.testing.assert_array_equal(back.transform(data).to_numpy(), imp.transform(data).to_numpy())
    draws = imp.transform(data.iloc[:20], n_draws=2)
    assert len(draws) == 2 and not any(d.isna().any().any() for d in draws)
