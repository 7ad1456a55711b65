"""Ablation of run_cissvae's settings: each named variant on the same amputated tables.

Every variant is a set of run_cissvae keyword arguments added to the default
call; the cases are (dataset, mechanism) pairs of the accuracy suite, amputated
exactly as ``benchmarks/accuracy.py`` does (same masks), plus ``demo``: the
example cohort with its own missingness (what ``make run`` imputes). Prints one
line per finished run and writes a tidy CSV (variant, dataset, mechanism, seed,
std_rmse, seconds, epochs, clusters).

    python benchmarks/defaults_ablation.py --variants published default --seeds 0
    python benchmarks/defaults_ablation.py --variant-json '{"tiny": {"hidden_dims": [32]}}' --cases wine:MCAR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from accuracy import COHORT_COVARIATES, load  # noqa: E402

SMALL = ("wine", "diabetes", "breast_cancer", "digits")
CASES = [f"{d}:{m}" for d in SMALL for m in ("MCAR", "MAR", "MNAR", "MNAR_group")] + [
    "example_cohort:MCAR", "example_cohort:MAR", "example_cohort:MNAR", "demo:own"]
VARIANTS = {
    "default": {},
    "published": {"defaults": "published"},
    "published-short": {"defaults": "published", "epochs": 500, "epochs_per_loop": 100, "max_loops": 20},
}


def sized(kwargs, n_rows, n_cols=None):
    """Prototype rules: ``batches_per_epoch`` -> batch_size, ``steps`` / ``loop_steps`` -> epochs.

    ``average_fits`` (handled by ``run_one``): the mean of that many fits with different seeds.
    """
    import math
    kw = dict(kwargs)
    if kw.get("latent_dim") == "half":
        kw["latent_dim"] = max(2, min(15, n_cols // 2))
    if "batches_per_epoch" in kw:
        kw["batch_size"] = int(min(kw.pop("max_batch", 512), max(16, n_rows / kw.pop("batches_per_epoch"))))
    per_epoch = math.ceil(n_rows / kw.get("batch_size", 4000))
    if "steps" in kw:
        kw["epochs"] = max(10, math.ceil(kw.pop("steps") / per_epoch))
    if "loop_steps" in kw:
        kw["epochs_per_loop"] = max(5, math.ceil(kw.pop("loop_steps") / per_epoch))
    return kw


def _init():
    import torch
    torch.set_num_threads(1)


def run_one(variant, kwargs, case, seed):
    from ciss_vae import run_cissvae
    from ciss_vae.evaluation import ampute, standardised_rmse

    name, mech = case.split(":")
    if name == "demo":
        from ciss_vae.data import load_example_dataset
        amputed, complete, _ = load_example_dataset()
    else:
        complete = load(name)
        kw = {"observed": COHORT_COVARIATES} if name in ("example_cohort", "reference_example") else {}
        amputed = ampute(complete, mech, p=0.3, seed=seed, **kw)
    kwargs = sized(kwargs, len(amputed), amputed.shape[1])
    fits = kwargs.pop("average_fits", 1)
    start = time.perf_counter()
    imputed, _, clusters, history = run_cissvae(amputed, seed=seed, print_dataset=False, return_clusters=True,
                                                return_history=True, **kwargs)
    for k in range(1, fits):
        more, _ = run_cissvae(amputed, seed=seed + 1000 * k, print_dataset=False, **kwargs)
        imputed = imputed + (more - imputed) / (k + 1)
    seconds = time.perf_counter() - start
    val = history.loc[history.selected, "imputation_error"]
    return dict(variant=variant, dataset=name, mechanism=mech, seed=seed,
                std_rmse=standardised_rmse(imputed, complete, amputed), seconds=seconds,
                epochs=int(history.epoch.max()) + 1, loops=int(history.loop.max()), clusters=len(set(clusters)),
                validation=float(val.iloc[0]) if len(val) else float("nan"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--variant-json", default=None, help="JSON object of extra named variants")
    ap.add_argument("--cases", nargs="+", default=CASES, help="dataset:mechanism pairs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--from-csv", nargs="+", default=None, help="no runs: print the markdown table of these CSVs")
    args = ap.parse_args(argv)
    if args.from_csv:
        print(markdown(pd.concat([pd.read_csv(f) for f in args.from_csv], ignore_index=True)))
        return
    variants = dict(VARIANTS, **(json.loads(args.variant_json) if args.variant_json else {}))
    names = args.variants + [v for v in json.loads(args.variant_json or "{}") if v not in args.variants]
    units = [(v, variants[v], c, s) for c in args.cases for s in args.seeds for v in names]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with ProcessPoolExecutor(args.jobs, initializer=_init) as pool:
        futures = [pool.submit(run_one, *u) for u in units]
        for f in as_completed(futures):
            r = f.result()
            rows.append(r)
            print(f"{r['variant']:>14} {r['dataset']:>15} {r['mechanism']:>10} {r['seed']} "
                  f"rmse {r['std_rmse']:.4f}  {r['seconds']:6.1f} s  {r['epochs']:5d} ep {r['loops']:3d} loops  K={r['clusters']}",
                  flush=True)
            if args.csv:
                pd.DataFrame(rows).to_csv(args.csv, index=False)
    print(markdown(pd.DataFrame(rows)))


def markdown(rows: pd.DataFrame) -> str:
    """Standardised RMSE (mean ± std over seeds, n seeds) and median seconds, one row per case."""
    variants = list(dict.fromkeys(rows["variant"]))
    g = rows.groupby(["dataset", "mechanism", "variant"], sort=False)
    stats = g["std_rmse"].agg(["mean", "std", "count"]).join(g["seconds"].median())
    lines = ["| dataset | mechanism | " + " | ".join(variants) + " |", "|---|---|" + "---|" * len(variants)]
    for (d, m), block in stats.groupby(level=[0, 1], sort=False):
        cells = []
        for v in variants:
            if (d, m, v) not in block.index:
                cells.append("")
                continue
            r = block.loc[(d, m, v)]
            sd = "" if r["count"] < 2 else f" ± {r['std']:.2g}"
            cells.append(f"{r['mean']:.3g}{sd} (n={int(r['count'])}, {r['seconds']:.0f} s)")
        lines.append(f"| {d} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
