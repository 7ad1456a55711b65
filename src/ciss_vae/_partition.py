"""Private helpers of :mod:`ciss_vae.clustering`: graph, merges, partition scores and choice, neighbour votes.

All functions work on *distinct* patterns ``X`` (one row each) with their row
counts ``w`` as weights, never on an N x N matrix of rows.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def _import_leiden():
    try:
        import igraph
        import leidenalg
    except ImportError as exc:
        raise ImportError("Leiden clustering (n_clusters=None) needs leidenalg and "
                          "python-igraph: pip install ciss-vae[clustering] "
                          "(or pip install leidenalg python-igraph)") from exc
    return igraph, leidenalg


def _knn_graph(X, w, k, use_snn, mutual):
    """kNN graph of distinct points ``X`` (multiplicities ``w``): upper-triangle edges.

    An edge joins each point to its ``k`` nearest other points (symmetrised:
    either direction, or both with ``mutual``). Its weight is the number of row
    pairs it stands for, ``w_i * w_j``, times the Jaccard index of the two
    points' neighbour sets (themselves included) with ``use_snn``.
    Returns ``(rows, cols, weights)``.
    """
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    n = len(X)
    kk = min(k, n - 1)
    if kk < 1:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    ind = NearestNeighbors(n_neighbors=kk + 1).fit(X).kneighbors(X, return_distance=False)
    is_self = ind == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # self not returned (ties): drop the farthest
    ind = ind[~is_self].reshape(n, kk)
    A = sparse.csr_matrix((np.ones(n * kk), (np.repeat(np.arange(n), kk), ind.ravel())),
                          shape=(n, n))
    S = sparse.triu(A.minimum(A.T) if mutual else A.maximum(A.T), k=1).tocoo()
    r, c = S.row, S.col
    v = w[r].astype(float) * w[c]
    if use_snn and len(r):
        B = (A + sparse.identity(n, format="csr")).tocsr()
        ov = np.asarray(B[r].multiply(B[c]).sum(axis=1)).ravel()
        v *= ov / (2 * (kk + 1) - ov)
    keep = v > 0
    return r[keep], c[keep], v[keep]


def _merge_small(lab, w, X, min_size):
    """Merge clusters lighter than ``min_size``, smallest first, into the nearest centroid.

    Returns (labels, number of merges).
    """
    lab = np.unique(lab, return_inverse=True)[1].ravel()
    K = lab.max() + 1
    size = np.bincount(lab, weights=w, minlength=K)
    sums = np.zeros((K, X.shape[1]))
    np.add.at(sums, lab, X * w[:, None])
    alive = np.ones(K, dtype=bool)
    parent = np.arange(K)
    merged = 0
    while alive.sum() > 1:
        small = np.flatnonzero(alive & (size < min_size))
        if not len(small):
            break
        c = small[np.argmin(size[small])]
        others = np.flatnonzero(alive & (np.arange(K) != c))
        cent = sums[others] / size[others, None]
        d = others[np.argmin(((cent - sums[c] / size[c]) ** 2).sum(axis=1))]
        sums[d] += sums[c]
        size[d] += size[c]
        alive[c] = False
        parent[c] = d
        merged += 1
    for _ in range(K):  # resolve chains c -> d -> e
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    return parent[lab], merged


def _ward_levels(lab, w, X):
    """Ward agglomeration of the clusters of ``lab``: one labelling per level K-1 .. 1."""
    lab = np.unique(lab, return_inverse=True)[1].ravel()
    K = lab.max() + 1
    size = np.bincount(lab, weights=w, minlength=K)
    cent = np.zeros((K, X.shape[1]))
    np.add.at(cent, lab, X * w[:, None])
    cent /= size[:, None]
    cur = np.arange(K)
    alive = np.ones(K, dtype=bool)
    levels = []
    for _ in range(K - 1):
        idx = np.flatnonzero(alive)
        d2 = ((cent[idx, None, :] - cent[None, idx, :]) ** 2).sum(axis=2)
        cost = d2 * (size[idx, None] * size[None, idx]) / (size[idx, None] + size[None, idx])
        cost[np.tril_indices(len(idx))] = np.inf
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        a, b = idx[i], idx[j]
        cent[a] = (cent[a] * size[a] + cent[b] * size[b]) / (size[a] + size[b])
        size[a] += size[b]
        alive[b] = False
        cur[cur == b] = a
        levels.append(cur[lab].copy())
    return levels


def _binomial_bic(sample, lab):
    """BIC of a latent-class model under the partition ``lab`` of the distinct patterns.

    ``sample = (ids, m, C, trials)``: sampled distinct patterns, their row
    multiplicities, their missing counts per feature and each feature's
    number of columns. Within a cluster a feature's count is binomial with a
    per-cluster rate, features independent; K * (features + 1) - 1 parameters.
    """
    ids, m, C, trials = sample
    lab = np.unique(lab[ids], return_inverse=True)[1].ravel()
    K = lab.max() + 1
    n_c = np.bincount(lab, weights=m, minlength=K)
    miss = np.zeros((K, C.shape[1]))
    np.add.at(miss, lab, C * m[:, None])
    tot = n_c[:, None] * trials
    p = np.clip(miss / tot, 1e-12, 1 - 1e-12)
    ll = (miss * np.log(p) + (tot - miss) * np.log1p(-p)).sum()
    ll += (n_c * np.log(n_c / m.sum())).sum()
    return float(-2 * ll + (K * (C.shape[1] + 1) - 1) * np.log(m.sum()))


def _sample_silhouette(D, m, lab):
    """Silhouette of sampled rows given as distinct patterns.

    ``D``: distances between the sampled distinct patterns, ``m``: their row
    multiplicities, ``lab``: their labels. Equals scikit-learn's silhouette on
    the expanded rows (a row alone in its cluster scores 0); None for fewer
    than 2 clusters.
    """
    lab = np.unique(lab, return_inverse=True)[1].ravel()
    K = lab.max() + 1
    if K < 2 or K >= m.sum():
        return None
    at = (np.arange(len(lab)), lab)
    onehot = np.zeros((len(lab), K))
    onehot[at] = m
    n_c = onehot.sum(axis=0)
    S = D @ onehot  # summed distance from each pattern to each cluster's sampled rows
    own = n_c[lab] - 1
    a = S[at] / np.maximum(own, 1)
    S /= n_c
    S[at] = np.inf
    b = S.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(own > 0, (b - a) / np.maximum(a, b), 0.0)
    return float(np.average(np.nan_to_num(s), weights=m))


def _best_candidate(cands, w, X, min_size, merge: bool, bic):
    """The partition to keep among ``cands`` (``(resolution, labels)`` pairs) and its resolution.

    With ``merge``, each candidate's clusters under ``min_size`` rows are merged
    first. Preferred: every cluster at least ``min_size`` rows, then the lowest
    ``bic(labels)``, then fewer clusters; the first of equals wins.
    """
    best = None
    for gamma, lab in cands:
        if merge:
            lab = _merge_small(lab, w, X, min_size)[0]
        size = np.bincount(np.unique(lab, return_inverse=True)[1].ravel(), weights=w)
        score = bic(lab)
        logger.debug("candidate (resolution %s): K=%d, BIC %.1f", gamma, len(size), score)
        key = (bool(size.min() >= min_size), -round(score, 6), -len(size))
        if best is None or key > best[0]:
            best = (key, lab, gamma)
    return best[1], best[2]


def _neighbour_index(Xref):
    """Nearest-neighbour search over the reference rows ``Xref``, equal distances ordered by row.

    Reference row ``i`` of ``n`` gets a last coordinate ``1e-4 * sqrt(i / n)``
    (queries 0), which adds ``1e-8 * i / n`` to its squared distance:
    distinct distances of missing fractions differ by far more, float64
    rounding (about 1e-15) by far less. So a row's neighbours do not depend
    on the other rows of the call, their number or the thread count.
    """
    from sklearn.neighbors import NearestNeighbors
    tie = 1e-4 * np.sqrt(np.arange(len(Xref)) / len(Xref))
    return NearestNeighbors().fit(np.column_stack([Xref, tie]))


def _nearest(index, F, k):
    """Indices of the ``k`` nearest reference rows of each row of ``F`` (see :func:`_neighbour_index`)."""
    k = min(k, index.n_samples_fit_)
    return index.kneighbors(np.column_stack([F, np.zeros(len(F))]), n_neighbors=k, return_distance=False)


def _vote(ind, wref, labref, k):
    """Count-weighted label vote of the nearest reference rows ``ind`` (see :func:`_nearest`).

    Each reference row stands for ``wref`` rows; the nearest ``k`` rows vote.
    A tie goes to the label of the nearer neighbour (each neighbour adds
    ``2**-(rank + 1)`` to its label: less than one count in all, and exact
    in floating point), so the winner does not depend on how labels are
    numbered.
    """
    n, n_labels = len(ind), int(labref.max()) + 1
    cnt = wref[ind].astype(float)
    take = np.clip(k - (np.cumsum(cnt, axis=1) - cnt), 0, cnt)
    take += 0.5 ** np.arange(1, ind.shape[1] + 1)
    cell = (np.arange(n)[:, None] * n_labels + labref[ind]).ravel()  # counts: exact sums in any order
    votes = np.bincount(cell, weights=take.ravel(), minlength=n * n_labels).reshape(n, n_labels)
    return votes.argmax(axis=1)
