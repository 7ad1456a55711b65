"""Evaluation harness: amputate complete tables, impute them, score the imputations.

- :func:`ampute` (from :mod:`ciss_vae.amputation`) simulates MCAR, MAR and MNAR
  missingness on a complete table.
- :func:`score` measures an imputation on the amputated cells against the truth.
- :func:`compare` runs CISS-VAE and the standard peers (column mean, KNN,
  IterativeImputer with BayesianRidge, a MissForest-style IterativeImputer with
  ExtraTrees) on identical masks and returns a :class:`ComparisonResult`.
- The methods (CISS-VAE and its peers, including the optional "miceforest"
  and "R-mice") live in :mod:`ciss_vae.peers`; they are re-exported here.

Honesty rules kept by :func:`compare`: every method of a comparison gets a copy
of the same amputated table (the mask's digest is recorded per row of the
result), and no method sees the complete table, the mask's mechanism or the
hidden groups.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ciss_vae.amputation import MECHANISMS, ampute, realised_rate
from ciss_vae.peers import (OPTIONAL_METHODS, PeerUnavailableError, default_methods, miceforest_method,
                            r_mice_method, unavailable_methods)
from ciss_vae.tabular import as_frame, is_tensor

__all__ = ["MECHANISMS", "OPTIONAL_METHODS", "ComparisonResult", "PeerUnavailableError", "Scores", "ampute",
           "compare", "default_methods", "miceforest_method", "r_mice_method", "realised_rate", "score",
           "standardised_rmse", "unavailable_methods"]

logger = logging.getLogger(__name__)

METRICS = ("rmse", "std_rmse", "mae", "wasserstein", "accuracy")


@dataclass
class Scores:
    """Result of :func:`score`.

    per_column : DataFrame indexed by column: ``n`` (amputated cells scored),
        ``rmse`` (original units), ``std_rmse`` (RMSE / the column's std in the
        complete table, population std), ``mae``, ``wasserstein`` (between the
        imputed and the true values of the amputated cells) and ``accuracy``
        (binary and categorical columns only, else NaN).
    overall : Series with the same metrics over all amputated cells: ``rmse``
        and ``mae`` pool the cells in original units, ``std_rmse`` pools the
        standardised errors (as :func:`standardised_rmse`; zero-std columns
        left out), ``wasserstein`` is the mean over columns,
        ``accuracy`` pools the binary/categorical cells (one-hot groups count
        once per row).
    """

    per_column: pd.DataFrame
    overall: pd.Series

    def __getitem__(self, key):
        return self.overall[key]


def _frame(a, like=None):
    """A DataFrame of a DataFrame, ndarray or tensor (read by :mod:`ciss_vae.tabular`), labelled like ``like``."""
    if isinstance(a, pd.DataFrame):
        return a
    frame, _ = as_frame(a.detach().cpu().double() if is_tensor(a) else np.asarray(a, dtype=float))
    if like is not None:
        frame.index, frame.columns = like.index, like.columns
    return frame


def _is_binary(values):
    u = np.unique(values[~np.isnan(values)])
    return len(u) <= 2 and np.isin(u, (0.0, 1.0)).all()


def score(imputed, complete, incomplete, *, categorical=None):
    """Score an imputation on the cells missing in ``incomplete`` but known in ``complete``.

    Parameters
    ----------
    imputed, complete, incomplete : DataFrame, ndarray or tensor of the same shape
        The imputation, the truth and the table the imputer was given. Arrays
        take the DataFrame's labels when one of the others is a DataFrame.
    categorical : list or dict, optional
        Integer-coded categorical columns (list of names: an imputed value
        counts as correct when its nearest level of the complete column is the
        truth), or ``{variable: [one-hot dummy columns]}`` (correct when the
        largest imputed dummy is the true level). Columns whose complete values
        are all 0/1 are scored as binary (imputed value rounded at 0.5).

    Returns
    -------
    Scores
        ``.per_column`` (DataFrame) and ``.overall`` (Series); see :class:`Scores`.
    """
    like = next((a for a in (complete, incomplete, imputed) if isinstance(a, pd.DataFrame)), None)
    imp, tru, inc = (_frame(a, like) for a in (imputed, complete, incomplete))
    if not (imp.shape == tru.shape == inc.shape):
        raise ValueError(f"shapes differ: imputed {imp.shape}, complete {tru.shape}, incomplete {inc.shape}")
    cols = list(tru.columns)
    y = imp.to_numpy(dtype=float)
    t = tru.to_numpy(dtype=float)
    mask = inc.isna().to_numpy() & ~np.isnan(t)
    if np.isnan(y[mask]).any():
        raise ValueError(f"the imputation leaves {int(np.isnan(y[mask]).sum())} scored cell(s) missing")
    sd = np.nanstd(t, axis=0)
    groups = {}
    cat_levels = {}
    if isinstance(categorical, dict):
        groups = {k: [cols.index(c) for c in v] for k, v in categorical.items()}
    elif categorical is not None:
        cat_levels = {cols.index(c): np.unique(t[~np.isnan(t[:, cols.index(c)]), cols.index(c)]) for c in categorical}
    in_group = {j for js in groups.values() for j in js}

    rows = []
    from scipy.stats import wasserstein_distance

    correct_total = 0
    n_discrete = 0
    for j, c in enumerate(cols):
        m = mask[:, j]
        n = int(m.sum())
        rec = {"column": c, "n": n, "rmse": np.nan, "std_rmse": np.nan, "mae": np.nan, "wasserstein": np.nan, "accuracy": np.nan}
        if n:
            err = y[m, j] - t[m, j]
            rec["rmse"] = float(np.sqrt(np.mean(err ** 2)))
            rec["std_rmse"] = rec["rmse"] / sd[j] if sd[j] > 0 else np.nan
            rec["mae"] = float(np.mean(np.abs(err)))
            rec["wasserstein"] = float(wasserstein_distance(y[m, j], t[m, j]))
            if j in cat_levels:
                lv = cat_levels[j]
                nearest = lv[np.abs(y[m, j][:, None] - lv[None, :]).argmin(axis=1)]
                ok = nearest == t[m, j]
            elif j not in in_group and _is_binary(t[:, j]):
                ok = (y[m, j] >= 0.5) == (t[m, j] >= 0.5)
            else:
                ok = None
            if ok is not None:
                rec["accuracy"] = float(ok.mean())
                correct_total += int(ok.sum())
                n_discrete += n
        rows.append(rec)
    per_column = pd.DataFrame(rows).set_index("column")
    for js in groups.values():  # one-hot groups: once per row with any amputated dummy
        m = mask[:, js].any(axis=1)
        if m.any():
            ok = y[m][:, js].argmax(axis=1) == t[m][:, js].argmax(axis=1)
            per_column.loc[[cols[j] for j in js], "accuracy"] = float(ok.mean())
            correct_total += int(ok.sum())
            n_discrete += int(m.sum())

    err = (y - t)[mask]
    keep = mask & (sd > 0)[None, :]
    std_err = ((y - t) / np.where(sd > 0, sd, 1.0))[keep]
    overall = pd.Series({
        "n": int(mask.sum()),
        "rmse": float(np.sqrt(np.mean(err ** 2))) if err.size else np.nan,
        "std_rmse": float(np.sqrt(np.mean(std_err ** 2))) if std_err.size else np.nan,
        "mae": float(np.mean(np.abs(err))) if err.size else np.nan,
        "wasserstein": float(per_column["wasserstein"].mean()) if err.size else np.nan,
        "accuracy": correct_total / n_discrete if n_discrete else np.nan,
    })
    return Scores(per_column=per_column, overall=overall)


def standardised_rmse(imputed, complete, incomplete) -> float:
    """RMSE over the cells missing in ``incomplete`` that ``imputed`` filled, in units of each column's std.

    The std is the population std of the column in ``complete``; zero-std
    columns are left out. Cells the imputation left missing (do-not-impute
    cells) are not scored. Equals ``score(...).overall["std_rmse"]`` when every
    missing cell was filled.
    """
    like = next((a for a in (complete, incomplete, imputed) if isinstance(a, pd.DataFrame)), None)
    imp, tru, inc = (_frame(a, like) for a in (imputed, complete, incomplete))
    unfilled = inc.isna().to_numpy() & imp.isna().to_numpy()
    inc = inc.mask(unfilled, tru.to_numpy())
    return float(score(imp.mask(unfilled, tru.to_numpy()), tru, inc).overall["std_rmse"])


# --------------------------------------------------------------------------- runner


def _digest(mask):
    return hashlib.sha1(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()[:12]


@dataclass
class ComparisonResult:
    """Output of :func:`compare`.

    table : tidy DataFrame, one row per dataset, mechanism, rate, seed and
        method: the overall metrics of :func:`score`, ``seconds`` (the
        method's wall time), ``realised_rate``, ``mask_id`` (digest of the mask
        the method was given) and ``error`` (text when the method failed).
    masks : ``{(dataset, mechanism, rate, seed): boolean mask}``.
    per_column : ``{(dataset, mechanism, rate, seed, method): per-column scores}``.
    """

    table: pd.DataFrame
    masks: dict = field(default_factory=dict)
    per_column: dict = field(default_factory=dict)

    def summary(self, metric="std_rmse"):
        """Mean and std over seeds of ``metric`` (and seconds), per dataset, mechanism, rate and method."""
        g = self.table.groupby(["dataset", "mechanism", "rate", "method"], sort=False)
        out = g[metric].agg(["mean", "std", "count"]).join(g["seconds"].mean().rename("seconds"))
        return out.reset_index()

    def markdown(self, metric="std_rmse", digits=3, higher_is_better=False):
        """Markdown table: one row per dataset, mechanism and rate, one column per method.

        Cells are ``mean ± std`` over seeds of ``metric`` (column ``seeds``: how many); the best mean of each
        row (lowest, or highest with ``higher_is_better``) is in bold; rows where no method has a value
        are left out; "failed" marks a method that raised; the last rows give each method's mean rank and mean
        seconds.
        """
        s = self.summary(metric)
        err = self.table["error"].fillna("") if "error" in self.table else pd.Series("", index=self.table.index)
        failed = set(self.table.loc[err != "", ["dataset", "mechanism", "rate", "method"]].itertuples(
            index=False, name=None))
        methods = list(dict.fromkeys(self.table["method"]))
        lines = [f"| dataset | mechanism | rate | seeds | {' | '.join(methods)} |",
                 "|---|---|---|---|" + "---|" * len(methods)]
        ranks = {m: [] for m in methods}
        for (ds, mech, rate), grp in s.groupby(["dataset", "mechanism", "rate"], sort=False):
            means = dict(zip(grp["method"], grp["mean"]))
            stds = dict(zip(grp["method"], grp["std"]))
            finite = {m: v for m, v in means.items() if np.isfinite(v)}
            if not finite and not any((ds, mech, rate, m) in failed for m in methods):
                continue
            best = (max if higher_is_better else min)(finite, key=finite.get) if finite else None
            r = pd.Series(finite).rank(ascending=not higher_is_better)
            for m in r.index:
                ranks[m].append(r[m])
            cells = []
            for m in methods:
                v = means.get(m, np.nan)
                if not np.isfinite(v):
                    cells.append("failed" if (ds, mech, rate, m) in failed else "")
                    continue
                sd = stds.get(m, np.nan)
                txt = f"{v:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")
                cells.append(f"**{txt}**" if m == best else txt)
            n_seeds = int(grp["count"].max())
            lines.append(f"| {ds} | {mech} | {rate:g} | {n_seeds} | " + " | ".join(cells) + " |")
        secs = self.table.groupby("method")["seconds"].mean()
        lines.append("| mean rank | | | | " + " | ".join(
            f"{np.mean(ranks[m]):.2f}" if ranks[m] else "" for m in methods) + " |")
        lines.append("| mean seconds | | | | " + " | ".join(f"{secs.get(m, np.nan):.1f}" for m in methods) + " |")
        return "\n".join(lines)

    def plot(self, metric="std_rmse"):
        """Matplotlib Figure: one panel per dataset, mean ± std over seeds of ``metric`` per method and mechanism."""
        from matplotlib.figure import Figure

        s = self.summary(metric)
        datasets = list(dict.fromkeys(s["dataset"]))
        methods = list(dict.fromkeys(self.table["method"]))
        keys = list(dict.fromkeys(zip(s["mechanism"], s["rate"])))
        ncol = min(len(datasets), 3)
        nrow = int(np.ceil(len(datasets) / ncol))
        fig = Figure(figsize=(4.5 * ncol, 3.2 * nrow), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        width = 0.8 / max(len(methods), 1)
        for ax, ds in zip(axes, datasets):
            sub = s[s["dataset"] == ds]
            for i, m in enumerate(methods):
                vals = [sub[(sub["mechanism"] == k[0]) & (sub["rate"] == k[1]) & (sub["method"] == m)] for k in keys]
                mean = [v["mean"].iloc[0] if len(v) else np.nan for v in vals]
                sd = [v["std"].iloc[0] if len(v) else np.nan for v in vals]
                ax.bar(np.arange(len(keys)) + (i - (len(methods) - 1) / 2) * width, mean, width,
                       yerr=np.nan_to_num(sd), capsize=2, label=m)
            ax.set_xticks(np.arange(len(keys)))
            ax.set_xticklabels([f"{k[0]} {k[1]:g}" for k in keys], fontsize=8)
            ax.set_title(ds, fontsize=10)
            ax.set_ylabel(metric)
        for ax in axes[len(datasets):]:
            ax.set_visible(False)
        axes[0].legend(fontsize=7)
        return fig


def compare(datasets, mechanisms=("MCAR", "MAR", "MNAR"), rates=(0.3,), seeds=(0, 1, 2), methods=None,
            ciss_vae_kwargs=None, ampute_kwargs=None, categorical=None, on_result=None):
    """Run imputers on identical masks of complete tables and score them.

    Parameters
    ----------
    datasets : dict
        ``{name: complete DataFrame}`` (numeric, no missing values).
    mechanisms, rates, seeds : sequences
        Every combination is amputated once with :func:`ampute`; the seed of
        the amputation is also passed to every method.
    methods : dict or sequence of names, optional
        ``{name: f(amputed_df, seed) -> imputed_df}``, or names taken from
        ``default_methods(optional=True)`` (the five defaults plus "miceforest" and
        "R-mice"); None runs the five of ``default_methods()``.
    ciss_vae_kwargs : dict, optional
        Extra arguments of :func:`ciss_vae.run_cissvae` for the default CISS-VAE method.
    ampute_kwargs : dict, optional
        Extra arguments of :func:`ampute`: ``{dataset: {mechanism: kwargs}}``;
        a mechanism key "*" applies to all mechanisms of that dataset.
    categorical : dict, optional
        ``{dataset: categorical}`` passed to :func:`score`.
    on_result : callable, optional
        Called with each row (dict) as soon as it is scored (progress output).

    Returns
    -------
    ComparisonResult
    """
    if methods is None:
        methods = default_methods(ciss_vae_kwargs)
    elif not isinstance(methods, dict):
        available = default_methods(ciss_vae_kwargs, optional=True)
        unknown = [m for m in methods if m not in available]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(available)}")
        methods = {m: available[m] for m in methods}
    ampute_kwargs = ampute_kwargs or {}
    categorical = categorical or {}
    rows, masks, per_column = [], {}, {}
    for name, complete in datasets.items():
        complete = _frame(complete)
        for mech in mechanisms:
            kw = dict(ampute_kwargs.get(name, {}).get("*", {}))
            kw.update(ampute_kwargs.get(name, {}).get(mech, {}))
            for rate in rates:
                for seed in seeds:
                    amputed, info = ampute(complete, mech, p=rate, seed=seed, return_info=True, **kw)
                    key = (name, mech, rate, seed)
                    masks[key] = info["mask"]
                    for method, fn in methods.items():
                        given = amputed.copy()
                        digest = _digest(given.isna().to_numpy())
                        row = {"dataset": name, "mechanism": mech, "rate": rate, "seed": seed, "method": method,
                                   "realised_rate": info["realised_rate"], "mask_id": digest, "error": ""}
                        start = time.perf_counter()
                        try:
                            imputed = _frame(fn(given, seed), complete)
                            row["seconds"] = time.perf_counter() - start
                            sc = score(imputed, complete, amputed, categorical=categorical.get(name))
                            row.update({m: sc.overall[m] for m in METRICS})
                            per_column[key + (method,)] = sc.per_column
                        except Exception as exc:  # noqa: BLE001 - a failing method is reported, not fatal
                            row["seconds"] = time.perf_counter() - start
                            row.update({m: np.nan for m in METRICS})
                            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                            logger.warning("%s failed on %s: %s", method, key, row["error"])
                        rows.append(row)
                        if on_result is not None:
                            on_result(row)
    cols = ["dataset", "mechanism", "rate", "seed", "method", *METRICS, "seconds", "realised_rate", "mask_id",
            "error"]
    return ComparisonResult(table=pd.DataFrame(rows, columns=cols), masks=masks, per_column=per_column)
