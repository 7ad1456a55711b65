"""The example cohort: the default call beside a multivariate normal fitted to each of its clusters.

A diagnostic for issue 13's item 3 (the default call at standardised RMSE
<= 0.069 on the example cohort). For each seed, the default ``run_cissvae``
call imputes the cohort's own missing cells; then, on the clusters that call
found, a multivariate normal is fitted by EM to each cluster's standardised
rows (every observed cell, missing cells integrated out) and its conditional
means fill the missing cells. Printed: the standardised RMSE of the network,
of the normal, and of their weighted averages, with the seconds each took.

    python benchmarks/cohort_normal.py --seeds 0 1 42
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ciss_vae.patterns import collapse  # noqa: E402

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # weight of the network in the average


def normal_em(Z: np.ndarray, iterations: int = 30, ridge: float = 1e-3) -> np.ndarray:
    """``Z`` with its NaN cells replaced by their conditional means under a normal fitted by EM.

    Rows are grouped by missingness pattern; each E-step adds the conditional
    covariance of a pattern's missing cells to the M-step's scatter matrix (the
    textbook EM for a multivariate normal with missing values); ``ridge`` keeps
    the covariance invertible.
    """
    n, d = Z.shape
    miss = np.isnan(Z)
    mean = np.nanmean(np.where(miss.all(axis=0), 0.0, Z), axis=0)  # a column with no observed cell: 0
    filled = np.where(miss, mean, Z)
    cov = np.cov(filled, rowvar=False) + ridge * np.eye(d)
    first, inverse, _ = collapse(miss)
    groups = [(miss[f], np.flatnonzero(inverse == g)) for g, f in enumerate(first) if miss[f].any()]
    for _ in range(iterations):
        scatter = np.zeros((d, d))
        for m, rows in groups:
            o = ~m
            cells = np.ix_(rows, np.flatnonzero(m))
            if o.any():
                coef = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
                filled[cells] = mean[m] + (Z[np.ix_(rows, np.flatnonzero(o))] - mean[o]) @ coef.T
                scatter[np.ix_(m, m)] += len(rows) * (cov[np.ix_(m, m)] - coef @ cov[np.ix_(o, m)])
            else:
                filled[cells] = mean[m]
                scatter[np.ix_(m, m)] += len(rows) * cov[np.ix_(m, m)]
        mean = filled.mean(axis=0)
        centred = filled - mean
        cov = (centred.T @ centred + scatter) / n + ridge * np.eye(d)
    return filled


def run_seed(seed: int) -> list[dict]:
    from ciss_vae import run_cissvae
    from ciss_vae.data import load_example_dataset
    from ciss_vae.evaluation import standardised_rmse

    amputed, complete, _ = load_example_dataset()
    t0 = time.perf_counter()
    imputed, _, clusters = run_cissvae(amputed, seed=seed, print_dataset=False, return_clusters=True)
    network_s = time.perf_counter() - t0
    X = amputed.to_numpy(dtype=float)
    centre, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    Z = (X - centre) / scale
    t0 = time.perf_counter()
    labels = np.asarray(clusters)
    out = Z.copy()
    for k in np.unique(labels):
        out[labels == k] = normal_em(Z[labels == k])
    normal_s = time.perf_counter() - t0
    normal = pd.DataFrame(np.where(np.isnan(X), out * scale + centre, X), index=amputed.index, columns=amputed.columns)
    network = imputed[amputed.columns].astype(float)
    rows = []
    for w in WEIGHTS:
        rmse = standardised_rmse(w * network + (1 - w) * normal, complete, amputed)
        rows.append(dict(seed=seed, network_weight=w, std_rmse=rmse, network_s=network_s, normal_s=normal_s))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = p.parse_args(argv)
    df = pd.DataFrame([r for s in args.seeds for r in run_seed(s)])
    table = df.groupby("network_weight", sort=False).agg(std_rmse=("std_rmse", "mean"), sd=("std_rmse", "std"))
    print(f"seeds {args.seeds}; network {df.network_s.median():.1f} s, normal {df.normal_s.median():.1f} s "
          "(medians per seed)\n")
    print("| weight of the network | standardised RMSE (mean +- sd over seeds) |\n|---|---|")
    for w, r in table.iterrows():
        print(f"| {w:.2f} | {r.std_rmse:.4f} +- {0.0 if np.isnan(r.sd) else r.sd:.4f} |")


if __name__ == "__main__":
    main()
