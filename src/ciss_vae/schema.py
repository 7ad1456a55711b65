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


MAX_LEVELS = 50          # a text column with more distinct labels looks like an identifier
MIN_IDENTIFIER_VALUES = 20  # ... as does one whose every one of at least this many values differs
_DATE_KINDS = {"datetime64", "datetime", "date", "time", "timedelta64", "timedelta", "period"}


def _is_float_dtype(dtype) -> bool:
    return pd.api.types.is_float_dtype(dtype)


def _date_error(name, what) -> TypeError:
    return TypeError(
        f"column {name!r} holds {what}; convert it to a number (for example days since an origin: "
        f"(df[{name!r}] - pd.Timestamp('2000-01-01')).dt.days) or list it in `columns_ignore`"
    )


def column_levels(col: pd.Series, name, *, limit: bool = True):
    """The labels of a label column, in the order the model's dummies take them; None for a numeric one.

    A label column is a pandas ``category`` (its categories that occur, in
    category order) or an ``object``/``string`` column of text (its distinct
    labels, sorted). Text that all reads as numbers is numeric. With ``limit``,
    a text column with more than ``MAX_LEVELS`` labels, or whose every value
    differs, is refused as a likely identifier. Dates, mixed numbers and text,
    and other objects raise a ``TypeError`` naming the column (and row).
    """
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.unique(col.cat.codes.to_numpy())
        return [col.cat.categories[i] for i in codes[codes >= 0]]
    if (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.PeriodDtype)):
        raise _date_error(name, f"dates or durations ({dtype})")
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return None
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise TypeError(f"column {name!r} has unsupported dtype {dtype}; list it in `columns_ignore`")
    seen = col.dropna()
    kind = pd.api.types.infer_dtype(seen, skipna=True)
    if kind in _DATE_KINDS:
        raise _date_error(name, f"dates or times ({kind} values)")
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"):
        return None
    number = pd.to_numeric(seen, errors="coerce").notna().to_numpy()
    if number.all():
        return None
    if kind not in ("string", "mixed-integer", "mixed"):
        raise TypeError(f"column {name!r} holds {kind} values, which cannot be imputed; list it in `columns_ignore`")
    if kind == "mixed" and not seen.map(lambda v: isinstance(v, (str, int, float, np.number))).all():
        bad = seen[~seen.map(lambda v: isinstance(v, (str, int, float, np.number)))]
        raise TypeError(f"column {name!r} holds a {type(bad.iloc[0]).__name__} at row {row_label(bad.index[0])} "
                        "that cannot be imputed; convert it to a number or a label, or list the column in "
                        "`columns_ignore`")
    if number.any():
        odd = ~number if number.mean() >= 0.5 else number
        row = row_label(seen.index[np.flatnonzero(odd)[0]])
        raise TypeError(
            f"column {name!r} mixes numbers and text (row {row} holds {seen[odd].iloc[0]!r}); correct that value, "
            f"or, if the column holds labels, make it a pandas category (df[{name!r}].astype('category'))"
        )
    levels = sorted(set(seen.astype(str)))
    if limit and (len(levels) > MAX_LEVELS or (len(seen) >= MIN_IDENTIFIER_VALUES and len(levels) == len(seen))):
        raise ValueError(
            f"column {name!r} holds {len(levels)} distinct labels in {len(seen)} values; it looks like an "
            f"identifier, not a category (at most {MAX_LEVELS} labels are imputed): list it in `columns_ignore`, "
            "or make it a pandas category if it really is one"
        )
    return levels


def encode_column(col: pd.Series, name, levels=None) -> np.ndarray:
    """Float64 values (n, 1) of a numeric column, or (n, len(levels)) one-hot dummies of a label column.

    Missing cells are NaN (a missing label: NaN in every dummy). A label
    outside ``levels`` raises a ``ValueError`` naming the column and row.
    """
    if levels is None:
        return _numeric_column(col, name)[:, None]
    keys = col.astype(object) if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(str)
    codes = pd.Index(levels, dtype=object).get_indexer(pd.Index(keys, dtype=object))
    missing = col.isna().to_numpy()
    codes[missing] = -1
    unknown = (codes < 0) & ~missing
    if unknown.any():
        i = np.flatnonzero(unknown)[0]
        raise ValueError(f"column {name!r} holds the label {col.iloc[i]!r} at row {row_label(col.index[i])}, "
                         f"which was not seen in fit (labels: {list(levels)!r})")
    out = np.eye(len(levels))[codes]
    out[codes < 0] = np.nan
    return out


