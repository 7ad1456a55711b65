"""Cost of proper multiple imputation: a fit with and without its bootstrap refits, and the draws.

For each table, the default ``CISSVAEImputer`` is fitted with
``bootstrap_models=0`` (draws of one model) and with ``bootstrap_models=m``
(one refit per draw, each with its normal fitted again when blended), and the
second one draws ``m`` tables; each timing is the median of ``--repeats`` runs
(seeds 0, 1, ...), one after the other in this process. Printed per table: the
two fit times, the cost per refit (their difference over ``m``) and per draw.

    python benchmarks/mi_cost.py
    python benchmarks/mi_cost.py --tables regression --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def table(name: str):
    """The table with missing cells: a 200 x 3 regression design, or 2,000 rows of the example cohort."""
    if name == "regression":
        from mi_coverage import simulate

        return simulate("slope_n200", 0)[1]
    from ciss_vae.data import load_example_dataset

    return load_example_dataset()[0].iloc[:2000]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", default=["regression", "cohort"], choices=["regression", "cohort"])
    p.add_argument("--m", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from ciss_vae import CISSVAEImputer

    print(f"| table | rows x columns | fit, improper (s) | fit with {args.m} refits (s) | per refit (s) | "
          f"{args.m} draws (s) | per draw (s) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tables:
        df = table(name)
        plain, proper, draws = [], [], []
        for seed in range(args.repeats):
            t = time.perf_counter()
            CISSVAEImputer(bootstrap_models=0, seed=seed).fit(df)
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            imputer = CISSVAEImputer(bootstrap_models=args.m, seed=seed).fit(df)
            proper.append(time.perf_counter() - t)
            t = time.perf_counter()
            imputer.transform(df, n_draws=args.m)
            draws.append(time.perf_counter() - t)
        a, b, d = (statistics.median(v) for v in (plain, proper, draws))
        print(f"| {name} | {df.shape[0]} x {df.shape[1]} | {a:.1f} | {b:.1f} | {(b - a) / args.m:.2f} | {d:.2f} | "
              f"{d / args.m:.3f} |", flush=True)


if __name__ == "__main__":
    main()
