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

The clusters either have a normal each or (beside a pooled network) share one
covariance and differ in their means: rows whose missingness pattern tells a
shift in their values are completed with it, as when missingness follows
unobserved groups. A binary column also gets a logistic regression on the
others as the normal completes them, whose probability imputes it.
:func:`fit_blend` weighs the network against the normal per continuous column
on held-out cells; a draw of multiple imputation deviates from the blend as
the normal's conditional distribution says (:meth:`NormalBlend.draw`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger("ciss_vae")

CHUNK_ELEMENTS = 2**24  # rows x missing x missing per batched solve
PROBABILITY_FLOOR = 1e-3  # a binary column's probability is kept within [floor, 1 - floor]
LOGISTIC_RIDGE = 1.0  # penalty on a binary column's logistic coefficients: a standard normal prior on each


@dataclass
class ClusterNormal:
    """Mean and covariance of each cluster's rows (standardised units), as :func:`fit_normal` fits them.

    Attributes
    ----------
    means : torch.Tensor of shape (K, d), float64
    covariances : torch.Tensor of shape (K, d, d) or (1, d, d), float64
        One per cluster, or one that every cluster shares.
    logistic : torch.Tensor of shape (d, d + 1), float64, or None
        Row ``j`` for a binary column ``j``: intercept and coefficients of a
        logistic regression of column ``j`` on the other columns (0 on its
        own), NaN for the other columns. Its probability replaces the
        normal's linear conditional mean in that column's missing cells.
    """

    means: torch.Tensor
    covariances: torch.Tensor
    logistic: torch.Tensor | None = None

    @property
    def n_clusters(self) -> int:
        return self.means.shape[0]

    @property
    def binary_columns(self) -> list[int]:
        """The columns with a logistic regression (none without ``logistic``)."""
        return [] if self.logistic is None else torch.nonzero(~torch.isnan(self.logistic[:, 0]))[:, 0].tolist()

    def conditional_mean(self, Z: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """``Z`` (float64, NaN on missing cells) with each missing cell replaced by its conditional mean.

        A row of cluster ``k`` is completed under cluster ``k``'s normal; with
        one normal, every row under it. A binary column with a ``logistic``
        gets the probability that regression gives on the row as the normal
        completes it.
        """
        return self.conditional(Z, clusters)[0]

    def conditional(self, Z: torch.Tensor, clusters: torch.Tensor, generator=None):
        """:meth:`conditional_mean`, and with ``generator`` a draw of each row's conditional deviation.

        The draw is zero on observed cells; on a row's missing cells ``m`` it
        is normal with the conditional covariance ``Cov[x_m | x_o]``: cells
        missing together are drawn with their correlation, and a row that
        misses more is drawn wider.
        """
        out = Z.clone()
        noise = torch.zeros_like(out) if generator is not None else None
        precisions = torch.linalg.inv(self.covariances)
        for k in range(self.n_clusters):
            rows = _cluster_rows(clusters, self.n_clusters, Z.shape[0], k)
            if rows.numel():
                out[rows], _, e = _complete(Z[rows], self.means[k], precisions[min(k, len(precisions) - 1)],
                                            generator=generator)
                if noise is not None:
                    noise[rows] = e
        binary = self.binary_columns
        if binary:
            probability = torch.sigmoid(_with_intercept(out) @ self.logistic[binary].T)
            out[:, binary] = torch.where(torch.isnan(Z[:, binary]), probability, out[:, binary])
        return out, noise

    def state(self) -> dict:
        state = dict(means=self.means, covariances=self.covariances)
        return state if self.logistic is None else dict(state, logistic=self.logistic)


def _with_intercept(X: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.ones_like(X[:, :1]), X], dim=1)


def _fit_logistic(filled: torch.Tensor, Z: torch.Tensor, columns, start: torch.Tensor | None = None,
                  iterations: int = 25, tol: float = 1e-6) -> torch.Tensor:
    """The ``logistic`` of :class:`ClusterNormal`: each of ``columns`` regressed on the others by Newton's method.

    ``filled``: the table as the normal completes it; each regression is
    fitted to the rows that observe its column in ``Z``, with
    ``LOGISTIC_RIDGE`` on its coefficients (and 1e-6 on the intercept, which
    keeps a column of one label finite). ``start``: coefficients to begin from.
    """
    d = Z.shape[1]
    out = torch.full((d, d + 1), torch.nan, dtype=torch.float64)
    A = _with_intercept(filled)
    for j in columns:
        rows = ~torch.isnan(Z[:, j])
        keep = torch.arange(d + 1) != j + 1
        X, y = A[rows][:, keep], Z[rows, j]
        penalty = torch.full((d,), LOGISTIC_RIDGE, dtype=torch.float64)
        penalty[0] = 1e-6
        beta = torch.zeros(d, dtype=torch.float64) if start is None else start[j, keep].clone()
        for _ in range(iterations):
            p = torch.sigmoid(X @ beta)
            hessian = (X * (p * (1 - p))[:, None]).T @ X + torch.diag(penalty)
            step = torch.linalg.solve(hessian, X.T @ (y - p) - penalty * beta)
            beta += step
            if step.abs().max() < tol:
                break
        out[j] = 0.0
        out[j, keep] = beta
    return out


