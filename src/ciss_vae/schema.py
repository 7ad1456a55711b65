"""Reading a user's table: column roles, numeric values, masks and the output contract.

A :class:`TableSchema` is built once from the caller's data. It records which
columns the model sees, which are ignored, which are binary or one-hot
categorical groups, and everything needed to hand back a table of the same
type, index, column order and dtypes with only the missing cells filled in.
All validation of the table happens here, before any training starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from ciss_vae.tabular import as_frame, resolve_columns

logger = logging.getLogger(__name__)

BINARY_OUTPUTS = ("label", "probability")


def row_label(label) -> str:
    """A row label as an error message shows it: ``320`` or ``'patient_7'``, never ``np.int64(320)``."""
    label = label.item() if isinstance(label, np.generic) else label
    return repr(label) if isinstance(label, str) else str(label)


def _is_float_dtype(dtype) -> bool:
    return pd.api.types.is_float_dtype(dtype)


def _numeric_column(col: pd.Series, name) -> np.ndarray:
    """Float64 values of a numeric, bool or nullable column, NaN for missing."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        raise TypeError(
            f"column {name!r} is categorical; one-hot encode it (pandas.get_dummies) "
            "and pass the dummies through `categorical_column_map`, or list it in "
            "`columns_ignore`"
        )
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise TypeError(
            f"column {name!r} holds dates or durations ({dtype}); convert it to a number "
            "or list it in `columns_ignore`"
        )
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        converted = pd.to_numeric(col, errors="coerce")
        bad = converted.isna() & col.notna()
        if not bad.any():
            return converted.to_numpy(dtype=np.float64, na_value=np.nan)
        example = col[bad].iloc[0]
        raise TypeError(
            f"column {name!r} is not numeric (row {row_label(col.index[bad][0])} holds {example!r}); "
            "encode it as numbers or list it in `columns_ignore`"
        )
    raise TypeError(f"column {name!r} has unsupported dtype {dtype}; list it in `columns_ignore`")


