import copy

import pytest
import torch

from ciss_vae.classes.cluster_dataset import ClusterDataset
from ciss_vae.classes.vae import CISSVAE
from ciss_vae.training import impute_and_refit_loop, train_vae_initial, train_vae_refit
from ciss_vae.utils.helpers import compute_val_mse, get_imputed


def small_model(ds):
    torch.manual_seed(0)
    return CISSVAE(ds.n_features, [16, 8], ["u", "s"], ["s", "u"], False, 3, False, ds.n_clusters)


def test_first_refit_loop_trains_on_the_initial_models_imputation(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    model, history = train_vae_initial(small_model(ds), ds, epochs=5, initial_lr=0.01, seed=1, return_history=True)
    manual = copy.deepcopy(model)
    _, best, best_ds, history = impute_and_refit_loop(model, ds, max_loops=1, patience=5, epochs_per_loop=4,
                                                      batch_size=64, seed=3, history=history, return_history=True)
    fill0 = get_imputed(manual, ds)
    train_vae_refit(manual, torch.utils.data.DataLoader(fill0, batch_size=64), epochs=4,
                    initial_lr=manual.get_final_lr(), decay_factor=0.999, beta=0.1, seed=3)
    assert history["epoch"].is_monotonic_increasing and len(history.query("phase == 'initial'")) == 5
    loop1 = history.query("phase == 'refit' and loop == 1 and train_loss.isna()")
    assert loop1["selected"].item(), "with 5 initial epochs the first refit loop must improve"
    assert torch.equal(best_ds.data, fill0.data)
    for a, b in zip(best.state_dict().values(), manual.state_dict().values()):
        assert torch.equal(a, b)
    total, *_ = compute_val_mse(best, best_ds)
    assert total == pytest.approx(loop1["imputation_error"].item(), rel=1e-6)


def test_initial_training_keeps_the_best_validated_epoch(table):
    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    model, history = train_vae_initial(small_model(ds), ds, epochs=12, initial_lr=0.05, seed=0, return_history=True)
    total, *_ = compute_val_mse(model, ds)
    assert total == pytest.approx(history["imputation_error"].min(), rel=1e-6)
    assert model.get_final_lr() == pytest.approx(0.05 * 0.999**12)


def test_diverging_training_stops_with_a_clear_error(table):
    data, _, clusters = table
    ds = ClusterDataset(data * 1e18, clusters)
    with pytest.raises(FloatingPointError, match="learning rate"):
        train_vae_initial(small_model(ds), ds, epochs=20, initial_lr=1e6, seed=0)


def test_stepwise_verbose_logs_every_validation_and_refit_loop(table, caplog):
    import logging

    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    caplog.set_level(logging.DEBUG, logger="ciss_vae")
    model = train_vae_initial(small_model(ds), ds, epochs=3, seed=1, verbose=True)
    assert caplog.text.count("initial epoch") == 3
    train_vae_initial(small_model(ds), ds, epochs=2, seed=1)
    assert caplog.text.count("initial epoch") == 3  # not verbose: no epoch lines
    impute_and_refit_loop(model, ds, max_loops=1, epochs_per_loop=2, batch_size=64, verbose=True)
    assert "refit loop 1: imputation error" in caplog.text


def test_hidden_cells_are_a_given_share_look_missing_and_hide_one_hot_groups_whole():
    from ciss_vae.engine import hide_cells

    x = torch.arange(1, 1 + 4000 * 6, dtype=torch.float32).reshape(4000, 6)
    units = torch.tensor([0, 1, 2, 2, 2, 5])  # columns 2-4 are one one-hot group
    out = hide_cells(x, units, 0.3, -7.0, torch.Generator().manual_seed(0))
    hidden = out == -7.0
    assert torch.equal(torch.where(hidden, x, out), x)  # every other cell untouched
    assert 0.27 < hidden[:, [0, 1, 2, 5]].float().mean() < 0.33
    assert torch.equal(hidden[:, 2], hidden[:, 3]) and torch.equal(hidden[:, 2], hidden[:, 4])
    again = hide_cells(x, units, 0.3, -7.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_input_dropout_changes_training_and_is_reproducible(table):
    from ciss_vae import run_cissvae

    data, _, clusters = table
    kw = dict(clusters=clusters, hidden_dims=[16, 8], latent_dim=3, epochs=8, max_loops=1, epochs_per_loop=3,
              batch_size=64, print_dataset=False, return_model=False, seed=0)
    plain = run_cissvae(data, **kw)
    a, b = run_cissvae(data, input_dropout=0.3, **kw), run_cissvae(data, input_dropout=0.3, **kw)
    assert a.equals(b) and not a.equals(plain)


def test_epochs_of_some_rows_run_on_through_one_shuffle_per_pass():
    from ciss_vae.engine import RowStream

    n = 10
    whole, a = RowStream(n, torch.Generator().manual_seed(3), "cpu"), torch.Generator().manual_seed(3)
    for _ in range(3):  # an epoch of the whole table: one fresh shuffle each, as before epoch_rows existed
        assert torch.equal(whole.take(n), torch.randperm(n, generator=a))
    part = RowStream(n, torch.Generator().manual_seed(3), "cpu")
    taken = torch.cat([part.take(4) for _ in range(5)])  # 20 rows = two passes
    assert sorted(taken[:10].tolist()) == list(range(n)) and sorted(taken[10:].tolist()) == list(range(n))


def test_epoch_rows_counts_epochs_in_rows_and_steps_are_recorded(table):
    from ciss_vae.pipeline import fit_table
    from ciss_vae.settings import RUN, defaults, validate

    data, _, clusters = table  # 240 rows: 12 batches of 20 per pass
    kw = dict(hidden_dims=[16, 8], latent_dim=3, epochs=6, max_loops=0, batch_size=20, print_dataset=False,
              seed=0, validate_every=2, n_iter_no_change=None, ensemble_size=1)
    def run(**extra):
        return fit_table(data, validate(dict(defaults(RUN), **kw, **extra), RUN), clusters=clusters)

    part, whole = run(epoch_rows=60), run()
    assert (part.summary["epochs"], part.summary["steps"]) == (6, 6 * 3)
    assert (whole.summary["epochs"], whole.summary["steps"]) == (6, 6 * 12)
    assert not part.imputed.equals(whole.imputed)


def test_flush_subnormals_zeroes_only_subnormal_parameters_and_adam_moments():
    from ciss_vae.engine import flush_subnormals, make_adam

    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1e-40, 0.5, -1e-39], [2e-38, -3.0, 0.0]]))
    opt = make_adam(layer, 1e-3, 0.0)
    layer.weight.grad, layer.bias.grad = torch.ones_like(layer.weight), torch.ones_like(layer.bias)
    opt.step()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1e-40, 0.5, -1e-39], [2e-38, -3.0, 0.0]]))
    opt.state[layer.weight]["exp_avg_sq"][0, 0] = 5e-41
    flush_subnormals(opt)
    assert layer.weight.tolist() == [[0.0, 0.5, 0.0], [pytest.approx(2e-38, rel=1e-6), -3.0, 0.0]]
    assert opt.state[layer.weight]["exp_avg_sq"][0, 0].item() == 0.0
    assert opt.state[layer.weight]["exp_avg_sq"][1, 1].item() > 0


