"""Rubin's rules: combine the estimates of ``m`` analyses of multiply imputed data.

Analyse each completed table of ``CISSVAEImputer.transform(X, n_draws=m)``,
collect each analysis' estimate and its squared standard error, and pool them::

    res = pool(estimates, variances)          # one parameter or several
    res.estimate, res.variance, res.df, res.ci
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class PooledEstimate:
    """Pooled result (arrays have the parameters' shape; scalars for one parameter).

    Attributes
    ----------
    estimate : mean of the ``m`` estimates (Q-bar).
    variance : total variance T = W + (1 + 1/m) B.
    within : mean within-imputation variance W (U-bar).
    between : between-imputation variance B (sample variance of the estimates).
    df : degrees of freedom of the t reference distribution (Barnard-Rubin when
        ``dfcom`` is given, Rubin's classic df otherwise; inf when B = 0 and
        ``dfcom`` is None).
    riv : relative increase in variance due to missingness, (1 + 1/m) B / W.
    lambda_ : proportion of the total variance due to missingness, (1 + 1/m) B / T.
    fmi : fraction of missing information, (riv + 2 / (df + 3)) / (riv + 1).
    ci : (lower, upper) bounds of the ``1 - alpha`` confidence interval.
    se : sqrt(variance).
    m : number of imputations.
    """

    estimate: object
    variance: object
    within: object
    between: object
    df: object
    riv: object
    lambda_: object
    fmi: object
    ci: tuple
    se: object
    m: int


def pool(estimates, variances, *, dfcom=None, alpha=0.05) -> PooledEstimate:
    """Pool ``m`` estimates and their variances with Rubin's rules.

    Parameters
    ----------
    estimates : array-like of shape (m,) or (m, p)
        Estimate of each parameter in each of the ``m`` completed datasets.
    variances : array-like, same shape
        Squared standard error of each estimate (within-imputation variance).
    dfcom : float, optional
        Complete-data degrees of freedom (e.g. ``n - k`` for a regression).
        Given: the Barnard-Rubin (1999) small-sample df; None: Rubin's (1987)
        classic df ``(m - 1) / lambda**2``.
    alpha : float, default=0.05
        The interval is ``estimate +/- t_{df, 1 - alpha/2} * se``.

    Returns
    -------
    PooledEstimate

    Examples
    --------
    >>> res = pool([1.0, 1.2, 0.9], [0.04, 0.05, 0.04], dfcom=100)
    >>> round(float(res.estimate), 4), round(float(res.variance), 4)
    (1.0333, 0.0744)
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.shape != u.shape:
        raise ValueError(f"estimates have shape {q.shape} but variances have shape {u.shape}")
    if q.ndim == 0 or q.shape[0] < 2:
        raise ValueError("pooling needs at least two imputations (estimates of shape (m,) or (m, p), m >= 2)")
    if not (np.isfinite(q).all() and np.isfinite(u).all()):
        raise ValueError("estimates and variances must be finite")
    if (u < 0).any():
        raise ValueError("variances must be non-negative")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must lie in (0, 1), got {alpha!r}")
    if dfcom is not None and not dfcom > 0:
        raise ValueError(f"`dfcom` must be positive, got {dfcom!r}")
    m = q.shape[0]
    qbar = q.mean(axis=0)
    w = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t = w + (1 + 1 / m) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = np.where(w > 0, (1 + 1 / m) * b / w, np.where(b > 0, np.inf, 0.0))
        lam = np.where(t > 0, (1 + 1 / m) * b / t, 0.0)
        df_old = np.where(lam > 0, (m - 1) / lam**2, np.inf)
        if dfcom is None:
            df = df_old
        else:
            df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
            df = np.where(np.isinf(df_old), df_obs, 1 / (1 / df_old + 1 / df_obs))
        fmi = np.where(np.isfinite(riv), (riv + 2 / (df + 3)) / (riv + 1), 1.0)
    se = np.sqrt(t)
    crit = np.where(np.isinf(df), stats.norm.ppf(1 - alpha / 2), stats.t.ppf(1 - alpha / 2, np.where(np.isinf(df), 1, df)))
    lo, hi = qbar - crit * se, qbar + crit * se

    def out(x):
        x = np.asarray(x, dtype=float)
        return float(x) if x.ndim == 0 else x

    return PooledEstimate(estimate=out(qbar), variance=out(t), within=out(w), between=out(b), df=out(df),
                          riv=out(riv), lambda_=out(lam), fmi=out(fmi), ci=(out(lo), out(hi)), se=out(se), m=m)
