"""The imputers :func:`~ciss_vae.evaluation.compare` runs: CISS-VAE and its peers, one function each.

Every method is ``f(amputed_df, seed) -> imputed_df`` (same index and columns,
observed cells as given). :func:`default_methods` builds them by name:

- "CISS-VAE" (:func:`~ciss_vae.pipeline.run_cissvae`'s default call), "Mean",
  "KNN", "MICE" (IterativeImputer with BayesianRidge) and a MissForest-style
  IterativeImputer with ExtraTrees, all from scikit-learn;
- two optional peers, run when named: "miceforest" (LightGBM chained equations,
  :func:`miceforest_method`; needs ``pip install miceforest==6.0.5
  lightgbm==4.5.0``) and "R-mice" (R's mice with predictive mean matching
  through ``Rscript``, :func:`r_mice_method`; needs R and its mice package,
  e.g. ``apt-get install r-base-core r-cran-mice``). Both are benchmark
  dependencies, not package dependencies: when the software is absent they
  raise :class:`PeerUnavailableError`, and :func:`unavailable_methods` says so
  beforehand.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

__all__ = ["OPTIONAL_METHODS", "PeerUnavailableError", "default_methods", "miceforest_method", "r_mice_method",
           "unavailable_methods"]

logger = logging.getLogger(__name__)


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
            back = pd.read_csv(outfile, sep=",", na_values=["NA"], keep_default_na=False, dtype=float)
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
