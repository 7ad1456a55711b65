"""The ``ciss-vae`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time


def standardised_rmse(imputed, complete, missing) -> float:
    """RMSE over the cells missing in ``missing``, each column's error divided by its std in ``complete``."""
    import numpy as np

    mask = missing.isna().to_numpy() & imputed.notna().to_numpy()
    std = complete.std(ddof=0).to_numpy()
    err = (imputed.to_numpy(dtype=float) - complete.to_numpy(dtype=float)) / std
    return float(np.sqrt(np.mean(err[mask] ** 2)))


def _demo(args) -> int:
    from ciss_vae.data import load_example_dataset
    from ciss_vae.pipeline import run_cissvae

    df_missing, df_complete, _ = load_example_dataset()
    start = time.perf_counter()
    imputed, model = run_cissvae(df_missing, seed=args.seed, device=args.device, verbose=args.verbose)
    wall = time.perf_counter() - start
    n_imputed = int((df_missing.isna() & imputed.notna()).to_numpy().sum())
    s = model.fit_summary_
    print(f"example cohort: {df_missing.shape[0]} rows x {df_missing.shape[1]} columns, "
          f"{int(df_missing.isna().to_numpy().sum())} missing cells")
    print(f"clusters: {s['n_clusters']}; epochs: {s['epochs']} ({s['refit_loops']} refit loops, "
          f"stopped: {s['stop_reason']})")
    print(f"cells imputed: {n_imputed}")
    print(f"standardised RMSE on the imputed cells: {standardised_rmse(imputed, df_complete, df_missing):.4f}")
    print(f"wall time: {wall:.1f} s")
    if args.output:
        imputed.to_csv(args.output)
        print(f"imputed table written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ciss-vae", description="Impute missing values with CISS-VAE.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="impute the bundled example cohort with default settings and score it")
    demo.add_argument("--output", "-o", default=None, help="write the imputed table to this CSV file")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    demo.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: CUDA if available)")
    demo.add_argument("--verbose", "-v", action="store_true", help="log every validation and refit loop")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        logging.getLogger("ciss_vae").debug("command failed", exc_info=True)
        print(f"ciss-vae: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
