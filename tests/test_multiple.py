"""Proper multiple imputation: bootstrap refits, multiple_impute, stack_draws."""

import copy
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ciss_vae import CISSVAEImputer, multiple_impute, stack_draws
from ciss_vae.classes.cluster_dataset import ClusterDataset
from ciss_vae.classes.vae import CISSVAE
from ciss_vae.engine import Phase, TrainingData, bootstrap_states

SMALL = dict(hidden_dims=(16,), latent_dim=2, layer_order_enc=("s",), layer_order_dec=("s",), epochs=30,
             max_loops=1, epochs_per_loop=10, batch_size=50, device="cpu")


def table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame({"x": x, "y": 1 + 0.5 * x + rng.normal(size=n), "z": 0.8 * x + 0.6 * rng.normal(size=n),
                       "grp": pd.Categorical(np.where(x + rng.normal(size=n) > 0, "hi", "lo"))})
    df.loc[rng.random(n) < 0.3, "x"] = np.nan
    df.loc[rng.random(n) < 0.2, "grp"] = np.nan
    return df


def test_bootstrap_refits_differ_and_draw_in_turn():
    df = table()
    imp = CISSVAEImputer(bootstrap_models=3, seed=0, **SMALL).fit(df)
    assert len(imp.bootstrap_states_) == 3
    main = imp.model_.state_dict()
    for state in imp.bootstrap_states_:
        assert state.keys() == main.keys()
        assert any(not np.allclose(state[k].numpy(), main[k].numpy()) for k in main)
    a = imp.bootstrap_states_[0]
    assert any(not np.allclose(a[k].numpy(), imp.bootstrap_states_[1][k].numpy()) for k in a)
    draws = imp.transform(df, n_draws=4)
    seen = df.notna()
    for d in draws:
        assert d.dtypes.to_dict() == df.dtypes.to_dict() and not d.isna().any().any()
        assert all((d[c][seen[c]] == df[c][seen[c]]).all() for c in df.columns)
    miss = df.x.isna()
    assert len({tuple(d.x[miss].round(6)) for d in draws}) == 4


def _norm_between(df, draws=400, seed=0):
    """Between-imputation variance of the mean imputed x under Bayesian linear regression (mice's ``norm``)."""
    rng = np.random.default_rng(seed)
    miss = df.x.isna().to_numpy()
    X = np.column_stack([np.ones(len(df)), df.y, df.z])
    Xo, xo = X[~miss], df.x.to_numpy()[~miss]
    V = np.linalg.inv(Xo.T @ Xo)
    bhat = V @ Xo.T @ xo
    rss = ((xo - Xo @ bhat) ** 2).sum()
    means = []
    for _ in range(draws):
        s2 = rss / rng.chisquare(len(xo) - 3)
        b = rng.multivariate_normal(bhat, s2 * V)
        means.append((X[miss] @ b + rng.normal(scale=np.sqrt(s2), size=miss.sum())).mean())
    return np.var(means, ddof=1)


def test_proper_draws_spread_more_than_improper_ones():
    """Refits add the model's uncertainty: more spread than one model's noise, near a Bayesian regression's."""
    df = table(seed=1)
    settings = dict(SMALL, epochs=100, epochs_per_loop=50, validate_every=5, decay_factor=1.0)
    proper = CISSVAEImputer(bootstrap_models=10, seed=1, **settings).fit(df)
    improper = CISSVAEImputer(bootstrap_models=0, seed=1, **settings).fit(df)
    assert improper.bootstrap_states_ == []

    def between(imp):  # variance of the imputed column means across draws: the between-imputation part
        return np.var([d.x[df.x.isna()].mean() for d in imp.transform(df, n_draws=100)], ddof=1)

    assert between(proper) > 1.3 * between(improper)
    assert between(proper) > 0.5 * _norm_between(df)  # measured 0.61; improper draws give 0.40


def test_multiple_impute_is_reproducible_and_saves_its_refits(tmp_path):
    df = table()
    tables, imp = multiple_impute(df, m=3, seed=4, return_imputer=True, **SMALL)
    again = multiple_impute(df, m=3, seed=4, **SMALL)
    for a, b in zip(tables, again):
        pd.testing.assert_frame_equal(a, b)
    assert len(imp.bootstrap_states_) == 3
    imp.save(tmp_path / "m")
    back = CISSVAEImputer.load(tmp_path / "m")
    assert len(back.bootstrap_states_) == 3
    for a, b in zip(back.transform(df, n_draws=3), imp.transform(df, n_draws=3)):
        pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="`m` must be a positive integer"):
        multiple_impute(df, m=0)


