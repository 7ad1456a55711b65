"""Tests of the evaluation harness: amputation, scoring and the comparison runner."""

import numpy as np
import pandas as pd
import pytest
import torch

from ciss_vae.evaluation import (
    MECHANISMS,
    ampute,
    compare,
    default_methods,
    realised_rate,
    score,
)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 2000
    z = rng.normal(size=(n, 2))
    x = np.column_stack([z[:, 0], z[:, 0] + 0.5 * rng.normal(size=n), z[:, 1], z[:, 1] * 2 + 1,
                         rng.normal(size=n), rng.exponential(size=n)])
    return pd.DataFrame(x, columns=list("abcdef"), index=pd.RangeIndex(100, 100 + n))


@pytest.mark.parametrize("mechanism", ["MCAR", "MNAR", "MNAR_self", "MNAR_group"])
def test_rate_close_to_p(table, mechanism):
    out, info = ampute(table, mechanism, p=0.3, seed=1, return_info=True)
    assert abs(info["realised_rate"] - 0.3) < 0.03
    assert info["realised_rate"] == pytest.approx(realised_rate(table, out))
    assert np.array_equal(info["mask"], out.isna().to_numpy())


def test_mar_keeps_observed_columns(table):
    out, info = ampute(table, "MAR", p=0.3, seed=2, return_info=True)
    obs = info["observed_columns"]
    assert len(obs) == 1  # max(floor(0.3 * 6), 1)
    assert out[obs].notna().all().all()
    targets = [c for c in table.columns if c not in obs]
    assert abs(out[targets].isna().to_numpy().mean() - 0.3) < 0.03
    out2 = ampute(table, "MAR", p=0.3, seed=2, observed=["a", "c"])
    assert out2[["a", "c"]].notna().all().all()
    assert out2[["b", "d", "e", "f"]].isna().to_numpy().mean() == pytest.approx(0.3, abs=0.03)


def test_mar_depends_on_observed_values():
    rng = np.random.default_rng(3)
    n = 4000
    df = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    out = ampute(df, "MAR", p=0.3, seed=0, observed=["x"])
    miss = out["y"].isna()
    assert df.loc[miss, "x"].mean() > df.loc[~miss, "x"].mean() + 0.3  # positive coefficients


def test_mnar_self_depends_on_value(table):
    out = ampute(table, "MNAR_self", p=0.3, seed=4)
    for c in table.columns:
        miss = out[c].isna()
        assert table.loc[miss, c].mean() > table.loc[~miss, c].mean()
    low = ampute(table, "MNAR_self", p=0.3, seed=4, sign=-1)
    assert table.loc[low["a"].isna(), "a"].mean() < table.loc[low["a"].notna(), "a"].mean()


def test_mnar_quantile_hits_tail(table):
    out, info = ampute(table, "MNAR_quantile", p=0.5, seed=5, q=0.25, cut="upper", p_params=0.5, return_info=True)
    cols = info["censored_columns"]
    assert len(cols) == 3
    for c in cols:
        miss = out[c].isna()
        assert miss.any()
        assert table.loc[miss, c].min() >= table[c].quantile(0.75) - 1e-12
    others = [c for c in table.columns if c not in cols]
    assert out[others].notna().all().all()
    assert info["realised_rate"] == pytest.approx(0.5 * 0.25 * 0.5, abs=0.02)


