"""The ``ciss-vae`` command line: subcommands, file formats, saved models, one-line errors."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ciss_vae import cli
from conftest import make_table

FAST = ["--epochs", "3", "--epochs-per-loop", "2", "--max-loops", "1", "--hidden-dims", "16,8", "--latent-dim", "3",
        "--batch-size", "64", "--no-progress"]


@pytest.fixture
def files(tmp_path):
    data, _, clusters = make_table(n=120)
    labelled = data.copy()
    labelled.insert(0, "grp", np.array(["a", "b", "c"])[clusters])
    labelled.to_csv(tmp_path / "in.csv", index=False)
    labelled.to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    labelled.to_parquet(tmp_path / "in.parquet", index=False)
    return tmp_path, labelled


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("ext_in, ext_out", [(".csv", ".parquet"), (".tsv", ".csv"), (".parquet", ".tsv")])
def test_impute_formats(files, capsys, ext_in, ext_out):
    tmp, labelled = files
    out = tmp / f"out{ext_out}"
    code, text, err = run(["impute", tmp / f"in{ext_in}", "-o", out, "--cluster-column", "grp", *FAST], capsys)
    assert code == 0, err
    assert "cells imputed:" in text and f"imputed table written to {out}" in text
    back = cli.read_table(str(out))
    assert list(back.columns) == list(labelled.columns)
    assert list(back["grp"]) == list(labelled["grp"])
    assert not back.drop(columns="grp").isna().any().any()
    observed = labelled.notna().to_numpy()
    assert np.allclose(back.to_numpy()[:, 1:][observed[:, 1:]].astype(float),
                       labelled.to_numpy()[:, 1:][observed[:, 1:]].astype(float))


def test_ignore_and_binary_columns(tmp_path, capsys):
    data, _, clusters = make_table(n=120)
    data["flag"] = (np.arange(120) % 2).astype(float)
    data.loc[::7, "flag"] = np.nan
    data["note"] = np.where(np.arange(120) % 3 == 0, np.nan, 1.5)
    data["grp"] = clusters
    data.to_csv(tmp_path / "in.csv", index=False)
    code, _, err = run(["impute", tmp_path / "in.csv", "-o", tmp_path / "o.csv", "--cluster-column", "grp",
                        "--binary", "flag", "--ignore", "note", *FAST], capsys)
    assert code == 0, err
    out = pd.read_csv(tmp_path / "o.csv")
    assert set(out["flag"].unique()) <= {0.0, 1.0}
    assert out["note"].isna().sum() == data["note"].isna().sum()  # ignored: left as given


def test_save_model_and_impute_with_it(files, capsys):
    tmp, labelled = files
    model = tmp / "model.pt"
    code, text, err = run(["impute", tmp / "in.csv", "-o", tmp / "a.csv", "--cluster-column", "grp",
                           "--save-model", model, *FAST], capsys)
    assert code == 0, err
    assert model.is_dir()
    code, text, err = run(["impute", tmp / "in.csv", "-o", tmp / "b.csv", "--cluster-column", "grp",
                           "--model", model], capsys)
    assert code == 0, err
    assert "no training" in text
    b = pd.read_csv(tmp / "b.csv")
    assert list(b["grp"]) == list(labelled["grp"])
    assert not b.drop(columns="grp").isna().any().any()
    observed = labelled.drop(columns="grp").notna().to_numpy()
    assert np.allclose(b.drop(columns="grp").to_numpy()[observed], labelled.drop(columns="grp").to_numpy()[observed])
    # Without the label column the rows go to the nearest saved missingness profile.
    labelled.drop(columns="grp").to_csv(tmp / "nolabel.csv", index=False)
    code, _, err = run(["impute", tmp / "nolabel.csv", "-o", tmp / "c.csv", "--model", model], capsys)
    assert code == 0, err
    assert not pd.read_csv(tmp / "c.csv").isna().any().any()


def test_cluster_command(tmp_path, capsys):
    data, _, _ = make_table(n=120, missing=0.6)
    data.to_csv(tmp_path / "in.csv", index=False)
    code, text, err = run(["cluster", tmp_path / "in.csv", "-o", tmp_path / "labels.csv", "--n-clusters", "3",
                           "--plot", tmp_path / "heat.png"], capsys)
    assert code == 0, err
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["cluster"] and len(labels) == 120
    assert labels["cluster"].nunique() == 3
    assert (tmp_path / "heat.png").read_bytes()[:4] == b"\x89PNG"
    assert "clusters: 3" in text


def test_tune_shared_study(files, capsys):
    tmp, _ = files
    storage = f"sqlite:///{tmp / 'tune.db'}"
    space = tmp / "space.json"
    from ciss_vae.search_space import SearchSpace

    SearchSpace(num_hidden_layers=1, hidden_dims=[8, 16], latent_dim=3, lr=(1e-3, 1e-2), decay_factor=0.99,
                num_epochs=2, batch_size=64, num_shared_encode=0, num_shared_decode=0, refit_loops=1,
                epochs_per_loop=2, encoder_shared_placement="at_end", decoder_shared_placement="at_end",
                reset_lr_refit=False, latent_shared=False, output_shared=False).save(space)
    argv = ["tune", tmp / "in.csv", "--cluster-column", "grp", "--search-space", space, "--storage", storage,
            "--study", "s1", "--n-trials", "1", "--no-progress", "--results", tmp / "trials.csv"]
    assert run(argv, capsys)[0] == 0
    code, text, err = run(argv + ["--save-model", tmp / "best", "-o", tmp / "best.csv"], capsys)  # a second worker
    assert code == 0, err
    assert "trials in the study: 2" in text
    assert len(pd.read_csv(tmp / "trials.csv")) == 2
    # the saved winner is an imputer folder that `impute --model` reads, and it reproduces the best table
    code, _, err = run(["impute", tmp / "in.csv", "-o", tmp / "again.csv", "--cluster-column", "grp", "--model",
                        tmp / "best"], capsys)
    assert code == 0, err
    from ciss_vae import CISSVAEImputer

    best = pd.read_csv(tmp / "best.csv")
    data = pd.read_csv(tmp / "in.csv").drop(columns="grp")
    assert CISSVAEImputer.load(tmp / "best").fit_summary_["n_clusters"] == 3
    assert pd.read_csv(tmp / "again.csv").drop(columns="grp").notna().all().all()
    pd.testing.assert_frame_equal(best.where(data.notna()), data.astype(float), check_dtype=False)


def test_evaluate(tmp_path, capsys):
    _, complete, _ = make_table(n=90)
    complete.to_csv(tmp_path / "complete.csv", index=False)
    code, text, err = run(["evaluate", tmp_path / "complete.csv", "--mechanism", "MCAR", "--seeds", "0",
                           "--methods", "Mean", "-o", tmp_path / "cmp.csv"], capsys)
    assert code == 0, err
    assert "| Mean |" in text
    assert len(pd.read_csv(tmp_path / "cmp.csv")) == 1
    code, _, err = run(["evaluate", tmp_path / "in_missing.csv"], capsys)
    assert code == 1
    _one_error_line(err)


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ciss-vae: error: ")
    return lines[0]


@pytest.mark.parametrize("content, expect", [
    ("", "is empty"),
    ('a,b\n1,2\n3,4,5,6\n"x,\n', "cannot read"),
    ("a,b\n", "no rows"),
])
def test_bad_input_files(tmp_path, capsys, content, expect):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = run(["impute", path, "-o", tmp_path / "o.csv", *FAST], capsys)
    assert code == 1
    assert expect in _one_error_line(err)


def test_usage_errors(files, capsys):
    tmp, _ = files
    cases = [
        ["impute", tmp / "in.csv", "-o", tmp / "o.xlsx"],
        ["impute", tmp / "missing.csv", "-o", tmp / "o.csv"],
        ["impute", tmp / "in.csv", "-o", tmp / "o.csv", "--cluster-column", "nope"],
        ["impute", tmp / "in.csv", "-o", tmp / "o.csv", "--model", tmp / "nothing.pt"],
    ]
    for argv in cases:
        code, _, err = run(argv, capsys)
        assert code in (1, 2), argv
        _one_error_line(err)
    # A column of numbers with a stray word fails with one line naming it and its row.
    mixed = pd.read_csv(tmp / "in.csv").assign(dose=[1.5, 2.0, "x"] * 40)
    mixed.to_csv(tmp / "mixed.csv", index=False)
    code, _, err = run(["impute", tmp / "mixed.csv", "-o", tmp / "o.csv", *FAST], capsys)
    assert code == 1
    assert "'dose' mixes numbers and text (row 2 holds 'x')" in _one_error_line(err)
    for argv in (["impute"], ["impute", "x.csv"], ["impute", "x.csv", "-o", "y.csv", "--epochs", "many"], ["bogus"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        _one_error_line(capsys.readouterr().err)


def test_help_documents_every_option():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {"impute", "tune", "cluster", "evaluate", "demo"}
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        text = p.format_help()
        assert "--" in text


def test_console_script_entry_point():
    """`ciss-vae` is declared in pyproject.toml; `python -m ciss_vae.cli` is the same program."""
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["scripts"]["ciss-vae"] == "ciss_vae.cli:main"
    res = subprocess.run([sys.executable, "-m", "ciss_vae.cli", "impute", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0
    for option in ("--output", "--ignore", "--cluster-column", "--binary", "--categorical", "--epochs", "--seed",
                   "--device", "--save-model", "--model", "--report"):
        assert option in res.stdout


# ---------------------------------------------------------------------- progress bars
def test_progress_bars_finish_under_early_stopping():
    import io

    from rich.console import Console

    from ciss_vae.pipeline import run_cissvae
    from ciss_vae.progress import TrainingProgress
    from conftest import FAST

    data, _, clusters = make_table(n=60)
    kw = dict(FAST, epochs=8, epochs_per_loop=8, max_loops=2, validate_every=1, n_iter_no_change=1)
    plain = run_cissvae(data, clusters=clusters, show_progress=False, return_model=False, **kw)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    seen = []

    class Recording(TrainingProgress):
        def __init__(self, *a, **k):
            k["console"] = console
            super().__init__(*a, **k)
            seen.append(self)

    import ciss_vae.pipeline as pipeline_mod

    try:
        pipeline_mod.TrainingProgress, saved = Recording, pipeline_mod.TrainingProgress
        shown = run_cissvae(data, clusters=clusters, show_progress=True, return_model=False, **kw)
    finally:
        pipeline_mod.TrainingProgress = saved
    pd.testing.assert_frame_equal(plain, shown)  # display only: same imputation
    bar = seen[0]._progress
    assert bar is None  # stopped
    out = buf.getvalue()
    assert "initial" in out and "refit 1/2" in out
    # Every bar ends complete although each phase stopped early (n_iter_no_change=1).
    tasks = seen[0]._done
    assert tasks and all(t.completed == t.total for t in tasks)
    # A phase that stops early (2 of 10 epochs) still ends with a complete bar.
    buf2 = io.StringIO()
    with TrainingProgress(10, 10, 3, console=Console(file=buf2, force_terminal=True, width=100)) as p:
        for e in range(2):
            p.on_epoch(dict(phase="initial", loop=0, epoch=e, train_loss=1.0, imputation_error=0.5))
        for e in range(2, 5):
            p.on_epoch(dict(phase="refit", loop=1, epoch=e, train_loss=1.0))
    assert [(t.completed, t.total) for t in p._done] == [(2, 2), (3, 3)]
    assert "refit 1/3" in buf2.getvalue()


def test_progress_silent_when_not_a_terminal(capsys):
    from ciss_vae.progress import TrainingProgress, progress_enabled

    assert progress_enabled(None) is False  # pytest captures stderr: not a terminal
    assert progress_enabled(True) is True
    calls = []
    with TrainingProgress(3, on_epoch=calls.append) as p:
        for e in range(3):
            p.on_epoch(dict(phase="initial", loop=0, epoch=e, train_loss=1.0))
    assert len(calls) == 3
    assert capsys.readouterr().err == ""


def test_clip_to_observed_flag_reaches_run_cissvae():
    from ciss_vae.cli.options import given

    parser = cli.build_parser()
    assert given(parser.parse_args(["impute", "a.csv", "-o", "b.csv", "--clip-to-observed"]))["clip_to_observed"] is True
    assert "clip_to_observed" not in given(parser.parse_args(["impute", "a.csv", "-o", "b.csv"]))


def test_progress_logs_every_tenth_of_a_slow_phase_when_not_a_terminal(caplog):
    import logging
    import time

    from ciss_vae.progress import TrainingProgress

    def feed(p):
        for e in range(20):
            p.on_epoch(dict(phase="initial", loop=0, epoch=e, steps=16 * (e + 1), train_loss=1.0,
                            imputation_error=0.5 - 0.01 * e if e % 5 == 4 else None))
        for e in range(3):
            p.on_epoch(dict(phase="refit", loop=1, epoch=20 + e, steps=336 + 16 * e, train_loss=0.9))

    with caplog.at_level(logging.INFO, logger="ciss_vae"):
        with TrainingProgress(20, 10, 2, enabled=False, min_interval=0.0) as p:
            feed(p)
        lines = [r.getMessage() for r in caplog.records]
        initial = [x for x in lines if x.startswith("initial:")]
        refit = [x for x in lines if x.startswith("refit 1/2:")]
        assert len(initial) == 10 and len(refit) == 4  # every 10 % and the end of each phase
        assert initial[0].startswith("initial: epoch 2/20 (10 %), step 32, loss 1;")
        assert "s so far, at most ~" in initial[0] and "left in this phase" in initial[0]
        assert initial[4].startswith("initial: epoch 10/20 (50 %), step 160, loss 1, val 0.41, best 0.41;")
        assert initial[-1].startswith("initial: epoch 20/20 (100 %)") and "done in" in initial[-1]
        assert refit[-1].startswith("refit 1/2: epoch 3/10 (30 %), step 368") and "done in" in refit[-1]
        caplog.clear()
        with TrainingProgress(20, 10, 2, enabled=False, min_interval=0.0) as p:
            feed(p)
            time.sleep(1.1)  # work after the last epoch (imputing the table) is not the phase's time
        assert caplog.records[-1].getMessage().endswith("; done in 0 s")
        caplog.clear()
        with TrainingProgress(20, 10, 2, enabled=False) as p:  # a fit of a few seconds: not a word
            feed(p)
        assert caplog.records == []
