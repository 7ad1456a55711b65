"""Multiple-imputation calibration: bias, SE and coverage of pooled estimates, CISS-VAE beside R's mice.

Each scenario simulates a complete table with a known estimand, makes part of
it missing, and estimates the estimand from m imputations pooled with Rubin's
rules (Barnard-Rubin degrees of freedom), repeated ``--reps`` times:

- ``slope_n200`` / ``slope_n1000``: ``lm(y ~ x)``, slope 0.5; x 30 % MAR
  (its missingness depends on the observed outcome y and auxiliary z).
- ``mean_y``: the mean of y (1.0) under 40 % MAR (depends on the observed x).
- ``logistic``: ``glm(yb ~ x + b, binomial)``, coefficient of the binary
  covariate b (1.0); b 30 % MAR (depends on x and yb). yb and b are 0/1
  integer columns (binary to CISS-VAE; numeric to mice's norm and pmm).
- ``latent_group_mnar``: the mean of x (1.0) when rows come from three
  unobserved groups that shift x and decide which columns are missing (x
  missing for 10 %, 30 %, 60 % of the groups' rows): missing not at random
  given the observed values, but the rows' missingness pattern tells the
  group, which is what CISS-VAE's clustering is built to use.

Methods on identical data: CISS-VAE = ``multiple_impute(df, m)`` (m bootstrap
refits; ``--settings default`` is the default call, ``small`` one fit of a 16-unit network
trained 100 + 50 epochs, which fits the time budget), CISS-VAE-improper = the
same fit with ``bootstrap_models=0`` (draws of one model), R's mice with
``norm`` and with ``pmm`` (``mice(m, maxit = 5)``, pooled by mice's ``pool``;
one Rscript per scenario), and complete-case analysis. Printed per scenario and
method: bias, empirical SE of the estimates, mean pooled SE, coverage of the 95 %
interval and its mean width.

    python benchmarks/mi_coverage.py --reps 200 --jobs 2 --settings small
    python benchmarks/mi_coverage.py --reps 30 --scenarios slope_n200 --settings default
    python benchmarks/mi_coverage.py --from-csv benchmarks/results/mi_coverage_default_40reps.csv
    python benchmarks/mi_coverage.py --scenarios slope_n1000 --first-rep 40 --reps 160 --csv more.csv
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SMALL = dict(hidden_dims=(16,), latent_dim=2, layer_order_enc=("s",), layer_order_dec=("s",), epochs=100,
             max_loops=1, epochs_per_loop=50, batch_size=50, validate_every=5, decay_factor=1.0, ensemble_size=1)
TRUTH = {"slope_n200": 0.5, "slope_n1000": 0.5, "mean_y": 1.0, "logistic": 1.0, "latent_group_mnar": 1.0}


def _logit(v):
    return 1 / (1 + np.exp(-v))


def simulate(scenario: str, rep: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(complete, with missing cells) for repetition ``rep`` of ``scenario``."""
    rng = np.random.default_rng([zlib.crc32(scenario.encode()), rep])
    if scenario.startswith("slope"):
        n = 1000 if scenario.endswith("1000") else 200
        x = rng.normal(size=n)
        z = 0.8 * x + 0.6 * rng.normal(size=n)
        y = 1 + 0.5 * x + rng.normal(size=n)
        full = pd.DataFrame({"y": y, "x": x, "z": z})
        miss = rng.random(n) < _logit(-1.4 + 0.8 * y + 0.5 * z)  # about 30 %
        return full, full.assign(x=np.where(miss, np.nan, x))
    if scenario == "mean_y":
        n = 300
        x = rng.normal(size=n)
        z = 0.6 * x + 0.8 * rng.normal(size=n)
        y = 1 + 0.8 * x + 0.6 * rng.normal(size=n)
        full = pd.DataFrame({"y": y, "x": x, "z": z})
        miss = rng.random(n) < _logit(-0.5 + 1.2 * x)  # about 40 %, more where x is high
        return full, full.assign(y=np.where(miss, np.nan, y))
    if scenario == "logistic":
        n = 500
        x = rng.normal(size=n)
        b = (rng.random(n) < _logit(0.8 * x)).astype(float)
        yb = (rng.random(n) < _logit(-0.5 + 0.5 * x + 1.0 * b)).astype(float)
        full = pd.DataFrame({"yb": pd.array(yb, dtype="Int64"), "x": x, "b": pd.array(b, dtype="Int64")})
        miss = rng.random(n) < _logit(-1.2 + 0.6 * x + 0.6 * yb)  # about 30 %
        return full, full.assign(b=full.b.mask(miss))  # 0/1 integer columns: binary to CISS-VAE
    if scenario == "latent_group_mnar":
        n = 600
        g = rng.integers(0, 3, n)
        x = 1.0 * (g - 1) + 1.0 + rng.normal(size=n)
        y = 0.5 * x + rng.normal(size=n)
        a = np.column_stack([0.5 * x + rng.normal(size=n) for _ in range(3)])
        full = pd.DataFrame({"x": x, "y": y, "a1": a[:, 0], "a2": a[:, 1], "a3": a[:, 2]})
        holes = full.copy()
        holes.loc[rng.random(n) < np.array([0.1, 0.3, 0.6])[g], "x"] = np.nan
        for k in range(3):  # group k's rows lose column a{k+1} most of the time
            holes.loc[(g == k) & (rng.random(n) < 0.7), f"a{k + 1}"] = np.nan
        return full, holes
    raise ValueError(f"unknown scenario {scenario!r}")