def _cluster_rows(clusters: torch.Tensor | None, n_clusters: int, n: int, k: int) -> torch.Tensor:
    """Indices of cluster ``k``'s rows; every row when there is one cluster (or no labels)."""
    return torch.arange(n) if clusters is None or n_clusters == 1 else torch.nonzero(clusters == k)[:, 0]


def _complete(Z: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, scatter: bool = False, generator=None):
    """Conditional means of ``Z``'s missing cells, (``scatter``) the sum of their conditional covariances,
    and (``generator``) a draw of each row's deviation from its conditional mean (zero on observed cells).

    For a row with missing cells ``m``: ``E[x_m | x_o] = mean_m - P_mm^-1 P_mo (x_o - mean_o)`` and
    ``Cov[x_m | x_o] = P_mm^-1``, with ``P`` the precision matrix; with ``P_mm = L L^T``, ``L^-T e`` for a
    standard normal ``e`` has that covariance.
    """
    miss = torch.isnan(Z)
    h = torch.where(miss, 0.0, Z - mean) @ precision
    out = torch.where(miss, mean.expand_as(Z), Z)
    total = torch.zeros_like(precision) if scatter else None
    noise = torch.zeros_like(out) if generator is not None else None
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
            if noise is not None:
                e = torch.randn(y.shape + (1,), generator=generator, dtype=y.dtype)
                noise[r[:, None], idx] = torch.linalg.solve_triangular(chol.mT, e, upper=True).squeeze(-1)
            if scatter:
                cov = torch.cholesky_inverse(chol)
                total.index_put_((idx[:, :, None].expand_as(cov), idx[:, None, :].expand_as(cov)), cov,
                                 accumulate=True)
    return out, total, noise


def _em(Z: torch.Tensor, groups: list[torch.Tensor], ridge: float, iterations: int, tol: float, start=None):
    """Means (one per group of rows) and a covariance that the groups share, fitted to ``Z`` by EM.

    ``groups``: the row indices of each group. ``start`` = (means, covariance)
    to begin from. Without it, one mean for all rows is fitted first and each
    group starts from the mean of its rows as that fit completes them: a
    column a group never observes keeps the value the common fit implies
    (its mean is not identified by the group's rows, and EM does not move it).
    """
    n, d = Z.shape
    eye = torch.eye(d, dtype=Z.dtype)
    if start is None:
        mean = torch.nan_to_num(torch.nanmean(Z, dim=0), nan=0.0)
        centred = torch.where(torch.isnan(Z), mean, Z) - mean
        start = mean[None], centred.T @ centred / n + ridge * eye
        if len(groups) > 1:
            mean, cov = _em(Z, [torch.arange(n)], ridge, iterations, tol, start)
            filled = _complete(Z, mean[0], torch.linalg.inv(cov))[0]
            start = torch.stack([filled[g].mean(dim=0) if g.numel() else mean[0] for g in groups]), cov
    means, cov = start
    for _ in range(iterations):
        precision, new_means = torch.linalg.inv(cov), means.clone()
        total = torch.zeros_like(cov)
        for k, g in enumerate(groups):
            if g.numel() == 0:
                continue
            filled, scatter, _ = _complete(Z[g], means[k], precision, scatter=True)
            new_means[k] = filled.mean(dim=0)
            centred = filled - new_means[k]
            total += centred.T @ centred + scatter
        new_cov = total / n + ridge * eye
        change = max((new_means - means).abs().max().item(), (new_cov - cov).abs().max().item())
        means, cov = new_means, new_cov
        if change < tol:
            break
    return means, cov


