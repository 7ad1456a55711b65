"""Tables as they come: label, text, bool, integer and ordinal columns in, the same dtypes out."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ciss_vae import CISSVAEImputer, ClusterDataset, autotune, run_cissvae
from ciss_vae.cli import main as cli_main
from ciss_vae.search_space import SearchSpace

DATA = Path(__file__).parent / "data"
QUICK = dict(hidden_dims=[32, 16], latent_dim=4, epochs=40, epochs_per_loop=10, max_loops=2, batch_size=32,
             print_dataset=False, show_progress=False, seed=0)


def every_dtype(n=300, seed=0):
    """(table with gaps, complete table): one column of each kind the package reads, with signal between them."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    grade = np.digitize(z, [-0.6, 0.6])  # 0, 1, 2: follows z
    full = pd.DataFrame({
        "x": z + 0.1 * rng.normal(size=n),
        "y": 2 * z + 0.2 * rng.normal(size=n),
        "colour": pd.Categorical(np.array(["red", "green", "blue"])[grade], categories=["red", "green", "blue", "grey"]),
        "stage": pd.Categorical(np.array(["I", "II", "III"])[grade], categories=["I", "II", "III"], ordered=True),
        "site": np.array(["north", "south"], dtype=object)[(z > 0).astype(int)],
        "arm": pd.array(np.array(["a", "b"])[rng.integers(0, 2, n)], dtype="string"),
        "code": pd.Categorical(np.array([10, 20, 30])[grade]),
        "flag": z > 0.3,
        "smoker": pd.array(z > -0.3, dtype="boolean"),
        "alive": pd.Series(z < 1.0, dtype=object),  # True/False objects with gaps, as df.mask leaves a bool column
        "event": pd.array((z > 0).astype(int), dtype="Int64"),
        "visits": pd.array(np.round(5 + 3 * z).astype(int), dtype="Int64"),
        "year": rng.integers(2000, 2020, n),
    })
    holes = full.copy()
    for c in ["x", "colour", "stage", "site", "arm", "code", "smoker", "alive", "event", "visits"]:
        rows = rng.random(n) < 0.2
        holes.loc[rows, c] = np.nan if holes[c].dtype == float else None
    return holes, full


@pytest.fixture(scope="module")
def typed():
    holes, full = every_dtype()
    return holes, full, run_cissvae(holes, return_model=False, **QUICK)


def test_every_dtype_comes_back_in_its_own_dtype_with_observed_cells_kept(typed):
    holes, full, out = typed
    assert list(out.columns) == list(holes.columns) and out.index.equals(holes.index)
    assert out.dtypes.to_dict() == holes.dtypes.to_dict()
    assert not out.isna().any().any()
    seen = holes.notna()
    for c in holes.columns:
        assert (out[c][seen[c]] == holes[c][seen[c]]).all(), c
    assert out["stage"].cat.ordered and list(out["colour"].cat.categories) == ["red", "green", "blue", "grey"]
    assert set(out["colour"]) <= {"red", "green", "blue"}  # "grey" never observed, never imputed
    assert set(out["site"]) == {"north", "south"} and set(out["code"]) == {10, 20, 30}
    assert set(out["event"]) <= {0, 1}
    assert {type(v) for v in out["alive"]} == {bool}


def test_label_and_integer_columns_are_imputed_from_the_other_columns(typed):
    holes, full, out = typed
    for c in ["colour", "stage", "site", "code"]:
        miss = holes[c].isna()
        right = (out[c][miss].astype(object) == full[c][miss].astype(object)).mean()
        mode = (full[c][miss].astype(object) == holes[c].mode().iloc[0]).mean()
        assert right >= 0.8 and right > mode + 0.2, (c, right, mode)
    miss = holes["visits"].isna()
    err = np.sqrt(np.mean((out["visits"][miss].astype(float) - full["visits"][miss].astype(float)) ** 2))
    assert err < 0.5 * full["visits"].astype(float).std()
    assert (out["visits"][miss].astype(float) % 1 == 0).all()


