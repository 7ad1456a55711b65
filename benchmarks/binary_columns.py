"""Imputation of binary columns: share of imputed 0/1 cells right, CISS-VAE against peers.

The suite's tables (benchmarks/accuracy.py) have no binary columns. Here every
other column of scikit-learn's wine, diabetes and breast_cancer tables (from
the second) is cut at its median into a 0/1 ``Int64`` column, so that the
package reads it as binary; the first column stays complete and the others
lose 30 % of their cells, MCAR or MAR (a logistic in the first column, about
30 % overall). Methods on identical masks:

- ``CISS-VAE``: the default call (``CISSVAEImputer(seed=seed)``): binary cells
  from the normal's logistic regression of the column on the others.
- ``CISS-VAE network``: the same fit with the network's own binary imputations
  (the blend's weight set to 1 in the binary columns): what the package did
  before.
- ``Mean``, ``KNN``, ``MICE`` (BayesianRidge chained equations), ``MissForest``
  (extra-trees chained equations): the peers of the suite, on the 0/1 values as
  numbers, rounded at 0.5.

Printed: mean over the binary columns of the share of imputed cells right, and
the standardised RMSE of the continuous columns (the same for both CISS-VAE
rows: the binary change does not touch them), per table and mechanism, mean
over seeds, and the seconds per fit.

    python benchmarks/binary_columns.py --seeds 0 1 --jobs 2 --csv benchmarks/results/binary_columns.csv

``--cost`` instead times what the logistic regressions add to fitting the
normal (``fit_normal``, median of 3) and to one bootstrap refit of it, on a
synthetic 8,192 x 100 table with 20 % of cells missing and 0 or 10 binary
columns.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

TABLES = ["wine", "diabetes", "breast_cancer"]
MECHANISMS = ["MCAR", "MAR"]


def table(name: str) -> tuple[pd.DataFrame, list[str]]:
    """A complete scikit-learn table with every other column (from the second) cut at its median into 0/1."""
    from sklearn import datasets

    full = getattr(datasets, f"load_{name}")(as_frame=True).data.copy()
    binary = list(full.columns[1::2])
    for c in binary:
        full[c] = pd.array((full[c] > full[c].median()).astype(int), dtype="Int64")
    return full, binary


def ampute(full: pd.DataFrame, mechanism: str, seed: int) -> pd.DataFrame:
    """30 % of every column but the first, MCAR or MAR on the (complete) first column."""
    rng = np.random.default_rng(seed)
    first = full.iloc[:, 0].to_numpy(dtype=float)
    first = (first - first.mean()) / first.std()
    p = np.full(len(full), 0.3) if mechanism == "MCAR" else 1 / (1 + np.exp(1.0 - 1.5 * first))
    holes = full.copy()
    for c in full.columns[1:]:
        holes[c] = holes[c].mask(rng.random(len(full)) < p)
    return holes


def run_cell(args) -> list[dict]:
    name, mechanism, seed = args
    import torch

    torch.set_num_threads(1)
    from ciss_vae import CISSVAEImputer
    from ciss_vae.peers import default_methods

    full, binary = table(name)
    holes = ampute(full, mechanism, seed)
    continuous = [c for c in full.columns[1:] if c not in binary]
    out = {}
    t0 = time.perf_counter()
    imputer = CISSVAEImputer(seed=seed, device="cpu").fit(holes)
    seconds = time.perf_counter() - t0
    out["CISS-VAE"] = (imputer.transform(holes), seconds)
    columns = [imputer.schema_.model_names.index(c) for c in binary]
    imputer.blend_.weights[columns] = 1.0
    out["CISS-VAE network"] = (imputer.transform(holes), seconds)
    for peer in ("Mean", "KNN", "MICE", "MissForest"):
        t0 = time.perf_counter()
        filled = default_methods()[peer](holes.astype(float), seed)
        out[peer] = (filled, time.perf_counter() - t0)
    rows = []
    miss = holes.isna()
    for method, (filled, secs) in out.items():
        right = [(np.round(filled.loc[miss[c], c].astype(float)) == full.loc[miss[c], c].astype(float)).mean()
                 for c in binary]
        error = [np.sqrt(((filled.loc[miss[c], c] - full.loc[miss[c], c]) ** 2).mean()) / full[c].std()
                 for c in continuous]
        rows.append(dict(table=name, mechanism=mechanism, seed=seed, method=method, binary_right=np.mean(right),
                         continuous_rmse=np.mean(error), seconds=secs))
    return rows


def summarise(df: pd.DataFrame) -> str:
    methods = list(dict.fromkeys(df.method))
    lines = ["| table | mechanism | seeds | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for (name, mechanism), g in df.groupby(["table", "mechanism"], sort=False):
        right = g.groupby("method").binary_right.mean()
        lines.append(f"| {name} | {mechanism} | {g.seed.nunique()} | "
                     + " | ".join(f"{right[m]:.3f}" for m in methods) + " |")
    means = df.groupby("method")[["binary_right", "continuous_rmse", "seconds"]].mean()
    for label, col, fmt in (("mean share right", "binary_right", ".3f"),
                            ("mean continuous std. RMSE", "continuous_rmse", ".3f"),
                            ("mean seconds", "seconds", ".1f")):
        lines.append(f"| {label} | | | " + " | ".join(format(means.loc[m, col], fmt) for m in methods) + " |")
    return "\n".join(lines)


def cost(repeats: int = 3) -> str:
    """Seconds to fit the normal with 0 and 10 binary columns (logistic regressions), and to refit it."""
    import torch

    from ciss_vae.normal import fit_normal

    rng = np.random.default_rng(0)
    n, d, n_binary = 8192, 100, 10
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    X = (X - X.mean(0)) / X.std(0)
    X[:, :n_binary] = (X[:, :n_binary] > 0).astype(float)
    X[rng.random(X.shape) < 0.2] = np.nan
    Z = torch.tensor(X)
    lines = ["| binary columns | fit (s) | bootstrap refit (s) |", "|---|---|---|"]
    for binary in ([], list(range(n_binary))):
        fits, refits = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            normal = fit_normal(Z, None, 1, binary=binary)
            fits.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fit_normal(Z[rng.integers(0, n, n)], None, 1, start=normal)
            refits.append(time.perf_counter() - t0)
        lines.append(f"| {len(binary)} | {np.median(fits):.2f} | {np.median(refits):.2f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--tables", nargs="+", default=TABLES, choices=TABLES)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--csv", help="write every cell's numbers here")
    ap.add_argument("--from-csv", help="print the table of an earlier run")
    ap.add_argument("--cost", action="store_true", help="time the logistic regressions instead")
    args = ap.parse_args(argv)
    if args.cost:
        print(cost())
        return
    if args.from_csv:
        print(summarise(pd.read_csv(args.from_csv)))
        return
    cells = [(t, m, s) for t in args.tables for m in MECHANISMS for s in args.seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        df = pd.DataFrame([row for rows in pool.map(run_cell, cells) for row in rows])
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(summarise(df))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s, {len(cells)} cells, {args.jobs} jobs")


if __name__ == "__main__":
    main()