def fit_normal(Z: torch.Tensor, clusters: torch.Tensor | None, n_clusters: int, *, shared: bool = False,
               binary=(), ridge: float = 1e-3, iterations: int = 30, tol: float = 1e-4, max_rows: int = 8192,
               generator=None, start: ClusterNormal | None = None) -> ClusterNormal:
    """A normal per cluster (``clusters`` None or ``n_clusters`` = 1: one for all rows), fitted by EM.

    ``Z``: standardised values, NaN on the cells not to learn from. Each
    cluster has its own mean; its own covariance too, or with ``shared`` one
    that all clusters share (then the clusters' rows differ only by a shift,
    which is what a network with every layer shared can also express). ``ridge``
    is added to each covariance's diagonal (in units of the columns' variance)
    so that it stays invertible; a cluster of more than ``max_rows`` rows is
    fitted on a random ``max_rows`` of them (``generator``). ``start``: a
    fitted :class:`ClusterNormal` to begin EM from (fewer iterations; its
    covariances decide ``shared``, its ``logistic`` the ``binary`` columns).
    ``binary``: indices of 0/1 columns that also get a logistic regression on
    the others (:attr:`ClusterNormal.logistic`), fitted to the same rows.
    """
    Z = Z.to(torch.float64)
    groups = []
    for k in range(n_clusters):
        rows = _cluster_rows(clusters, n_clusters, Z.shape[0], k)
        if rows.numel() > max_rows:
            rows = rows[torch.randperm(rows.numel(), generator=generator)[:max_rows]]
        groups.append(rows)
    if start is not None:
        shared = start.covariances.shape[0] == 1
        binary = start.binary_columns
    if shared:
        rows = torch.cat(groups)
        bounds = np.cumsum([0] + [g.numel() for g in groups])
        local = [torch.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        init = None if start is None else (start.means, start.covariances[0])
        means, cov = _em(Z[rows], local, ridge, iterations, tol, init)
        normal = ClusterNormal(means, cov[None])
    else:
        fits = [_em(Z[g], [torch.arange(g.numel())], ridge, iterations, tol,
                    None if start is None else (start.means[k][None], start.covariances[k]))
                for k, g in enumerate(groups)]
        normal = ClusterNormal(torch.cat([m for m, _ in fits]), torch.stack([c for _, c in fits]))
    if len(binary):
        rows = torch.cat(groups)
        labels = None if clusters is None else clusters[rows]
        normal.logistic = _fit_logistic(normal.conditional_mean(Z[rows], labels), Z[rows], binary,
                                        None if start is None else start.logistic)
    return normal


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
        0 in standalone binary columns (the normal's logistic regression
        alone), 1 in the columns not blended (one-hot and ignored columns).
    residual_std : numpy.ndarray of shape (d,)
        Root mean squared error of the blended imputations on the held-out
        validation cells of each blended column (standardised units); NaN in
        the others.
    noise_scale : numpy.ndarray of shape (d,) or None
        Per column, the blended imputations' root mean squared error on the
        validation cells over the normal's own (1 where not measured): the
        factor on the normal's conditional deviations in a draw (:meth:`draw`).
        None for a blend saved before it existed (format 5): its draws add
        independent noise of ``residual_std``, as they were made then.
    """

    normal: ClusterNormal
    weights: torch.Tensor
    residual_std: np.ndarray
    noise_scale: np.ndarray | None = None

    @property
    def binary(self) -> np.ndarray:
        """Per column, whether the normal has a logistic regression for it (a standalone binary column).

        Those columns are blended as probabilities: the network's
        ``sigmoid(logit)`` with the logistic's probability (kept within
        ``[0.001, 0.999]``), returned as a logit. Blends saved before format 7
        have none (their binary columns have weight 1, the network's).
        """
        mask = np.zeros(self.weights.shape[0], dtype=bool)
        mask[self.normal.binary_columns] = True
        return mask

    def apply(self, logits: torch.Tensor, Z: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """``logits`` with the missing cells of ``Z`` (standardised, NaN missing) blended; float64."""
        return self.draw(logits, Z, clusters)[0]

    def draw(self, logits: torch.Tensor, Z: torch.Tensor, clusters: torch.Tensor, generator=None):
        """:meth:`apply`, and with ``generator`` the deviations of a draw around it (zero on observed cells).

        A draw deviates from the blended conditional mean as the normal says
        a row's missing cells deviate from theirs (jointly, given what the row
        observes; refitted to a bootstrap resample, the normal also carries
        its parameters' uncertainty), scaled per column by ``noise_scale``;
        None without ``noise_scale`` (a format-5 blend, whose draws add
        independent residual noise instead).
        """
        generator = generator if self.noise_scale is not None else None
        mean, noise = self.normal.conditional(Z.to(torch.float64), clusters, generator)
        w, net = self.weights, logits.double()
        mixed = w * net + (1 - w) * mean
        if self.normal.logistic is not None:
            logistic = mean.clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)  # a finite logit
            probability = torch.logit(w * torch.sigmoid(net) + (1 - w) * logistic)
            mixed = torch.where(torch.as_tensor(self.binary), probability, mixed)
        blended = torch.where(torch.isnan(Z), mixed, net)
        return blended, None if noise is None else noise * torch.as_tensor(self.noise_scale)


def _shrunk_weight(p: torch.Tensor, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The network's weight in one column: least squares on the held-out cells, shrunk by its standard error.

    ``w_hat`` minimises ``sum((w p + (1 - w) q - v)^2)``; with ``se`` its
    standard error, the weight is ``w_hat (1 - se^2 / w_hat^2)`` (0 when
    negative; clipped to [0, 1]): the posterior mean of ``w`` under a normal
    prior centred on 0 (the normal alone) whose variance is estimated from
    ``w_hat`` itself (empirical Bayes). The network must earn its weight:
    where the cells cannot tell the two apart, the blend is the normal.
    """
    one = torch.tensor(1.0, dtype=torch.float64)
    denominator = (p - q).square().sum()
    if denominator <= 0:
        return one
    w = ((v - q) * (p - q)).sum() / denominator
    se2 = (v - q - w * (p - q)).square().sum() / (p.numel() - 1) / denominator
    if w.square() <= se2:
        return torch.zeros_like(one)
    return (w * (1 - se2 / w.square())).clamp(0.0, 1.0)


def fit_blend(dataset, logits: torch.Tensor, *, pooled: bool, seed: int) -> NormalBlend:
    """Fit the normal and choose each continuous column's weight on the dataset's validation cells.

    A normal per cluster (with ``pooled``, the network's case of every layer
    shared: clusters that share one covariance and differ in their means) is
    fitted to the training cells (validation cells hidden, as they were from the
    network); in each continuous column, the weight ``w`` of the network's
    held-out prediction ``a`` against the normal's ``b`` minimises the squared
    error ``sum((w a + (1 - w) b - v)^2)`` over the column's validation cells
    ``v``, shrunk toward 0 by its standard error (:func:`_shrunk_weight`; 1
    when the column has fewer than two validation cells). A standalone binary
    column is imputed by the normal's logistic regression of it on the other
    columns alone (weight 0): on tables with binary columns it was more
    accurate than the network (by 1 to 5 points of accuracy) and as accurate as
    the validated blend, and the network's part made multiple imputations
    too narrow (its bootstrap refits share one fit's imputations, the
    logistic's are refitted to each resample). The normal is then fitted again
    to every observed cell, starting from the first fit.
    """
    clusters, k = dataset.cluster_labels, dataset.n_clusters
    train = standardised_observed(dataset, hide_validation=True)
    s = dataset.schema
    binary = s.binary & ~s.dummy & ~s.ignored
    first = fit_normal(train, clusters, k, shared=pooled, binary=np.flatnonzero(binary).tolist(),
                       generator=torch.Generator().manual_seed(seed))
    held_out = first.conditional_mean(train, clusters)
    Z = standardised_observed(dataset)
    a, val = logits.double(), dataset.val_mask
    weights = torch.ones(Z.shape[1], dtype=torch.float64)
    residual, scale = np.full(Z.shape[1], np.nan), np.ones(Z.shape[1])
    weights[torch.as_tensor(binary)] = 0.0
    blended = s.continuous & ~s.ignored
    for j in np.flatnonzero(blended):
        cells = val[:, j]
        if int(cells.sum()) < 2:
            continue
        p, q, v = a[cells, j], held_out[cells, j], Z[cells, j]
        weights[j] = _shrunk_weight(p, q, v)
        residual[j] = float((weights[j] * p + (1 - weights[j]) * q - v).square().mean().sqrt())
        own = float((q - v).square().mean().sqrt())
        scale[j] = residual[j] / own if own > 0 else 1.0
    normal = fit_normal(Z, clusters, k, generator=torch.Generator().manual_seed(seed), start=first)
    kind = "one normal" if k == 1 else f"{k} clusters' normals" + (" (one covariance)" if pooled else "")
    logger.info("blended the network with %s: network weight per continuous column %s%s", kind,
                np.round(weights.numpy()[blended], 2).tolist(),
                f"; {binary.sum()} binary column(s) by logistic regression" if binary.any() else "")
    return NormalBlend(normal, weights, residual, scale)
