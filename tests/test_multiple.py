"""Proper multiple imputation: bootstrap refits, multiple_impute, stack_draws."""

import numpy as np
import pandas as pd
import pytest

from ciss_vae import CISSVAEImputer, multiple_impute, stack_draws

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


def test_proper_draws_spread_more_than_improper_ones():
    df = table(seed=1)
    proper = CISSVAEImputer(bootstrap_models=5, seed=0, **SMALL).fit(df)
    improper = CISSVAEImputer(bootstrap_models=0, seed=0, **SMALL).fit(df)
    assert improper.bootstrap_states_ == []

    def between(imp):  # variance of the imputed column means across draws: the between-imputation part
        return np.var([d.x[df.x.isna()].mean() for d in imp.transform(df, n_draws=5)], ddof=1)

    assert between(proper) > 1.5 * between(improper)


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
