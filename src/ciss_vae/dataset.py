"""ClusterDataset: the table as tensors, with a per-cluster validation hold-out.

The dataset reads the caller's table through :class:`~ciss_vae.schema.TableSchema`,
relabels the clusters to ``0..K-1``, holds out a fraction of the observed cells of
every cluster for validation, standardises the continuous columns with statistics
of the training cells only, and fills every missing or held-out cell with
``replacement_value``. All of it is stored as tensors that the training engine
slices by row index.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ciss_vae.schema import TableSchema

logger = logging.getLogger(__name__)


def encode_clusters(cluster_labels, n_rows: int, index: pd.Index | None = None):
    """Codes ``0..K-1`` and the sorted original labels of a per-row cluster vector.

    Accepts a list, ndarray, tensor or Series (a Series is aligned on ``index`` when
    its index differs from the data's). ``None`` means one cluster.
    """
    if cluster_labels is None:
        return np.zeros(n_rows, dtype=np.int64), np.array([0])
    if isinstance(cluster_labels, pd.DataFrame):
        if cluster_labels.shape[1] != 1:
            raise ValueError("`cluster_labels` must be one column, got a DataFrame with several")
        cluster_labels = cluster_labels.iloc[:, 0]
    if isinstance(cluster_labels, pd.Series):
        if index is not None and len(cluster_labels) == n_rows and not cluster_labels.index.equals(index):
            if set(cluster_labels.index) == set(index) and cluster_labels.index.is_unique:
                cluster_labels = cluster_labels.reindex(index)
            else:
                raise ValueError("the index of the `clusters` Series does not match the index of the data")
        labels = cluster_labels.to_numpy()
    elif isinstance(cluster_labels, torch.Tensor):
        labels = cluster_labels.detach().cpu().numpy()
    else:
        labels = np.asarray(list(cluster_labels) if not isinstance(cluster_labels, np.ndarray) else cluster_labels)
    labels = labels.reshape(-1) if labels.ndim > 1 and max(labels.shape) == labels.size else labels
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(f"`clusters` has {len(labels)} labels, but the data has {n_rows} rows")
    missing = pd.isna(labels)
    if missing.any():
        raise ValueError(f"`clusters` has a missing label at row {int(np.flatnonzero(missing)[0])}")
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    try:
        names, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        raise TypeError("`clusters` labels must be of one sortable type") from exc
    return codes.astype(np.int64), names


def _proportions(val_proportion, names: np.ndarray) -> np.ndarray:
    k = len(names)
    if isinstance(val_proportion, (pd.Series, Mapping)):
        lookup = dict(val_proportion.items())
        keys = {_key(x) for x in lookup}
        missing = [n for n in names.tolist() if _key(n) not in keys]
        if missing:
            raise ValueError(f"`val_proportion` has no value for clusters {missing!r}")
        by_key = {_key(x): v for x, v in lookup.items()}
        props = [by_key[_key(n)] for n in names.tolist()]
    elif isinstance(val_proportion, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(val_proportion, str):
        props = list(np.asarray(val_proportion, dtype=float).reshape(-1))
        if len(props) != k:
            raise ValueError(
                f"`val_proportion` has {len(props)} values, but there are {k} clusters "
                "(give one per cluster, in sorted label order)"
            )
    elif isinstance(val_proportion, Real) and not isinstance(val_proportion, bool):
        props = [float(val_proportion)] * k
    else:
        raise TypeError("`val_proportion` must be a number, a sequence, a mapping or a Series")
    props = np.asarray(props, dtype=float)
    if np.isnan(props).any() or (props < 0).any() or (props > 1).any():
        raise ValueError(f"`val_proportion` values must lie in [0, 1], got {props.tolist()}")
    return props


def _key(x):
    return x.item() if isinstance(x, np.generic) else x


def _statistics(train: np.ndarray, schema: TableSchema) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds of the training cells of continuous columns (binary columns: 0 and 1).

    A column with no training cell gets 0 and 1; a constant one is scaled by 1 (logged).
    """
    cont = schema.continuous
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(cont, np.nanmean(np.where(np.isnan(train).all(0), 0.0, train), axis=0), 0.0)
        stds = np.where(cont, np.nanstd(np.where(np.isnan(train).all(0), 1.0, train), axis=0), 1.0)
    flat = cont & (stds == 0)
    if flat.any():
        logger.warning("constant columns %r are scaled by 1 instead of 0",
                       [schema.model_names[j] for j in np.flatnonzero(flat)])
        stds = np.where(flat, 1.0, stds)
    return means, stds


def _imputable_matrix(imputable, schema: TableSchema) -> np.ndarray:
    """Bool (N, n_features): True where the model may fill a missing cell."""
    n = len(schema.index)
    p = len(schema.names)
    if isinstance(imputable, pd.DataFrame):
        if schema.kind == "frame":
            cols = list(imputable.columns)
            if cols != schema.names:
                if set(map(str, cols)) == set(map(str, schema.names)) and len(cols) == p:
                    imputable = imputable.rename(columns=str)[[str(c) for c in schema.names]]
                else:
                    raise ValueError("the columns of `imputable` do not match the columns of the data")
        arr = imputable.to_numpy(dtype=float, na_value=np.nan)
    elif isinstance(imputable, torch.Tensor):
        arr = imputable.detach().cpu().numpy().astype(float)
    else:
        arr = np.asarray(imputable, dtype=float)
    if arr.shape != (n, p):
        raise ValueError(f"`imputable` has shape {arr.shape}, but the data has shape {(n, p)}")
    if np.isnan(arr).any() or not np.isin(arr, [0, 1]).all():
        raise ValueError("`imputable` must hold only 0 (do not impute) and 1 (impute)")
    return arr[:, schema.model_columns].astype(bool)


class ClusterDataset(Dataset):
    """A table with cluster labels, a validation hold-out and standardised tensors.

    Parameters
    ----------
    data : pandas.DataFrame, numpy.ndarray or torch.Tensor
        The table, rows x columns, with NaN or None for missing cells.
    cluster_labels : array-like of shape (n_rows,), optional
        Cluster of each row: any sortable labels (strings, 1-based integers, ...).
        They are relabelled to ``0..K-1`` in sorted order; :attr:`cluster_names`
        maps codes back. ``None`` puts every row in one cluster.
    val_proportion : float, sequence, mapping or Series, default=0.1
        Fraction of the observed cells of each cluster held out for validation,
        per column (one-hot groups are held out whole). A sequence gives one value
        per cluster in sorted label order; a mapping or Series is keyed by the
        caller's own labels.
    replacement_value : float, default=0.0
        Value put in missing and held-out cells, in standardised units (0 is the
        column mean of a continuous column, class 0 of a binary one).
    columns_ignore : list of names or positions, optional
        Columns never held out for validation nor clustered on. Numeric ones are
        model inputs; all are returned exactly as given.
    imputable : DataFrame, ndarray or Tensor of shape (n_rows, n_columns), optional
        Do-not-impute matrix: 1 where a missing cell may be filled, 0 where it must
        stay missing. Observed cells are never erased, whatever their entry.
    val_seed : int, default=42
        Seed of the hold-out selection.
    binary_feature_mask : sequence of bool (one per column) or list of names, optional
        Columns holding 0/1 values. Boolean columns are binary automatically.
    categorical_column_map : dict, optional
        ``{variable: [dummy columns]}`` for one-hot encoded categorical variables.
        The dummies are treated as binary and held out together.

    Attributes
    ----------
    data : torch.Tensor of shape (n_rows, n_features)
        Standardised training matrix, missing and held-out cells replaced.
    masks : torch.Tensor of bool
        True on the cells trained on (observed and not held out).
    val_mask : torch.Tensor of bool
        True on the held-out validation cells.
    val_data : torch.Tensor
        Raw values at validation cells, NaN elsewhere.
    raw_data : torch.Tensor
        The model columns as float32, NaN for missing.
    missing_mask : torch.Tensor of bool
        True on originally missing cells.
    imputable : torch.Tensor of bool
        True where a missing cell may be filled (all True without a DNI matrix).
    cluster_labels : torch.Tensor of int64
        Cluster code ``0..K-1`` of each row.
    cluster_names : numpy.ndarray
        Original label of each cluster code.
    feature_means, feature_stds : torch.Tensor
        Statistics of the training cells (binary columns: 0 and 1).
    feature_names : list
        Names of the model columns.

    Notes
    -----
    Differences from the published implementation: labels are relabelled here
    (not only in ``run_cissvae``), proportions may be keyed by the caller's labels,
    a cluster's only observed cell of a column is never held out, one-hot groups
    are candidates only when every dummy is observed, non-numeric ignored columns
    are returned untouched instead of being filled with model output, and the
    caller's index, dtypes and observed values are kept for the output.

    Examples
    --------
    >>> import numpy as np
    >>> from ciss_vae.classes.cluster_dataset import ClusterDataset
    >>> X = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 4.0], [5.0, 6.0]])
    >>> ds = ClusterDataset(X, cluster_labels=["a", "a", "b", "b"], val_proportion=0.0)
    >>> ds.n_clusters, len(ds)
    (2, 4)
    """

    def __init__(
        self,
        data,
        cluster_labels=None,
        val_proportion=0.1,
        replacement_value: float = 0.0,
        columns_ignore=None,
        imputable=None,
        val_seed: int | None = 42,
        binary_feature_mask=None,
        categorical_column_map=None,
    ):
        schema, X = TableSchema.from_data(data, columns_ignore, binary_feature_mask, categorical_column_map)
        self._build(schema, X, cluster_labels, val_proportion, replacement_value, imputable, val_seed)

    @classmethod
    def from_table(cls, schema: TableSchema, X: np.ndarray, cluster_labels=None, val_proportion=0.1,
                   replacement_value: float = 0.0, imputable=None, val_seed: int | None = 42,
                   statistics=None) -> "ClusterDataset":
        """The dataset of a table the schema has already read (``X``: its model values), without reading it again.

        ``statistics`` = ``(means, stds)`` standardises with those instead of the
        training cells' own (the fits of an ensemble share one standardisation).
        """
        dataset = cls.__new__(cls)
        dataset._build(schema, X, cluster_labels, val_proportion, replacement_value, imputable, val_seed, statistics)
        return dataset

    def _build(self, schema, X, cluster_labels, val_proportion, replacement_value, imputable, val_seed,
               statistics=None) -> None:
        if not isinstance(replacement_value, Real) or not np.isfinite(replacement_value):
            raise ValueError(f"`replacement_value` must be a finite number, got {replacement_value!r}")
        self.schema = schema
        n = X.shape[0]
        codes, names = encode_clusters(cluster_labels, n, schema.index)
        self.cluster_names = names
        self.n_clusters = len(names)
        self.replacement_value = float(replacement_value)
        self.val_seed = val_seed

        missing = np.isnan(X)
        imp = np.ones_like(missing) if imputable is None else _imputable_matrix(imputable, schema)
        erased = (~missing & ~imp).sum()
        if erased:
            logger.warning("%d observed cells are marked do-not-impute; they are returned as observed", erased)
        self.val_proportions = _proportions(val_proportion, names)
        val_mask = self._hold_out(X, missing, imp, codes, self.val_proportions, np.random.default_rng(val_seed))
        imp = imp | ~missing
        self.has_dni = bool((~imp).any())

        # One float64 working copy of the table, changed in place (a million rows: ~0.8 GB per copy).
        train = np.where(val_mask, np.nan, X)
        self.means_, self.stds_ = _statistics(train, schema) if statistics is None else statistics
        self.masks = torch.from_numpy(~np.isnan(train))
        train -= self.means_
        train /= self.stds_
        train[~self.masks.numpy()] = self.replacement_value
        self.raw_data = torch.tensor(X, dtype=torch.float32)
        self.data = torch.from_numpy(train.astype(np.float32))
        del train
        self.initial_data = None
        self.val_mask = torch.tensor(val_mask)
        val_data = np.full(X.shape, np.nan, dtype=np.float32)
        val_data[val_mask] = X[val_mask]
        self.val_data = torch.from_numpy(val_data)
        self.missing_mask = torch.tensor(missing)
        self.imputable = torch.tensor(imp)
        self.cluster_labels = torch.tensor(codes)
        self.indices = torch.arange(n)
        self.feature_means = torch.tensor(self.means_, dtype=torch.float32)
        self.feature_stds = torch.tensor(self.stds_, dtype=torch.float32)
        self.feature_names = schema.model_names
        self.settings = self._settings(imputable is not None)

    def _settings(self, has_imputable: bool) -> dict:
        """Construction arguments, JSON-ready, with which ``run_cissvae`` rebuilds this dataset.

        Columns are named by label for a DataFrame and by position otherwise;
        ``val_proportion`` lists one value per cluster in sorted label order.
        """
        s = self.schema

        def label(position):
            name = s.names[position] if s.kind == "frame" else int(position)
            return name.item() if isinstance(name, np.generic) else name

        modelled = set(s.model_columns.tolist())
        ignored = sorted([c for c in range(len(s.names)) if c not in modelled] + s.model_columns[s.ignored].tolist())
        standalone = s.binary & ~s.dummy
        return dict(
            val_proportion=[float(p) for p in self.val_proportions],
            replacement_value=self.replacement_value,
            columns_ignore=[label(c) for c in ignored] or None,
            binary_feature_mask=[label(s.model_columns[j]) for j in np.flatnonzero(standalone)] or None,
            categorical_column_map={str(g): [label(s.model_columns[j]) for j in idx]
                                    for g, idx in s.categorical.items()
                                    if int(s.model_columns[idx[0]]) not in s.labels} or None,
            val_seed=self.val_seed,
            imputable_matrix="<the dataset's imputable matrix>" if has_imputable else None,
        )

    # ------------------------------------------------------------------ hold-out
    def validation_units(self) -> list[tuple[str, str, list[int]]]:
        """(name, kind, model-column positions) of every unit held out together."""
        s = self.schema
        units = [
            (s.model_names[j], "binary" if s.binary[j] else "continuous", [j])
            for j in range(s.n_features)
            if not s.ignored[j] and not s.dummy[j]
        ]
        units += [(g, "categorical", idx) for g, idx in s.categorical.items() if not s.ignored[idx].any()]
        return units

    def _hold_out(self, X, missing, imp, codes, props, rng) -> np.ndarray:
        n, k = len(codes), len(props)
        val = np.zeros_like(missing)
        if not (props > 0).any():
            return val
        for _, _, cols in self.validation_units():
            cand = (~missing[:, cols] & imp[:, cols]).all(axis=1)
            rows = np.flatnonzero(cand)
            keys = rng.random(n)[rows]
            if rows.size == 0:
                continue
            order = np.lexsort((keys, codes[rows]))
            rows = rows[order]
            c = codes[rows]
            counts = np.bincount(c, minlength=k)
            take = np.floor(counts * props).astype(np.int64)
            take = np.where((take == 0) & (props > 0) & (counts >= 2), 1, take)
            rank = np.arange(rows.size) - (np.cumsum(counts) - counts)[c]
            chosen = rows[rank < take[c]]
            val[np.ix_(chosen, cols)] = True
        return val

    # ------------------------------------------------------------------ torch API
    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i):
        return self.data[i], self.cluster_labels[i], self.masks[i], self.indices[i]

    @property
    def n_features(self) -> int:
        return self.data.shape[1]

    @property
    def clusters(self) -> np.ndarray:
        """The caller's cluster label of every row."""
        return self.cluster_names[self.cluster_labels.numpy()]

    def copy(self) -> "ClusterDataset":
        """A deep copy."""
        return copy.deepcopy(self)

    def with_data(self, data: torch.Tensor, *, initial: torch.Tensor | None = None) -> "ClusterDataset":
        """A shallow copy whose standardised matrix is ``data``.

        ``initial`` records the fill a run started from (``initial_data``), so
        that :func:`~ciss_vae.tuning.autotune` tunes a dataset returned by
        ``run_cissvae(return_dataset=True)`` from its initial fill.
        """
        new = copy.copy(self)
        new.data = data
        if initial is not None:
            new.initial_data = initial
        return new

    def __repr__(self) -> str:
        n, p = self.data.shape
        cells = n * p
        miss = int(self.missing_mask.sum())
        val = int(self.val_mask.sum())
        dni = int((~self.imputable).sum())
        units = self.validation_units()
        kinds = pd.Series([u[1] for u in units]).value_counts().to_dict() if units else {}
        return (
            f"ClusterDataset(n_rows={n}, n_features={p}, n_clusters={self.n_clusters}, "
            f"missing={miss} ({miss / cells:.1%}), validation={val} ({val / cells:.1%}), "
            f"do_not_impute={dni}, validation_units={kinds})"
        )
