"""autotune and SearchSpace: convention, placements, reproducible winners, pruning, storage, resume guard."""

import json
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from ciss_vae.dataset import ClusterDataset
from ciss_vae.model import CISSVAE
from ciss_vae.pipeline import run_cissvae
from ciss_vae.search_space import all_layer_orders, layer_order, shared_positions
from ciss_vae.training.autotune import SearchSpace, autotune
from conftest import make_table, shared_file



@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run ~100x faster with one thread on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_space(**kw):
    base = dict(num_hidden_layers=(1, 2), hidden_dims=[8, 12], latent_dim=[3, 4], lr=(1e-3, 1e-2),
                num_epochs=3, batch_size=64, refit_loops=2, epochs_per_loop=2, num_shared_encode=[0, 1],
                num_shared_decode=[0, 1])
    return SearchSpace(**{**base, **kw})


@pytest.fixture
def dataset():
    data, _, clusters = make_table(n=150)
    return ClusterDataset(data, clusters)


def tune(ds, space=None, **kw):
    return autotune(space or tiny_space(), ds, n_trials=kw.pop("n_trials", 3), device_preference="cpu", **kw)


def reproduce(ds, kwargs):
    """``run_cissvae(**kwargs)`` on the dataset's table: (imputed, model, history)."""
    return run_cissvae(ds.schema.original, clusters=ds.clusters, device="cpu", return_history=True, **kwargs)


def selected_error(history):
    return history.loc[history.selected, "imputation_error"].item()


