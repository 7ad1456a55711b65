"""Per-feature missingness proportions for repeated measures.

A row's missingness can be summarised per *feature* rather than per column:
when a biomarker is measured at several visits (``Y1_1``, ``Y1_2``, ...), the
fraction of its visits that are missing says *where* the row is missing
without the visit-to-visit noise of the raw mask. This module builds that
matrix (:func:`create_missingness_prop_matrix`) and detects repeated-measure
column names for the default clustering (``_detect_repeated_measures``).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["MissingnessMatrix", "cluster_on_missing_prop", "create_missingness_prop_matrix"]


class MissingnessMatrix:
    """Proportion of missing source columns per sample and feature.

    Parameters
    ----------
    data : ndarray of shape (n_samples, n_features)
        Fractions in [0, 1].
    feature_columns_map : dict of str to list of str
        The source columns behind each feature, in output order.
    sample_names : list of str
        One name per row.

    Attributes
    ----------
    data : ndarray of shape (n_samples, n_features)
    feature_columns_map : dict of str to list of str
    feature_names : list of str
    sample_names : list of str
    """

    def __init__(self, data, feature_columns_map, sample_names):
        self.data = np.asarray(data, dtype=float)
        self.feature_columns_map = dict(feature_columns_map)
        self.feature_names = list(self.feature_columns_map)
        self.sample_names = list(sample_names)

    @property
    def shape(self):
        return self.data.shape

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, key):
        return self.data[key]

    def __array__(self, dtype=None, copy=None):
        out = self.data if dtype is None else self.data.astype(dtype)
        return out.copy() if copy else out

    def to_numpy(self, dtype=None, copy=False):
        """Return the proportions as an ndarray."""
        out = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return out.copy() if copy and out is self.data else out

    def to_dataframe(self):
        """Return the proportions as a DataFrame (samples x features)."""
        return pd.DataFrame(self.data.copy(), index=pd.Index(self.sample_names),
                            columns=pd.Index(self.feature_names))

    def head(self, n=5):
        """First ``n`` rows as a DataFrame."""
        return self.to_dataframe().head(n)

    def __repr__(self):
        return f"MissingnessMatrix(shape={self.shape})\n{self.to_dataframe().to_string()}"


def _as_frame(data, what="data"):
    """DataFrame view of a DataFrame, ndarray or tensor (never mutated)."""
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # torch.Tensor, no torch import
        data = data.detach().cpu().numpy()
    if isinstance(data, (np.ndarray, list, tuple)):
        arr = np.asarray(data)
        if arr.ndim != 2:
            raise ValueError(f"{what} must be 2-D (rows x columns); got {arr.ndim}-D")
        return pd.DataFrame(arr)
    raise TypeError(f"{what} must be a pandas DataFrame, a numpy array or a torch tensor; "
                    f"got {type(data).__name__}")


def _missing_mask(data):
    """(mask, column labels, positional) for a DataFrame, ndarray or tensor."""
    if isinstance(data, pd.DataFrame):
        return data.isna().to_numpy(), list(data.columns), False
    if hasattr(data, "detach") and hasattr(data, "cpu"):
        data = data.detach().cpu().numpy()
    if not isinstance(data, (np.ndarray, list, tuple)):
        raise TypeError("data must be a pandas DataFrame, a numpy array or a torch tensor; "
                        f"got {type(data).__name__}")
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ValueError(f"data must be 2-D (rows x columns); got {arr.ndim}-D")
    mask = np.isnan(arr) if arr.dtype.kind in "fc" else pd.isna(arr)
    return np.asarray(mask, dtype=bool), list(range(arr.shape[1])), True


def _collapse(mask):
    """Distinct rows of a boolean mask: (first row of each, row -> pattern, counts)."""
    packed = np.packbits(mask, axis=1)
    width = packed.shape[1]
    if width <= 8:
        buf = np.zeros((len(mask), 8), dtype=np.uint8)
        buf[:, :width] = packed
        keys = buf.view("<u8").ravel()
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, width))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                          return_counts=True)
    return first, inverse.ravel(), counts


def _resolve_columns(columns, cols_ignore, positional):
    """Positions of ``cols_ignore`` in ``columns``; ValueError naming unknown ones.

    With ``positional`` (ndarray/tensor input) entries are integer positions;
    otherwise labels, also matched by their string form (so ``"0"`` finds the
    integer label ``0`` and ``0`` finds ``"0"``).
    """
    if cols_ignore is None:
        return []
    if isinstance(cols_ignore, (str, int, np.integer)):
        cols_ignore = [cols_ignore]
    ncol = len(columns)
    out, unknown = [], []
    if positional:
        for c in cols_ignore:
            if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and -ncol <= c < ncol:
                out.append(int(c) % ncol)
            else:
                unknown.append(c)
        if unknown:
            raise ValueError(f"cols_ignore entries {unknown!r} are not column positions of an "
                             f"array with {ncol} columns (use integer positions for arrays)")
        return sorted(set(out))
    labels = list(columns)
    by_label = {lab: i for i, lab in enumerate(labels)}
    by_str = {str(lab): i for i, lab in enumerate(labels)}
    for c in cols_ignore:
        try:
            i = by_label.get(c)
        except TypeError:  # unhashable
            i = None
        if i is None:
            i = by_str.get(str(c))
        if i is None:
            unknown.append(c)
        else:
            out.append(i)
    if unknown:
        raise ValueError(f"cols_ignore names not found in the data's columns: {unknown!r}")
    return sorted(set(out))


def _detect_repeated_measures(names):
    """Groups of repeated-measure columns found from their names, or None.

    A name splits into a stem and a time point, either at its last separator
    (``_ . -`` or space: ``bmi_1``, ``Y1_t2``) or, for fixed-width codes where
    every name of the data ends in a digit run of the same length, before its
    last ``L`` digits (``Y11`` .. ``Y55`` -> stems ``Y1`` .. ``Y5``; not when
    the numbers are consecutive, as ``lab10`` .. ``lab29``). A split counts as
    a repeated-measures design only if at least two stems have at least two
    columns each and share at least two time points (compared by their
    digits, so ``bmi_1`` and ``hb_t1`` share time 1); among the
    valid splits the one covering the most columns (then the most stems)
    wins. Generic names (``x1 .. x20``, ``feature_0 ..``) give a single stem
    and therefore None. Returns ``{stem: [column positions]}`` for the stems
    with two or more columns.
    """
    names = [n for n in names]
    if len(names) < 4 or not all(isinstance(n, str) for n in names):
        return None
    runs = [len(m.group(0)) if (m := re.search(r"\d+$", n)) else 0 for n in names]
    splitters = [lambda n: (m.group(1), m.group(2))
                 if (m := re.match(r"^(.+)[_.\- ]([^_.\- ]*\d[^_.\- ]*)$", n)) else None]
    width = max(set(runs) - {0, 1}, key=runs.count, default=0)  # commonest code width
    nums = sorted(int(n[-width:]) for n, r in zip(names, runs) if width and r == width)
    # fixed-width codes whose numbers are not just consecutive (lab10..lab29 is a numbering)
    if len(nums) >= 4 and nums != list(range(nums[0], nums[0] + len(nums))):
        for cut in range(1, width):
            splitters.append(lambda n, cut=cut: (n[:-cut].rstrip("_.- "), n[-cut:])
                             if re.search(rf"(?<!\d)\d{{{width}}}$", n) else None)
    best, best_key = None, (0, 0)
    for split in splitters:
        groups = defaultdict(list)
        times = defaultdict(set)
        for i, n in enumerate(names):
            s = split(n)
            if s is not None and s[0]:
                groups[s[0]].append(i)
                times[s[0]].add(re.sub(r"\D", "", s[1]))
        groups = {k: v for k, v in groups.items() if len(v) >= 2}
        if len(groups) < 2:
            continue
        stems = list(groups)
        shared = any(len(times[a] & times[b]) >= 2
                     for ia, a in enumerate(stems) for b in stems[ia + 1:])
        key = (sum(len(v) for v in groups.values()), len(groups))
        if shared and key > best_key:
            best, best_key = groups, key
    return best


def create_missingness_prop_matrix(data, index_col=None, cols_ignore=None, na_values=None,
                                   repeat_feature_names=None, timepoint_prefix=None,
                                   nonint_timepoint=False, column_mapping=None, loose=False):
    """Fraction of missing values per sample and feature (repeated measures collapsed).

    Parameters
    ----------
    data : DataFrame, ndarray or torch.Tensor of shape (n_samples, n_columns)
        Wide table; array columns are named ``"0"``, ``"1"``, ... Not modified.
    index_col : str, optional
        Column holding the sample names; it is not scored. Without it the
        sample names are the DataFrame index as strings.
    cols_ignore : list of str, optional
        Columns left out of the matrix. Unknown names raise ValueError.
    na_values : list, optional
        Values that count as missing, in addition to NaN/None and +-inf
        (default: only those).
    repeat_feature_names : list of str, optional
        Base names of repeated measures. Each base collects the columns that
        match, by the first rule that applies: ``nonint_timepoint`` ->
        ``^<base>_[A-Za-z0-9]+$``; ``timepoint_prefix`` ->
        ``^<base>_<prefix>\\d+$``; ``loose`` -> ``^<base>`` (prefix match);
        otherwise ``^<base>_\\d+$``, or, if that matches nothing, ``^<base>\\d+$``
        (codes such as ``Y11..Y15`` for base ``Y1``). A base without any match
        raises ValueError.
    timepoint_prefix : str, optional
    nonint_timepoint : bool, default False
    column_mapping : dict of str to list of str, optional
        Explicit ``{feature: [columns]}``; takes precedence over
        ``repeat_feature_names``. Unknown columns raise ValueError.
    loose : bool, default False

    Returns
    -------
    MissingnessMatrix
        Columns: the ``column_mapping`` keys, then the repeat bases, then
        every remaining column as its own (0/1) feature.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"id": ["a", "b"], "y_1": [1.0, np.nan],
    ...                    "y_2": [np.nan, np.nan], "age": [40, np.nan]})
    >>> m = create_missingness_prop_matrix(df, index_col="id", repeat_feature_names=["y"])
    >>> m.to_dataframe()
         y  age
    a  0.5  0.0
    b  1.0  1.0
    """
    df = _as_frame(data)
    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    if df.columns.duplicated().any():
        raise ValueError("column names must be unique (after conversion to strings)")
    if index_col is not None and str(index_col) in df.columns:
        samples = df[str(index_col)].astype(str).tolist()
        df = df.drop(columns=[str(index_col)])
    else:
        samples = [str(i) for i in df.index]
    drop = _resolve_columns(df.columns, cols_ignore, positional=False)
    df = df.drop(columns=df.columns[drop])
    cols = list(df.columns)
    colset = set(cols)
    fmap: dict[str, list[str]] = {}
    for base, members in (column_mapping or {}).items():
        members = [str(c) for c in ([members] if isinstance(members, str) else members)]
        bad = [c for c in members if c not in colset]
        if bad:
            raise ValueError(f"column_mapping[{base!r}] names unknown columns {bad!r}")
        if not members:
            raise ValueError(f"column_mapping[{base!r}] is empty")
        fmap[str(base)] = members
    for base in repeat_feature_names or []:
        base = str(base)
        if base in fmap:
            continue
        b = re.escape(base)
        if nonint_timepoint:
            pat = rf"^{b}_[A-Za-z0-9]+$"
        elif timepoint_prefix is not None:
            pat = rf"^{b}_{re.escape(str(timepoint_prefix))}\d+$"
        elif loose:
            pat = rf"^{b}"
        else:
            pat = rf"^{b}_\d+$"
        members = [c for c in cols if re.match(pat, c)]
        if not members and pat == rf"^{b}_\d+$":  # fixed-width codes without separator
            pat = rf"^{b}\d+$"
            members = [c for c in cols if re.match(pat, c)]
        if not members:
            raise ValueError(f"no column matches repeated feature {base!r} (pattern {pat!r})")
        fmap[base] = members
    claimed = {c for members in fmap.values() for c in members}
    for c in cols:
        if c not in claimed:
            fmap[c] = [c]
    miss = df.isna().to_numpy().copy()
    num = df.select_dtypes(include=[np.number, "bool"])
    if num.shape[1]:
        pos = [df.columns.get_loc(c) for c in num.columns]
        miss[:, pos] |= np.isinf(num.to_numpy(dtype=float))
    if na_values is not None:
        vals = [v for v in np.atleast_1d(np.asarray(na_values, dtype=object)).tolist()
                if not (isinstance(v, float) and (np.isnan(v) or np.isinf(v)))]
        if vals:
            miss |= df.isin(vals).to_numpy()
    pos = {c: i for i, c in enumerate(cols)}
    out = np.empty((len(df), len(fmap)), dtype=float)
    for j, members in enumerate(fmap.values()):
        out[:, j] = miss[:, [pos[c] for c in members]].mean(axis=1)
    logger.debug("missingness proportion matrix: %d samples x %d features", *out.shape)
    return MissingnessMatrix(out, fmap, samples)


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
    :func:`create_missingness_prop_matrix`. It lives here with the matrix;
    ``ciss_vae.clustering`` and ``ciss_vae.utils.clustering`` export it too.

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

    from .clustering import MissingnessClusterer  # clustering imports this module

    model = MissingnessClusterer(
        n_clusters, seed=seed, k_neighbors=k_neighbors, use_snn=use_snn,
        leiden_resolution=leiden_resolution, leiden_objective=leiden_objective,
        min_cluster_size=min_cluster_size, small_clusters=small_clusters,
        sample_size=sample_size, max_graph_nodes=max_graph_nodes)
    model._mutual = bool(snn_mutual)
    n = X.shape[0]
    model._fit_features(X, np.arange(n), np.ones(n), n, trials, transform)
    return model.labels_, model.silhouette_
