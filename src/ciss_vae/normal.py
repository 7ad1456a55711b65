"""A multivariate normal per cluster, fitted by EM: the linear counterpart of the network's imputations.

A normal's conditional mean of a row's missing cells given its observed ones
is the best linear imputation of that row; a linear autoencoder (a
probabilistic PCA) is its special case. :func:`fit_normal` fits one normal per
cluster to a standardised table (NaN on missing cells) by the textbook EM for
missing data: each E-step fills a row's missing cells with their conditional
means and adds their conditional covariance to the M-step's scatter matrix.
Everything is batched by the number of missing cells in a row, so the cost per
row is that of solving a system of its missing cells, whatever the number of
distinct missingness patterns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger("ciss_vae")

CHUNK_ELEMENTS = 2**24  # rows x missing x missing per batched solve


@dataclass
class ClusterNormal:
    """Mean and covariance of each cluster's rows (standardised units), as :func:`fit_normal` fits them.

    Attributes
    ----------
    means : torch.Tensor of shape (K, d), float64
    covariances : torch.Tensor of shape (K, d, d), float64
    """

    means: torch.Tensor
    covariances: torch.Tensor

    @property
    def n_clusters(self) -> int:
        return self.means.shape[0]

    def conditional_mean(self, Z: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """``Z`` (float64, NaN on missing cells) with each missing cell replaced by its conditional mean.

        A row of cluster ``k`` is completed under cluster ``k``'s normal; with
        one normal, every row under it.
        """
        out = Z.clone()
        for k in range(self.n_clusters):
            rows = torch.arange(Z.shape[0]) if self.n_clusters == 1 else torch.nonzero(clusters == k).squeeze(1)
            if rows.numel():
                out[rows] = _complete(Z[rows], self.means[k], torch.linalg.inv(self.covariances[k]))[0]
        return out

    def state(self) -> dict:
        return dict(means=self.means, covariances=self.covariances)


def _complete(Z: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, scatter: bool = False):
    """Conditional means of ``Z``'s missing cells, and (``scatter``) the sum of their conditional covariances.

    For a row with missing cells ``m``: ``E[x_m | x_o] = mean_m - P_mm^-1 P_mo (x_o - mean_o)`` and
    ``Cov[x_m | x_o] = P_mm^-1``, with ``P`` the precision matrix.
    """
    miss = torch.isnan(Z)
    h = torch.where(miss, 0.0, Z - mean) @ precision
    out = torch.where(miss, mean.expand_as(Z), Z)
    total = torch.zeros_like(precision) if scatter else None
    counts = miss.sum(dim=1)
    for k in torch.unique(counts).tolist():
        if k == 0:
            continue
        rows = torch.nonzero(counts == k).squeeze(1)
        step = max(1, CHUNK_ELEMENTS // (k * k))
        for start in range(0, rows.numel(), step):
            r = rows[start : start + step]
            idx = torch.nonzero(miss[r])[:, 1].view(-1, k)
            chol, info = torch.linalg.cholesky_ex(precision[idx[:, :, None], idx[:, None, :]])
            if info.any():
                raise ValueError("the normal's precision matrix is not positive definite")
            y = torch.cholesky_solve(-h[r].gather(1, idx).unsqueeze(-1), chol).squeeze(-1)
            out[r[:, None], idx] = mean[idx] + y
            if scatter:
                cov = torch.cholesky_inverse(chol)
                total.index_put_((idx[:, :, None].expand_as(cov), idx[:, None, :].expand_as(cov)), cov,
                                 accumulate=True)
    return out, total


def _em(Z: torch.Tensor, ridge: float, iterations: int, tol: float, start=None):
    """Mean and covariance of one normal fitted to ``Z`` by EM; ``start`` = (mean, covariance) to begin from."""
    n, d = Z.shape
    eye = torch.eye(d, dtype=Z.dtype)
    if start is None:
        mean = torch.nan_to_num(torch.nanmean(Z, dim=0), nan=0.0)
        filled = torch.where(torch.isnan(Z), mean, Z)
        centred = filled - mean
        cov = centred.T @ centred / n + ridge * eye
    else:
        mean, cov = start
    for _ in range(iterations):
        filled, scatter = _complete(Z, mean, torch.linalg.inv(cov), scatter=True)
        new_mean = filled.mean(dim=0)
        centred = filled - new_mean
        new_cov = (centred.T @ centred + scatter) / n + ridge * eye
        change = max((new_mean - mean).abs().max().item(), (new_cov - cov).abs().max().item())
        mean, cov = new_mean, new_cov
        if change < tol:
            break
    return mean, cov


def fit_normal(Z: torch.Tensor, clusters: torch.Tensor | None, n_clusters: int, *, ridge: float = 1e-3,
               iterations: int = 30, tol: float = 1e-4, max_rows: int = 8192, generator=None,
               start: ClusterNormal | None = None) -> ClusterNormal:
    """One normal per cluster (``clusters`` None or ``n_clusters`` = 1: one for all rows), fitted by EM.

    ``Z``: standardised values, NaN on the cells not to learn from. ``ridge``
    is added to each covariance's diagonal (in units of the columns' variance)
    so that it stays invertible; a cluster of more than ``max_rows`` rows is
    fitted on a random ``max_rows`` of them (``generator``). ``start``: a
    fitted :class:`ClusterNormal` to begin EM from (fewer iterations).
    """
    Z = Z.to(torch.float64)
    means, covs = [], []
    for k in range(n_clusters):
        rows = torch.arange(Z.shape[0]) if clusters is None or n_clusters == 1 else torch.nonzero(clusters == k)[:, 0]
        if rows.numel() > max_rows:
            rows = rows[torch.randperm(rows.numel(), generator=generator)[:max_rows]]
        init = None if start is None else (start.means[k], start.covariances[k])
        mean, cov = _em(Z[rows], ridge, iterations, tol, init)
        means.append(mean)
        covs.append(cov)
    return ClusterNormal(torch.stack(means), torch.stack(covs))


def standardised_observed(dataset, hide_validation: bool = False) -> torch.Tensor:
    """A dataset's model columns in standardised units (float64), NaN on missing (and held-out) cells."""
    Z = (dataset.raw_data.double() - torch.as_tensor(dataset.means_)) / torch.as_tensor(dataset.stds_)
    return Z.masked_fill(dataset.val_mask, torch.nan) if hide_validation else Z