@dataclass
class TableSchema:
    """Column roles and the original table's form, learned from the caller's data.

    Attributes
    ----------
    names : list
        All column labels in the caller's order (``V1..VP`` for arrays and tensors).
    model_columns : numpy.ndarray
        Positions (in ``names``) of the columns the model sees, in order.
    ignored : numpy.ndarray of bool
        Per model column: listed in ``columns_ignore`` (used as input, never held out
        for validation nor clustered on, and returned exactly as given).
    binary : numpy.ndarray of bool
        Per model column: a 0/1 column (standalone binary or categorical dummy).
    categorical : dict
        Group name -> list of model-column positions of its one-hot dummies.
    """

    names: list
    index: pd.Index
    kind: str
    model_columns: np.ndarray
    ignored: np.ndarray
    binary: np.ndarray
    categorical: dict
    original: pd.DataFrame = field(repr=False)

    @property
    def n_features(self) -> int:
        return len(self.model_columns)

    @property
    def model_names(self) -> list:
        return [self.names[i] for i in self.model_columns]

    @property
    def dummy(self) -> np.ndarray:
        out = np.zeros(self.n_features, dtype=bool)
        for cols in self.categorical.values():
            out[cols] = True
        return out

    @property
    def continuous(self) -> np.ndarray:
        return ~self.binary

    def clustered_columns(self) -> list:
        """The columns rows are clustered on (model columns not in ``columns_ignore``).

        Labels for a DataFrame, positions for an array or tensor (as
        :class:`~ciss_vae.clustering.MissingnessClusterer` names them).
        """
        cols = self.model_columns[~self.ignored]
        return [self.names[c] for c in cols] if self.kind == "frame" else [int(c) for c in cols]

    def without_rows(self) -> "TableSchema":
        """The same column roles with no rows kept (what a fitted estimator stores)."""
        return replace(self, index=self.index[:0], original=self.original.iloc[:0])

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_data(
        cls,
        data,
        columns_ignore=None,
        binary_feature_mask=None,
        categorical_column_map=None,
    ) -> tuple["TableSchema", np.ndarray]:
        """Validate ``data`` and return the schema and the model's float64 values."""
        frame, kind = read_frame(data)
        names = list(frame.columns)
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"data is empty (shape {frame.shape})")
        if len(set(map(_label_key, names))) != len(names):
            dup = pd.Index(names)[pd.Index(names).duplicated()].tolist()
            raise ValueError(f"data has duplicated column names: {dup!r}")
        positional = kind != "frame"
        ignore_pos = set(resolve_columns(columns_ignore, names, "columns_ignore", positional=positional))
        X, model_cols = _model_values(frame, ignore_pos)
        to_model = {c: j for j, c in enumerate(model_cols)}
        ignored = np.array([c in ignore_pos for c in model_cols])
        binary = _binary_columns(frame, binary_feature_mask, model_cols, to_model, positional)
        categorical = _categorical_groups(categorical_column_map, names, to_model, ignored, positional)
        for idx in categorical.values():
            binary[idx] = True
        schema = cls(names=names, index=frame.index, kind=kind, model_columns=model_cols, ignored=ignored,
                     binary=binary, categorical=categorical, original=frame)
        schema._check_binary(X)
        return schema, X

    def _check_binary(self, X: np.ndarray) -> None:
        for j in np.flatnonzero(self.binary):
            v = X[:, j]
            bad = ~np.isnan(v) & (v != 0) & (v != 1)
            if bad.any():
                row = row_label(self.index[np.flatnonzero(bad)[0]])
                raise ValueError(
                    f"binary column {self.model_names[j]!r} holds {v[bad][0]!r} at row {row}; "
                    "binary columns must be 0/1"
                )
        for group, idx in self.categorical.items():
            block = X[:, idx]
            full = ~np.isnan(block).any(axis=1)
            bad = full & (block.sum(axis=1) != 1)
            if bad.any():
                row = row_label(self.index[np.flatnonzero(bad)[0]])
                raise ValueError(
                    f"categorical group {group!r} is not one-hot at row {row} "
                    "(a fully observed row must hold exactly one 1)"
                )

    # ------------------------------------------------------------------ writing
    def to_frame(self, filled: np.ndarray, fill_mask: np.ndarray) -> pd.DataFrame:
        """The caller's table with ``filled[fill_mask]`` written into the model columns.

        ``filled`` holds values in original units for the model columns (N, n_features);
        ``fill_mask`` marks the cells to write. Every other cell, and every column the
        model did not touch, is returned exactly as given.
        """
        out = self.original.copy(deep=True)
        for j, c in enumerate(self.model_columns):
            rows = fill_mask[:, j]
            if not rows.any():
                continue
            col = out.iloc[:, c]
            new = self._fill_dtype(col, j)
            values = col.astype(new).to_numpy(copy=True) if new != col.dtype else col.to_numpy(copy=True)
            fill = filled[rows, j]
            if isinstance(new, pd.BooleanDtype):
                fill = fill >= 0.5
            elif pd.api.types.is_integer_dtype(new):
                fill = np.rint(fill).astype(np.int64)
            values[rows] = fill
            out.isetitem(c, pd.Series(values, index=out.index, dtype=new))
        return out

    def _fill_dtype(self, col: pd.Series, j: int):
        dtype = col.dtype
        if _is_float_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
            return dtype
        if isinstance(dtype, pd.Float64Dtype) or isinstance(dtype, pd.Float32Dtype):
            return dtype
        if self.binary[j] and isinstance(dtype, (pd.BooleanDtype, pd.Int64Dtype, pd.Int32Dtype, pd.Int8Dtype)):
            return dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            return pd.Float64Dtype()
        return np.dtype("float64")


def _label_key(name):
    return (type(name).__name__, name) if not isinstance(name, str) else name


def read_frame(data) -> tuple[pd.DataFrame, str]:
    """``(frame, kind)``: a DataFrame as given; an array or tensor as a float64 frame with columns ``V1..VP``."""
    frame, kind = as_frame(data)
    if kind == "frame":
        return frame, kind
    arr = frame.to_numpy()
    if arr.dtype == object:
        arr = pd.DataFrame(arr).apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    elif not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise TypeError(f"data array must be numeric, not {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    names = [f"V{i + 1}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr.copy(), columns=names), kind


