"""Clusters of rows by *where* their values are missing, and their assignment to new rows.

Method of :class:`MissingnessClusterer` / :func:`cluster_on_missing`:

1. Identical missingness patterns of the kept columns are collapsed once
   (bit-packed keys); all later work is on distinct patterns weighted by counts.
2. Features: columns whose names show repeated measures (``Y11..Y55``,
   ``bmi_1``, ``hb_t2``) are summarised by the fraction of each group that is
   missing, as in :func:`create_missingness_prop_matrix`; other columns keep
   their 0/1 indicator. Averaging over visits removes the visit-to-visit noise
   that makes raw-mask neighbours unreliable.
3. ``n_clusters`` given: KMeans on the weighted distinct patterns.
4. Otherwise Leiden on a kNN graph of the distinct patterns (nearest-neighbour
   index, never an N x N matrix; edge weight = row pairs ``w_i * w_j`` times
   the shared-neighbour Jaccard index). With ``leiden_resolution="auto"`` the
   resolution rises along a grid until the partition is fine (>= 50
   clusters), which is then merged back step by step with Ward's criterion.
   Among all these partitions (K = 1 included) the one with the lowest BIC of
   a latent-class model wins: within a cluster each feature's missing count
   is binomial over its columns, independently. The BIC is computed on a
   seeded row sample, which keeps the choice from drifting to ever more
   clusters as N grows. Graph clustering alone over-splits smooth clouds of
   patterns; a silhouette criterion prefers clusters of identical patterns.
5. Clusters under ``min_cluster_size`` rows are merged, smallest first, into
   the cluster with the nearest centroid. Labels are 0..K-1 by decreasing
   size (ties: first row).
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from threadpoolctl import threadpool_limits

from ciss_vae._partition import (_best_candidate, _binomial_bic, _import_leiden, _knn_graph, _merge_small,
                                 _nearest, _neighbour_index, _sample_silhouette, _vote, _ward_levels)
from ciss_vae.patterns import collapse, feature_groups, group_fractions
from ciss_vae.tabular import as_frame, resolve_columns

logger = logging.getLogger(__name__)

__all__ = ["MissingnessClusterer", "cluster_on_missing", "cluster_on_missing_prop"]

_AUTO_GRID = {"rb": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
              "cpm": (1.5, 3.0, 6.0, 12.0, 25.0, 50.0)}  # CPM: multiples of graph density
PREDICT_CHUNK = 65536  # new patterns per neighbour search in predict (bounds its memory)
_N_MICRO = 50  # "auto": finest Leiden partition sought before the Ward merges
_OBJECTIVES = {"rb": "rb", "rbconfig": "rb", "rbconfiguration": "rb", "cpm": "cpm",
               "modularity": "modularity"}


def _plain_value(v):
    return v.item() if isinstance(v, np.generic) else v


def _plain_params(params: dict) -> dict:
    return {k: (list(map(_plain_value, v)) if isinstance(v, (list, tuple)) else
                {str(g): list(map(_plain_value, m)) for g, m in v.items()} if isinstance(v, dict) else
                _plain_value(v)) for k, v in params.items()}


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


class MissingnessClusterer(ClusterMixin, BaseEstimator):
    """Cluster rows by their missingness pattern; assign clusters to new rows.

    The default (``n_clusters=None``) is Leiden with an automatically chosen
    resolution on a kNN graph of the distinct missingness patterns; see the
    module docstring for the full method. With ``n_clusters`` it is a
    weighted KMeans on the same features.

    Parameters
    ----------
    n_clusters : int, optional
        Number of clusters for KMeans. Must not exceed the number of distinct
        patterns (ValueError). None: Leiden, number chosen automatically.
    cols_ignore : list, optional
        Columns left out: labels for a DataFrame (also matched by their string
        form), integer positions for an ndarray or tensor. Unknown entries
        raise ValueError.
    seed : int or None, default 42
        Seeds KMeans, Leiden and the row sample: the same seed gives the same
        labels.
    k_neighbors : int, default 30
        Nearest distinct patterns linked to each pattern in the graph; a new
        pattern is voted on by its ``k_neighbors`` nearest training rows.
    use_snn : bool, default True
        Weight edges by the shared-nearest-neighbour Jaccard index.
    leiden_resolution : "auto", float or sequence of float, default "auto"
        "auto": see the module docstring. A float is used as is; among the
        partitions of a sequence the lowest BIC wins. For ``"CPM"`` values
        are multiples of the graph's edge density.
    leiden_objective : {"RB", "CPM", "modularity"}, default "RB"
        RB configuration (modularity with a resolution), constant Potts model
        with node sizes = pattern counts, or plain modularity.
    min_cluster_size : int or float, optional
        Smallest allowed cluster, in rows (a float in (0, 1) is a fraction of
        the rows). Default ``max(10, ceil(0.01 * n_rows))``, so at most about
        100 clusters.
    small_clusters : {"merge", "raise", "keep"}, default "merge"
        What to do with smaller clusters: merge each (smallest first) into the
        cluster with the nearest centroid (logged), raise ValueError, or keep
        them (logged as a warning).
    feature_groups : "auto", dict or None, default "auto"
        Column groups summarised by their missing fraction. "auto" detects
        repeated measures from string column names; a dict maps group names to
        lists of columns (labels or positions); None uses the 0/1 mask.
    sample_size : int, default 3000
        Rows of the seeded sample on which candidate partitions are scored
        (BIC) and the silhouette is computed.
    max_graph_nodes : int, default 20000
        Above this many distinct patterns a seeded, count-weighted sample of
        them is clustered and the others are assigned by the neighbour vote of
        :meth:`predict`. The sample is the clusterer's reference: what
        :meth:`predict` looks up and votes against, and what :meth:`to_state`
        keeps, so predicting and saving cost the same at any table size.

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_rows,)
    n_clusters_ : int
    silhouette_ : float or None
        Euclidean silhouette of the features, on the seeded sample; None with
        fewer than two clusters.
    cluster_sizes_ : ndarray of int64, shape (n_clusters_,)
    resolution_ : float or None
        Resolution of the Leiden partition the result came from (None for
        KMeans or "modularity").
    feature_groups_ : dict
        Feature name -> source columns used to build the features.
    columns_ : list
        Columns used (labels, or positions for array input).
    n_patterns_ : int
        Number of distinct feature rows (the reference keeps at most
        ``max_graph_nodes`` of them).
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 6))
    >>> X[:150, :3][rng.random((150, 3)) < 0.6] = np.nan
    >>> X[150:, 3:][rng.random((150, 3)) < 0.6] = np.nan
    >>> model = MissingnessClusterer(n_clusters=2).fit(X)
    >>> model.n_clusters_, int(model.cluster_sizes_.sum())
    (2, 300)
    >>> bool((model.predict(X) == model.labels_).all())
    True
    """

    _mutual = False  # kNN edges need both directions (cluster_on_missing_prop's snn_mutual)

    def __init__(self, n_clusters=None, *, cols_ignore=None, seed=42, k_neighbors=30,
                 use_snn=True, leiden_resolution="auto", leiden_objective="RB",
                 min_cluster_size=None, small_clusters="merge", feature_groups="auto",
                 sample_size=3000, max_graph_nodes=20000):
        self.n_clusters = n_clusters
        self.cols_ignore = cols_ignore
        self.seed = seed
        self.k_neighbors = k_neighbors
        self.use_snn = use_snn
        self.leiden_resolution = leiden_resolution
        self.leiden_objective = leiden_objective
        self.min_cluster_size = min_cluster_size
        self.small_clusters = small_clusters
        self.feature_groups = feature_groups
        self.sample_size = sample_size
        self.max_graph_nodes = max_graph_nodes

    # ------------------------------------------------------------------ public
    def fit(self, X, y=None):
        """Cluster the rows of ``X`` (DataFrame, ndarray or tensor) by missingness."""
        frame, kind = as_frame(X)
        positional = kind != "frame"
        labels = list(range(frame.shape[1])) if positional else list(frame.columns)
        if frame.shape[0] == 0:
            raise ValueError("data has no rows; cannot cluster")
        drop = set(resolve_columns(self.cols_ignore, labels, "cols_ignore", positional=positional))
        keep = [i for i in range(len(labels)) if i not in drop]
        if not keep:
            raise ValueError("no columns left to cluster after cols_ignore")
        mask = frame.isna().to_numpy()
        return self.fit_mask(mask[:, keep], [labels[i] for i in keep], positional=positional,
                             n_input_columns=len(labels))

    def fit_mask(self, mask, columns, *, positional=False, n_input_columns=None):
        """Cluster the rows of a boolean missingness ``mask`` whose columns are ``columns``.

        The path of :func:`~ciss_vae.pipeline.run_cissvae`, which reads the table
        once and clusters its mask. ``columns`` are the column labels (used to
        find repeated measures), or positions with ``positional``;
        ``cols_ignore`` is not applied here. ``n_input_columns`` is the width
        of the arrays :meth:`predict` will take (default: ``len(columns)``).
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape[0] == 0:
            raise ValueError("data has no rows; cannot cluster")
        self.columns_ = list(columns)
        self._positional = positional
        self._n_input_columns = len(self.columns_) if n_input_columns is None else int(n_input_columns)
        self.feature_groups_ = feature_groups(self.feature_groups, self.columns_, positional)
        first, inverse, counts = collapse(mask)
        F = group_fractions(mask[first], self.columns_, self.feature_groups_)
        trials = [len(v) for v in self.feature_groups_.values()]
        return self._fit_features(F, inverse, counts, mask.shape[0], trials)

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``."""
        return self.fit(X).labels_

    def predict(self, X):
        """Cluster of each row of ``X`` from its missingness pattern.

        Patterns of the reference (every pattern seen in ``fit``, or the
        ``max_graph_nodes`` sample of them) get their fitted cluster; others
        the count-weighted vote of their ``k_neighbors`` nearest reference rows
        (Leiden), which is how ``fit`` assigned the patterns outside its
        sample, or the nearest cluster centroid (KMeans). The vote runs in
        chunks of ``PREDICT_CHUNK`` patterns.
        """
        if not hasattr(self, "labels_"):
            raise RuntimeError("MissingnessClusterer is not fitted; call fit first")
        frame, kind = as_frame(X)
        positional = kind != "frame"
        if positional != self._positional:
            raise TypeError("predict needs the same kind of input as fit "
                            "(a DataFrame, or an array/tensor)")
        mask = frame.isna().to_numpy()
        if positional:
            if mask.shape[1] != self._n_input_columns:
                raise ValueError(f"X has {mask.shape[1]} columns; fit saw {self._n_input_columns}")
            cols = self.columns_
        else:
            pos = {c: i for i, c in enumerate(frame.columns)}
            missing = [c for c in self.columns_ if c not in pos]
            if missing:
                raise ValueError(f"X lacks columns used in fit: {missing!r}")
            cols = [pos[c] for c in self.columns_]
        return self.predict_mask(mask[:, cols])

    def predict_mask(self, mask):
        """Cluster of each row of a missingness ``mask`` over the columns ``columns_``, in that order."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape[0] == 0:
            return np.empty(0, dtype=np.int64)
        first, inverse, _ = collapse(mask)
        return self._predict_features(group_fractions(mask[first], self.columns_, self.feature_groups_))[inverse]

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict:
        """The fitted clusterer as plain values (JSON-ready); :meth:`from_state` rebuilds it.

        The training rows' labels are not kept: ``labels_`` of a rebuilt
        clusterer is empty, ``predict`` works as before.
        """
        return dict(
            type="missingness_clusterer",
            params=_plain_params(self.get_params()),
            positional=bool(self._positional),
            n_input_columns=int(self._n_input_columns),
            columns=[_plain_value(c) for c in self.columns_],
            feature_groups=[[str(k), [_plain_value(c) for c in v]] for k, v in self.feature_groups_.items()],
            patterns=np.asarray(self._Xu, dtype=float).tolist(),
            weights=np.asarray(self._w).astype(int).tolist(),
            pattern_labels=np.asarray(self._lab_u).astype(int).tolist(),
            centers=np.asarray(self.cluster_centers_, dtype=float).tolist(),
            n_clusters=int(self.n_clusters_),
        )

    @classmethod
    def from_state(cls, state: dict) -> "MissingnessClusterer":
        """The clusterer :meth:`to_state` described."""
        model = cls(**state["params"])
        model._positional = bool(state["positional"])
        model._n_input_columns = int(state["n_input_columns"])
        model.columns_ = list(state["columns"])
        model.feature_groups_ = {k: list(v) for k, v in state["feature_groups"]}
        model._Xu = np.asarray(state["patterns"], dtype=float).reshape(len(state["weights"]), -1)
        model._w = np.asarray(state["weights"], dtype=np.int64)
        model._lab_u = np.asarray(state["pattern_labels"], dtype=np.int64)
        model.cluster_centers_ = np.asarray(state["centers"], dtype=float)
        model.n_clusters_ = int(state["n_clusters"])
        model.labels_ = np.empty(0, dtype=np.int64)
        return model

    # ------------------------------------------------------------------ internals
    def _min_size(self, n):
        m = self.min_cluster_size
        if m is None:
            return max(10, int(np.ceil(0.01 * n)))
        if isinstance(m, float) and 0 < m < 1:
            return max(1, int(np.ceil(m * n)))
        _check_positive_int("min_cluster_size", m)
        return int(m)

    def _leiden_settings(self):
        """(objective, resolution grid, auto) from the parameters; ValueError if invalid."""
        obj = _OBJECTIVES.get(str(self.leiden_objective).lower())
        if obj is None:
            raise ValueError("leiden_objective must be 'RB', 'CPM' or 'modularity'; "
                             f"got {self.leiden_objective!r}")
        res = self.leiden_resolution
        auto = isinstance(res, str) and res == "auto"
        if obj == "modularity":
            return obj, (None,), auto
        if auto:
            return obj, _AUTO_GRID[obj], auto
        try:
            grid = tuple(np.atleast_1d(np.asarray(res, dtype=float)).tolist())
        except (TypeError, ValueError):
            grid = ()
        if not grid or not all(r > 0 for r in grid):
            raise ValueError(f"leiden_resolution must be 'auto' or positive; got {res!r}")
        return obj, grid, auto

    def _fit_features(self, P, inverse, counts, n, trials, transform=None):
        """:meth:`_fit_serial` on one BLAS / OpenMP thread.

        Their thread count changes the order of floating-point sums (kNN
        distances, KMeans, the latent-class fit), which breaks distance ties
        differently and moves rows between clusters; on one thread the labels
        depend on the seed only. The limit is lifted on return.
        """
        with threadpool_limits(limits=1):
            return self._fit_serial(P, inverse, counts, n, trials, transform)

    def _fit_serial(self, P, inverse, counts, n, trials, transform=None):
        """Cluster the fraction rows ``P`` (``inverse``: row -> row of ``P``).

        ``trials[j]`` is the number of columns behind feature ``j`` (its
        fraction is a binomial count over them); ``transform`` maps fractions
        to the clustering space (default: themselves).
        """
        if self.small_clusters not in ("merge", "raise", "keep"):
            raise ValueError("small_clusters must be 'merge', 'raise' or 'keep'; "
                             f"got {self.small_clusters!r}")
        _check_positive_int("k_neighbors", self.k_neighbors)
        _check_positive_int("sample_size", self.sample_size, 2)
        _check_positive_int("max_graph_nodes", self.max_graph_nodes, 2)
        if self.seed is not None and (not isinstance(self.seed, numbers.Integral)
                                      or isinstance(self.seed, bool)):
            raise TypeError(f"seed must be an int or None; got {self.seed!r}")
        if self.n_clusters is not None:
            _check_positive_int("n_clusters", self.n_clusters)
        else:
            self._leiden_settings()
        min_size = self._min_size(n)
        Pu, inv2 = np.unique(P, axis=0, return_inverse=True)
        inv2 = inv2.ravel()
        Xu = Pu if transform is None else transform(Pu)
        w = np.bincount(inv2, weights=counts).astype(np.int64)
        rows = inv2[inverse]  # row -> distinct pattern
        self.n_patterns_ = len(Xu)
        self._sil = None
        reference = np.arange(len(Xu))  # the patterns predict looks up and votes against
        rng = np.random.default_rng(self.seed)
        m = self.sample_size
        ids, mult = np.unique(rows if n <= m else rows[rng.choice(n, m, replace=False)],
                              return_counts=True)
        self._sample = (ids, mult.astype(float), Pu[ids] * trials, np.asarray(trials, float))
        self.resolution_ = None
        if self.n_clusters is not None:
            if self.n_clusters > len(Xu):
                raise ValueError(f"n_clusters={self.n_clusters} exceeds the {len(Xu)} distinct "
                                 "missingness pattern(s) in the data")
            from sklearn.cluster import KMeans
            km = KMeans(n_clusters=self.n_clusters, n_init=10, random_state=self.seed)
            lab = km.fit(Xu, sample_weight=w).labels_
            if len(Xu) > self.max_graph_nodes:
                reference = np.sort(rng.choice(len(Xu), self.max_graph_nodes, replace=False,
                                               p=w / w.sum()))
        elif len(Xu) == 1:
            lab = np.zeros(1, dtype=np.int64)
        else:
            lab, reference = self._leiden(Xu, w, min_size, rng)
        lab = self._guard(lab, w, Xu, min_size)
        # number clusters by decreasing size, ties by first row
        K = int(lab.max()) + 1
        first_row = np.full(len(Xu), n, dtype=np.int64)
        np.minimum.at(first_row, rows, np.arange(n))
        frow = np.full(K, n, dtype=np.int64)
        np.minimum.at(frow, lab, first_row)
        order = np.lexsort((frow, -np.bincount(lab, weights=w, minlength=K)))
        lab = np.argsort(order)[lab].astype(np.int64)
        self.labels_ = lab[rows]
        self.n_clusters_ = K
        self.cluster_sizes_ = np.bincount(self.labels_, minlength=K).astype(np.int64)
        self.cluster_centers_ = np.vstack([np.average(Xu[lab == c], axis=0, weights=w[lab == c])
                                           for c in range(K)])
        self.silhouette_ = self._silhouette(Xu, lab)
        self._Xu, self._w, self._lab_u = Xu[reference], w[reference], lab[reference]
        logger.info("missingness clusters: K=%d, sizes=%s, silhouette=%s, resolution=%s",
                    K, self.cluster_sizes_.tolist(), self.silhouette_, self.resolution_)
        return self

    def _leiden(self, Xu, w, min_size, rng):
        """Labels of the patterns ``Xu``, and the patterns the graph was built on (all, or a sample)."""
        ig, la = _import_leiden()
        obj, grid, auto = self._leiden_settings()
        nodes = np.arange(len(Xu))
        if len(Xu) > self.max_graph_nodes:
            nodes = np.sort(rng.choice(len(Xu), self.max_graph_nodes, replace=False,
                                       p=w / w.sum()))
            logger.info("%d distinct patterns: clustering a count-weighted sample of %d, "
                        "assigning the rest by neighbour vote", len(Xu), len(nodes))
        r, c, v = _knn_graph(Xu[nodes], w[nodes], self.k_neighbors, self.use_snn, self._mutual)
        g = ig.Graph(n=len(nodes), edges=np.column_stack([r, c]).tolist())
        g.es["weight"] = v.tolist()
        kw = {"weights": "weight", "seed": self.seed, "n_iterations": 2}
        scale = 1.0
        if obj == "cpm":
            tot = float(w[nodes].sum())
            kw.update(partition_type=la.CPMVertexPartition, node_sizes=w[nodes].tolist())
            scale = v.sum() / max(tot * (tot - 1) / 2, 1.0)
        else:
            kw["partition_type"] = (la.RBConfigurationVertexPartition if obj == "rb"
                                    else la.ModularityVertexPartition)
        cands = []
        if len(nodes) < len(Xu):  # the rest's neighbours among the sample: one search for every resolution
            rest = np.setdiff1d(np.arange(len(Xu)), nodes)
            near = _nearest(_neighbour_index(Xu[nodes]), Xu[rest], self.k_neighbors)
        for gamma in grid:
            extra = {} if gamma is None else {"resolution_parameter": gamma * scale}
            part = np.asarray(la.find_partition(g, **kw, **extra).membership)
            if len(nodes) < len(Xu):
                lab = np.empty(len(Xu), dtype=np.int64)
                lab[nodes] = part
                lab[rest] = _vote(near, w[nodes], part, self.k_neighbors)
                part = lab
            cands.append((gamma, part))
            logger.debug("Leiden %s resolution %s: %d clusters", obj, gamma, part.max() + 1)
            if auto and part.max() + 1 >= _N_MICRO:
                break
        if auto:  # Ward merges of the finest partition (its small clusters absorbed first)
            fine = cands[-1][1]
            if self.small_clusters == "merge":
                fine = _merge_small(fine, w, Xu, min_size)[0]
            cands += [(cands[-1][0], lv) for lv in _ward_levels(fine, w, Xu)]
        lab, self.resolution_ = _best_candidate(cands, w, Xu, min_size, self.small_clusters == "merge", self._bic)
        if len(nodes) < len(Xu):  # the rest vote on the final labels, as predict will
            lab = lab.copy()
            lab[rest] = _vote(near, w[nodes], lab[nodes], self.k_neighbors)
        return lab, nodes

    def _guard(self, lab, w, Xu, min_size):
        lab = np.unique(lab, return_inverse=True)[1].ravel()
        size = np.bincount(lab, weights=w)
        small = int((size < min_size).sum()) if len(size) > 1 else 0
        if not small:
            return lab
        msg = (f"{small} of {len(size)} clusters have fewer than min_cluster_size="
               f"{min_size} rows (sizes {sorted(size.astype(int).tolist())})")
        if self.small_clusters == "raise":
            raise ValueError(msg + "; lower min_cluster_size or use small_clusters='merge'")
        if self.small_clusters == "keep":
            logger.warning("%s; kept because small_clusters='keep'", msg)
            return lab
        lab, merged = _merge_small(lab, w, Xu, min_size)
        lab = np.unique(lab, return_inverse=True)[1].ravel()
        logger.warning("%s; merged %d of them into their nearest cluster, %d clusters left",
                       msg, merged, lab.max() + 1)
        return lab

    def _bic(self, lab):
        return _binomial_bic(self._sample, lab)

    def _silhouette(self, Xu, lab):
        if self._sil is None:
            from sklearn.metrics import pairwise_distances
            self._sil = pairwise_distances(Xu[self._sample[0]])
        return _sample_silhouette(self._sil, self._sample[1], lab[self._sample[0]])

    def _predict_features(self, F):
        _, inv = np.unique(np.vstack([self._Xu, F]), axis=0, return_inverse=True)
        inv = inv.ravel()
        lookup = np.full(inv.max() + 1, -1, dtype=np.int64)
        lookup[inv[:len(self._Xu)]] = self._lab_u
        out = lookup[inv[len(self._Xu):]]
        new = np.flatnonzero(out < 0)
        if not len(new):
            return out
        index = _neighbour_index(self._Xu) if self.n_clusters is None else None
        for start in range(0, len(new), PREDICT_CHUNK):
            part = new[start:start + PREDICT_CHUNK]
            if index is not None:
                out[part] = _vote(_nearest(index, F[part], self.k_neighbors), self._w, self._lab_u, self.k_neighbors)
            else:
                out[part] = (((F[part][:, None, :] - self.cluster_centers_[None]) ** 2)
                             .sum(axis=2).argmin(axis=1))
        return out.astype(np.int64)


