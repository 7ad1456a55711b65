"""The published step-by-step API (train, refit, impute, validate), on top of the engine.

These functions keep the published signatures (and defaults, recorded in
:mod:`ciss_vae.settings` as the "stepwise" face); ``verbose`` means what it
means everywhere: every validation and refit loop is logged (DEBUG records, on
stderr unless logging is configured). Each accepts a
:class:`~torch.utils.data.DataLoader` over a
:class:`~ciss_vae.classes.cluster_dataset.ClusterDataset` (only its dataset and
batch size are used; batches are drawn by the engine) or the dataset itself.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ciss_vae.dataset import ClusterDataset
from ciss_vae.engine import (
    Generators,
    History,
    Phase,
    TrainingData,
    impute,
    predict_logits,
    refit_loop,
    resolve_device,
    run_epochs,
    train_initial,
)
from ciss_vae.output import imputed_frame
from ciss_vae.progress import epoch_logger, reporting

logger = logging.getLogger(__name__)


def _dataset_of(loader) -> ClusterDataset:
    ds = getattr(loader, "dataset", loader)
    if not isinstance(ds, ClusterDataset):
        raise TypeError(f"expected a ClusterDataset or a DataLoader over one, got {type(ds).__name__}")
    return ds


def _batch_size(loader, default=4000) -> int:
    return getattr(loader, "batch_size", None) or default


def _place(model, ds, device):
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    model.to(dev)
    return TrainingData.from_dataset(ds, dev), dev


def _on_epoch(callback, verbose):
    """The engine's per-epoch callback: the published ``progress_callback(n=1)`` and, with ``verbose``, a log line."""
    log = epoch_logger() if verbose else None

    def on_epoch(row):
        if log is not None:
            log(row)
        if callback is not None:
            callback(n=1)
    return on_epoch if (callback is not None or verbose) else None


def train_vae_initial(model, train_loader, epochs=10, initial_lr=0.01, decay_factor=0.999, beta=0.1, device=None,
                      verbose=False, *, return_history=False, progress_callback=None, weight_decay=0.001, seed=42):
    """Initial masked training of ``model`` on the observed, non-held-out cells.

    The model is validated after every epoch; the best validated epoch is kept
    (the published code kept the last one). Sets the final learning rate
    (:meth:`CISSVAE.get_final_lr`). The history is a return value (the
    published code also planted it on the model as ``training_history_``):
    pass it to :func:`impute_and_refit_loop` to continue it.

    Returns
    -------
    model, or (model, history) with ``return_history``.

    Examples
    --------
    >>> from ciss_vae.data import load_example_dataset
    >>> from ciss_vae.classes.cluster_dataset import ClusterDataset
    >>> from ciss_vae.classes.vae import CISSVAE
    >>> from ciss_vae.training import train_vae_initial
    >>> df, _, clusters = load_example_dataset()
    >>> ds = ClusterDataset(df.iloc[:200], clusters[:200])
    >>> model = CISSVAE(ds.n_features, [16], ["u"], ["s"], False, 4, False, ds.n_clusters)
    >>> model, history = train_vae_initial(model, ds, epochs=3, return_history=True)
    >>> len(history)
    3
    """
    ds = _dataset_of(train_loader)
    td, dev = _place(model, ds, device)
    history = History()
    phase = Phase(epochs, initial_lr, decay_factor, beta, weight_decay, _batch_size(train_loader))
    with reporting(verbose, verbose):
        lr, _ = train_initial(model, td, phase, Generators.from_seed(seed, dev), history, validate_every=1,
                              on_epoch=_on_epoch(progress_callback, verbose))
    model.set_final_lr(lr)
    return (model, history.frame()) if return_history else model


def train_vae_refit(model, imputed_data_loader, epochs=10, initial_lr=0.01, decay_factor=0.999, beta=0.1,
                    device=None, verbose=False, *, progress_callback=None, weight_decay=0.001, seed=42):
    """Refit ``model`` on a completed table (every imputable cell is a target).

    Returns ``(model, history)``; sets the final learning rate.
    """
    ds = _dataset_of(imputed_data_loader)
    td, dev = _place(model, ds, device)
    history = History()
    phase = Phase(epochs, initial_lr, decay_factor, beta, weight_decay, _batch_size(imputed_data_loader))
    with reporting(verbose, verbose):
        lr, _ = run_epochs(model, td, td.data, td.refit_weight, phase, Generators.from_seed(seed, dev), history,
                           label="refit", loop=1, on_epoch=_on_epoch(progress_callback, verbose))
    model.set_final_lr(lr)
    return model, history.frame()