# ----------------------------------------------------------------------------- analyses
def _ols(X, y):
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    s2 = ((y - X @ beta) ** 2).sum() / (len(y) - X.shape[1])
    return beta, s2 * np.linalg.inv(X.T @ X)


def _logistic(X, y, iters=50):
    beta = np.zeros(X.shape[1])
    for _ in range(iters):
        p = _logit(X @ beta)
        w = p * (1 - p)
        step = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    p = _logit(X @ beta)
    return beta, np.linalg.inv(X.T @ (X * (p * (1 - p))[:, None]))


def analyse(scenario: str, d: pd.DataFrame) -> tuple[float, float, float | None]:
    """(estimate, its variance, complete-data df) of the scenario's estimand on table ``d``."""
    n = len(d)
    one = np.ones(n)
    if scenario.startswith("slope"):
        beta, cov = _ols(np.column_stack([one, d.x]), d.y.to_numpy())
        return beta[1], cov[1, 1], n - 2
    if scenario == "mean_y":
        return d.y.mean(), d.y.var(ddof=1) / n, n - 1
    if scenario == "logistic":
        beta, cov = _logistic(np.column_stack([one, d.x, d.b.to_numpy(float)]), d.yb.to_numpy(float))
        return beta[2], cov[2, 2], None
    return d.x.mean(), d.x.var(ddof=1) / n, n - 1


_R_ANALYSIS = {
    "slope_n200": "lm(y ~ x)", "slope_n1000": "lm(y ~ x)", "mean_y": "lm(y ~ 1)",
    "logistic": "glm(yb ~ x + b, family = binomial)", "latent_group_mnar": "lm(x ~ 1)",
}
_R_TERM = {"slope_n200": "x", "slope_n1000": "x", "mean_y": "(Intercept)", "logistic": "b",
           "latent_group_mnar": "(Intercept)"}