def _numeric_column(col: pd.Series, name) -> np.ndarray:
    """Float64 values of a numeric, bool or nullable column, NaN for missing (new rows of a numeric one)."""
    if column_levels(col, name, limit=False) is not None:
        raise TypeError(f"column {name!r} was numeric in fit but holds labels")
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        return col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


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
    labels : dict
        Position (in ``names``) of each label column (category or text) -> its
        labels; the column is modelled as the one-hot group named after it, one
        dummy per label, and returned as labels in its own dtype.
    """

    names: list
    index: pd.Index
    kind: str
    model_columns: np.ndarray
    ignored: np.ndarray
    binary: np.ndarray
    categorical: dict
    original: pd.DataFrame = field(repr=False)
    labels: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.model_columns)

    @property
    def model_names(self) -> list:
        """A name per model column; a label column's dummies are ``"name=label"``."""
        out, seen = [], {}
        for c in self.model_columns:
            c = int(c)
            if c in self.labels:
                k = seen[c] = seen.get(c, -1) + 1
                out.append(f"{self.names[c]}={self.labels[c][k]}")
            else:
                out.append(self.names[c])
        return out

    def label_groups(self) -> dict:
        """Position of each label column -> the model-column positions of its dummies."""
        return {c: self.categorical[self.names[c]] for c in self.labels}

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
        cols = self.model_columns[self._clustered()]
        return [self.names[c] for c in cols] if self.kind == "frame" else [int(c) for c in cols]

    def cluster_mask(self, missing: np.ndarray) -> np.ndarray:
        """The rows' missingness over :meth:`clustered_columns` (a label column counts once)."""
        return np.asarray(missing, dtype=bool)[:, self._clustered()]

    def _clustered(self) -> np.ndarray:
        keep = ~self.ignored
        for idx in self.label_groups().values():
            keep[idx[1:]] = False
        return keep

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
        X, model_cols, labels = _model_values(frame, ignore_pos)
        to_model = {int(c): j for j, c in enumerate(model_cols) if c not in labels}
        ignored = np.array([c in ignore_pos for c in model_cols])
        binary = _binary_columns(frame, binary_feature_mask, model_cols, to_model, positional, labels)
        categorical = _categorical_groups(categorical_column_map, names, to_model, ignored, positional, labels)
        for c in labels:
            if names[c] in categorical:
                raise ValueError(f"categorical group {names[c]!r} has the name of a label column; rename the group")
            categorical[names[c]] = [j for j, m in enumerate(model_cols) if m == c]
        for idx in categorical.values():
            binary[idx] = True
        schema = cls(names=names, index=frame.index, kind=kind, model_columns=model_cols, ignored=ignored,
                     binary=binary, categorical=categorical, original=frame, labels=labels)
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
    def to_frame(self, filled: np.ndarray, fill_mask: np.ndarray, integer_output: str = "integer") -> pd.DataFrame:
        """The caller's table with ``filled[fill_mask]`` written into the model columns.

        ``filled`` holds values in original units for the model columns (N, n_features);
        ``fill_mask`` marks the cells to write. Every other cell, and every column the
        model did not touch, is returned exactly as given. A label column gets the
        label of its group's largest value, in the column's own dtype; an integer
        column gets its values rounded, in its own dtype, unless ``integer_output``
        is ``"float"`` (then as floats).
        """
        out = self.original.copy(deep=True)
        groups = self.label_groups()
        for c, idx in groups.items():
            rows = np.flatnonzero(fill_mask[:, idx[0]])
            if len(rows):
                col = out.iloc[:, c].copy()
                col.iloc[rows] = [self.labels[c][k] for k in filled[rows][:, idx].argmax(axis=1)]
                out.isetitem(c, col)
        for j, c in enumerate(self.model_columns):
            rows = fill_mask[:, j]
            if c in groups or not rows.any():
                continue
            col = out.iloc[:, c]
            new = self._fill_dtype(col, j, integer_output)
            values = col.astype(new).to_numpy(copy=True) if new != col.dtype else col.to_numpy(copy=True)
            fill = filled[rows, j]
            if new == object:
                fill = np.array([bool(v) for v in fill >= 0.5], dtype=object)
            elif isinstance(new, pd.BooleanDtype) or pd.api.types.is_bool_dtype(new):
                fill = fill >= 0.5
            elif pd.api.types.is_integer_dtype(new):
                fill = np.rint(fill).astype(np.int64)
            values[rows] = fill
            out.isetitem(c, pd.Series(values, index=out.index, dtype=new))
        return out

    def _fill_dtype(self, col: pd.Series, j: int, integer_output: str = "integer"):
        """The dtype a model column is returned in once filled: its own where its values fit."""
        dtype = col.dtype
        if _is_float_dtype(dtype):
            return dtype
        if pd.api.types.is_bool_dtype(dtype):
            return dtype if self.binary[j] else pd.Float64Dtype()
        if pd.api.types.is_object_dtype(dtype) and self.binary[j] and _holds_bools(col):
            return dtype
        if pd.api.types.is_integer_dtype(dtype) and (self.binary[j] or integer_output == "integer"):
            if isinstance(dtype, pd.api.extensions.ExtensionDtype):
                return dtype
            return pd.Int64Dtype() if self.kind == "frame" else dtype
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


