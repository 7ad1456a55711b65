"""Per-feature missingness proportions for repeated measures.

A row's missingness can be summarised per *feature* rather than per column:
when a biomarker is measured at several visits (``Y1_1``, ``Y1_2``, ...), the
fraction of its visits that are missing says *where* the row is missing
without the visit-to-visit noise of the raw mask. This module builds that
matrix (:func:`create_missingness_prop_matrix`);
:func:`~ciss_vae.clustering.cluster_on_missing_prop` clusters it.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from ciss_vae.tabular import as_frame, resolve_columns

logger = logging.getLogger(__name__)

__all__ = ["MissingnessMatrix", "create_missingness_prop_matrix"]


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
    df, _ = as_frame(data)
    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    if df.columns.duplicated().any():
        raise ValueError("column names must be unique (after conversion to strings)")
    if index_col is not None and str(index_col) in df.columns:
        samples = df[str(index_col)].astype(str).tolist()
        df = df.drop(columns=[str(index_col)])
    else:
        samples = [str(i) for i in df.index]
    drop = resolve_columns(cols_ignore, list(df.columns), "cols_ignore", positional=False)
    df = df.drop(columns=df.columns[sorted(drop)])
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