@dataclass
class NormalBlend:
    """A network's imputations averaged, column by column, with the conditional means of a :class:`ClusterNormal`.

    Attributes
    ----------
    normal : ClusterNormal
        Fitted to every observed cell of the training table.
    weights : torch.Tensor of shape (d,), float64
        The network's weight in each model column (the normal has ``1 - w``);
        1 in the columns not blended (binary, one-hot and ignored columns).
    residual_std : numpy.ndarray of shape (d,)
        Root mean squared error of the blended imputations on the held-out
        validation cells of each blended column (standardised units); NaN in
        the others.
    """

    normal: ClusterNormal
    weights: torch.Tensor
    residual_std: np.ndarray

    def apply(self, logits: torch.Tensor, Z: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """``logits`` with the missing cells of ``Z`` (standardised, NaN missing) blended; float64."""
        mean = self.normal.conditional_mean(Z.to(torch.float64), clusters)
        w = self.weights
        return torch.where(torch.isnan(Z), w * logits.double() + (1 - w) * mean, logits.double())


def fit_blend(dataset, logits: torch.Tensor, *, pooled: bool, seed: int) -> NormalBlend:
    """Fit the normal and choose each continuous column's weight on the dataset's validation cells.

    A normal (one per cluster, or one for all rows when ``pooled``) is fitted
    to the training cells (validation cells hidden, as they were from the
    network); in each continuous column, the weight ``w`` of the network's
    held-out prediction ``a`` against the normal's ``b`` minimises the squared
    error ``sum((w a + (1 - w) b - v)^2)`` over the column's validation cells
    ``v`` (least squares, clipped to [0, 1]; 1 when the column has fewer than
    two validation cells). The normal is then fitted again to every observed
    cell, starting from the first fit.
    """
    clusters, k = dataset.cluster_labels, 1 if pooled else dataset.n_clusters
    train = standardised_observed(dataset, hide_validation=True)
    first = fit_normal(train, clusters, k, generator=torch.Generator().manual_seed(seed))
    held_out = first.conditional_mean(train, clusters)
    Z = standardised_observed(dataset)
    a, val = logits.double(), dataset.val_mask
    weights = torch.ones(Z.shape[1], dtype=torch.float64)
    residual = np.full(Z.shape[1], np.nan)
    blended = dataset.schema.continuous & ~dataset.schema.ignored
    for j in np.flatnonzero(blended):
        cells = val[:, j]
        if int(cells.sum()) < 2:
            continue
        p, q, v = a[cells, j], held_out[cells, j], Z[cells, j]
        denominator = (p - q).square().sum()
        w = ((v - q) * (p - q)).sum() / denominator if denominator > 0 else torch.tensor(1.0, dtype=torch.float64)
        weights[j] = w.clamp(0.0, 1.0)
        residual[j] = float((weights[j] * p + (1 - weights[j]) * q - v).square().mean().sqrt())
    normal = fit_normal(Z, clusters, k, generator=torch.Generator().manual_seed(seed), start=first)
    logger.info("blended the network with %s normal: network weight per continuous column %s",
                "one" if k == 1 else f"{k} per-cluster", np.round(weights.numpy()[blended], 2).tolist())
    return NormalBlend(normal, weights, residual)