# ---------------------------------------------------------------------- SearchSpace
def test_search_space_convention_ranges_steps_lists_scalars():
    s = SearchSpace(num_hidden_layers=(1, 3), hidden_dims=(8, 32, 8), lr=(0.1, 0.5, 0.1), decay_factor=(0.9, 0.99),
                    latent_dim=[2, 5], beta=0.5, encoder_shared_placement="at_start",
                    decoder_shared_placement=["alternating"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        h = s.suggest(t, "hidden_dims", "hidden_dim_0")
        lr = s.suggest(t, "lr")
        assert h in (8, 16, 24, 32)
        assert min(abs(lr - v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)) < 1e-9
        assert s.suggest(t, "latent_dim") in (2, 5)
        assert s.suggest(t, "encoder_shared_placement") == "at_start"
        assert s.suggest(t, "beta") == 0.5
        s.suggest(t, "decay_factor")
        assert "encoder_shared_placement" not in t.params and "beta" not in t.params
    d = t.distributions
    assert d["hidden_dim_0"] == optuna.distributions.IntDistribution(8, 32, step=8)
    assert d["lr"] == optuna.distributions.FloatDistribution(0.1, 0.5, step=0.1)
    assert d["decay_factor"] == optuna.distributions.FloatDistribution(0.9, 0.99, log=True)
    assert d["latent_dim"] == optuna.distributions.CategoricalDistribution([2, 5])
    assert s.values("hidden_dims") == [8, 16, 24, 32] and s.kind("encoder_shared_placement") == "fixed"


@pytest.mark.parametrize("bad", [dict(encoder_shared_placement="middle"), dict(decoder_shared_placement=["at_end", "x"]),
                                 dict(num_hidden_layers=(1.0, 3.5)), dict(lr=(1e-2, 1e-3)), dict(hidden_dims=(8, 32, 0)),
                                 dict(latent_shared=(0, 1)), dict(batch_size=[]), dict(reset_lr_refit="yes")])
def test_search_space_rejects_malformed_values(bad):
    with pytest.raises(ValueError):
        SearchSpace(**bad)


def test_search_space_defaults_are_the_published_ones():
    s = SearchSpace()
    assert s.num_hidden_layers == (1, 4) and s.hidden_dims == [64, 512] and s.latent_dim == [10, 100]
    assert s.lr == (1e-4, 1e-3) and s.decay_factor == (0.9, 0.999) and s.weight_decay == 0.001 and s.beta == 0.01
    assert (s.num_epochs, s.batch_size, s.refit_patience, s.refit_loops, s.epochs_per_loop) == (1000, 64, 2, 100, 1000)
    assert s.num_shared_encode == [0, 1, 3] and s.reset_lr_refit == [True, False]
    assert s.encoder_shared_placement == ["at_end", "at_start", "alternating", "random"]


def test_search_space_save_load_round_trip_keeps_meaning(tmp_path):
    s = SearchSpace(num_hidden_layers=(1, 3), hidden_dims=(16, 64, 16), lr=(1e-4, 1e-2), latent_dim=[4, 8],
                    encoder_shared_placement="random", num_epochs=7)
    s.save(tmp_path / "s.json")
    loaded = SearchSpace.load(tmp_path / "s.json")
    assert loaded == s and loaded.fingerprint() == s.fingerprint()
    for name in ("num_hidden_layers", "hidden_dims", "lr", "latent_dim", "encoder_shared_placement", "num_epochs"):
        assert loaded.kind(name) == s.kind(name) and getattr(loaded, name) == getattr(s, name)
    assert json.loads((tmp_path / "s.json").read_text())["hidden_dims"] == {"range": [16, 64, 16]}
    assert SearchSpace(lr=(1e-4, 1e-3)) != SearchSpace(lr=[1e-4, 1e-3])


# ---------------------------------------------------------------------- placements
def test_placements():
    assert shared_positions(4, 2, "alternating") == [0, 2]
    assert shared_positions(3, 2, "alternating") == [0, 2]
    assert shared_positions(5, 2, "alternating") == [0, 2]
    assert shared_positions(4, 3, "alternating") == [0, 2, 3]
    assert shared_positions(4, 2, "at_start") == [0, 1]
    assert shared_positions(4, 2, "at_end") == [2, 3]
    assert shared_positions(2, 3, "at_end") == [0, 1]  # clamped to the number of layers
    assert shared_positions(3, 0, "alternating") == []
    a = shared_positions(6, 3, "random", np.random.default_rng(5))
    assert a == shared_positions(6, 3, "random", np.random.default_rng(5)) and len(set(a)) == 3
    assert layer_order(4, [0, 2]) == ["shared", "unshared", "shared", "unshared"]
    combos = all_layer_orders(3, 1, 2, 100, np.random.default_rng(0))
    assert len(combos) == 9 and len({(tuple(e), tuple(d)) for e, d in combos}) == 9
    assert len(all_layer_orders(3, 1, 2, 4, np.random.default_rng(0))) == 4


# ---------------------------------------------------------------------- autotune
def test_winner_is_reproduced_by_run_cissvae_and_dataset_is_untouched(dataset):
    before = {k: v.clone() for k, v in vars(dataset).items() if isinstance(v, torch.Tensor)}
    settings = json.dumps(dataset.settings)
    best_df, model, study, results, history = tune(dataset, return_history=True)
    for k, v in before.items():
        torch.testing.assert_close(getattr(dataset, k), v, rtol=0, atol=0, equal_nan=True, msg=k)
    assert json.dumps(dataset.settings) == settings
    best = study.best_trial
    assert selected_error(history) == pytest.approx(best.value, abs=0)
    kwargs = best.user_attrs["run_cissvae_kwargs"]
    json.dumps(kwargs)
    again, again_model, again_history = reproduce(dataset, kwargs)
    pd.testing.assert_frame_equal(again, best_df)
    assert selected_error(again_history) == best.value
    assert model.constructor_kwargs()["layer_order_enc"] == kwargs["layer_order_enc"]
    assert list(results["trial_number"]) == [0, 1, 2] and set(results["state"]) == {"COMPLETE"}
    for col in ("imputation_error", "num_hidden_layers", "hidden_dim_0", "lr", "latent_dim",
                "layer_order_enc_used", "layer_order_dec_used"):
        assert col in results.columns
    assert history.equals(again_history)
    steps = sorted(best.intermediate_values)
    assert steps[0] == 0 and steps == list(range(len(steps)))


def test_same_seed_same_study(dataset):
    filters = list(warnings.filters)
    a = tune(dataset, seed=3)[3]
    assert warnings.filters == filters  # no process-wide warning filter (ExperimentalWarning included)
    b = tune(dataset, seed=3)[3]
    pd.testing.assert_frame_equal(a.drop(columns="worker"), b.drop(columns="worker"))
    c = tune(dataset, seed=4)[3]
    assert not a["imputation_error"].equals(c["imputation_error"])


class PruneAfterFirstTrial(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number >= 1


def test_pruning_stops_trials_and_can_be_turned_off(dataset):
    _, _, study, results = tune(dataset, pruner=PruneAfterFirstTrial())
    assert list(results["state"]) == ["COMPLETE", "PRUNED", "PRUNED"]
    assert list(study.trials[1].intermediate_values) == [0]  # stopped after initial training
    study = tune(dataset, pruner=None)[2]
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    assert isinstance(tune(dataset, n_trials=1)[2].pruner, optuna.pruners.MedianPruner)


def test_threshold_pruner_prunes_hopeless_trials(dataset):
    first = tune(dataset, n_trials=1, pruner=None)[2].best_value
    with pytest.raises(RuntimeError, match="no trial"):
        tune(dataset, n_trials=2, pruner=optuna.pruners.ThresholdPruner(upper=first / 100))


def test_sqlite_storage_resume_and_guard(dataset, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    tune(dataset, n_trials=1, optuna_dashboard_db=url, study_name="s")
    _, _, study, results = tune(dataset, n_trials=1, storage=url, study_name="s")
    assert len(results) == 2 and study.user_attrs["ciss_vae_search_space"]["lr"] == {"range": [1e-3, 1e-2]}
    other, _, clusters = make_table(n=150, seed=1)
    with pytest.raises(ValueError, match="other data"):
        tune(ClusterDataset(other, clusters), n_trials=1, storage=url, study_name="s")
    with pytest.raises(ValueError, match="another search space.*latent_dim"):
        tune(dataset, tiny_space(latent_dim=[5]), n_trials=1, storage=url, study_name="s")
    with pytest.raises(ValueError, match="other options.*constant_layer_size"):
        tune(dataset, n_trials=1, storage=url, study_name="s", constant_layer_size=True)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def test_best_trial_of_another_run_is_rebuilt_exactly(dataset, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    first_df, first_model, first, _ = tune(dataset, n_trials=2, storage=url, study_name="r", pruner=None)
    again_df, model, study, results = tune(dataset, n_trials=0, storage=url, study_name="r")
    assert study.best_trial.number == first.best_trial.number and len(results) == 2
    pd.testing.assert_frame_equal(again_df, first_df)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), first_model.state_dict().values()))


def test_journal_storage_and_constant_layer_size(dataset, tmp_path):
    _, model, study, results = tune(dataset, n_trials=2, storage=str(tmp_path / "study.log"), constant_layer_size=True)
    assert "hidden_dim_constant" in results.columns and "hidden_dim_0" not in results.columns
    assert len(set(model.constructor_kwargs()["hidden_dims"])) == 1


def test_evaluate_all_orders_keeps_the_best_order(dataset):
    space = tiny_space(num_hidden_layers=2, num_shared_encode=1, num_shared_decode=1)
    best_df, _, study, results = tune(dataset, space, n_trials=1, evaluate_all_orders=True, max_exhaustive_orders=3)
    t = study.best_trial
    assert t.user_attrs["orders_evaluated"] == 3
    kwargs = t.user_attrs["run_cissvae_kwargs"]
    assert kwargs["layer_order_enc"].count("shared") == 1 and kwargs["layer_order_dec"].count("shared") == 1
    assert results.loc[0, "layer_order_enc_used"] in ("S,U", "U,S")
    pd.testing.assert_frame_equal(reproduce(dataset, kwargs)[0], best_df)


def test_parallel_trials_are_each_reproducible(dataset):
    best_df, _, study, _ = tune(dataset, n_trials=4, n_jobs=2, pruner=None)
    assert len(study.trials) == 4
    pd.testing.assert_frame_equal(reproduce(dataset, study.best_trial.user_attrs["run_cissvae_kwargs"])[0], best_df)


def test_saving_and_cuda_fallback_and_progress(dataset, tmp_path, caplog, monkeypatch):
    import rich.console

    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    path = str(tmp_path / "best.pt")
    with caplog.at_level(logging.WARNING, logger="ciss_vae"):
        best_df, model, study, _ = autotune(tiny_space(), dataset, n_trials=2, save_model_path=path,
                                            save_search_space_path=tmp_path / "space.json", show_progress=True,
                                            device_preference="cuda")
    if not torch.cuda.is_available():
        assert "training on the CPU" in caplog.text
        quiet = autotune(tiny_space(), dataset, n_trials=2, device_preference="cpu")[0]
        pd.testing.assert_frame_equal(quiet, best_df)  # the progress bar changes nothing
    arch = json.loads(Path(path + ".json").read_text())
    rebuilt = CISSVAE(**arch)
    rebuilt.load_state_dict(torch.load(path))
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values()))
    assert SearchSpace.load(tmp_path / "space.json") == tiny_space()


