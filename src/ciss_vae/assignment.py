"""Cluster of a new row from its missingness pattern, and the rule of a saved state.

A fitted imputer assigns the rows it is given to clusters by one of two rules:
the :class:`~ciss_vae.clustering.MissingnessClusterer` that found the clusters,
or, for cluster labels the user gave, a :class:`PatternAssigner`.
"""

from __future__ import annotations

import numpy as np

from ciss_vae.clustering import MissingnessClusterer

__all__ = ["PatternAssigner", "assigner_from_state"]


class PatternAssigner:
    """Cluster of a row from its missingness pattern, for cluster labels a user gave.

    Patterns seen in training get the majority cluster of their training rows;
    new patterns get the cluster whose centroid (mean missingness indicator of
    its training rows) is nearest in squared Euclidean distance.
    """

    def __init__(self, patterns, codes, centers):
        self.patterns = np.asarray(patterns, dtype=bool).reshape(len(codes), -1)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.centers = np.asarray(centers, dtype=float)
        self._lookup = {p.tobytes(): c for p, c in zip(np.packbits(self.patterns, axis=1), self.codes)}

    @classmethod
    def fit(cls, mask: np.ndarray, codes: np.ndarray, n_clusters: int) -> "PatternAssigner":
        """The rule for training rows with missingness ``mask`` and cluster ``codes`` (0..n_clusters-1)."""
        pats, inverse = np.unique(mask, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        votes = np.zeros((len(pats), n_clusters))
        np.add.at(votes, (inverse, codes), 1)
        centers = np.vstack([mask[codes == c].mean(axis=0) for c in range(n_clusters)])
        return cls(pats, votes.argmax(axis=1), centers)

    def predict_mask(self, mask: np.ndarray) -> np.ndarray:
        """Cluster code of each row of a missingness ``mask`` (same columns as in :meth:`fit`)."""
        packed = np.packbits(mask, axis=1)
        out = np.array([self._lookup.get(p.tobytes(), -1) for p in packed], dtype=np.int64)
        new = out < 0
        if new.any():
            d = ((mask[new][:, None, :].astype(float) - self.centers[None]) ** 2).sum(axis=2)
            out[new] = d.argmin(axis=1)
        return out

    def to_state(self) -> dict:
        return dict(type="labels", patterns=self.patterns.astype(int).tolist(), codes=self.codes.tolist(),
                    centers=self.centers.tolist())

    @classmethod
    def from_state(cls, state: dict) -> "PatternAssigner":
        return cls(state["patterns"], state["codes"], state["centers"])


def assigner_from_state(state: dict):
    """The cluster-assignment rule (:class:`MissingnessClusterer` or :class:`PatternAssigner`) of a state."""
    kinds = {"labels": PatternAssigner, "missingness_clusterer": MissingnessClusterer}
    if state.get("type") not in kinds:
        raise ValueError(f"unknown cluster assignment type {state.get('type')!r}")
    return kinds[state["type"]].from_state(state)
