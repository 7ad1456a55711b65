"""Seeded registry-sized tables of mixed column types with clustered, value-dependent missingness.

:func:`simulate_registry` makes the tables of ``benchmarks/scale.py``: any
number of rows (a million takes a few seconds), a hundred columns by default
(continuous, binary and one categorical column), rows in hidden groups that
are also the missingness clusters, and cells missing not at random.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["SimulatedRegistry", "simulate_registry"]

N_FACTORS = 6
N_COVARIATES = 4            # continuous columns never missing (the registry's base data)
N_LEVELS = 5                # levels of the categorical column
NOISE_SD = 0.5              # of a continuous column's unique part, in units of its latent part
RATE_CHOICES = np.array([0.0, 0.0, 0.1, 0.3, 0.6, 0.8])  # per (cluster, column block) missing rates
N_BLOCKS = 10               # the modelled columns fall into this many blocks of shared missingness
MNAR_EFFECT = 1.0           # logit shift of a cell's missing probability per SD of its own value
ROW_CHUNK = 131072          # rows generated at a time (bounds the float64 temporaries)


class SimulatedRegistry(NamedTuple):
    """A simulated registry table with its truth.

    Attributes
    ----------
    df_missing : pandas.DataFrame
        The table with missing cells (NaN, or ``NaN`` in the categorical column).
    df_complete : pandas.DataFrame
        The same table without missing cells.
    clusters : numpy.ndarray
        Hidden group (= missingness cluster) of each row, ``int64``.
    """

    df_missing: pd.DataFrame
    df_complete: pd.DataFrame
    clusters: np.ndarray


def _design(n_columns: int, n_clusters: int, rng: np.random.Generator):
    """Column layout, loadings and per-cluster missing rates (fixed by the seed)."""
    n_binary = max(1, n_columns // 10)
    n_cont = n_columns - n_binary - 1
    if n_cont <= N_COVARIATES:
        raise ValueError(f"n_columns must be at least {N_COVARIATES + 3}, got {n_columns}")
    load_cont = rng.normal(0.0, 1.0, (N_FACTORS, n_cont)) / np.sqrt(N_FACTORS)
    load_bin = rng.normal(0.0, 1.5, (N_FACTORS, n_binary)) / np.sqrt(N_FACTORS)
    load_cat = rng.normal(0.0, 1.5, (N_FACTORS, N_LEVELS)) / np.sqrt(N_FACTORS)
    group_cont = rng.normal(0.0, 0.8, (n_clusters, n_cont))
    group_bin = rng.normal(0.0, 0.8, (n_clusters, n_binary))
    group_cat = rng.normal(0.0, 0.8, (n_clusters, N_LEVELS))
    bend = rng.normal(0.0, 0.5, n_cont)        # strength of a non-linear term per continuous column
    scale = np.exp(rng.normal(0.0, 1.0, n_cont))
    centre = rng.normal(0.0, 3.0, n_cont)
    # Columns that can be missing: all but the covariates; each belongs to a block.
    n_free = n_columns - N_COVARIATES
    block = np.arange(n_free) % N_BLOCKS
    block_rates = rng.choice(RATE_CHOICES, (n_clusters, N_BLOCKS))
    block_rates[0] = 0.0 if n_clusters > 1 else block_rates[0]  # one cluster of complete rows
    rates = np.zeros((n_clusters, n_columns))
    rates[:, N_COVARIATES:] = block_rates[:, block]
    return dict(n_cont=n_cont, n_binary=n_binary, load_cont=load_cont, load_bin=load_bin, load_cat=load_cat,
                group_cont=group_cont, group_bin=group_bin, group_cat=group_cat, bend=bend, scale=scale,
                centre=centre, rates=rates)


def _chunk(d: dict, group: np.ndarray, rng: np.random.Generator):
    """Complete values (continuous, binary, categorical codes) and the missing mask of some rows."""
    n = len(group)
    f = rng.standard_normal((n, N_FACTORS))
    latent = f @ d["load_cont"] + d["group_cont"][group]
    latent += d["bend"] * np.tanh(f[:, :1] * f[:, 1:2] + latent)
    cont_z = latent + NOISE_SD * rng.standard_normal(latent.shape)
    cont = d["centre"] + d["scale"] * cont_z
    bin_logit = f @ d["load_bin"] + d["group_bin"][group]
    binary = (rng.random(bin_logit.shape) < 1.0 / (1.0 + np.exp(-bin_logit))).astype(np.int8)
    cat_score = f @ d["load_cat"] + d["group_cat"][group] + rng.gumbel(size=(n, N_LEVELS))
    cat = cat_score.argmax(axis=1)
    # Value-dependent missingness: a cell's own standardised value shifts its missing probability.
    own = np.column_stack([cont_z / cont_z.std(axis=0, keepdims=True).clip(1e-9),
                           2.0 * binary - 1.0, (cat - (N_LEVELS - 1) / 2.0) / 2.0])
    rate = d["rates"][group]
    with np.errstate(divide="ignore"):
        logit = np.log(rate) - np.log1p(-rate)
    p = 1.0 / (1.0 + np.exp(-(logit + MNAR_EFFECT * own)))
    missing = rng.random(p.shape) < p
    return cont, binary, cat, missing


def simulate_registry(n_rows: int = 100_000, n_columns: int = 100, n_clusters: int = 5,
                      seed: int = 0, design_seed: int | None = None) -> SimulatedRegistry:
    """Simulate a registry table of mixed column types with clustered, MNAR missingness.

    Parameters
    ----------
    n_rows : int, default 100000
        Number of rows (split at random over the hidden groups).
    n_columns : int, default 100
        Columns of the table: a tenth binary (``b1``, ...; ``Int8`` with
        ``<NA>``), one categorical ``region`` (pandas ``category`` of five
        levels), the rest continuous (``x1``, ...; float64), the first four of
        which (``x1`` .. ``x4``) are never missing.
    n_clusters : int, default 5
        Hidden groups; each is a missingness cluster.
    seed : int, default 0
        Seed of everything (design and rows).
    design_seed : int, optional
        Seed of the design alone (column layout, loadings, group means and
        missing rates), so that another ``seed`` with the same
        ``design_seed`` gives fresh rows of the same population (new rows for
        ``transform``). Default: the design of ``seed``.

    Returns
    -------
    SimulatedRegistry
        ``df_missing``, ``df_complete`` (same columns and dtypes) and the
        ``clusters`` of the rows.

    Notes
    -----
    Every row has six standard normal latent factors and a hidden group. A
    continuous column is a linear function of the factors plus a group mean,
    bent by a ``tanh`` term, plus unique noise (half the latent part's scale),
    then scaled and shifted to its own unit. Binary columns are Bernoulli and
    ``region`` is a softmax draw, both driven by the factors and the group.
    The columns that may be missing fall into ten blocks; each group draws a
    missing rate per block from {0, 0.1, 0.3, 0.6, 0.8} (group 0 is complete),
    so the groups are recoverable from the missingness pattern. A cell is
    missing with probability ``sigmoid(logit(rate) + z)``, ``z`` its own
    standardised value (binary: +-1; region: its code centred), so high values
    are missing more often (missing not at random). Rows are generated in
    chunks of :data:`ROW_CHUNK`, each from its own seed.

    Examples
    --------
    >>> from ciss_vae.data import simulate_registry
    >>> reg = simulate_registry(n_rows=1000, n_columns=20, seed=1)
    >>> reg.df_missing.shape
    (1000, 20)
    >>> reg.df_missing["region"].dtype.name, reg.df_missing["b1"].dtype.name
    ('category', 'Int8')
    >>> bool(reg.df_missing[["x1", "x2", "x3", "x4"]].notna().all().all())
    True
    """
    if n_rows <= 0:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")
    own_design, group_seed, rows_seed = np.random.SeedSequence(seed).spawn(3)
    if design_seed is not None:
        own_design = np.random.SeedSequence(design_seed).spawn(3)[0]
    d = _design(int(n_columns), int(n_clusters), np.random.default_rng(own_design))
    n_cont, n_bin = d["n_cont"], d["n_binary"]
    group = np.random.default_rng(group_seed).integers(0, n_clusters, n_rows)
    cont = np.empty((n_rows, n_cont))
    binary = np.empty((n_rows, n_bin), dtype=np.int8)
    cat = np.empty(n_rows, dtype=np.int8)
    missing = np.empty((n_rows, n_cont + n_bin + 1), dtype=bool)
    chunk_seeds = rows_seed.spawn(-(-n_rows // ROW_CHUNK))
    for i, start in enumerate(range(0, n_rows, ROW_CHUNK)):
        rows = slice(start, start + ROW_CHUNK)
        cont[rows], binary[rows], cat[rows], missing[rows] = _chunk(d, group[rows],
                                                                    np.random.default_rng(chunk_seeds[i]))
    names = ([f"x{j + 1}" for j in range(n_cont)] + [f"b{j + 1}" for j in range(n_bin)] + ["region"])
    levels = [f"R{k + 1}" for k in range(N_LEVELS)]
    complete = {f"x{j + 1}": cont[:, j] for j in range(n_cont)}
    complete.update({f"b{j + 1}": pd.array(binary[:, j], dtype="Int8") for j in range(n_bin)})
    complete["region"] = pd.Categorical.from_codes(cat, categories=levels)
    df_complete = pd.DataFrame(complete, columns=names)
    gaps = {}
    for j, name in enumerate(names):
        col = df_complete[name]
        gaps[name] = col.mask(missing[:, j]) if missing[:, j].any() else col.copy()
    df_missing = pd.DataFrame(gaps, columns=names)
    return SimulatedRegistry(df_missing, df_complete, group.astype(np.int64))