def test_schema_roles():
    holes, _ = every_dtype()
    ds = ClusterDataset(holes, np.zeros(len(holes), dtype=int))
    s = ds.schema
    assert sorted(s.categorical) == ["arm", "code", "colour", "site", "stage"]
    assert [s.model_names[j] for j in s.categorical["colour"]] == ["colour=red", "colour=green", "colour=blue"]
    standalone = {s.model_names[j] for j in np.flatnonzero(s.binary & ~s.dummy)}
    assert standalone == {"flag", "smoker", "alive", "event"}
    assert {s.model_names[j] for j in np.flatnonzero(s.continuous)} == {"x", "y", "visits", "year"}
    # a given mask decides: `event` listed as not binary is continuous
    ds = ClusterDataset(holes, np.zeros(len(holes), dtype=int), binary_feature_mask=["flag"])
    assert "event" in {ds.schema.model_names[j] for j in np.flatnonzero(ds.schema.continuous)}
    # the clustering sees a label column once, not once per label
    assert ds.schema.clustered_columns() == list(holes.columns)


def test_integer_output_float_returns_the_models_values():
    holes, _ = every_dtype()
    out = run_cissvae(holes, return_model=False, integer_output="float", **QUICK)
    assert out["visits"].dtype == "Float64" and (out["visits"][holes.visits.isna()] % 1 != 0).any()
    assert out["event"].dtype == "Int64"  # 0/1: binary, not an integer column


def test_imputer_draws_and_saved_model_keep_the_dtypes(tmp_path):
    holes, _ = every_dtype()
    imp = CISSVAEImputer(**{k: v for k, v in QUICK.items() if k != "show_progress"}).fit(holes)
    new, _ = every_dtype(n=60, seed=1)
    out = imp.transform(new)
    draws = imp.transform(new, n_draws=3)
    for table in [out, *draws]:
        assert table.dtypes.to_dict() == new.dtypes.to_dict() and not table.isna().any().any()
        assert set(table["stage"]) <= {"I", "II", "III"}
    picked = [tuple(d["arm"][new.arm.isna()]) for d in draws]
    assert len(set(picked)) > 1  # `arm` is a coin flip: its draws differ
    imp.save(tmp_path / "m")
    pd.testing.assert_frame_equal(CISSVAEImputer.load(tmp_path / "m").transform(new), out)
    with pytest.raises(ValueError, match="'colour' holds the label 'purple' at row 0, which was not seen in fit"):
        imp.transform(new.assign(colour=pd.Categorical(["purple"] * 60)))


def test_autotune_takes_label_columns():
    holes, _ = every_dtype()
    ds = ClusterDataset(holes, np.zeros(len(holes), dtype=int))
    space = SearchSpace(num_hidden_layers=1, hidden_dims=16, latent_dim=3, num_epochs=5, refit_loops=1,
                        epochs_per_loop=2, batch_size=64)
    result = autotune(space, ds, n_trials=1, device_preference="cpu", show_progress=False, seed=0)
    imputed, study = result[0], result[2]
    assert imputed.dtypes.to_dict() == holes.dtypes.to_dict() and not imputed.isna().any().any()
    kwargs = study.best_trial.user_attrs["run_cissvae_kwargs"]
    assert kwargs["categorical_column_map"] is None  # label columns are found again, not listed
    again = run_cissvae(holes, clusters=np.zeros(len(holes), dtype=int), **kwargs)
    pd.testing.assert_frame_equal(again if isinstance(again, pd.DataFrame) else again[0], imputed)


# --------------------------------------------------------------------------- R's own tables
def test_boys_from_r_mice_imputes_in_its_own_labels():
    boys = pd.read_csv(DATA / "boys.csv")
    out = run_cissvae(boys, return_model=False, print_dataset=False, show_progress=False, seed=0)
    assert out.dtypes.to_dict() == boys.dtypes.to_dict() and not out.isna().any().any()
    for c in ["gen", "phb", "reg"]:
        assert set(out[c]) == set(boys[c].dropna()), c
    seen = boys.notna()
    assert all((out[c][seen[c]] == boys[c][seen[c]]).all() for c in boys.columns)


