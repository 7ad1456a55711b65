"""Multiple imputation in one call, and the long table R's mice and statsmodels users pool from.

:func:`multiple_impute` fits a :class:`~ciss_vae.imputer.CISSVAEImputer` with
one bootstrap refit per imputation and returns the ``m`` completed tables of
the training data; :func:`stack_draws` stacks them as mice's
``complete(imp, "long")`` does, with ``.imp`` and ``.id`` columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ciss_vae.imputer import CISSVAEImputer


def multiple_impute(data, m: int = 5, *, clusters=None, return_imputer: bool = False, **settings):
    """``m`` proper multiple imputations of ``data``: a list of completed tables.

    Fits ``CISSVAEImputer(bootstrap_models=m, **settings)`` on ``data`` (the
    path of :func:`~ciss_vae.pipeline.run_cissvae`, then ``m`` bootstrap refits
    of the selected model), and draws imputation ``i`` from refit ``i``: the
    spread between the tables holds the model's uncertainty as well as the
    residual noise, so Rubin's rules (:func:`~ciss_vae.pooling.pool`) give
    intervals of the right width. Observed cells are identical in every table;
    binary and label columns get valid values; dtypes, index and columns are
    the caller's. The same ``seed`` gives the same tables.

    Parameters
    ----------
    data : DataFrame, ndarray or Tensor
        The table with missing cells.
    m : int, default 5
        Number of imputations.
    clusters : array-like, optional
        Cluster label of each row, as in ``run_cissvae``.
    return_imputer : bool, default False
        Also return the fitted imputer (to draw for new rows, or save).
    **settings
        Any setting of :class:`~ciss_vae.imputer.CISSVAEImputer` (``seed``,
        ``epochs``, ...); ``bootstrap_models`` defaults to ``m`` (0 gives the
        cheaper improper draws of one model).

    Returns
    -------
    list of DataFrame (ndarray for array input), or ``(tables, imputer)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from ciss_vae import multiple_impute, stack_draws
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=120)
    >>> df = pd.DataFrame({"x": x, "y": x + rng.normal(size=120)})
    >>> df.loc[::4, "x"] = np.nan
    >>> tables = multiple_impute(df, m=3, epochs=10, max_loops=1, seed=0)
    >>> len(tables), int(tables[0]["x"].isna().sum())
    (3, 0)
    >>> stack_draws(tables, original=df).groupby(".imp").size().tolist()
    [120, 120, 120, 120]
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"`m` must be a positive integer, got {m!r}")
    settings.setdefault("bootstrap_models", int(m))
    imputer = CISSVAEImputer(**settings).fit(data, clusters=clusters)
    tables = imputer.transform(data, n_draws=int(m))
    return (tables, imputer) if return_imputer else tables


def stack_draws(draws, original=None) -> pd.DataFrame:
    """The completed tables as one long table with ``.imp`` and ``.id`` columns (mice's ``complete(imp, "long")``).

    ``.imp`` numbers the imputations from 1; with ``original`` (the table with
    its missing cells) it is included first as ``.imp`` 0, as mice's
    ``include = TRUE`` does and ``mice::as.mids`` needs. ``.id`` is each row's
    index label. Group by ``.imp`` to analyse each table, then pool with
    :func:`~ciss_vae.pooling.pool`.

    Parameters
    ----------
    draws : list of DataFrame or ndarray
        The ``m`` completed tables (``transform(X, n_draws=m)``,
        :func:`multiple_impute`), all with the same columns and rows.
    original : DataFrame or ndarray, optional

    Returns
    -------
    DataFrame with columns ``.imp``, ``.id`` and the tables' columns.
    """
    tables = [original] if original is not None else []
    tables += list(draws)
    if not draws:
        raise ValueError("`draws` is empty")
    frames = [t if isinstance(t, pd.DataFrame) else pd.DataFrame(np.asarray(t)) for t in tables]
    first = frames[0]
    for i, f in enumerate(frames[1:], start=1):
        if list(f.columns) != list(first.columns) or not f.index.equals(first.index):
            raise ValueError(f"table {i} has other columns or rows than table 0")
    start = 0 if original is not None else 1
    out = pd.concat([f.assign(**{".imp": k, ".id": f.index}) for k, f in enumerate(frames, start=start)],
                    ignore_index=True)
    return out[[".imp", ".id", *first.columns]]
