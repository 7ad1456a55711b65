"""Simulated missingness: amputate a complete table under MCAR, MAR or MNAR.

The procedures follow the benchmark convention of Muzellec et al. (2020),
"Missing data imputation using optimal transport" (also used by HyperImpute and
DiffPuter), plus a latent-group mechanism in which a hidden grouping of the
rows drives their missingness, the setting CISS-VAE is built for.

Common helpers of the logistic mechanisms: the inputs are standardised, the
coefficients are drawn ``U(0, 1)`` and rescaled so that every linear score has
unit variance, and each target column gets the intercept (bisection on
[-50, 50]) that makes its expected missing rate exactly ``p``.

Mechanisms (``p`` = target missing proportion):

``"MCAR"``
    Every cell is missing with probability ``p``, independently.
``"MAR"``
    ``max(floor(p_obs * d), 1)`` columns (or the columns named in ``observed``)
    stay fully observed; every other column is missing with a logistic
    probability of the observed columns. ``p`` is the rate of the amputated
    columns, so the realised rate of the whole table is about
    ``p * (d - d_obs) / d``.
``"MNAR"``
    Logistic with masked inputs: as MAR with ``max(floor(p_params * d), 1)``
    input columns, after which the input columns are themselves masked MCAR
    with rate ``p``. The realised rate is about ``p``.
``"MNAR_self"``
    Self-masked logistic: each cell is missing with probability
    ``sigmoid(w_j * x_ij + b_j)``, ``w_j > 0`` rescaled to unit score variance,
    so large values go missing more often (``sign=-1``: small values).
``"MNAR_quantile"``
    Quantile censoring: in ``max(floor(p_params * d), 1)`` columns, cells in the
    tail(s) beyond the ``q`` quantile (``cut`` = "upper", "lower" or "both") are
    missing with probability ``p``; ``mcar=True`` ORs in MCAR(p) on all cells.
    The realised rate is about ``p * tail fraction * d_na / d``, not ``p``.
``"MNAR_group"``
    Latent-group MNAR: the rows fall into ``n_groups`` hidden groups (KMeans on
    the standardised complete values unless ``groups`` is given; the imputers
    never see them). Each group has its own missing probability per column:
    a ``block`` fraction of the columns (consecutive in a random column order,
    shifted by ``d / n_groups`` from one group to the next) is ``contrast``
    times more likely to be missing than the rest, scaled so the expected rate is ``p``
    (probabilities capped at 0.95).

Any mechanism: a column may not lose all its values; a column left with fewer
than ``min_observed`` (default 2) observed cells gets randomly chosen amputated
cells restored. The realised rate (the fraction of cells that were missing
after amputation) is logged, returned in ``info`` with ``return_info=True`` and
can be recomputed with :func:`realised_rate`.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from ciss_vae.tabular import as_frame, is_tensor

__all__ = ["MECHANISMS", "ampute", "realised_rate"]

logger = logging.getLogger(__name__)

MECHANISMS = ("MCAR", "MAR", "MNAR", "MNAR_self", "MNAR_quantile", "MNAR_group")
"""Names accepted by :func:`ampute`."""

_PARAMS = {
    "MCAR": set(),
    "MAR": {"p_obs", "observed"},
    "MNAR": {"p_params"},
    "MNAR_self": {"sign"},
    "MNAR_quantile": {"p_params", "q", "cut", "mcar"},
    "MNAR_group": {"n_groups", "groups", "block", "contrast"},
}
_COMMON = {"min_observed", "observed"}

_DEFAULTS = {
    "p_obs": 0.3,
    "p_params": 0.3,
    "sign": 1,
    "q": 0.25,
    "cut": "both",
    "mcar": False,
    "n_groups": 4,
    "block": 0.5,
    "contrast": 4.0,
}
"""Value of each mechanism parameter that is not given."""
_CUTS = ("upper", "lower", "both")
"""Values of ``cut`` (MNAR_quantile)."""

# Intercepts of the logistic mechanisms: bisection on [-_INTERCEPT_BOUND, _INTERCEPT_BOUND].
_INTERCEPT_BOUND = 50.0
_INTERCEPT_STEPS = 100

# MNAR_group: KMeans restarts and seed range, bisection steps of the rate scale,
# and the cap on a cell's missing probability.
_KMEANS_N_INIT = 4
_MAX_KMEANS_SEED = 2**31 - 1
_GROUP_SCALE_STEPS = 60
_MAX_GROUP_PROB = 0.95


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _to_array(data):
    """Return (float64 ndarray copy, kind) of a numeric DataFrame, ndarray or tensor (read by ``tabular``)."""
    if is_tensor(data):
        if data.is_complex():
            raise TypeError("ampute needs a real-valued tensor")
        data = data.detach().cpu().double()
    frame, kind = as_frame(data, "ampute's data")
    if kind == "frame":
        bad = [c for c in frame.columns
               if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
        if bad:
            raise TypeError(f"ampute needs numeric columns; non-numeric: {bad[:5]}")
    elif kind == "array" and data.dtype.kind not in "biuf":
        raise TypeError(f"ampute needs a numeric array, got dtype {data.dtype}")
    return frame.to_numpy(dtype=float, copy=True), kind


def _from_array(values, data, kind):
    if kind == "frame":
        out = data.copy()
        for j, c in enumerate(data.columns):
            col = values[:, j]
            if pd.api.types.is_float_dtype(data[c]):
                out[c] = col.astype(data[c].dtype)
            else:  # int and bool columns cannot hold NaN: float64
                out[c] = col
        return out
    if kind == "tensor":
        import torch
        dtype = data.dtype if data.dtype.is_floating_point else torch.float64
        return torch.as_tensor(values, dtype=dtype, device=data.device)
    dtype = data.dtype if data.dtype.kind == "f" else np.float64
    return values.astype(dtype)


def _standardise(x):
    sd = x.std(axis=0)
    sd[~(sd > 0)] = 1.0
    return (x - x.mean(axis=0)) / sd


def _pick_coefficients(x_in, n_targets, rng):
    """W ~ U(0,1)^{k x m}, each column rescaled so that x_in @ W[:, j] has unit variance."""
    w = rng.random((x_in.shape[1], n_targets))
    sd = (x_in @ w).std(axis=0)
    sd[~(sd > 0)] = 1.0
    return w / sd


def _fit_intercepts(scores, p):
    """b_j with mean_i sigmoid(scores[i, j] + b_j) = p, by bisection on [-50, 50]."""
    b = np.empty(scores.shape[1])
    for j in range(scores.shape[1]):
        lo, hi = -_INTERCEPT_BOUND, _INTERCEPT_BOUND
        for _ in range(_INTERCEPT_STEPS):
            mid = 0.5 * (lo + hi)
            if _sigmoid(scores[:, j] + mid).mean() > p:
                hi = mid
            else:
                lo = mid
        b[j] = 0.5 * (lo + hi)
    return b


def _logistic_mask(x_in, x_target_shape, p, rng):
    n, m = x_target_shape
    w = _pick_coefficients(x_in, m, rng)
    scores = x_in @ w
    b = _fit_intercepts(scores, p)
    return rng.random((n, m)) < _sigmoid(scores + b)


def _column_indices(columns, names, d):
    """Positions of ``names`` (labels of a DataFrame, or positions)."""
    out = []
    for name in names:
        if columns is not None and name in list(columns):
            out.append(list(columns).index(name))
        elif isinstance(name, (int, np.integer)) and not isinstance(name, bool) and -d <= name < d:
            out.append(int(name) % d)
        else:
            raise ValueError(f"unknown column {name!r} in `observed`")
    return sorted(set(out))


class _Table(NamedTuple):
    """The complete table a mechanism amputates, with what every mechanism needs.

    Attributes
    ----------
    x : numpy.ndarray of shape (n, d)
        The complete values.
    z : numpy.ndarray of shape (n, d)
        The same values standardised column by column.
    free : numpy.ndarray of int
        Positions of the columns that may be amputated (all but ``observed``).
    fixed_obs : list of int
        Positions of the columns named in ``observed`` (sorted, possibly empty).
    columns : list or None
        Column labels of a DataFrame input, ``None`` for an array or tensor.
    """

    x: np.ndarray
    z: np.ndarray
    free: np.ndarray
    fixed_obs: list
    columns: list | None


def _labels(columns, positions):
    """Labels of the columns at ``positions``: DataFrame labels, else the positions as ints."""
    return [columns[j] for j in positions] if columns is not None else positions.tolist()


def _empty_mask(table):
    return np.zeros(table.x.shape, dtype=bool)


def _p_params(params):
    """The validated ``p_params`` of MNAR and MNAR_quantile."""
    p_params = params.get("p_params", _DEFAULTS["p_params"])
    if not 0 < p_params <= 1:
        raise ValueError(f"`p_params` must be in (0, 1], got {p_params!r}")
    return p_params


def _mask_mcar(table, p, rng, params):
    """MCAR: every free cell is missing with probability ``p``."""
    mask = _empty_mask(table)
    mask[:, table.free] = rng.random((table.x.shape[0], len(table.free))) < p
    return mask, {}


def _mask_mar(table, p, rng, params):
    """MAR: logistic in the fully observed columns (``observed``, else ``p_obs`` of them at random)."""
    n, d = table.x.shape
    if table.fixed_obs:
        obs = np.array(table.fixed_obs)
    else:
        p_obs = params.get("p_obs", _DEFAULTS["p_obs"])
        if not 0 < p_obs < 1:
            raise ValueError(f"`p_obs` must be in (0, 1), got {p_obs!r}")
        obs = np.sort(rng.choice(d, max(int(p_obs * d), 1), replace=False))
    targets = np.array([j for j in range(d) if j not in set(obs)], dtype=int)
    if len(targets) == 0:
        raise ValueError("MAR needs at least two columns")
    mask = _empty_mask(table)
    mask[:, targets] = _logistic_mask(table.z[:, obs], (n, len(targets)), p, rng)
    return mask, {"observed_columns": _labels(table.columns, obs)}


def _mask_mnar(table, p, rng, params):
    """MNAR: logistic in ``p_params`` of the free columns, which are then masked MCAR."""
    n = table.x.shape[0]
    free = table.free
    k = min(max(int(_p_params(params) * len(free)), 1), max(len(free) - 1, 1))
    inputs = np.sort(rng.choice(free, k, replace=False))
    targets = np.array([j for j in free if j not in set(inputs)], dtype=int)
    mask = _empty_mask(table)
    if len(targets):
        mask[:, targets] = _logistic_mask(table.z[:, inputs], (n, len(targets)), p, rng)
    mask[:, inputs] = rng.random((n, len(inputs))) < p
    return mask, {"input_columns": _labels(table.columns, inputs)}


def _mask_mnar_self(table, p, rng, params):
    """MNAR_self: each free cell is missing with a logistic probability of its own value."""
    sign = params.get("sign", _DEFAULTS["sign"])
    if sign not in (1, -1):
        raise ValueError(f"`sign` must be 1 or -1, got {sign!r}")
    free = table.free
    zf = table.z[:, free]
    w = rng.random(len(free))
    sd = (zf * w).std(axis=0)
    sd[~(sd > 0)] = 1.0
    scores = sign * zf * (w / sd)
    b = _fit_intercepts(scores, p)
    mask = _empty_mask(table)
    mask[:, free] = rng.random((table.x.shape[0], len(free))) < _sigmoid(scores + b)
    return mask, {}


def _tail(xc, q, cut):
    """Cells of ``xc`` beyond the ``q`` quantile of their column, on the side(s) named by ``cut``."""
    if cut == "upper":
        return xc >= np.quantile(xc, 1 - q, axis=0)
    if cut == "lower":
        return xc <= np.quantile(xc, q, axis=0)
    return (xc <= np.quantile(xc, q, axis=0)) | (xc >= np.quantile(xc, 1 - q, axis=0))


def _mask_mnar_quantile(table, p, rng, params):
    """MNAR_quantile: tail cells of ``p_params`` of the free columns are missing with probability ``p``."""
    p_params = _p_params(params)
    q = params.get("q", _DEFAULTS["q"])
    cut = params.get("cut", _DEFAULTS["cut"])
    if not 0 < q < 1:
        raise ValueError(f"`q` must be in (0, 1), got {q!r}")
    if cut not in _CUTS:
        raise ValueError(f"`cut` must be 'upper', 'lower' or 'both', got {cut!r}")
    n = table.x.shape[0]
    free = table.free
    k = max(int(p_params * len(free)), 1)
    cols = np.sort(rng.choice(free, k, replace=False))
    mask = _empty_mask(table)
    mask[:, cols] = _tail(table.x[:, cols], q, cut) & (rng.random((n, k)) < p)
    if params.get("mcar", _DEFAULTS["mcar"]):
        mask[:, free] |= rng.random((n, len(free))) < p
    return mask, {"censored_columns": _labels(table.columns, cols)}


def _row_groups(z, rng, params):
    """The hidden group of each row: ``groups`` when given, else KMeans with ``n_groups`` clusters on ``z``."""
    groups = params.get("groups")
    if groups is None:
        from sklearn.cluster import KMeans

        n_groups = int(params.get("n_groups", _DEFAULTS["n_groups"]))
        if n_groups < 1:
            raise ValueError(f"`n_groups` must be >= 1, got {n_groups!r}")
        groups = KMeans(n_clusters=n_groups, n_init=_KMEANS_N_INIT,
                        random_state=int(rng.integers(_MAX_KMEANS_SEED))).fit_predict(z)
    groups = np.asarray(groups)
    n = z.shape[0]
    if groups.shape != (n,):
        raise ValueError(f"`groups` must have one label per row ({n}), got shape {groups.shape}")
    return groups


def _group_weights(n_groups, n_free, block, contrast, rng):
    """Relative missing weight per group (rows) and free column: ``contrast`` in the group's block, else 1.

    Each block covers ``block`` of the columns, consecutive in a random column
    order, and is shifted by ``n_free // n_groups`` from one group to the next,
    so that the groups differ.
    """
    weights = np.ones((n_groups, n_free))
    k = max(round(block * n_free), 1)
    perm = rng.permutation(n_free)
    shift = max(n_free // n_groups, 1)
    for i in range(n_groups):
        weights[i, perm[(i * shift + np.arange(k)) % n_free]] = contrast
    return weights


def _group_probabilities(weights, g, p):
    """``min(s * weights, 0.95)`` with ``s`` set by bisection so that the expected rate over the rows is ``p``."""
    row_w = weights[g]
    scale_lo, scale_hi = 0.0, 1.0 / row_w.min()
    for _ in range(_GROUP_SCALE_STEPS):
        mid = 0.5 * (scale_lo + scale_hi)
        if np.minimum(mid * row_w, _MAX_GROUP_PROB).mean() > p:
            scale_hi = mid
        else:
            scale_lo = mid
    return np.minimum(0.5 * (scale_lo + scale_hi) * weights, _MAX_GROUP_PROB)


def _mask_mnar_group(table, p, rng, params):
    """MNAR_group: each hidden group of rows has its own missing probability per free column."""
    groups = _row_groups(table.z, rng, params)
    labels, g = np.unique(groups, return_inverse=True)
    block = params.get("block", _DEFAULTS["block"])
    contrast = params.get("contrast", _DEFAULTS["contrast"])
    if not 0 < block <= 1:
        raise ValueError(f"`block` must be in (0, 1], got {block!r}")
    if not contrast >= 1:
        raise ValueError(f"`contrast` must be >= 1, got {contrast!r}")
    free = table.free
    probs = _group_probabilities(_group_weights(len(labels), len(free), block, contrast, rng), g, p)
    mask = _empty_mask(table)
    mask[:, free] = rng.random((table.x.shape[0], len(free))) < probs[g]
    group_rates = pd.DataFrame(probs, index=pd.Index(labels, name="group"), columns=_labels(table.columns, free))
    return mask, {"groups": groups, "group_rates": group_rates}


_MASKERS = {
    "MCAR": _mask_mcar,
    "MAR": _mask_mar,
    "MNAR": _mask_mnar,
    "MNAR_self": _mask_mnar_self,
    "MNAR_quantile": _mask_mnar_quantile,
    "MNAR_group": _mask_mnar_group,
}
"""The mask function of each mechanism: ``(table, p, rng, params) -> (mask, info)``."""


def _mask(x, mechanism, p, rng, columns, params):
    """Draw the missingness mask of ``x`` under ``mechanism``.

    Parameters
    ----------
    x : numpy.ndarray of shape (n, d)
        The complete table.
    mechanism : str
        One of :data:`MECHANISMS`.
    p : float
        Target missing proportion.
    rng : numpy.random.Generator
    columns : list or None
        Column labels of a DataFrame input, else ``None``.
    params : dict
        Mechanism parameters (see :func:`ampute`).

    Returns
    -------
    mask : numpy.ndarray of bool, shape (n, d)
        True where a cell is to be amputated.
    info : dict
        The mechanism's choices (observed / input / censored columns, groups).
    """
    d = x.shape[1]
    z = _standardise(x)
    observed = params.get("observed")
    fixed_obs = _column_indices(columns, observed, d) if observed is not None else []
    free = np.array([j for j in range(d) if j not in fixed_obs], dtype=int)
    if len(free) == 0:
        raise ValueError("`observed` names every column: nothing left to amputate")
    return _MASKERS[mechanism](_Table(x, z, free, fixed_obs, columns), p, rng, params)


def _restore_columns(mask, min_observed, rng):
    """Give back random amputated cells to columns left with too few observed cells."""
    n = mask.shape[0]
    need = min(min_observed, n)
    restored = 0
    for j in range(mask.shape[1]):
        short = need - int((~mask[:, j]).sum())
        if short > 0:
            rows = rng.choice(np.flatnonzero(mask[:, j]), short, replace=False)
            mask[rows, j] = False
            restored += short
    return restored


def ampute(data, mechanism="MCAR", p=0.3, seed=None, *, return_info=False, min_observed=2, **params):
    """Make cells of a complete table missing under a simulated mechanism.

    Parameters
    ----------
    data : pandas.DataFrame, numpy.ndarray or torch.Tensor of shape (n, d)
        A complete numeric table (bool counts as numeric). It is not modified.
        Missing values are not allowed (``ValueError``): the mechanisms are
        defined on complete data, and the truth of an already missing cell
        could not be scored.
    mechanism : {"MCAR", "MAR", "MNAR", "MNAR_self", "MNAR_quantile", "MNAR_group"}
        See the module documentation.
    p : float in (0, 1), default=0.3
        Target missing proportion (per amputated column for MAR and
        MNAR_quantile; see the module documentation).
    seed : int, numpy.random.Generator or None
        Seed of ``numpy.random.default_rng``; the same seed gives the same mask.
    return_info : bool, default=False
        Also return a dict with the mask, the realised rate, the rate per
        column and the mechanism's choices (observed / input / censored
        columns, hidden groups).
    min_observed : int, default=2
        Fewest observed cells a column keeps (amputated cells are restored at
        random when needed), so that no column is lost entirely.
    **params
        Mechanism parameters: ``observed`` (columns never amputated, any
        mechanism; the inputs of MAR when given), ``p_obs`` (MAR, 0.3),
        ``p_params`` (MNAR and MNAR_quantile, 0.3), ``sign`` (MNAR_self, 1),
        ``q`` (0.25), ``cut`` ("both") and ``mcar`` (False) for MNAR_quantile,
        ``n_groups`` (4), ``groups``, ``block`` (0.5) and ``contrast`` (4) for
        MNAR_group.

    Returns
    -------
    amputed : same type as ``data``
        Same index and columns (DataFrame), shape and device (tensor), with the
        amputated cells NaN. Integer and bool columns become float.
    info : dict
        Only with ``return_info=True``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(1000, 5))
    >>> xm, info = ampute(x, "MCAR", p=0.3, seed=1, return_info=True)
    >>> round(info["realised_rate"], 2)
    0.3
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"unknown mechanism {mechanism!r}; choose from {MECHANISMS}")
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 < p < 1:
        raise ValueError(f"`p` must be a number in (0, 1), got {p!r}")
    unknown = set(params) - _PARAMS[mechanism] - _COMMON
    if unknown:
        raise TypeError(f"unknown parameter(s) for {mechanism}: {sorted(unknown)}")
    x, kind = _to_array(data)
    if x.ndim != 2:
        raise ValueError(f"ampute needs a 2-D table, got {x.ndim} dimension(s)")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"ampute needs at least 2 rows and 1 column, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("ampute needs a complete table: the input already has missing values")
    if not np.isfinite(x).all():
        raise ValueError("ampute needs finite values")
    rng = np.random.default_rng(seed)
    columns = list(data.columns) if kind == "frame" else None
    mask, info = _mask(x, mechanism, float(p), rng, columns, params)
    restored = _restore_columns(mask, int(min_observed), rng)
    x[mask] = np.nan
    out = _from_array(x, data, kind)
    rate = float(mask.mean())
    logger.info("ampute %s p=%.3g seed=%r: realised missing rate %.4f (%d of %d cells)%s", mechanism, p, seed,
                rate, int(mask.sum()), mask.size, f", {restored} restored to keep columns" if restored else "")
    if not return_info:
        return out
    info.update(
        mechanism=mechanism, p=float(p), seed=seed, params=dict(params), mask=mask, realised_rate=rate,
        column_rates=pd.Series(mask.mean(axis=0), index=columns if columns is not None else range(mask.shape[1])),
        restored_cells=restored)
    return out, info


def _missing(a):
    if isinstance(a, pd.DataFrame):
        return a.isna().to_numpy()
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return torch.isnan(a.detach().cpu().to(torch.float64)).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.isnan(np.asarray(a, dtype=float))


def realised_rate(original, amputed):
    """Fraction of the cells observed in ``original`` that are missing in ``amputed``.

    >>> import numpy as np
    >>> realised_rate(np.zeros((2, 2)), np.array([[np.nan, 0], [0, 0]]))
    0.25
    """
    before, after = _missing(original), _missing(amputed)
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {before.shape} vs {after.shape}")
    observed = ~before
    if not observed.any():
        return float("nan")
    return float((after & observed).sum() / observed.sum())