def _model_values(frame: pd.DataFrame, ignore_pos: set) -> tuple[np.ndarray, np.ndarray]:
    """The float64 values of the modelled columns and their positions.

    A column in ``columns_ignore`` that is not numeric, or has no value, is
    returned as given and not modelled; any other column must be numeric, finite
    and have at least one observed value.
    """
    values, model_cols = [], []
    for i, name in enumerate(frame.columns):
        col = frame.iloc[:, i]
        if i in ignore_pos:
            try:
                v = _numeric_column(col, name)
            except TypeError:
                logger.info("ignored column %r is not numeric: returned as given, not modelled", name)
                continue
            if np.isnan(v).all():
                logger.info("ignored column %r has no values: returned as given, not modelled", name)
                continue
        else:
            v = _numeric_column(col, name)
        if np.isinf(v).any():
            row = row_label(frame.index[np.isinf(v)][0])
            raise ValueError(f"column {name!r} holds an infinite value (row {row}); use NaN for missing")
        if i not in ignore_pos and np.isnan(v).all():
            raise ValueError(f"column {name!r} has no observed value; drop it or list it in `columns_ignore`")
        values.append(v)
        model_cols.append(i)
    if not model_cols:
        raise ValueError("no numeric column is left to model")
    return np.column_stack(values), np.asarray(model_cols)


def _binary_columns(frame, binary_feature_mask, model_cols, to_model, positional) -> np.ndarray:
    """Per model column: listed in ``binary_feature_mask`` or of bool dtype."""
    names = list(frame.columns)
    binary = np.zeros(len(model_cols), dtype=bool)
    if binary_feature_mask is not None:
        for c, flag in enumerate(_binary_flags(binary_feature_mask, names, positional)):
            if flag and c in to_model:
                binary[to_model[c]] = True
            elif flag:
                raise ValueError(f"binary column {names[c]!r} is not numeric or has no values")
    for c in model_cols:
        if pd.api.types.is_bool_dtype(frame.iloc[:, c].dtype):
            binary[to_model[c]] = True
    return binary


def _categorical_groups(categorical_column_map, names, to_model, ignored, positional) -> dict:
    """``{group: [model-column positions of its dummies]}``, checked."""
    if categorical_column_map is None:
        return {}
    if not isinstance(categorical_column_map, Mapping):
        raise TypeError("`categorical_column_map` must be a mapping {name: [dummy columns]}")
    categorical, taken = {}, {}
    for group, cols in categorical_column_map.items():
        if isinstance(cols, (str, bytes)) or not isinstance(cols, Iterable) or len(list(cols)) == 0:
            raise ValueError(f"categorical group {group!r} must list its dummy columns")
        cols = list(cols)
        pos = resolve_columns(cols, names, f"categorical_column_map[{group!r}]", positional=positional)
        if len(pos) != len(cols):
            raise ValueError(f"categorical group {group!r} lists a column twice")
        if len(pos) < 2:
            raise ValueError(f"categorical group {group!r} needs at least two dummy columns")
        for p in pos:
            if p in taken:
                raise ValueError(f"column {names[p]!r} is in categorical groups {taken[p]!r} and {group!r}")
            if p not in to_model:
                raise ValueError(f"dummy column {names[p]!r} of group {group!r} is not numeric")
            taken[p] = group
        idx = [to_model[p] for p in pos]
        if ignored[idx].any() and not ignored[idx].all():
            raise ValueError(f"categorical group {group!r} is only partly in `columns_ignore`")
        categorical[group] = idx
    return categorical


def _binary_flags(mask, names, positional) -> np.ndarray:
    if isinstance(mask, Mapping):
        flags = np.zeros(len(names), dtype=bool)
        for p in resolve_columns([k for k, v in mask.items() if v], names, "binary_feature_mask",
                                 positional=False):
            flags[p] = True
        return flags
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(list(mask) if not isinstance(mask, np.ndarray) else mask)
    flags_01 = arr.dtype.kind in "biuf" and arr.size and np.isin(arr, [0, 1]).all() and len(arr) == len(names)
    if arr.dtype == bool or flags_01:
        if len(arr) != len(names):
            raise ValueError(
                f"`binary_feature_mask` has length {len(arr)}, but the data has {len(names)} columns"
            )
        return arr.astype(bool)
    flags = np.zeros(len(names), dtype=bool)
    flags[resolve_columns(list(arr), names, "binary_feature_mask", positional=positional)] = True
    return flags
