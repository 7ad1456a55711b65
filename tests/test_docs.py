"""The user guide's code runs as written (with `data = df_missing`, and shorter training in the fast test)."""

import re
from pathlib import Path

import matplotlib
import pytest
from conftest import shared_file

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"
PRELUDE = "from ciss_vae.data import load_example_dataset\ndf_missing, df_complete, clusters = load_example_dataset()\ndata = df_missing\n"


def python_blocks(path):
    return re.findall(r"```\s*python\n(.*?)```", path.read_text(), flags=re.S)


def quickstart():
    guide = shared_file("docs", "how_to_use_ciss_vae.md")
    return next(b for b in python_blocks(guide) if "run_cissvae(data = data" in b)


def test_user_guide_quickstart_runs_with_short_training():
    code = quickstart()
    short = code.replace("epochs = 1000", "epochs = 4").replace("max_loops = 100", "max_loops = 1")
    assert short != code
    scope = {}
    exec(PRELUDE + short, scope)
    assert scope["imputed_data"].shape == scope["df_missing"].shape
    assert not scope["imputed_data"].isna().any().any()


@pytest.mark.slow
def test_user_guide_quickstart_runs_verbatim():
    scope = {}
    exec(PRELUDE + quickstart(), scope)
    assert not scope["imputed_data"].isna().any().any()


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(README)
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(block, {})


def test_a_missing_shared_file_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI=true"):
        shared_file("no", "such", "file.md")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not found"):
        shared_file("no", "such", "file.md")


def test_docstring_examples_of_the_faces_run():
    import doctest

    from ciss_vae import imputer, multiple, pipeline, stepwise

    for module in (pipeline, imputer, stepwise, multiple):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__
