"""Tables in: a DataFrame, ndarray or tensor as a DataFrame, and one rule for finding columns.

Every face reads its input through :func:`as_frame` and finds the columns a
user names through :func:`resolve_columns` (the schema, clustering, the
missingness-proportion matrix, amputation, scoring and the estimator).

The rule for a column reference, the same everywhere:

* a DataFrame: the label itself; else the one label whose string form equals
  the reference's (so ``"0"`` finds the integer label ``0``); else an integer
  that is not a label is a position (negative counts from the end);
* an ndarray or tensor: an integer position, or one of the names the face
  gives array columns (``"V1"``.. for the schema).

A reference that matches nothing raises ``ValueError`` naming it and the argument.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from numbers import Integral

import numpy as np
import pandas as pd

__all__ = ["as_frame", "is_tensor", "name_list", "resolve_columns"]


def is_tensor(data) -> bool:
    """Whether ``data`` is a torch tensor (checked without importing torch)."""
    return type(data).__module__.startswith("torch") and hasattr(data, "detach")


def as_frame(data, what: str = "data") -> tuple[pd.DataFrame, str]:
    """``(frame, kind)``: the caller's DataFrame itself (never copied nor changed), or a new one.

    ``kind`` is "frame", "array" or "tensor". An ndarray or tensor must be 2-D;
    its columns are labelled ``0..p-1`` (faces name them as they document).
    """
    if isinstance(data, pd.DataFrame):
        return data, "frame"
    if is_tensor(data):
        arr, kind = data.detach().cpu().numpy(), "tensor"
    elif isinstance(data, np.ndarray):
        arr, kind = data, "array"
    else:
        raise TypeError(f"{what} must be a pandas DataFrame, numpy ndarray or torch Tensor, "
                        f"not {type(data).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows x columns), got shape {arr.shape}")
    return pd.DataFrame(arr), kind


def name_list(value) -> list:
    """A column reference or a collection of them as a list (None: empty).

    A list holding one list or Index (``[df.columns[:5]]``) is flattened.
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    items = list(value)
    if len(items) == 1 and isinstance(items[0], (list, tuple, pd.Index)):
        items = list(items[0])
    return items


def _position(item, n: int):
    if isinstance(item, (Integral, np.integer)) and not isinstance(item, (bool, np.bool_)) and -n <= item < n:
        return int(item) % n
    return None


def resolve_columns(value, names: Sequence, arg: str, *, positional: bool) -> list[int]:
    """Positions in ``names`` of the columns ``value`` refers to, first mention first, without repeats.

    ``positional`` is True for ndarray and tensor input (``names`` are then the
    face's own names for the columns). See the module docstring for the rule.
    """
    n = len(names)
    exact, by_text = {}, {}
    for i, name in enumerate(names):
        exact.setdefault(name, i)
        by_text.setdefault(str(name), []).append(i)
    found, unknown = [], []
    for item in name_list(value):
        pos = None
        if isinstance(item, Hashable) and item in exact and (not positional or isinstance(item, str)):
            pos = exact[item]
        elif not positional and len(by_text.get(str(item), ())) == 1:
            pos = by_text[str(item)][0]
        if pos is None:
            pos = _position(item, n)
        if pos is None:
            unknown.append(item)
        elif pos not in found:
            found.append(pos)
    if unknown:
        where = f"an array with {n} columns (use integer positions)" if positional else "the data"
        raise ValueError(f"`{arg}` names columns that are not in {where}: {unknown!r}")
    return found
