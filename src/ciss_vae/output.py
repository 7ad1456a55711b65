"""Turning model outputs into the caller's table: units, binary labels, one-hot groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def observed_range(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest observed value of each model column (NaN for a column with none)."""
    raw = dataset.raw_data.numpy()  # float32, no copy; fmin/fmax skip NaN and give NaN for a column of NaN
    return (np.fmin.reduce(raw, axis=0).astype(np.float64), np.fmax.reduce(raw, axis=0).astype(np.float64))


def output_values(dataset, logits: torch.Tensor, binary_output: str = "label", value_range=None) -> np.ndarray:
    """Model outputs in the caller's units, shaped (n_rows, n_features), float64.

    Continuous columns are de-standardised, and clipped to ``value_range`` (a
    pair of per-column arrays, NaN for no bound, as :func:`observed_range`
    gives) when one is given; binary columns are 0/1 labels (or probabilities
    with ``binary_output="probability"``); every one-hot group gets exactly one
    1 per row, consistent with the row's observed dummies.
    """
    s = dataset.schema
    z = logits.detach().cpu().numpy()  # float32; each value is widened exactly where it meets float64
    values = z * dataset.stds_ + dataset.means_
    if value_range is not None:
        cont = s.continuous
        lo, hi = (np.asarray(v, dtype=np.float64)[cont] for v in value_range)
        values[:, cont] = np.fmin(np.fmax(values[:, cont], lo), hi)  # fmin/fmax: a NaN bound is no bound
    standalone = s.binary & ~s.dummy
    if standalone.any():
        prob = 1.0 / (1.0 + np.exp(-z[:, standalone].astype(np.float64)))
        values[:, standalone] = prob if binary_output == "probability" else (prob >= 0.5).astype(float)
    for idx in s.categorical.values():
        raw = dataset.raw_data[:, idx].double().numpy()
        observed = ~np.isnan(raw)
        has_one = (observed & (raw == 1)).any(axis=1, keepdims=True)
        choice = np.where(observed, -np.inf, z[:, idx]).argmax(axis=1)
        onehot = np.eye(len(idx))[choice]
        values[:, idx] = np.where(observed, raw, np.where(has_one, 0.0, onehot))
    return values


def imputed_frame(dataset, logits: torch.Tensor, binary_output: str = "label",
                  clip_to_observed: bool = False, integer_output: str = "integer") -> pd.DataFrame:
    """The caller's table with its missing, imputable, non-ignored cells filled from ``logits``.

    With ``clip_to_observed``, continuous imputations are kept within the range
    of their column's observed values; ``integer_output`` as in
    :meth:`~ciss_vae.schema.TableSchema.to_frame`.
    """
    fill = (dataset.missing_mask & dataset.imputable).numpy() & ~dataset.schema.ignored[None, :]
    value_range = observed_range(dataset) if clip_to_observed else None
    values = output_values(dataset, logits, binary_output, value_range)
    return dataset.schema.to_frame(values, fill, integer_output)