def cluster_on_missing(data, cols_ignore=None, n_clusters=None, seed=42, k_neighbors=30,
                       use_snn=True, leiden_resolution="auto", leiden_objective="RB",
                       min_cluster_size=None, small_clusters="merge", feature_groups="auto",
                       sample_size=3000, max_graph_nodes=20000):
    """Cluster rows by their missingness pattern.

    Leiden on a kNN graph of the distinct patterns with an automatically
    chosen resolution when ``n_clusters`` is None, KMeans otherwise. The full
    method and every parameter are described in :class:`MissingnessClusterer`
    (use it to assign clusters to new rows).

    Parameters
    ----------
    data : DataFrame, ndarray or torch.Tensor of shape (n_rows, n_columns)
        Missing values are NaN/None. Not modified.
    cols_ignore, n_clusters, seed, k_neighbors, use_snn, leiden_resolution, \
leiden_objective, min_cluster_size, small_clusters, feature_groups, \
sample_size, max_graph_nodes
        See :class:`MissingnessClusterer`.

    Returns
    -------
    labels : ndarray of int64, shape (n_rows,)
        Values 0..K-1, numbered by decreasing cluster size (ties: first row).
        Every cluster has at least ``min_cluster_size`` rows unless
        ``small_clusters="keep"``, so K never exceeds what the rows support.
        Data without any missing value, a single row, or rows without
        cluster structure give one cluster.
    silhouette : float or None
        Euclidean silhouette of the clustered features on a seeded sample of
        at most ``sample_size`` rows; None when there is only one cluster.

    Raises
    ------
    ValueError
        Empty data, no column left, unknown ``cols_ignore``, ``n_clusters``
        above the number of distinct patterns, invalid parameters.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(400, 8)), columns=list("abcdefgh"))
    >>> df.iloc[:200, :4] = df.iloc[:200, :4].mask(rng.random((200, 4)) < 0.7)
    >>> df.iloc[200:, 4:] = df.iloc[200:, 4:].mask(rng.random((200, 4)) < 0.7)
    >>> labels, sil = cluster_on_missing(df, seed=1)
    >>> np.bincount(labels).tolist(), round(sil, 2)
    ([201, 199], 0.47)
    """
    model = MissingnessClusterer(
        n_clusters, cols_ignore=cols_ignore, seed=seed, k_neighbors=k_neighbors,
        use_snn=use_snn, leiden_resolution=leiden_resolution, leiden_objective=leiden_objective,
        min_cluster_size=min_cluster_size, small_clusters=small_clusters,
        feature_groups=feature_groups, sample_size=sample_size,
        max_graph_nodes=max_graph_nodes).fit(data)
    return model.labels_, model.silhouette_


