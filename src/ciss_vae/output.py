"""Turning model outputs into the caller's table: units, binary labels, one-hot groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def output_values(dataset, logits: torch.Tensor, binary_output: str = "label") -> np.ndarray:
    """Model outputs in the caller's units, shaped (n_rows, n_features), float64.

    Continuous columns are de-standardised; binary columns are 0/1 labels (or
    probabilities with ``binary_output="probability"``); every one-hot group gets
    exactly one 1 per row, consistent with the row's observed dummies.
    """
    s = dataset.schema
    z = logits.detach().cpu().double().numpy()
    values = z * dataset.stds_ + dataset.means_
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


def imputed_frame(dataset, logits: torch.Tensor, binary_output: str = "label") -> pd.DataFrame:
    """The caller's table with its missing, imputable, non-ignored cells filled from ``logits``."""
    fill = (dataset.missing_mask & dataset.imputable).numpy() & ~dataset.schema.ignored[None, :]
    return dataset.schema.to_frame(output_values(dataset, logits, binary_output), fill)