def test_mnar_group_depends_on_hidden_group(table):
    groups = np.repeat([0, 1], len(table) // 2)
    out, info = ampute(table, "MNAR_group", p=0.3, seed=6, groups=groups, contrast=8, return_info=True)
    rates = pd.DataFrame(out.isna().to_numpy()).groupby(groups).mean()
    assert (rates.max() - rates.min()).max() > 0.2  # the group changes the per-column rates
    assert rates.to_numpy() == pytest.approx(info["group_rates"].to_numpy(), abs=0.06)
    _out2, info2 = ampute(table, "MNAR_group", p=0.3, seed=6, n_groups=3, return_info=True)
    assert len(np.unique(info2["groups"])) == 3


def test_mnar_masked_inputs(table):
    out, info = ampute(table, "MNAR", p=0.3, seed=7, p_params=0.5, return_info=True)
    assert len(info["input_columns"]) == 3
    for c in table.columns:  # inputs masked MCAR, targets logistic: every column loses about p
        assert out[c].isna().mean() == pytest.approx(0.3, abs=0.06)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_same_seed_same_mask_input_untouched(table, mechanism):
    before = table.copy()
    a = ampute(table, mechanism, p=0.3, seed=11)
    b = ampute(table, mechanism, p=0.3, seed=11)
    c = ampute(table, mechanism, p=0.3, seed=12)
    pd.testing.assert_frame_equal(table, before)
    assert a.isna().equals(b.isna())
    assert not a.isna().equals(c.isna())
    assert a.index.equals(table.index) and a.columns.equals(table.columns)
    kept = a.notna().to_numpy()
    assert np.array_equal(a.to_numpy()[kept], table.to_numpy()[kept])
    assert a.notna().sum().min() >= 2  # no column is lost


def test_types_preserved(table):
    x = table.to_numpy()
    xa = ampute(x, "MCAR", 0.3, seed=0)
    assert isinstance(xa, np.ndarray) and xa.shape == x.shape and not np.isnan(x).any()
    t = torch.tensor(x, dtype=torch.float32)
    ta = ampute(t, "MNAR_self", 0.3, seed=0)
    assert isinstance(ta, torch.Tensor) and ta.dtype == torch.float32 and ta.shape == t.shape
    assert not torch.isnan(t).any()
    assert np.array_equal(np.isnan(xa), np.isnan(ampute(table, "MCAR", 0.3, seed=0).to_numpy()))
    ints = pd.DataFrame({"i": np.arange(50), "b": np.arange(50) % 2 == 0})
    ia = ampute(ints, "MCAR", 0.3, seed=0)
    assert ia.isna().any().all() and list(ia.columns) == ["i", "b"]


def test_column_never_lost():
    df = pd.DataFrame(np.arange(12.0).reshape(6, 2))
    out, info = ampute(df, "MCAR", p=0.99, seed=0, return_info=True)
    assert (out.notna().sum() >= 2).all()
    assert info["restored_cells"] > 0


def test_errors(table):
    with pytest.raises(ValueError, match="unknown mechanism"):
        ampute(table, "MNARX")
    for p in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="p"):
            ampute(table, "MCAR", p=p)
    with pytest.raises(ValueError, match="complete"):
        ampute(table.mask(table > 2), "MCAR")
    with pytest.raises(TypeError, match="non-numeric"):
        ampute(table.assign(s="x"), "MCAR")
    with pytest.raises(TypeError, match="unknown parameter"):
        ampute(table, "MCAR", q=0.2)
    with pytest.raises(ValueError, match="unknown column"):
        ampute(table, "MAR", observed=["zz"])