def _infer_trials(X, max_n=100):
    """Per column, the smallest n <= max_n making n * values whole (1 if none)."""
    out = np.ones(X.shape[1])
    for j in range(X.shape[1]):
        v = np.unique(X[:, j])
        for n in range(1, max_n + 1):
            if np.allclose(v * n, np.round(v * n), atol=1e-6):
                out[j] = n
                break
    return out


def cluster_on_missing_prop(prop_matrix, *, n_clusters=None, seed=42, k_neighbors=30,
                            use_snn=True, snn_mutual=True, leiden_resolution="auto",
                            leiden_objective="RB", metric="euclidean", scale_features=False,
                            min_cluster_size=None, small_clusters="merge",
                            sample_size=3000, max_graph_nodes=20000):
    """Cluster rows of a missingness-proportion matrix (samples x features).

    Same method as :func:`cluster_on_missing` (distinct rows collapsed, Leiden
    with the automatic resolution choice or weighted KMeans, small clusters
    merged), applied to the given proportions, typically the result of
    :func:`~ciss_vae.proportions.create_missingness_prop_matrix`.

    The automatic choice scores partitions with a binomial latent-class
    BIC; a feature's number of source columns comes from a
    ``MissingnessMatrix``'s ``feature_columns_map``, or else from the values'
    granularity (the smallest n <= 100 that makes every n * value whole; 1
    when there is none).

    Parameters
    ----------
    prop_matrix : MissingnessMatrix, DataFrame, ndarray or tensor (n_samples, n_features)
        Finite values; clipped to [0, 1]. Not modified.
    snn_mutual : bool, default True
        Keep only kNN edges whose two ends list each other.
    metric : {"euclidean", "cosine"}, default "euclidean"
        "cosine" L2-normalises the rows (all-zero rows stay at the origin)
        and then uses Euclidean distances, which orders neighbours as the
        cosine distance does.
    scale_features : bool, default False
        Standardise each feature (after clipping) before clustering.
    n_clusters, seed, k_neighbors, use_snn, leiden_resolution, leiden_objective, \
min_cluster_size, small_clusters, sample_size, max_graph_nodes
        As in :class:`MissingnessClusterer`.

    Returns
    -------
    labels : ndarray of int64, shape (n_samples,)
    silhouette : float or None

    Examples
    --------
    >>> import numpy as np
    >>> P = np.r_[np.full((50, 3), 0.1), np.full((50, 3), 0.8)]
    >>> labels, sil = cluster_on_missing_prop(P, n_clusters=2)
    >>> np.bincount(labels).tolist(), round(sil, 2)
    ([50, 50], 1.0)
    """
    if hasattr(prop_matrix, "detach") and hasattr(prop_matrix, "cpu"):
        prop_matrix = prop_matrix.detach().cpu().numpy()
    try:
        X = (prop_matrix.to_numpy(dtype=float) if hasattr(prop_matrix, "to_numpy")
             else np.asarray(prop_matrix, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"prop_matrix must hold numbers: {exc}") from exc
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"prop_matrix must be a non-empty 2-D matrix; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("prop_matrix contains NaN or infinite values")
    X = np.clip(X, 0.0, 1.0)
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine'; got {metric!r}")
    fmap = getattr(prop_matrix, "feature_columns_map", None)
    if isinstance(fmap, dict) and len(fmap) == X.shape[1]:
        trials = np.array([len(v) for v in fmap.values()], dtype=float)
    else:
        trials = _infer_trials(X)
    scaler = None
    if scale_features:
        from sklearn.preprocessing import StandardScaler
        scaler = StandardScaler().fit(X)

    def transform(P):
        Z = P if scaler is None else scaler.transform(P)
        if metric == "cosine":
            norm = np.linalg.norm(Z, axis=1, keepdims=True)
            Z = np.divide(Z, norm, out=np.zeros_like(Z), where=norm > 0)
        return Z

    model = MissingnessClusterer(
        n_clusters, seed=seed, k_neighbors=k_neighbors, use_snn=use_snn,
        leiden_resolution=leiden_resolution, leiden_objective=leiden_objective,
        min_cluster_size=min_cluster_size, small_clusters=small_clusters,
        sample_size=sample_size, max_graph_nodes=max_graph_nodes)
    model._mutual = bool(snn_mutual)
    n = X.shape[0]
    model._fit_features(X, np.arange(n), np.ones(n), n, trials, transform)
    return model.labels_, model.silhouette_