def test_rejects_bad_arguments(dataset):
    with pytest.raises(TypeError):
        autotune({"lr": 0.1}, dataset)
    with pytest.raises(ValueError, match="validation"):
        autotune(tiny_space(), ClusterDataset(*make_table(n=30)[::2], val_proportion=0.0))
    with pytest.raises(ValueError, match="pruner"):
        tune(dataset, pruner="sometimes")


# ---------------------------------------------------------------------- the user guide
def guide_blocks():
    blocks = re.findall(r"```\s*python\n(.*?)```", shared_file("docs", "how_to_use_ciss_vae.md").read_text(),
                        flags=re.S)
    start = next(i for i, b in enumerate(blocks) if "from ciss_vae.training.autotune import" in b)
    return [b for b in blocks[start:] if "autotune" in b or "SearchSpace(" in b]


def test_user_guide_tuning_code_runs_with_short_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = "\n".join(guide_blocks())
    short = (code.replace("num_epochs=1000", "num_epochs=2").replace("refit_loops=100", "refit_loops=1")
             .replace("epochs_per_loop = 1000", "epochs_per_loop = 2").replace("n_trials=20", "n_trials=2")
             .replace("batch_size=64", "batch_size=256").replace("hidden_dims=[64, 512]", "hidden_dims=[8, 16]"))
    assert short.count("n_trials=2,") == 2 and "num_epochs=2" in short
    prelude = ("from ciss_vae.data import load_example_dataset\ndf_missing, df_complete, clusters = load_example_dataset()\n"
               "data, clusters = df_missing.iloc[:800], clusters[:800]\n")
    scope = {}
    exec(prelude + short, scope)
    assert scope["best_imputed_df"].shape == (800, 30)
    assert (tmp_path / "db.sqlite3").exists()
