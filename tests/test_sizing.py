"""Settings left unset are decided from the observed table (defaults="auto") or published."""

import logging

import numpy as np
import pytest

from ciss_vae import CISSVAEImputer, sizing
from ciss_vae.cli import build_parser
from ciss_vae.cli.options import given
from ciss_vae.pipeline import fit_table
from ciss_vae.settings import RUN, defaults, validate
from tests.conftest import make_table

TINY = dict(hidden_dims=[16, 8], latent_dim=3, print_dataset=False)


def settings(**kw):
    return validate(dict(defaults(RUN), **dict(TINY, **kw)), RUN)


def test_weak_or_small_clusters_share_every_layer_and_clear_ones_get_private_layers():
    pooled = sizing.pooled_layer_orders(2)
    private = sizing.published_layer_orders(2)
    decide = lambda *a, **k: sizing.auto_values(8000, 30, 2, *a, **k)[0]  # noqa: E731
    sub = lambda v: {k: v[k] for k in pooled}  # noqa: E731
    assert sub(decide([8000], None, False)) == pooled
    assert sub(decide([4000, 4000], 0.30, False)) == pooled            # no clear structure
    assert sub(decide([7900, 100], 0.90, False)) == pooled             # a cluster too small for its own layers
    assert sub(decide([2000] * 4, 0.63, False)) == private             # the example cohort's clusters
    assert sub(decide([4000, 4000], None, True)) == private            # the caller's own labels are trusted
    assert private == dict(layer_order_enc=["unshared"] * 2, layer_order_dec=["shared"] * 2,
                           latent_shared=False, output_shared=False)


def test_a_pooled_network_hides_input_cells_in_training_and_per_cluster_layers_do_not():
    decide = lambda *a: sizing.input_dropout(sizing.auto_values(8000, 30, 2, *a)[0])  # noqa: E731
    assert decide([8000], None, False) == sizing.INPUT_DROPOUT == 0.1
    assert decide([4000, 4000], 0.30, False) == 0.1
    assert decide([2000] * 4, 0.63, False) == 0.0
    assert decide([4000, 4000], None, True) == 0.0
    assert sizing.input_dropout(dict(sizing.pooled_layer_orders(2), layer_order_enc=["s", "u"])) == 0.0
    assert sizing.published_values(3)["input_dropout"] == 0.0
    data, _, _ = make_table()
    given = fit_table(data, settings(n_clusters=1, epochs=2, max_loops=1, input_dropout=0.3))
    auto = fit_table(data, settings(n_clusters=1, epochs=2, max_loops=1))
    assert given.summary["settings"]["input_dropout"] == 0.3
    assert auto.summary["settings"]["input_dropout"] == 0.1
    assert "input_dropout=0.1 (a pooled network)" in auto.summary["decided"]
    private = fit_table(data, settings(n_clusters=1, epochs=2, max_loops=1, layer_order_enc=["u", "s"]))
    assert private.summary["settings"]["input_dropout"] == 0.0


@pytest.mark.parametrize("n_rows, batch, epochs, loop_epochs, epoch_rows", [
    (178, 16, 334, 84, None), (1797, 112, 236, 59, None), (8000, 500, 125, 63, None), (16384, 1024, 125, 63, None),
    (16385, 1024, 125, 63, 16384), (10**6, 1024, 125, 63, 16384)])