_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
all <- utils::read.csv(args[[1]])
m <- as.integer(args[[3]]); meth <- args[[4]]; term <- args[[6]]
fit_expr <- parse(text = args[[5]])[[1]]
out <- NULL
for (r in sort(unique(all$rep))) {
  x <- all[all$rep == r, setdiff(names(all), "rep")]
  imp <- mice::mice(x, m = m, maxit = 5, method = meth, seed = r + 1, printFlag = FALSE)
  fit <- eval(bquote(with(imp, .(fit_expr))))
  s <- summary(mice::pool(fit), conf.int = TRUE)
  i <- which(as.character(s$term) == term)
  out <- rbind(out, data.frame(rep = r, estimate = s$estimate[i], se = s$std.error[i],
                               lo = s[i, "2.5 %"], hi = s[i, "97.5 %"]))
}
utils::write.csv(out, args[[2]], row.names = FALSE)
"""


def r_mice(scenario, tables, m, method):
    """R's mice on every repetition's table, one Rscript call; a frame of rep, estimate, se, lo, hi."""
    from ciss_vae.peers import _rscript, _thread_env

    exe = _rscript("Rscript")
    with tempfile.TemporaryDirectory(prefix="ciss_vae_mi_") as tmp:
        script, data, out = (os.path.join(tmp, f) for f in ("mi.R", "data.csv", "out.csv"))
        Path(script).write_text(_R_SCRIPT)
        pd.concat([t.assign(rep=r) for r, t in tables], ignore_index=True).to_csv(data, index=False, na_rep="NA")
        proc = subprocess.run([exe, "--no-init-file", script, data, out, str(m), method, _R_ANALYSIS[scenario],
                               _R_TERM[scenario]], capture_output=True, text=True, env=_thread_env(1))
        if proc.returncode:
            raise RuntimeError(f"R's mice failed: {proc.stderr[-1500:]}")
        return pd.read_csv(out)


def ciss_vae_rep(args):
    """CISS-VAE (proper and improper draws) and complete cases on one repetition."""
    scenario, rep, m, settings, extra = args
    import torch

    torch.set_num_threads(1)
    from ciss_vae import CISSVAEImputer, pool

    _, holes = simulate(scenario, rep)
    rows = []
    kwargs = dict(SMALL if settings == "small" else {}, **extra, seed=rep, device="cpu")
    t0 = time.perf_counter()
    imputer = CISSVAEImputer(bootstrap_models=m, **kwargs).fit(holes)
    fit_s = time.perf_counter() - t0
    for method, draws in (("CISS-VAE", imputer.transform(holes, n_draws=m)),
                          ("CISS-VAE improper", _improper(imputer, holes, m))):
        est, var, dfcom = zip(*(analyse(scenario, d) for d in draws))
        res = pool(est, var, dfcom=dfcom[0])
        rows.append(dict(method=method, rep=rep, estimate=float(res.estimate), se=float(res.se),
                         lo=float(res.ci[0]), hi=float(res.ci[1]), seconds=fit_s))
    est, var, dfcom = analyse(scenario, holes.dropna())
    from scipy import stats

    q = stats.t.ppf(0.975, dfcom) if dfcom else stats.norm.ppf(0.975)
    rows.append(dict(method="complete cases", rep=rep, estimate=est, se=np.sqrt(var), lo=est - q * np.sqrt(var),
                     hi=est + q * np.sqrt(var), seconds=0.0))
    return rows


def _improper(imputer, holes, m):
    """Draws of the one fitted model (the bootstrap refits, and their normals when blended, set aside)."""
    kept = imputer.bootstrap_states_, imputer.bootstrap_normals_
    imputer.bootstrap_states_, imputer.bootstrap_normals_ = [], []
    try:
        return imputer.transform(holes, n_draws=m)
    finally:
        imputer.bootstrap_states_, imputer.bootstrap_normals_ = kept


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (scenario, method), g in df.groupby(["scenario", "method"], sort=False):
        truth = TRUTH[scenario]
        out.append(dict(scenario=scenario, method=method, reps=len(g), bias=g.estimate.mean() - truth,
                        emp_se=g.estimate.std(ddof=1), mean_se=g.se.mean(),
                        coverage=((g.lo <= truth) & (truth <= g.hi)).mean(), width=(g.hi - g.lo).mean(),
                        seconds_per_fit=g.seconds.median()))
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    head = ["scenario", "method", "reps", "bias", "emp. SE", "mean pooled SE", "coverage", "CI width", "s per fit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.scenario} | {r.method} | {r.reps} | {r.bias:+.3f} | {r.emp_se:.3f} | {r.mean_se:.3f} | "
                     f"{r.coverage:.3f} | {r.width:.3f} | {r.seconds_per_fit:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", nargs="+", default=list(TRUTH), choices=list(TRUTH))
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--first-rep", type=int, default=0,
                   help="number of the first repetition (to extend a run: its CSVs summarise together)")
    p.add_argument("--m", type=int, default=5)
    p.add_argument("--settings", choices=("small", "default"), default="small")
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                   help="extra CISSVAEImputer settings, values read as Python literals (input_dropout=0.2)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-r", action="store_true", help="skip R's mice")
    p.add_argument("--csv", help="write every repetition's result here")
    p.add_argument("--from-csv", nargs="+", help="only summarise the tables written by --csv (concatenated)")
    args = p.parse_args(argv)
    if args.from_csv:
        print(markdown(summarise(pd.concat([pd.read_csv(f) for f in args.from_csv], ignore_index=True))))
        return
    extra = {k: ast.literal_eval(v) for k, v in (item.split("=", 1) for item in args.set)}
    t0 = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool_:
        for scenario in args.scenarios:
            reps = range(args.first_rep, args.first_rep + args.reps)
            work = [(scenario, r, args.m, args.settings, extra) for r in reps]
            for result in pool_.map(ciss_vae_rep, work):
                rows += [dict(r, scenario=scenario) for r in result]
            if not args.no_r:
                tables = [(r, simulate(scenario, r)[1]) for r in reps]
                for method in ("norm", "pmm"):
                    t = time.perf_counter()
                    res = r_mice(scenario, tables, args.m, method)
                    per = (time.perf_counter() - t) / args.reps
                    rows += [dict(row, method=f"R mice {method}", scenario=scenario, seconds=per)
                             for row in res.to_dict("records")]
            print(f"{scenario} done at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(markdown(summarise(df)))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s; reps {args.reps} from {args.first_rep}, m {args.m}, "
          f"settings {args.settings} {extra or ''}")


if __name__ == "__main__":
    main()
