"""Every face agrees with the one declaration of the settings (ciss_vae.settings).

A face that lacks a declared setting, takes an undeclared one, or has another
default than the one declared for it fails here.
"""

import inspect

import pytest

from ciss_vae import settings as S
from ciss_vae.cli import build_parser
from ciss_vae.cli.options import given
from ciss_vae.clustering import cluster_on_missing
from ciss_vae.imputer import CISSVAEImputer
from ciss_vae.pipeline import run_cissvae
from ciss_vae.search_space import SearchSpace
from ciss_vae.sizing import SIZED
from ciss_vae.stepwise import impute_and_refit_loop, train_vae_initial
from ciss_vae.tuning import autotune


def same(a, b):
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return norm(a) == norm(b)


def params(func, drop=()):
    return {k: p.default for k, p in inspect.signature(func).parameters.items() if k not in drop}


@pytest.mark.parametrize("face, func, drop", [
    (S.RUN, run_cissvae, ("data",)),
    (S.IMPUTER, CISSVAEImputer, ()),
])
def test_estimator_faces_take_exactly_their_declared_settings_with_their_defaults(face, func, drop):
    ours = params(func, drop)
    assert set(ours) == {s.name_in(face) for s in S.of(face)}
    for s in S.of(face):
        assert same(ours[s.name_in(face)], s.default_in(face)), s.name


@pytest.mark.parametrize("face, func, drop", [
    (S.AUTOTUNE, autotune, ()),
    (S.CLUSTERING, cluster_on_missing, ()),
    (S.SEARCH, SearchSpace, ()),
    (S.STEPWISE, train_vae_initial, ()),
    (S.STEPWISE, impute_and_refit_loop, ()),
])
def test_other_faces_use_the_declared_names_and_defaults(face, func, drop):
    ours = params(func, drop)
    declared = [s for s in S.of(face) if s.name_in(face) in ours]
    assert declared, f"{func.__name__} takes none of the settings declared for {face}"
    for s in declared:
        assert same(ours[s.name_in(face)], s.default_in(face)), (func.__name__, s.name)
    if face in (S.AUTOTUNE, S.CLUSTERING, S.SEARCH):  # every declared setting of these faces is there
        assert {s.name_in(face) for s in S.of(face)} <= set(ours)


def test_search_space_parameters_are_settings_or_layer_structure():
    structural = {"num_hidden_layers", "num_shared_encode", "num_shared_decode", "encoder_shared_placement",
                  "decoder_shared_placement", "reset_lr_refit"}
    names = {s.name_in(S.SEARCH) for s in S.of(S.SEARCH)}
    assert set(params(SearchSpace)) == names | structural
    assert not names & structural


def test_a_face_default_that_differs_is_explained_in_its_docstring():
    for s in S.SETTINGS:
        for face in s.faces:
            if s.differs_in(face) and face not in (S.SEARCH,):
                assert s.why, f"{s.name} differs in {face} without a reason"
    assert "Differs from run_cissvae" in CISSVAEImputer.__doc__  # print_dataset
    for s in S.of(S.RUN):
        assert f"    {s.name} : " in run_cissvae.__doc__, s.name
    for s in S.of(S.IMPUTER):
        assert f"    {s.name} : " in CISSVAEImputer.__doc__, s.name


def test_cli_impute_has_a_flag_for_every_cli_setting_and_defaults_to_the_declaration():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    impute = sub.choices["impute"]
    dests = {a.dest: a for a in impute._actions}
    for s in S.of(S.CLI):
        assert s.name in dests, s.name
        action = dests[s.name]
        assert action.default in (None, False), s.name  # not given: the declared default applies
        default = s.default_in(S.CLI)  # the command line's own default where it has one (bootstrap_models=0)
        if default not in (None, False):
            shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
            assert f"(default {shown})" in action.help, s.name
        if s.name in SIZED:
            assert "decided from the table" in action.help, s.name
    args = parser.parse_args(["impute", "in.csv", "-o", "out.csv", "--lr", "0.05", "--ignore", "a,b", "--ignore", "c",
                              "--categorical", "g=x,y", "--hidden-dims", "8,4", "--no-output-shared", "--progress",
                              "--n-iter-no-change", "none"])
    assert given(args) == dict(initial_lr=0.05, columns_ignore=["a", "b", "c"], categorical_column_map={"g": ["x", "y"]},
                               hidden_dims=[8, 4], output_shared=False, show_progress=True, n_iter_no_change=None,
                               bootstrap_models=0)  # not given: the command line's own default
    assert set(given(args)) <= {s.name for s in S.of(S.IMPUTER)}  # the CLI trains through the imputer