def impute_and_refit_loop(model, train_loader, max_loops=10, patience=2, epochs_per_loop=5, initial_lr=None,
                          decay_factor=0.999, weight_decay=0.001, beta=0.1, device=None, verbose=False,
                          batch_size=4000, progress_epoch=None, seed=42, *, history=None, return_history=False):
    """Impute with the model, refit on the completed table, repeat while validation improves.

    The initial model's error is the baseline; after a loop that does not beat
    the best error, training restarts from the best model; the output is the best
    model on the fill it was selected on. ``initial_lr=None`` continues from the
    model's final learning rate.

    Returns
    -------
    imputed_df : pandas.DataFrame
    best_model : CISSVAE
        ``model`` itself, holding the best weights.
    best_dataset : ClusterDataset
        The dataset whose ``data`` is the fill the best model was selected on.
    history : DataFrame
        With ``return_history``: ``history`` (e.g. :func:`train_vae_initial`'s)
        continued with the refit loops' rows.
    """
    ds = _dataset_of(train_loader)
    td, dev = _place(model, ds, device)
    lr = model.get_final_lr() if initial_lr is None else initial_lr
    if lr is None:
        raise ValueError("`initial_lr` is None and the model has no final learning rate; train it first")
    log = History()
    if history is not None and len(history):
        log.epoch = int(history["epoch"].max()) + 1
    phase = Phase(epochs_per_loop, lr, decay_factor, beta, weight_decay, batch_size)
    with reporting(verbose, verbose):
        result = refit_loop(model, td, phase, Generators.from_seed(seed, dev), log, max_loops=max_loops,
                            patience=patience, on_epoch=_on_epoch(progress_epoch, verbose))
    model.load_state_dict(result.state)
    model.set_final_lr(result.final_lr)
    best = ds.with_data(result.fill.cpu())
    out = (imputed_frame(ds, predict_logits(model, td, result.fill).cpu()), model, best)
    if not return_history:
        return out
    frames = [f for f in (history, result.history.frame()) if f is not None and len(f)]
    return out + (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0],)


def get_imputed(model, data_loader, device=None) -> ClusterDataset:
    """A copy of the loader's dataset whose missing and held-out cells hold the model's outputs."""
    ds = _dataset_of(data_loader)
    td, _ = _place(model, ds, device)
    return ds.with_data(impute(model, td, td.data).cpu())


def get_imputed_df(model, data_loader, device=None, *, binary_output="label") -> pd.DataFrame:
    """The imputed table in the caller's form, from the model fed with the dataset's ``data``.

    Observed cells are returned exactly as given (same values, dtypes, index and
    column order); do-not-impute cells stay missing; binary columns are 0/1
    (``binary_output="probability"`` for probabilities).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> from ciss_vae.data import load_example_dataset
    >>> from ciss_vae.classes.cluster_dataset import ClusterDataset
    >>> from ciss_vae.classes.vae import CISSVAE
    >>> from ciss_vae.utils.helpers import get_imputed_df
    >>> df, _, clusters = load_example_dataset()
    >>> ds = ClusterDataset(df.iloc[:100], clusters[:100])
    >>> model = CISSVAE(ds.n_features, [8], ["s"], ["s"], True, 2, True, ds.n_clusters)
    >>> out = get_imputed_df(model, DataLoader(ds, batch_size=50))
    >>> out.shape == df.iloc[:100].shape and not out.isna().any().any()
    True
    """
    if binary_output not in ("label", "probability"):
        raise ValueError(f"`binary_output` must be 'label' or 'probability', got {binary_output!r}")
    ds = _dataset_of(data_loader)
    td, _ = _place(model, ds, device)
    return imputed_frame(ds, predict_logits(model, td, td.data).cpu(), binary_output)


def compute_val_mse(model, dataset, device=None, auto_fix_binary=False, eps=1e-7, debug=False):
    """Validation errors ``(total, mse, bce, ce)`` of the model fed with ``dataset.data``.

    ``mse`` is in standardised units (the published code used original units,
    so a column's scale decided early stopping); ``bce`` is the mean binary
    cross-entropy; ``ce`` the per-group mean cross-entropy, summed.
    """
    from ciss_vae.engine import validate

    ds = _dataset_of(dataset)
    td, _ = _place(model, ds, device)
    v = validate(model, td, td.data)
    return v["imputation_error"], v["val_mse"], v["val_bce"], v["val_ce"]


def evaluate_imputation(imputed_df, df_complete, df_missing, activation_groups=None):
    """Mean squared error over the cells missing in ``df_missing``, and a per-cell table.

    Returns ``(mean_error, cells)`` where ``cells`` has columns ``row``, ``col``,
    ``true``, ``imputed``, ``error``. Cells left missing (do-not-impute) are
    excluded from the mean.
    """
    imputed_df, df_complete, df_missing = (pd.DataFrame(x) for x in (imputed_df, df_complete, df_missing))
    if not (imputed_df.shape == df_complete.shape == df_missing.shape):
        raise ValueError("the three tables must have the same shape")
    miss = df_missing.isna().to_numpy()
    rows, cols = np.nonzero(miss)
    true = df_complete.to_numpy(dtype=float)[rows, cols]
    got = imputed_df.to_numpy(dtype=float)[rows, cols]
    cells = pd.DataFrame(dict(row=df_missing.index[rows], col=df_missing.columns[cols], true=true, imputed=got,
                              error=(got - true) ** 2))
    return float(np.nanmean(cells["error"])) if len(cells) else 0.0, cells


__all__ = [
    "train_vae_initial",
    "train_vae_refit",
    "impute_and_refit_loop",
    "get_imputed",
    "get_imputed_df",
    "compute_val_mse",
    "evaluate_imputation",
]