def test_stack_draws_is_micess_long_format():
    df = table(n=40)
    draws = [df.assign(x=df.x.fillna(v), grp=df.grp.fillna(g)) for v, g in ((0.0, "hi"), (1.0, "lo"))]
    long = stack_draws(draws, original=df)
    assert list(long.columns) == [".imp", ".id", *df.columns]
    assert long[".imp"].tolist() == [0] * 40 + [1] * 40 + [2] * 40
    assert long[".id"].tolist() == list(df.index) * 3
    assert long.loc[long[".imp"] == 2, "x"].isna().sum() == 0
    assert stack_draws(draws)[".imp"].min() == 1
    with pytest.raises(ValueError, match="other columns or rows"):
        stack_draws([df, df.iloc[:10]])


def test_command_line_keeps_refits_only_when_asked(tmp_path, capsys):
    from ciss_vae.cli import main

    table(n=120).drop(columns="grp").to_csv(tmp_path / "in.csv", index=False)
    fast = ["--epochs", "5", "--max-loops", "1", "--hidden-dims", "8", "--latent-dim", "2"]
    assert main(["impute", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), *fast,
                 "--save-model", str(tmp_path / "plain")]) == 0
    assert main(["impute", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), *fast,
                 "--bootstrap-models", "2", "--save-model", str(tmp_path / "mi")]) == 0
    capsys.readouterr()
    assert CISSVAEImputer.load(tmp_path / "plain").bootstrap_states_ == []
    assert len(CISSVAEImputer.load(tmp_path / "mi").bootstrap_states_) == 2


def test_draws_of_one_model_are_its_imputation_plus_residual_noise():
    """Also on rows far from the training rows, where the latent's variance would be unreliable."""
    df = table(n=300, seed=2).drop(columns="grp")
    imp = CISSVAEImputer(bootstrap_models=0, seed=0, input_dropout=0.3, **SMALL).fit(df)
    new = pd.DataFrame({"x": np.nan, "y": np.linspace(-6, 8, 200), "z": np.linspace(-5, 5, 200)})
    point = imp.transform(new)
    scale = imp.residual_std_[0] * imp.stds_[0]
    z = np.concatenate([(d.x - point.x) / scale for d in imp.transform(new, n_draws=20)])
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05 and np.abs(z).max() < 5.5


def test_bootstrap_refits_start_afresh_from_one_shared_start(table):
    """Refits ignore the fitted parameters, share their start and row order, and differ by their rows only."""
    data, _, clusters = table
    ds = ClusterDataset(data, clusters)
    td = TrainingData.from_dataset(ds, torch.device("cpu"))
    model = CISSVAE(ds.n_features, [16, 8], ["u", "s"], ["s", "u"], False, 3, False, ds.n_clusters)
    options = dict(validate_every=1, patience=None)

    def states(m, epochs, n=2, first=0):
        return bootstrap_states(m, td, ds.data, Phase(epochs, 0.01, 1.0, 0.1, 0.0, 64), n, 7, first=first, **options)

    start = states(model, 0)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(1.0)
    for state in start[1:] + states(moved, 0):
        assert all(torch.equal(state[k], start[0][k]) for k in state)
    assert not all(torch.equal(start[0][k], v) for k, v in model.state_dict().items())
    trained = states(model, 3)
    assert not all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])
    assert all(torch.equal(v, trained[1][k]) for k, v in states(model, 3, n=1, first=1)[0].items())


def test_coverage_battery_extends_a_run_from_a_later_repetition(tmp_path, capsys, monkeypatch):
    """``--first-rep`` simulates from that repetition on, and ``--from-csv`` summarises several runs together."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "mi_coverage.py"
    spec = importlib.util.spec_from_file_location("mi_coverage_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its worker function is pickled by module name
    spec.loader.exec_module(bench)
    fast = ["--scenarios", "slope_n200", "--reps", "1", "--m", "2", "--no-r", "--jobs", "1",
            "--set", "epochs=3", "epochs_per_loop=2", "ensemble_size=1"]
    for first in (3, 4):
        bench.main(fast + ["--first-rep", str(first), "--csv", str(tmp_path / f"r{first}.csv")])
        run = pd.read_csv(tmp_path / f"r{first}.csv")
        assert set(run["rep"]) == {first} and len(run) == 3
        complete = run.set_index("method").loc["complete cases", "estimate"]
        rows = bench.simulate("slope_n200", first)[1].dropna()
        assert complete == pytest.approx(bench.analyse("slope_n200", rows)[0])
    capsys.readouterr()
    bench.main(["--from-csv", str(tmp_path / "r3.csv"), str(tmp_path / "r4.csv")])
    assert "| slope_n200 | complete cases | 2 |" in capsys.readouterr().out