def test_score_hand_computed():
    complete = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 1.0, 0.0]})
    incomplete = complete.copy()
    incomplete.loc[[0, 1], "x"] = np.nan
    incomplete.loc[[1, 2, 3], "b"] = np.nan
    imputed = complete.copy()
    imputed.loc[[0, 1], "x"] = [2.0, 4.0]  # errors 1 and 2
    imputed.loc[[1, 2, 3], "b"] = [0.9, 0.2, 0.4]  # errors -0.1, -0.8, 0.4; labels 1, 0, 0 -> 2 of 3 right
    s = score(imputed, complete, incomplete)
    pc = s.per_column
    sd_x = np.std([1, 2, 3, 4])
    assert pc.loc["x", "n"] == 2
    assert pc.loc["x", "rmse"] == pytest.approx(np.sqrt(2.5))
    assert pc.loc["x", "mae"] == pytest.approx(1.5)
    assert pc.loc["x", "std_rmse"] == pytest.approx(np.sqrt(2.5) / sd_x)
    assert pc.loc["x", "wasserstein"] == pytest.approx(1.5)  # {2, 4} vs {1, 2}
    assert np.isnan(pc.loc["x", "accuracy"])
    assert pc.loc["b", "rmse"] == pytest.approx(np.sqrt((0.01 + 0.64 + 0.16) / 3))
    assert pc.loc["b", "accuracy"] == pytest.approx(2 / 3)
    o = s.overall
    assert o["n"] == 5
    assert o["rmse"] == pytest.approx(np.sqrt((1 + 4 + 0.01 + 0.64 + 0.16) / 5))
    assert o["mae"] == pytest.approx((1 + 2 + 0.1 + 0.8 + 0.4) / 5)
    assert o["std_rmse"] == pytest.approx(np.sqrt((1 / sd_x**2 + 4 / sd_x**2 + (0.01 + 0.64 + 0.16) / 0.25) / 5))
    assert o["accuracy"] == pytest.approx(2 / 3)
    from ciss_vae.cli import standardised_rmse
    assert o["std_rmse"] == pytest.approx(standardised_rmse(imputed, complete, incomplete))
    # arrays work too; an imputation that leaves a scored cell missing is an error
    assert score(imputed.to_numpy(), complete.to_numpy(), incomplete.to_numpy())["rmse"] == pytest.approx(o["rmse"])
    with pytest.raises(ValueError, match="missing"):
        score(incomplete, complete, incomplete)


def test_score_categorical():
    complete = pd.DataFrame({"c": [0.0, 1.0, 2.0, 2.0], "u": [1.0, 0, 0, 1], "v": [0.0, 1, 1, 0]})
    incomplete = complete.copy()
    incomplete.loc[[0, 1], "c"] = np.nan
    incomplete.loc[[2, 3], ["u", "v"]] = np.nan
    imputed = complete.copy()
    imputed.loc[[0, 1], "c"] = [0.2, 1.6]  # nearest levels 0 (right), 2 (wrong)
    imputed.loc[[2, 3], ["u", "v"]] = [[0.3, 0.4], [0.2, 0.1]]  # argmax v (right), u (right)
    assert score(imputed, complete, incomplete, categorical=["c"]).per_column.loc["c", "accuracy"] == 0.5
    s = score(imputed, complete, incomplete, categorical={"uv": ["u", "v"]})
    assert s.per_column.loc["u", "accuracy"] == 1.0


def test_compare_same_masks_markdown_plot(table):
    seen = {}

    def spy(name):
        def run(amputed, seed):
            seen.setdefault(name, []).append(amputed.isna().to_numpy().copy())
            return amputed.fillna(0.0)
        return run

    small = table.iloc[:150]
    peers = default_methods(ciss_vae_kwargs={"epochs": 5, "max_loops": 1, "epochs_per_loop": 5, "hidden_dims": [16],
                                                 "latent_dim": 4, "layer_order_enc": ["unshared"],
                                                 "layer_order_dec": ["shared"], "n_clusters": 2})
    methods = {"spy1": spy("spy1"), "spy2": spy("spy2"), "Mean": peers["Mean"], "KNN": peers["KNN"],
               "CISS-VAE": peers["CISS-VAE"]}
    res = compare({"t": small}, mechanisms=["MCAR", "MNAR_self"], rates=[0.2], seeds=[0, 1], methods=methods)
    t = res.table
    assert len(t) == 2 * 2 * 5
    assert (t["error"] == "").all(), t["error"].tolist()
    assert t.groupby(["mechanism", "seed"])["mask_id"].nunique().eq(1).all()
    assert t["mask_id"].nunique() == 4
    keys = list(res.masks)
    for i, key in enumerate(keys):
        assert np.array_equal(seen["spy1"][i], res.masks[key])
        assert np.array_equal(seen["spy2"][i], res.masks[key])
    assert t.loc[t["method"] == "Mean", "std_rmse"].notna().all()
    assert t.loc[t["method"] == "CISS-VAE", "std_rmse"].notna().all()
    md = res.markdown()
    assert md.startswith("| dataset | mechanism | rate | seeds | spy1 | spy2 | Mean | KNN | CISS-VAE |")
    assert "| t | MCAR | 0.2 | 2 |" in md and "mean rank" in md
    from matplotlib.figure import Figure
    assert isinstance(res.plot(), Figure)
    with pytest.raises(ValueError, match="unknown method"):
        compare({"t": small}, methods=["nope"])


