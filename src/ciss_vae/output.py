"""Turning model outputs into the caller's table: units, binary labels, one-hot groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def observed_range(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest observed value of each model column (NaN for a column with none)."""
    raw = dataset.raw_data.double().numpy()
    seen = ~np.isnan(raw)
    lo = np.where(seen, raw, np.inf).min(axis=0)
    hi = np.where(seen, raw, -np.inf).max(axis=0)
    none = ~seen.any(axis=0)
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def output_values(dataset, logits: torch.Tensor, binary_output: str = "label", value_range=None) -> np.ndarray:
    """Model outputs in the caller's units, shaped (n_rows, n_features), float64.

    Continuous columns are de-standardised, and clipped to ``value_range`` (a
    pair of per-column arrays, NaN for no bound, as :func:`observed_range`
    gives) when one is given; binary columns are 0/1 labels (or probabilities
    with ``binary_output="probability"``); every one-hot group gets exactly one
    1 per row, consistent with the row's observed dummies.
    """
    s = dataset.schema
    z = logits.detach().cpu().double().numpy()
    values = z * dataset.stds_ + dataset.means_
    if value_range is not None:
        cont = s.continuous
        lo, hi = (np.asarray(v, dtype=np.float64)[cont] for v in value_range)
        values[:, cont] = np.fmin(np.fmax(values[:, cont], lo), hi)  # fmin/fmax: a NaN bound is no bound
    standalone = s.binary & ~s.dummy
    if standalone.any():
        prob = 1.0 / (1.0 + np.exp(-z[:, standalone]))
        values[:, standalone] = prob if binary_output == "probability" else (prob >= 0.5).astype(float)
    raw = dataset.raw_data.double().numpy()
    for idx in s.categorical.values():
        observed = ~np.isnan(raw[:, idx])
        has_one = (observed & (raw[:, idx] == 1)).any(axis=1, keepdims=True)
        choice = np.where(observed, -np.inf, z[:, idx]).argmax(axis=1)
        onehot = np.eye(len(idx))[choice]
        values[:, idx] = np.where(observed, raw[:, idx], np.where(has_one, 0.0, onehot))
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