def test_training_budget_is_a_number_of_steps_whatever_the_table_size(n_rows, batch, epochs, loop_epochs,
                                                                      epoch_rows):
    values, why = sizing.auto_values(n_rows, 30, 3, [n_rows], None, False)
    assert (values["batch_size"], values["epochs"], values["epochs_per_loop"]) == (batch, epochs, loop_epochs)
    assert values["epoch_rows"] == epoch_rows  # beyond 16 full batches an epoch is 16 batches: same steps
    steps = epochs * -(-min(n_rows, epoch_rows or n_rows) // batch)
    averaged = n_rows <= sizing.ENSEMBLE_MAX_ROWS  # three fits of 4000 steps; one fit of 2000 on larger tables
    budget, loops = (4000, sizing.MAX_LOOPS) if averaged else (2000, sizing.ONE_FIT_MAX_LOOPS)
    assert budget <= steps < budget + 2 * batch
    assert values["max_loops"] == loops and values["initial_lr"] == sizing.LEARNING_RATE
    assert why["batch_size"] == f"batch_size={batch}" and why["layer_order_enc"] == "one cluster: every layer shared"


@pytest.mark.parametrize("n_columns, hidden, latent", [(3, [30, 24, 12], 2), (10, [100, 80, 40], 5),
                                                       (13, [130, 104, 52], 6), (15, [150, 120, 60], 8),
                                                       (30, [150, 120, 60], 15), (64, [150, 120, 60], 15)])
def test_network_is_as_wide_as_the_table(n_columns, hidden, latent):
    assert sizing.network_size(n_columns) == dict(hidden_dims=hidden, latent_dim=latent)
    values, why = sizing.auto_values(500, n_columns, 3, [500], None, False)
    assert (values["hidden_dims"], values["latent_dim"]) == (hidden, latent)
    assert why["hidden_dims"] == f"hidden_dims={hidden}, latent_dim={latent} ({n_columns} columns)"
    assert sizing.published_values(3)["hidden_dims"] == [150, 120, 60]


def test_a_normal_is_blended_in_unless_the_table_is_wider_than_the_limit():
    narrow, why = sizing.auto_values(500, sizing.NORMAL_MAX_COLUMNS, 3, [500], None, False)
    wide, why_wide = sizing.auto_values(500, sizing.NORMAL_MAX_COLUMNS + 1, 3, [500], None, False)
    assert narrow["normal_blend"] is True and wide["normal_blend"] is False
    assert why_wide["normal_blend"] == "normal_blend=False (257 columns; at most 256 are blended)"
    assert sizing.published_values(3)["normal_blend"] is False


def test_unset_widths_are_decided_and_published_mode_keeps_the_published_network():
    data, _, _ = make_table()
    base = {k: v for k, v in settings(n_clusters=1, epochs=2, max_loops=1).items()}
    base.update(hidden_dims=None, latent_dim=None, ensemble_size=1)
    auto = fit_table(data, base)
    assert auto.model.constructor_kwargs()["hidden_dims"] == [60, 48, 24]  # 6 columns: 6/15 of the widths
    assert auto.model.constructor_kwargs()["latent_dim"] == 3
    assert "hidden_dims=[60, 48, 24], latent_dim=3 (6 columns)" in auto.summary["decided"]
    published = fit_table(data, dict(base, defaults="published"))
    assert published.model.constructor_kwargs()["hidden_dims"] == [150, 120, 60]
    assert published.model.constructor_kwargs()["latent_dim"] == 15


def test_published_mode_trains_with_the_published_values(caplog):
    data, _, clusters = make_table()
    with caplog.at_level(logging.INFO, logger="ciss_vae"):
        result = fit_table(data, settings(defaults="published", epochs=3, max_loops=1, print_dataset=True),
                           clusters=clusters)
    used = result.summary["settings"]
    assert used == dict(hidden_dims=[16, 8], latent_dim=3, batch_size=4000, epochs=3, epochs_per_loop=3,
                        initial_lr=0.01, max_loops=1, ensemble_size=1, epoch_rows=None, input_dropout=0.0,
                        normal_blend=False, layer_order_enc=["unshared"] * 2, layer_order_dec=["shared"] * 2,
                        latent_shared=False, output_shared=False)
    assert result.history.lr.iloc[0] == 0.01
    assert "published defaults" in result.summary["decided"] and "published defaults" in caplog.text


def test_auto_mode_decides_from_the_table_and_never_overrides_a_given_setting():
    data, _, _ = make_table()
    result = fit_table(data, settings(n_clusters=1, max_loops=1, epochs=4, batch_size=32))
    used = result.summary["settings"]
    assert (used["batch_size"], used["epochs"], used["max_loops"]) == (32, 4, 1)
    assert used["initial_lr"] == sizing.LEARNING_RATE
    assert used["layer_order_enc"] == ["shared", "shared"] and used["latent_shared"] and used["output_shared"]
    assert used["epochs_per_loop"] == 125  # 1000 steps of the given batches of 32 rows (8 per epoch)
    assert result.summary["decided"] == ("decided from the table (240 rows, 6 columns): epochs_per_loop=125 "
                                         "(1000 steps); initial_lr=0.003; ensemble_size=3 (the mean of 3 fits "
                                         "on 3 hold-outs: at most 4096 rows); epoch_rows=None (epochs given: an epoch is a "
                                         "pass); input_dropout=0.1 (a pooled network); normal_blend=True (6 columns; "
                                         "at most 256 are blended); one cluster: every layer shared")
    everything = dict(batch_size=32, epochs=2, epochs_per_loop=2, initial_lr=0.01, max_loops=1, ensemble_size=1,
                      epoch_rows=240, layer_order_enc=["u", "s"], layer_order_dec=["s", "s"], latent_shared=True,
                      output_shared=False, input_dropout=0.0, normal_blend=True)
    result = fit_table(data, settings(n_clusters=1, **everything))
    assert result.summary["decided"] is None
    assert result.summary["settings"]["layer_order_enc"] == ["unshared", "shared"]


def test_same_table_same_decision_and_output_and_the_imputer_records_it():
    data, _, clusters = make_table(seed=3)
    kw = dict(hidden_dims=[8], latent_dim=2, epochs=5, max_loops=1, epochs_per_loop=2, seed=1)
    a = CISSVAEImputer(**kw).fit(data, clusters=clusters)
    b = CISSVAEImputer(**kw).fit(data, clusters=clusters)
    assert a.fit_summary_["settings"] == b.fit_summary_["settings"]
    assert a.fit_summary_["settings"]["batch_size"] == 16 and a.fit_summary_["settings"]["layer_order_enc"] == ["unshared"]
    np.testing.assert_array_equal(a.fit_output_.to_numpy(), b.fit_output_.to_numpy())
    assert a.get_params()["batch_size"] is None  # parameters stay as given; the decision is a fitted attribute


def test_cli_takes_defaults_and_shows_that_unset_sizes_are_decided_from_the_table():
    parser = build_parser()
    args = parser.parse_args(["impute", "in.csv", "-o", "out.csv", "--defaults", "published"])
    assert given(args) == dict(defaults="published", bootstrap_models=0)  # 0: the command line's own default
    with pytest.raises(SystemExit):
        parser.parse_args(["impute", "in.csv", "-o", "out.csv", "--defaults", "paper"])


def test_a_bad_mode_is_refused_before_any_work():
    from ciss_vae import run_cissvae

    data, _, _ = make_table()
    with pytest.raises(ValueError, match="defaults"):
        run_cissvae(data, defaults="paper")


def test_given_epochs_count_passes_over_the_table_and_decided_ones_count_steps():
    s = settings(n_clusters=1, epochs=3)
    big = dict(n_rows=50_000, n_columns=6, cluster_sizes=[50_000])
    given, text = sizing.resolve(s, **big)
    assert given["epoch_rows"] is None and "epochs given: an epoch is a pass" in text
    decided, text = sizing.resolve(settings(n_clusters=1), **big)
    assert decided["epoch_rows"] == 16384 and "epoch_rows=16384 (an epoch of 16 steps)" in text
    published, _ = sizing.resolve(settings(n_clusters=1, defaults="published"), **big)
    assert published["epoch_rows"] is None
