"""Faults: interrupted runs and saves leave the caller's data and files intact."""

import os

import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import ciss_vae.engine as engine
import ciss_vae.persistence as persistence
from ciss_vae import CISSVAEImputer, run_cissvae
from tests.conftest import FAST, make_table

DATA, _, CLUSTERS = make_table(n=90)
SETTINGS = {k: v for k, v in FAST.items() if k != "print_dataset"}


def interrupt_on_second_validation(monkeypatch):
    real, calls = engine.validate, []

    def validate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "validate", validate)


def test_interrupted_run_leaves_the_callers_data_untouched(monkeypatch):
    before = DATA.copy()
    interrupt_on_second_validation(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_cissvae(DATA, clusters=CLUSTERS, validate_every=1, print_dataset=False, **SETTINGS)
    pd.testing.assert_frame_equal(DATA, before)


def test_interrupted_fit_leaves_an_unfitted_imputer_and_the_data_untouched(monkeypatch):
    before = DATA.copy()
    imputer = CISSVAEImputer(validate_every=1, **SETTINGS)
    interrupt_on_second_validation(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        imputer.fit(DATA, clusters=CLUSTERS)
    pd.testing.assert_frame_equal(DATA, before)
    with pytest.raises(NotFittedError):
        check_is_fitted(imputer, "model_")


def test_interrupted_save_leaves_no_partial_file(monkeypatch, tmp_path):
    imputer = CISSVAEImputer(**SETTINGS).fit(DATA, clusters=CLUSTERS)
    target = tmp_path / "model"

    def replace(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(persistence.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        imputer.save(target)
    assert os.listdir(target) == []


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_weights_file_is_rejected(tmp_path, damage):
    imputer = CISSVAEImputer(**SETTINGS).fit(DATA, clusters=CLUSTERS)
    imputer.save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.pt"
    raw = weights.read_bytes()
    weights.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else raw[:-10] + bytes(10))
    with pytest.raises(ValueError, match="(?i)sha|corrupt|damaged|match"):
        CISSVAEImputer.load(tmp_path / "m")
