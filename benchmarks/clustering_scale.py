"""Scale benchmark of missingness clustering: time and peak memory up to 1,000,000 rows.

Data: a simulated longitudinal cohort, 10 biomarkers x 5 visits = 50 columns
named ``B<b>_<v>``, with five planted missingness clusters (whole visits
missing together within a row, as in the published example cohort, plus
scattered cells). Rows are drawn from a fixed pool of distinct patterns, so
the data holds a few thousand distinct patterns whatever the row count.

Run::

    python benchmarks/clustering_scale.py               # 1e4, 1e5, 1e6 rows
    python benchmarks/clustering_scale.py --rows 20000  # quick check

Prints a table: rows, distinct missingness patterns, step, wall time, peak memory traced
during the step (numpy and Python allocations), process peak RSS, number of
clusters and adjusted Rand index against the planted clusters.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

try:
    import ciss_vae  # noqa: F401
except ImportError:  # not installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ciss_vae.clustering import MissingnessClusterer  # noqa: E402
from ciss_vae.patterns import collapse  # noqa: E402

N_BIO, N_VISIT = 10, 5


def _pattern(rng, cluster):
    """One row's missingness mask (biomarkers x visits) for a planted cluster."""
    m = np.zeros((N_BIO, N_VISIT), dtype=bool)
    if cluster == 0:  # biomarkers 1-4 miss 3 of 5 visits, the rest scattered 10 %
        m[:4, rng.choice(N_VISIT, 3, replace=False)] = True
        m[4:] = rng.random((N_BIO - 4, N_VISIT)) < 0.10
    elif cluster == 1:  # every biomarker misses 3 of 5 visits
        m[:, rng.choice(N_VISIT, 3, replace=False)] = True
    elif cluster == 3:  # one visit missing everywhere
        m[:, rng.choice(N_VISIT, 1)] = True
    elif cluster == 4:  # biomarkers 6-10 miss 2 of 5 visits
        m[5:, rng.choice(N_VISIT, 2, replace=False)] = True
    if cluster != 2:  # cluster 2 is complete
        m |= rng.random(m.shape) < 0.06
    return m.ravel()


def simulate(n_rows, pool_per_cluster=2000, seed=0):
    """(DataFrame with NaN, planted labels): rows drawn from a pool of distinct patterns."""
    rng = np.random.default_rng(seed)
    pool, pool_y = [], []
    for c in range(5):
        pats = {tuple(_pattern(rng, c)) for _ in range(pool_per_cluster)}
        pool += sorted(pats)
        pool_y += [c] * len(pats)
    pool = np.array(pool, dtype=bool)
    pool_y = np.array(pool_y)
    weights = rng.pareto(1.5, len(pool)) + 1  # a few frequent patterns, many rare ones
    weights[pool.sum(axis=1) == 0] = weights.max()  # the complete pattern is common
    pick = rng.choice(len(pool), n_rows, p=weights / weights.sum())
    values = rng.normal(size=(n_rows, pool.shape[1]))
    values[pool[pick]] = np.nan
    cols = [f"B{b + 1}_{v + 1}" for b in range(N_BIO) for v in range(N_VISIT)]
    return pd.DataFrame(values, columns=cols), pool_y[pick]


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    return out, wall, peak / 2**20, rss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    header = (f"{'rows':>9} {'patterns':>8} {'step':<24} {'time s':>7} {'traced MiB':>10} "
              f"{'RSS MiB':>8} {'K':>3} {'ARI':>6}")
    print(header)
    print("-" * len(header))
    for n in args.rows:
        df, truth = simulate(n, seed=args.seed)
        n_pat = len(collapse(df.isna().to_numpy())[2])  # distinct missingness patterns
        steps = [
            ("Leiden auto (default)", lambda: MissingnessClusterer(seed=args.seed).fit(df)),
            ("KMeans n_clusters=5", lambda: MissingnessClusterer(5, seed=args.seed).fit(df)),
            ("Leiden auto, raw mask", lambda: MissingnessClusterer(
                seed=args.seed, feature_groups=None).fit(df)),
        ]
        model = None
        for name, fn in steps:
            fitted, wall, peak, rss = measure(fn)
            model = model or fitted
            ari = adjusted_rand_score(truth, fitted.labels_)
            print(f"{n:>9} {n_pat:>8} {name:<24} {wall:>7.2f} {peak:>10.0f} {rss:>8.0f} "
                  f"{fitted.n_clusters_:>3} {ari:>6.3f}", flush=True)
        labels, wall, peak, rss = measure(lambda: model.predict(df))
        same = bool((labels == model.labels_).all())
        print(f"{n:>9} {n_pat:>8} {'predict (same rows)':<24} {wall:>7.2f} {peak:>10.0f} "
              f"{rss:>8.0f} {model.n_clusters_:>3} {'same' if same else 'DIFF':>6}", flush=True)
        del df


if __name__ == "__main__":
    main()