def test_training_clears_subnormal_weights_that_the_optimiser_would_leave(table):
    """Weights out of a dead ReLU unit get no gradient; subnormal there, they would slow every CPU matmul."""
    from ciss_vae.engine import FLUSH_EVERY, Generators, History, Phase, TrainingData, run_epochs
    from ciss_vae.pipeline import build_model

    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    cpu = torch.device("cpu")
    model = build_model(ds, 0, cpu, hidden_dims=[16, 8], latent_dim=3, layer_order_enc=["u", "u"],
                        layer_order_dec=["s", "s"], latent_shared=False, output_shared=False)
    with torch.no_grad():
        model.encoder[0].bias[:, 5] = -1e6  # unit 5 of the first layer never fires
        model.encoder[1].weight[:, 5, :] = 1e-40
    td = TrainingData.from_dataset(ds, cpu)
    steps = -(-len(data) // 20)
    phase = Phase(-(-FLUSH_EVERY // steps), 1e-3, 1.0, 0.001, 0.0, 20)
    run_epochs(model, td, td.data, td.train_weight, phase, Generators.from_seed(0, cpu), History(), label="initial",
               loop=0)
    assert torch.count_nonzero(model.encoder[1].weight[:, 5, :]) == 0
    assert torch.count_nonzero(model.encoder[1].weight[:, 4, :]) > 0