@pytest.mark.parametrize("name, value, error, text", [
    ("epochs", -1, ValueError, "`epochs` must be an integer >= 0"),
    ("epochs", 2.5, ValueError, "`epochs`"),
    ("batch_size", 0, ValueError, "`batch_size` must be a positive integer"),
    ("decay_factor", 1.5, ValueError, "`decay_factor` must be a number in [0, 1]"),
    ("initial_lr", float("nan"), ValueError, "`initial_lr`"),
    ("clip_to_observed", "yes", TypeError, "`clip_to_observed` must be True or False"),
    ("binary_output", "prob", ValueError, "'label' or 'probability'"),
    ("seed", -3, ValueError, "`seed` must be a non-negative integer or None"),
    ("hidden_dims", [8, 0], ValueError, "`hidden_dims`"),
    ("layer_order_enc", ["x"], ValueError, "`layer_order_enc` holds 'x'"),
    ("n_iter_no_change", 0, ValueError, "`n_iter_no_change` must be a positive integer or None"),
])
def test_every_face_rejects_a_bad_value_naming_the_setting(table, name, value, error, text):
    data, _, clusters = table
    for face in (lambda: run_cissvae(data, clusters=clusters, print_dataset=False, **{name: value}),
                 lambda: CISSVAEImputer(**{name: value}).fit(data, clusters=clusters)):
        with pytest.raises(error, match=inspect.cleandoc(text).replace("[", r"\[").replace("]", r"\]")):
            face()


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="epoch"):
        CISSVAEImputer(epoch=3)
    with pytest.raises(TypeError, match="scale_features"):
        CISSVAEImputer(scale_features=True)  # only meaningful with a proportion matrix, which fit cannot take
    with pytest.raises(TypeError):
        S.validate({"epoch": 3})


def test_one_rule_for_column_references_in_every_face():
    import numpy as np
    import pandas as pd

    from ciss_vae.dataset import ClusterDataset
    from ciss_vae.proportions import create_missingness_prop_matrix

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 4)), columns=[0, 1, "a", "b"])
    df.iloc[::3, 1] = np.nan
    df.iloc[1::4, 2] = np.nan
    for ref in ([0], ["0"]):  # the integer label, or its string form
        ds = ClusterDataset(df, columns_ignore=ref)
        assert ds.schema.ignored.tolist() == [True, False, False, False]
        assert cluster_on_missing(df, cols_ignore=ref, n_clusters=2)[0].shape == (60,)
        assert list(create_missingness_prop_matrix(df, cols_ignore=ref).feature_names) == ["1", "a", "b"]
    assert ClusterDataset(df, columns_ignore=[-1]).schema.ignored.tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="columns_ignore.*'nope'"):
        ClusterDataset(df, columns_ignore=["nope"])
    with pytest.raises(ValueError, match="cols_ignore.*'nope'"):
        cluster_on_missing(df, cols_ignore=["nope"])
    arr = df.to_numpy()
    assert ClusterDataset(arr, columns_ignore=["V1"]).schema.ignored.tolist() == \
        ClusterDataset(arr, columns_ignore=[0]).schema.ignored.tolist()


def test_import_leaves_matplotlib_alone():
    import subprocess
    import sys

    code = ("import matplotlib, sys\n"
            "def use(*a, **k): raise AssertionError('matplotlib.use called')\n"
            "matplotlib.use = use\n"
            "import ciss_vae, ciss_vae.evaluation, ciss_vae.plots\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
            "from ciss_vae.evaluation import compare; import pandas as pd, numpy as np\n"
            "r = compare({'t': pd.DataFrame(np.random.default_rng(0).normal(size=(30, 3)))}, mechanisms=['MCAR'], "
            "seeds=[0], methods=['Mean'])\n"
            "r.plot()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_standardised_rmse_is_scores_and_survives_a_constant_column():
    import numpy as np
    import pandas as pd

    from ciss_vae.evaluation import score, standardised_rmse

    rng = np.random.default_rng(1)
    complete = pd.DataFrame({"x": rng.normal(size=50), "const": 3.0, "y": rng.normal(size=50)})
    incomplete = complete.mask(rng.random(complete.shape) < 0.3)
    imputed = incomplete.fillna(0.0)
    value = standardised_rmse(imputed, complete, incomplete)
    assert np.isfinite(value)
    assert value == pytest.approx(score(imputed, complete, incomplete).overall["std_rmse"])
    left = imputed.mask(incomplete.isna() & (np.arange(50)[:, None] < 5))  # cells an imputer left missing
    assert np.isfinite(standardised_rmse(left, complete, incomplete))
