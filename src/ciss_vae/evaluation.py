"""Evaluation harness: amputate complete tables, impute them, score the imputations.

- :func:`ampute` (from :mod:`ciss_vae.amputation`) simulates MCAR, MAR and MNAR
  missingness on a complete table.
- :func:`score` measures an imputation on the amputated cells against the truth.
- :func:`compare` runs CISS-VAE and the standard peers (column mean, KNN,
  IterativeImputer with BayesianRidge, a MissForest-style IterativeImputer with
  ExtraTrees) on identical masks and returns a :class:`ComparisonResult`.
- Two optional peers, run when named (``compare(methods=[...])``): "miceforest"
  (LightGBM chained equations, :func:`miceforest_method`; needs
  ``pip install miceforest==6.0.5 lightgbm==4.5.0``) and "R-mice" (R's mice with
  predictive mean matching through ``Rscript``, :func:`r_mice_method`; needs R and
  its mice package, e.g. ``apt-get install r-base-core r-cran-mice``). Both are
  benchmark dependencies, not package dependencies: when the software is absent
  they raise :class:`PeerUnavailableError`, and :func:`unavailable_methods` says so
  beforehand.

Honesty rules kept by :func:`compare`: every method of a comparison gets a copy
of the same amputated table (the mask's digest is recorded per row of the
result), and no method sees the complete table, the mask's mechanism or the
hidden groups.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ciss_vae.amputation import MECHANISMS, ampute, realised_rate

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
    if isinstance(a, pd.DataFrame):
        return a
    try:
        import torch
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().to(torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(a, dtype=float)
    if like is not None:
        return pd.DataFrame(a, index=like.index, columns=like.columns)
    return pd.DataFrame(a)


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


# --------------------------------------------------------------------------- methods


def _sklearn_method(make, standardise=False):
    def run(amputed, seed):
        imputer = make(seed)
        x = np.array(amputed.to_numpy(dtype=float), copy=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            values = _fit(imputer, x, standardise)
        return pd.DataFrame(values, index=amputed.index, columns=amputed.columns)
    return run


def _fit(imputer, x, standardise):
    if standardise:  # distances on standardised columns (observed mean and std)
        mu = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return imputer.fit_transform((x - mu) / sd) * sd + mu
    return imputer.fit_transform(x)


def _mean(seed):
    from sklearn.impute import SimpleImputer
    return SimpleImputer(strategy="mean", keep_empty_features=True)


def _knn(seed):
    from sklearn.impute import KNNImputer
    return KNNImputer(n_neighbors=5, keep_empty_features=True)


def _mice(seed):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from sklearn.linear_model import BayesianRidge
    return IterativeImputer(estimator=BayesianRidge(), max_iter=10, random_state=seed, keep_empty_features=True)


def _missforest(seed, n_estimators=50, max_iter=5):
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    return IterativeImputer(
        estimator=ExtraTreesRegressor(n_estimators=n_estimators, min_samples_leaf=1, max_features=1.0,
                                      random_state=seed, n_jobs=1),
        max_iter=max_iter, initial_strategy="mean", random_state=seed, keep_empty_features=True)


def _ciss_vae(kwargs=None):
    def run(amputed, seed):
        from ciss_vae.pipeline import run_cissvae
        kw = {"seed": seed}
        kw.update(kwargs or {})
        return run_cissvae(amputed, print_dataset=False, return_model=False, **kw)
    return run


def default_methods(ciss_vae_kwargs=None, missforest_trees=50, missforest_iter=5, optional=False,
                    miceforest_kwargs=None, r_mice_kwargs=None):
    """The methods of :func:`compare`: ``{name: f(amputed_df, seed) -> imputed_df}``.

    "CISS-VAE" is :func:`ciss_vae.run_cissvae` with its defaults (plus
    ``ciss_vae_kwargs``; ``seed`` is the repetition's seed); "Mean" is
    ``SimpleImputer(strategy="mean")``; "KNN" is ``KNNImputer(n_neighbors=5)`` on
    standardised columns (observed mean and std);
    "MICE" is ``IterativeImputer(BayesianRidge(), max_iter=10)``; "MissForest"
    is ``IterativeImputer(ExtraTreesRegressor(n_estimators=missforest_trees),
    max_iter=missforest_iter)``.

    With ``optional=True`` the two peers of :data:`OPTIONAL_METHODS` follow (slow,
    and they need software outside the package; see :func:`unavailable_methods`):
    "miceforest" is :func:`miceforest_method` (``**miceforest_kwargs``: m = 5
    datasets, 5 iterations, one LightGBM thread by default) and "R-mice" is
    :func:`r_mice_method` (``**r_mice_kwargs``: pmm, m = 5, maxit = 5). Both
    impute with the mean of their m completed tables. :func:`compare` runs the
    first five by default and any of the seven by name; the names listed here are
    the names it accepts.
    """
    methods = {
        "CISS-VAE": _ciss_vae(ciss_vae_kwargs),
        "Mean": _sklearn_method(_mean),
        "KNN": _sklearn_method(_knn, standardise=True),
        "MICE": _sklearn_method(_mice),
        "MissForest": _sklearn_method(lambda s: _missforest(s, missforest_trees, missforest_iter)),
    }
    if optional:
        methods["miceforest"] = miceforest_method(**(miceforest_kwargs or {}))
        methods["R-mice"] = r_mice_method(**(r_mice_kwargs or {}))
    return methods


# --------------------------------------------------------------------------- optional peers

OPTIONAL_METHODS = ("miceforest", "R-mice")
"""Peers that :func:`default_methods` adds with ``optional=True``; they need software outside the package."""

MICEFOREST_INSTALL = "pip install miceforest==6.0.5 lightgbm==4.5.0"
R_MICE_INSTALL = "apt-get install -y r-base-core r-cran-mice"


class PeerUnavailableError(ImportError):
    """An optional peer's software (miceforest, or R with mice) is not installed; the message says what to install."""


def _import_miceforest():
    try:
        import lightgbm
        import miceforest
    except ImportError as exc:
        raise PeerUnavailableError(
            f"the miceforest peer needs the miceforest and lightgbm packages ({exc}); install them with "
            f"`{MICEFOREST_INSTALL}` (lightgbm 4.7 and later break miceforest 6.0.5)") from exc
    if not hasattr(lightgbm.Booster, "_Booster__inner_predict"):  # miceforest 6.0.5 calls it; lightgbm 4.7 changed it
        raise PeerUnavailableError(
            f"miceforest {getattr(miceforest, '__version__', '?')} does not work with lightgbm "
            f"{lightgbm.__version__} (Booster.__inner_predict changed); install `{MICEFOREST_INSTALL}`")
    return miceforest


def _peer_input(amputed, name):
    """Float copy of ``amputed`` and its missing mask; refuses columns with no observed value."""
    x = np.array(amputed.to_numpy(dtype=float), copy=True)
    miss = np.isnan(x)
    empty = [c for c, e in zip(amputed.columns, miss.all(axis=0)) if e]
    if empty and len(x):
        raise ValueError(f"{name} cannot impute column(s) with no observed value: {empty}")
    return x, miss


def _peer_output(amputed, x, miss, filled, name):
    """``amputed`` with its missing cells taken from ``filled``; observed cells, index and columns kept exactly."""
    out = x.copy()
    out[miss] = filled[miss]
    left = int(np.isnan(out[miss]).sum())
    if left:
        raise RuntimeError(f"{name} left {left} missing cell(s) unimputed")
    return pd.DataFrame(out, index=amputed.index, columns=amputed.columns)


def miceforest_method(m=5, iterations=5, num_threads=1, **lgb_params):
    """The "miceforest" peer: LightGBM chained equations (miceforest 6.0.5), as ``f(amputed_df, seed)``.

    ``miceforest.ImputationKernel(data, num_datasets=m, random_state=seed)``, then
    ``kernel.mice(iterations, num_threads=num_threads, **lgb_params)`` with
    miceforest's default LightGBM models (random forests of 48 trees) and mean
    matching (5 candidates); ``mice()`` of miceforest 6.0.5 has no default number
    of iterations, so 5 are run unless ``iterations`` says otherwise. The point
    imputation is the mean of the ``m`` completed tables
    (``kernel.complete_data(dataset=i)``). ``seed`` is the repetition's seed.

    ``num_threads`` is LightGBM's thread count: keep 1 when other processes share
    the cores (LightGBM's threads crawl then). miceforest needs plain string column
    names and a RangeIndex: the columns are renamed ``v0, v1, ...`` and the index
    reset for the fit, and the input's index and column labels are given back.

    miceforest is a benchmark dependency, not a package dependency: it is imported
    when the method runs, and :class:`PeerUnavailableError` (an ImportError) names
    ``pip install miceforest==6.0.5 lightgbm==4.5.0`` when it is absent.
    """

    def run(amputed, seed):
        mf = _import_miceforest()
        x, miss = _peer_input(amputed, "miceforest")
        if not miss.any():
            return _peer_output(amputed, x, miss, x, "miceforest")
        data = pd.DataFrame(x, columns=[f"v{j}" for j in range(x.shape[1])])
        kernel = mf.ImputationKernel(data, num_datasets=m, random_state=int(seed))
        kernel.mice(iterations, num_threads=num_threads, **lgb_params)
        filled = np.mean([kernel.complete_data(dataset=i).to_numpy(dtype=float) for i in range(m)], axis=0)
        return _peer_output(amputed, x, miss, filled, "miceforest")

    return run


_R_MICE_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
infile <- args[[1]]; outfile <- args[[2]]
m <- as.integer(args[[3]]); maxit <- as.integer(args[[4]]); seed <- as.integer(args[[5]]); meth <- args[[6]]
if (!requireNamespace("mice", quietly = TRUE)) {
  cat("CISS_VAE_NO_MICE\n", file = stderr())
  quit(save = "no", status = 3)
}
x <- utils::read.csv(infile, header = TRUE, sep = ",", dec = ".", quote = "", check.names = FALSE,
                     colClasses = "numeric", na.strings = "NA", strip.white = FALSE)
imp <- mice::mice(x, m = m, maxit = maxit, method = meth, seed = seed, printFlag = FALSE,
                  remove.constant = FALSE, remove.collinear = FALSE)
done <- mice::complete(imp, action = "all")
avg <- Reduce(`+`, lapply(done, as.matrix)) / length(done)
out <- as.data.frame(lapply(seq_len(ncol(avg)), function(j) ifelse(is.na(avg[, j]), "NA", sprintf("%.17g", avg[, j]))))
names(out) <- names(x)
utils::write.table(out, outfile, sep = ",", quote = FALSE, row.names = FALSE, col.names = TRUE, na = "NA")
"""


def _thread_env(threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def _rscript(rscript):
    exe = shutil.which(rscript)
    if exe is None:
        raise PeerUnavailableError(
            f"the R-mice peer needs R's Rscript ({rscript!r} is not on PATH) and R's mice package; install them "
            f"with `{R_MICE_INSTALL}` (Debian/Ubuntu) or R plus install.packages(\"mice\")")
    return exe


def _no_mice_error(exe):
    return PeerUnavailableError(
        f"the R-mice peer needs R's mice package, which {exe} cannot load; install it with "
        f"`apt-get install -y r-cran-mice` (Debian/Ubuntu) or install.packages(\"mice\") in R")


def r_mice_method(m=5, maxit=5, method="pmm", threads=1, rscript="Rscript", timeout=None):
    """The "R-mice" peer: R's ``mice`` by predictive mean matching, as ``f(amputed_df, seed)``.

    Runs ``mice(data, m = m, maxit = maxit, method = "pmm", seed = seed)`` (mice's
    own defaults m = 5, maxit = 5; ``seed`` is the repetition's seed) through
    ``Rscript`` on a temporary CSV, and reads back the point imputation: the mean of
    the ``m`` completed tables (``complete(imp, "all")``). ``remove.constant`` and
    ``remove.collinear`` are FALSE: with mice's default (TRUE) the missing cells
    of a constant or collinear column stay missing, which cannot be scored.

    The table goes to R with columns named ``v1, v2, ...`` (mice builds formulas
    from the names, and names such as ``"a b"`` break them), without the index,
    as ``%.17g`` numbers, and R writes the mean table the same way
    (``check.names = FALSE``, explicit separators and NA strings); the input's
    index, column labels and order come back, and observed cells are copied from
    the input unchanged. ``threads`` sets OMP/OpenBLAS/MKL threads of R's BLAS;
    ``timeout`` (seconds) bounds the R run.

    R is a benchmark dependency, not a package dependency: when ``Rscript`` or the
    mice package is absent, :class:`PeerUnavailableError` says what to install
    (``apt-get install -y r-base-core r-cran-mice`` on Debian/Ubuntu).
    """

    def run(amputed, seed):
        exe = _rscript(rscript)
        x, miss = _peer_input(amputed, "R-mice")
        if not miss.any():
            return _peer_output(amputed, x, miss, x, "R-mice")
        header = [f"v{j + 1}" for j in range(x.shape[1])]
        with tempfile.TemporaryDirectory(prefix="ciss_vae_rmice_") as tmp:
            script, infile, outfile = (os.path.join(tmp, f) for f in ("impute.R", "amputed.csv", "imputed.csv"))
            with open(script, "w", encoding="utf-8") as fh:
                fh.write(_R_MICE_SCRIPT)
            pd.DataFrame(x, columns=header).to_csv(infile, index=False, na_rep="NA", float_format="%.17g",
                                                   lineterminator="\n")
            proc = subprocess.run([exe, "--no-init-file", script, infile, outfile, str(int(m)), str(int(maxit)),
                                   str(int(seed)), str(method)],
                                  capture_output=True, text=True, timeout=timeout, env=_thread_env(threads))
            if proc.returncode == 3 and "CISS_VAE_NO_MICE" in proc.stderr:
                raise _no_mice_error(exe)
            if proc.returncode != 0:
                raise RuntimeError(f"R's mice failed (Rscript exit status {proc.returncode}): "
                                   f"{proc.stderr.strip()[-1500:]}")
            back = pd.read_csv(outfile, sep=",", na_values=["NA"], keep_default_na=False, dtype=float,
                               float_precision="round_trip")
        if list(back.columns) != header or back.shape != x.shape:
            raise RuntimeError(f"R's mice returned a {back.shape} table with columns {list(back.columns)[:5]}..., "
                               f"expected {x.shape}")
        return _peer_output(amputed, x, miss, back.to_numpy(dtype=float), "R-mice")

    return run


def unavailable_methods(names=OPTIONAL_METHODS, rscript="Rscript"):
    """``{name: why}`` for the methods among ``names`` whose software is not installed (empty when all can run).

    Only "miceforest" and "R-mice" need software outside the package; for R, this
    starts ``Rscript`` once to check that the mice package loads.
    """
    out = {}
    for name in names:
        try:
            if name == "miceforest":
                _import_miceforest()
            elif name == "R-mice":
                exe = _rscript(rscript)
                check = subprocess.run(
                    [exe, "--no-init-file", "-e",
                     'quit(save = "no", status = if (requireNamespace("mice", quietly = TRUE)) 0 else 3)'],
                    capture_output=True, text=True, timeout=120)
                if check.returncode != 0:
                    raise _no_mice_error(exe)
        except PeerUnavailableError as exc:
            out[name] = str(exc)
    return out


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