def test_compare_reports_failures(table):
    def boom(amputed, seed):
        raise RuntimeError("no")

    res = compare({"t": table.iloc[:60]}, mechanisms=["MCAR"], seeds=[0],
                  methods={"Mean": default_methods()["Mean"], "boom": boom})
    assert res.table.set_index("method").loc["boom", "error"] == "RuntimeError: no"
    assert "failed" in res.markdown()
    # no binary column: Mean has no accuracy (empty cell), the failure is still shown
    assert "| t | MCAR | 0.3 | 0 |  | failed |" in res.markdown("accuracy", higher_is_better=True)


def test_accuracy_benchmark_script_writes_tables_and_says_what_it_skipped(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out, csv = tmp_path / "b.md", tmp_path / "b.csv"
    rc = bench.main(["--datasets", "wine", "reference_example", "--reference-dir", str(tmp_path / "absent"),
                     "--mechanisms", "MCAR", "MNAR", "--seeds", "0", "1", "--methods", "Mean", "KNN",
                     "--jobs", "1", "--out", str(out), "--csv", str(csv)])
    assert rc == 0
    text = out.read_text()
    assert "**Skipped: reference_example**" in text and "PARTIAL" not in text
    tidy = pd.read_csv(csv)
    assert len(tidy) == 2 * 2 * 2 and set(tidy["dataset"]) == {"wine"}
    assert tidy.groupby(["mechanism", "seed"])["mask_id"].nunique().eq(1).all()
    wide = tidy.pivot_table(index=["mechanism", "seed"], columns="method", values="std_rmse")
    assert (wide["KNN"] < wide["Mean"]).all()
    assert "| wine | MCAR | 0.3 | 2 |" in text


# --------------------------------------------------------------------------- optional peers: miceforest, R's mice


def _run_peer(method, amputed, seed):
    """Run an optional peer; skip when its software is missing, but fail under CI=true (which installs it)."""
    import os

    from ciss_vae.evaluation import PeerUnavailableError

    try:
        return method(amputed, seed)
    except PeerUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"optional peer not available under CI=true: {exc}")
        pytest.skip(f"optional peer not available: {exc}")


@pytest.fixture(scope="module")
def correlated():
    """120 rows, one strong factor behind four columns (odd names, string index), a constant column; MCAR 20 %."""
    rng = np.random.default_rng(7)
    n = 120
    z = rng.normal(size=n)
    complete = pd.DataFrame({"a b": z + 0.15 * rng.normal(size=n),
                             'x-1,"q"': 3 * z + 10 + 0.5 * rng.normal(size=n),
                             "é": -z + 0.2 * rng.normal(size=n),
                             7: 0.5 * z + 0.1 * rng.normal(size=n),
                             "const": np.full(n, 2.5)},
                            index=pd.Index([f"id{i}" for i in range(n, 0, -1)], name="row"))
    amputed = ampute(complete, "MCAR", p=0.2, seed=3)
    assert amputed["const"].isna().any()
    return complete, amputed


PEER_SETTINGS = {"miceforest": {"m": 2, "iterations": 2, "num_threads": 1, "num_iterations": 16},
                 "R-mice": {"m": 2, "maxit": 3}}