def _model_values(frame: pd.DataFrame, ignore_pos: set) -> tuple[np.ndarray, np.ndarray, dict]:
    """The float64 values of the modelled columns, their positions and the label columns' labels.

    A label column becomes one dummy per label (its position repeated). A
    column in ``columns_ignore`` that cannot be read (an identifier, say) or
    has no value is returned as given and not modelled; any other column must
    be numeric or labels, finite, and have at least one observed value.
    """
    values, model_cols, labels = [], [], {}
    for i, name in enumerate(frame.columns):
        col = frame.iloc[:, i]
        try:
            levels = column_levels(col, name)
            v = encode_column(col, name, levels)
        except (TypeError, ValueError):
            if i not in ignore_pos:
                raise
            logger.info("ignored column %r is neither numbers nor labels: returned as given, not modelled", name)
            continue
        if np.isnan(v).all():
            if i in ignore_pos:
                logger.info("ignored column %r has no values: returned as given, not modelled", name)
                continue
            raise ValueError(f"column {name!r} has no observed value; drop it or list it in `columns_ignore`")
        if np.isinf(v).any():
            row = row_label(frame.index[np.isinf(v).any(axis=1)][0])
            raise ValueError(f"column {name!r} holds an infinite value (row {row}); use NaN for missing")
        if levels is not None:
            labels[i] = list(levels)
            if len(levels) == 1:
                logger.warning("label column %r has a single label, %r: its missing cells get it", name, levels[0])
        values.append(v)
        model_cols.extend([i] * v.shape[1])
    if not model_cols:
        raise ValueError("no column is left to model")
    return np.column_stack(values), np.asarray(model_cols), labels


def _binary_columns(frame, binary_feature_mask, model_cols, to_model, positional, labels) -> np.ndarray:
    """Per model column: binary when of bool dtype, or listed in ``binary_feature_mask``.

    Without a ``binary_feature_mask``, an integer column whose observed values
    are all 0 or 1 is binary too; a given mask decides for every numeric column.
    """
    names = list(frame.columns)
    binary = np.zeros(len(model_cols), dtype=bool)
    if binary_feature_mask is not None:
        for c, flag in enumerate(_binary_flags(binary_feature_mask, names, positional)):
            if flag and c in labels:
                raise ValueError(f"binary column {names[c]!r} holds labels; it is imputed as a label column "
                                 "without being listed")
            if flag and c in to_model:
                binary[to_model[c]] = True
            elif flag:
                raise ValueError(f"binary column {names[c]!r} is not numeric or has no values")
    for c, j in to_model.items():
        col = frame.iloc[:, c]
        if _holds_bools(col):
            binary[j] = True
        elif binary_feature_mask is None and pd.api.types.is_integer_dtype(col.dtype):
            binary[j] = bool(col.dropna().isin([0, 1]).all())
    return binary


def _holds_bools(col: pd.Series) -> bool:
    """A bool or nullable boolean column, or an object column of True/False with gaps (as ``df.mask`` leaves one)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return True
    return pd.api.types.is_object_dtype(col.dtype) and pd.api.types.infer_dtype(col, skipna=True) == "boolean"


def _categorical_groups(categorical_column_map, names, to_model, ignored, positional, labels) -> dict:
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
            if p in labels:
                raise ValueError(f"column {names[p]!r} of group {group!r} holds labels; a label column is "
                                 "imputed as a group of its own without being listed")
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