def test_boys_masked_cells_beat_mean_and_mode():
    """20 % of boys' observed cells masked: numbers closer than the mean, labels right more often than the mode."""
    boys = pd.read_csv(DATA / "boys.csv")
    rng = np.random.default_rng(0)
    mask = boys.notna().to_numpy() & (rng.random(boys.shape) < 0.2)
    holes = boys.mask(mask)
    out = run_cissvae(holes, return_model=False, print_dataset=False, show_progress=False, seed=0)
    num = ["age", "hgt", "wgt", "bmi", "hc", "tv"]
    j = [boys.columns.get_loc(c) for c in num]
    err = ((out[num] - boys[num]) / boys[num].std(ddof=0)).to_numpy()[mask[:, j]]
    rmse = np.sqrt(np.mean(err ** 2))
    lab = ["gen", "phb", "reg"]
    right = [(out[c] == boys[c])[mask[:, boys.columns.get_loc(c)]] for c in lab]
    accuracy = pd.concat(right).mean()
    mode = pd.concat([(holes[c].mode().iloc[0] == boys[c])[mask[:, boys.columns.get_loc(c)]] for c in lab]).mean()
    assert rmse < 0.65, rmse  # the column mean scores about 1.0
    assert accuracy > mode + 0.05, (accuracy, mode)


def test_nhanes2_cli_round_trip(tmp_path, capsys):
    src = DATA / "nhanes2.csv"
    out = tmp_path / "nhanes2_imp.csv"
    assert cli_main(["impute", str(src), "-o", str(out), "--epochs", "20", "--max-loops", "1"]) == 0
    capsys.readouterr()
    back, given = pd.read_csv(out), pd.read_csv(src)
    assert not back.isna().any().any()
    assert set(back["age"]) <= set(given["age"].dropna()) and set(back["hyp"]) <= {"no", "yes"}
    seen = given.notna()
    assert all((back[c][seen[c]] == given[c][seen[c]]).all() for c in given.columns)


def test_cli_keeps_integers_and_parquet_categories(tmp_path, capsys):
    holes, _ = every_dtype(n=120)
    holes = holes[["x", "y", "colour", "stage", "visits", "site"]]
    holes.to_parquet(tmp_path / "in.parquet", index=False)
    holes.to_csv(tmp_path / "in.csv", index=False)
    fast = ["--epochs", "10", "--max-loops", "1", "--seed", "0"]
    assert cli_main(["impute", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet"), *fast]) == 0
    assert cli_main(["impute", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), *fast]) == 0
    capsys.readouterr()
    pq = pd.read_parquet(tmp_path / "out.parquet")
    assert pq["stage"].dtype == holes["stage"].dtype and pq["colour"].dtype == holes["colour"].dtype
    assert pq["visits"].dtype == "Int64" and not pq.isna().any().any()
    text = (tmp_path / "out.csv").read_text().splitlines()
    visits = [line.split(",")[4] for line in text[1:]]
    assert all(v.lstrip("-").isdigit() for v in visits)  # written as whole numbers


def test_report_shows_level_shares_of_label_columns(typed, tmp_path):
    from ciss_vae.plots import level_frequencies, plot_imputed_distributions
    from ciss_vae.report import write_report

    holes, _, out = typed
    freq = level_frequencies(holes["colour"], out["colour"])
    assert list(freq.index) == ["red", "green", "blue", "grey"]
    np.testing.assert_allclose(freq.sum().to_numpy(), [1.0, 1.0])
    np.testing.assert_allclose(freq.loc["red", "observed"], (holes.colour == "red").sum() / holes.colour.notna().sum())
    fig = plot_imputed_distributions(holes, out)
    titles = {ax.get_title(): ax for ax in fig.axes}
    assert {"colour", "stage", "site", "arm", "code", "x", "visits"} <= set(titles)
    assert len(titles["colour"].patches) == 2 * 4  # observed and imputed bar per category
    text = (tmp_path / "r.html").read_text() if write_report(tmp_path / "r.html", holes, out) else ""
    assert "Label columns: share of each level" in text and "<td>colour</td><td>grey</td>" in text