@pytest.mark.parametrize("name", ["miceforest", "R-mice"])
def test_optional_peer_imputes_keeps_observed_and_beats_the_mean(correlated, name):
    from ciss_vae.evaluation import miceforest_method, r_mice_method, standardised_rmse

    complete, amputed = correlated
    factory = miceforest_method if name == "miceforest" else r_mice_method
    method = factory(**PEER_SETTINGS[name])
    given = amputed.copy()
    out = _run_peer(method, given, 5)
    pd.testing.assert_frame_equal(given, amputed)  # input untouched
    assert out.index.equals(amputed.index) and list(out.columns) == list(amputed.columns)
    assert not out.isna().to_numpy().any()
    obs = amputed.notna().to_numpy()
    assert np.array_equal(out.to_numpy()[obs], amputed.to_numpy()[obs])  # observed cells exactly
    assert np.allclose(out["const"], 2.5)
    again = method(amputed.copy(), 5)
    pd.testing.assert_frame_equal(out, again)  # same seed, same imputation
    mean = default_methods()["Mean"](amputed.copy(), 5)
    ours, base = standardised_rmse(out, complete, amputed), standardised_rmse(mean, complete, amputed)
    assert ours < 0.6 * base, (ours, base)


def test_optional_peers_by_name_not_by_default():
    from ciss_vae.evaluation import OPTIONAL_METHODS

    assert list(default_methods()) == ["CISS-VAE", "Mean", "KNN", "MICE", "MissForest"]
    assert list(default_methods(optional=True)) == list(default_methods()) + list(OPTIONAL_METHODS)
    with pytest.raises(ValueError, match="R-mice"):
        compare({"t": pd.DataFrame({"a": [1.0, 2.0]})}, methods=["nope"])


def test_optional_peers_say_what_to_install(monkeypatch, correlated):
    import sys

    from ciss_vae.evaluation import PeerUnavailableError, miceforest_method, r_mice_method, unavailable_methods

    _, amputed = correlated
    with pytest.raises(PeerUnavailableError, match=r"apt-get install -y r-base-core r-cran-mice"):
        r_mice_method(rscript="/nonexistent/Rscript")(amputed, 0)
    assert "R-mice" in unavailable_methods(["R-mice"], rscript="/nonexistent/Rscript")
    monkeypatch.setitem(sys.modules, "miceforest", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install miceforest==6\.0\.5 lightgbm==4\.5\.0"):
        miceforest_method()(amputed, 0)
    assert "pip install" in unavailable_methods(["miceforest"])["miceforest"]
    res = compare({"t": amputed.fillna(0.0)}, mechanisms=["MCAR"], seeds=[0], methods=["miceforest"])
    assert res.table["error"].iloc[0].startswith("PeerUnavailableError")


def test_accuracy_benchmark_skips_unavailable_peers(tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("accuracy_benchmark_peers", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.METHODS[-2:] == ["miceforest", "R-mice"]
    monkeypatch.setattr(bench, "unavailable_methods",
                        lambda names: {n: "Rscript not found; apt-get install -y r-base-core r-cran-mice"
                                       for n in names if n == "R-mice"})
    out, csv = tmp_path / "b.md", tmp_path / "b.csv"
    rc = bench.main(["--datasets", "wine", "--mechanisms", "MCAR", "--quick", "--methods", "Mean", "R-mice",
                     "--jobs", "1", "--out", str(out), "--csv", str(csv)])
    assert rc == 0
    assert "skipping R-mice: Rscript not found" in capsys.readouterr().err
    text = out.read_text()
    assert "**Skipped: R-mice** (Rscript not found" in text and "mean of their 5 completed tables" in text
    tidy = pd.read_csv(csv)
    assert list(tidy["method"]) == ["Mean"] and list(tidy["seed"]) == [0]
