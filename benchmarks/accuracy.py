"""Imputation accuracy suite: CISS-VAE against the standard peers on simulated missingness.

Datasets: the package's example cohort (its complete table), scikit-learn's
bundled breast_cancer, wine, diabetes and digits, and the published example
cohort (``../shared/data/reference_example``) when that folder exists. Each
complete table is amputated with :func:`ciss_vae.evaluation.ampute` under every
mechanism, rate and seed; every method gets the same masks
(:func:`ciss_vae.evaluation.compare`). On the two cohorts the covariates (Age,
Salary, zip code dummies) are never amputated, as in the cohort's own design;
they are the always-observed inputs of MAR there.

    python benchmarks/accuracy.py                       # full suite, writes docs/benchmarks.md
    python benchmarks/accuracy.py --quick --out /tmp/b.md   # one seed (0)
    python benchmarks/accuracy.py --seeds 0 --datasets wine diabetes --out /tmp/b.md

Methods: all seven of ``default_methods(optional=True)`` unless ``--methods``
names some: CISS-VAE, Mean, KNN, MICE, MissForest, and the two peers that need
software outside the package, miceforest (``pip install miceforest==6.0.5
lightgbm==4.5.0``) and R-mice (R with its mice package: ``apt-get install -y
r-base-core r-cran-mice``). A peer whose software is missing is skipped with a
message, here and in the markdown, like a missing dataset.

Each (dataset, mechanism, seed) runs in one of ``--jobs`` worker processes with
one thread each (torch's default of one thread per core, with several
processes on a small shared machine, is many times slower). The markdown file
is rewritten, marked partial, after each finished unit.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ciss_vae.evaluation import (
    MECHANISMS,
    OPTIONAL_METHODS,
    ComparisonResult,
    compare,
    default_methods,
    unavailable_methods,
)

COHORT_COVARIATES = ["Age", "Salary", "ZipCode10001", "ZipCode20002", "ZipCode30003"]
DATASETS = ["wine", "diabetes", "breast_cancer", "digits", "example_cohort", "reference_example"]
REFERENCE_DIR = ROOT.parent / "shared" / "data" / "reference_example"
METHODS = list(default_methods(optional=True))


def load(name, reference_dir=REFERENCE_DIR):
    """Complete table of a suite dataset, or None (with a message) when unavailable."""
    from sklearn import datasets as skd

    if name == "wine":
        return skd.load_wine(as_frame=True).data
    if name == "diabetes":
        return skd.load_diabetes(as_frame=True).data
    if name == "breast_cancer":
        return skd.load_breast_cancer(as_frame=True).data
    if name == "digits":
        return skd.load_digits(as_frame=True).data.astype(float)
    if name == "example_cohort":
        from ciss_vae.data import load_example_dataset
        return load_example_dataset()[1]
    if name == "reference_example":
        path = Path(reference_dir) / "df_complete.csv"
        if not path.exists():
            print(f"skipping reference_example: {path} not found", file=sys.stderr)
            return None
        return pd.read_csv(path, index_col=0)
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")


def write_markdown(path, result: ComparisonResult, command, wall, args, complete=True):
    t = result.table
    lines = ["# Imputation accuracy benchmark", ""]
    if getattr(args, "preface", None) and Path(args.preface).exists():
        lines += [Path(args.preface).read_text().rstrip(), ""]
    for name, why in getattr(args, "skipped", {}).items():
        lines += [f"**Skipped: {name}** ({why}).", ""]
    if not complete:
        lines += ["**PARTIAL RESULTS: the run was still in progress (or stopped) when this file was written.**", ""]
    lines += [
        "Made by `benchmarks/accuracy.py` (the command below, from the repository root). Each complete table is",
        "amputated with `ciss_vae.evaluation.ampute`; every method is given the same amputated table",
        "(same mask, recorded as `mask_id`) and never sees the truth. Score: standardised RMSE on the amputated",
        "cells (each column's error divided by that column's std in the complete table), mean ± std over seeds;",
        "best of each row in bold. Methods: CISS-VAE = `run_cissvae` with its default settings (clustering on",
        "missingness, seed = the repetition's seed"
        + (f"; plus `{args.ciss_vae_kwargs}`" if getattr(args, "ciss_vae_kwargs", None) else "")
        + "); Mean = column mean; KNN = `KNNImputer(5)` on standardised",
        "columns; MICE = `IterativeImputer(BayesianRidge, max_iter=10)`; MissForest = `IterativeImputer(",
        f"ExtraTreesRegressor(n_estimators={args.missforest_trees}), max_iter={args.missforest_iter})`;",
        "miceforest = LightGBM chained equations (miceforest 6.0.5 `ImputationKernel(num_datasets=5)`, "
        f"`mice({getattr(args, 'miceforest_iterations', 5)})`:",
        f"its default random-forest models and mean matching, {getattr(args, 'miceforest_iterations', 5)} "
        f"iterations, {args.threads} LightGBM thread(s)); "
        "R-mice = R's",
        "`mice(m = 5, maxit = 5, method = \"pmm\")` through `Rscript`, constant and collinear columns kept. Both",
        "are seeded with the repetition's seed, and their point imputation is the mean of their 5 completed tables.",
        "On the two cohorts (example_cohort = this package's generated cohort, reference_example = the published",
        "cohort) the covariates Age, Salary and the zip dummies are never amputated; they are MAR's observed inputs.",
        "Elsewhere MAR keeps 30 % of the columns observed and `rate` is the rate of the other columns, so the",
        "realised overall rate is lower (column `realised`).",
        "",
        "```",
        command,
        "```",
        "",
        f"Wall time: {wall:.0f} s ({wall / 60:.1f} min) on a {os.cpu_count()}-core machine"
        + (" (longest of the runs above, which went in parallel)." if len(getattr(args, "from_csv", None) or []) > 1 else "."),
        "",
        "## Standardised RMSE (lower is better)",
        "",
        result.markdown("std_rmse"),
        "",
        "## Realised missing rate and mean seconds per method",
        "",
    ]
    rr = t.groupby(["dataset", "mechanism", "rate"], sort=False)["realised_rate"].mean()
    secs = t.pivot_table(index=["dataset", "mechanism", "rate"], columns="method", values="seconds", sort=False)
    secs = secs[[m for m in dict.fromkeys(t["method"])]]
    lines.append("| dataset | mechanism | rate | realised | " + " | ".join(secs.columns) + " |")
    lines.append("|---|---|---|---|" + "---|" * len(secs.columns))
    for key, row in secs.iterrows():
        lines.append(f"| {key[0]} | {key[1]} | {key[2]:g} | {rr[key]:.3f} | "
                     + " | ".join(f"{v:.1f}" for v in row.to_numpy()) + " |")
    lines += ["", "## MAE (original units)", "", result.markdown("mae"), ""]
    if t["accuracy"].notna().any():
        lines += ["## Accuracy on binary columns (higher is better)", "",
                  "Columns whose true values are all 0 or 1, imputed value rounded at 0.5. In this suite only",
                  "digits has such columns (nearly constant border pixels), so this says little.", "",
                  result.markdown("accuracy", higher_is_better=True), ""]
    errors = t[t["error"] != ""]
    if len(errors):
        lines += ["## Failures", ""] + [f"- {r.dataset} {r.mechanism} seed {r.seed} {r.method}: {r.error}"
                                        for r in errors.itertuples()] + [""]
    if args.notes and Path(args.notes).exists():
        lines += [Path(args.notes).read_text()]
    Path(path).write_text("\n".join(lines) + "\n")


def _init_worker():
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def _run_unit(unit, args_dict):
    """One dataset, mechanism and seed with every method (in a worker process)."""
    name, mech, seed = unit
    args = argparse.Namespace(**args_dict)
    df = load(name, args.reference_dir)
    methods = default_methods(ciss_vae_kwargs=json.loads(args.ciss_vae_kwargs or "{}"),
                              missforest_trees=args.missforest_trees, missforest_iter=args.missforest_iter,
                              optional=True, miceforest_kwargs={"num_threads": args.threads,
                                                                "iterations": args.miceforest_iterations},
                              r_mice_kwargs={"threads": args.threads})
    methods = {m: methods[m] for m in (args.methods or METHODS)}
    kw = {"example_cohort": {"*": {"observed": COHORT_COVARIATES}},
          "reference_example": {"*": {"observed": COHORT_COVARIATES}}}
    return compare({name: df}, mechanisms=[mech], rates=[args.rate], seeds=[seed], methods=methods,
                   ampute_kwargs=kw).table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true",
                    help="one seed (0) instead of --seeds, and 2 miceforest iterations unless given")
    ap.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    ap.add_argument("--mechanisms", nargs="+", default=["MCAR", "MAR", "MNAR", "MNAR_group"], choices=MECHANISMS)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                    help="default: all; miceforest and R-mice are skipped, with a message, when their software "
                         "is missing")
    ap.add_argument("--ciss-vae-kwargs", default=None, metavar="JSON",
                    help='extra run_cissvae arguments as JSON, e.g. \'{"clip_to_observed": true}\' '
                         "(the default suite runs CISS-VAE with its defaults)")
    ap.add_argument("--missforest-trees", type=int, default=30)
    ap.add_argument("--missforest-iter", type=int, default=5)
    ap.add_argument("--miceforest-iterations", type=int, default=None,
                    help="miceforest's chained-equation iterations (default 5; 2 with --quick)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worker processes, one (dataset, mechanism, seed) at a time each, one thread each")
    ap.add_argument("--threads", type=int, default=1,
                    help="LightGBM threads of miceforest and BLAS threads of R-mice, per worker (default 1)")
    ap.add_argument("--reference-dir", default=str(REFERENCE_DIR))
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--csv", default=None, help="also write the tidy table here (and the command to CSV.cmd)")
    ap.add_argument("--from-csv", nargs="+", default=None,
                    help="no runs: build --out from tables written by earlier runs with --csv (a later file's "
                         "result for the same table and method replaces an earlier one)")
    ap.add_argument("--notes", default=None, help="markdown file appended to --out (discussion)")
    ap.add_argument("--preface", default=None, help="markdown file put right under the title of --out")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds = [0]
    if args.miceforest_iterations is None:
        args.miceforest_iterations = 2 if args.quick else 5
    command = "python benchmarks/accuracy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    if args.from_csv:
        tables, cmds, wall = [], [], 0.0
        for f in args.from_csv:
            t = pd.read_csv(f, dtype={"error": str, "mask_id": str})
            tables.append(t.assign(error=t["error"].fillna("")))
            side = Path(str(f) + ".cmd")
            if side.exists():
                cmd, _, secs = side.read_text().strip().rpartition("\n")
                cmds.append(cmd)
                wall = max(wall, float(secs))  # the runs went in parallel
        table = pd.concat(tables, ignore_index=True)  # a later file's run of a method on a table supersedes
        order = {m: i for i, m in enumerate(dict.fromkeys(table["method"]))}  # methods in their first file's order
        table = table.drop_duplicates(["dataset", "mechanism", "rate", "seed", "method"], keep="last")
        table = table.sort_values("method", key=lambda m: m.map(order), kind="stable")
        result = ComparisonResult(table=table.reset_index(drop=True))
        write_markdown(args.out, result, "\n".join(cmds + [command]), wall, args)
        print(result.markdown("std_rmse"))
        print(f"\nwall time of the longest run: {wall:.0f} s ({wall / 60:.1f} min)")
        return 0

    names, args.skipped = [], {}
    for name in args.datasets:
        if name == "reference_example" and not (Path(args.reference_dir) / "df_complete.csv").exists():
            load(name, args.reference_dir)  # prints the skip message
            args.skipped[name] = f"{Path(args.reference_dir) / 'df_complete.csv'} not found"
            continue
        names.append(name)
    args.methods = list(args.methods or METHODS)
    for name, why in unavailable_methods([m for m in args.methods if m in OPTIONAL_METHODS]).items():
        print(f"skipping {name}: {why}", file=sys.stderr)
        args.skipped[name] = why
        args.methods.remove(name)
    units = [(n, m, s) for n in names for m in args.mechanisms for s in args.seeds]
    order = {u: i for i, u in enumerate(units)}
    big = {"example_cohort": 0, "reference_example": 0, "digits": 1}
    todo = sorted(units, key=lambda u: big.get(u[0], 2))  # longest first, for the load balance
    n_methods = len(args.methods)

    start = time.perf_counter()
    done = {}

    def collect(unit, table):
        done[unit] = table
        for row in table.to_dict("records"):
            print(f"[{time.perf_counter() - start:7.0f}s] {row['dataset']:>17} {row['mechanism']:>5} "
                  f"seed {row['seed']} {row['method']:>10}: std_rmse {row['std_rmse']:.4f}  "
                  f"({row['seconds']:.1f} s) {row['error']}", file=sys.stderr, flush=True)
        partial = ComparisonResult(table=pd.concat([done[u] for u in sorted(done, key=order.get)],
                                                   ignore_index=True))
        write_markdown(args.out, partial, command, time.perf_counter() - start, args,
                       complete=len(done) == len(units))
        if args.csv:
            partial.table.to_csv(args.csv, index=False)

    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker) as pool:
            futures = {pool.submit(_run_unit, u, vars(args)): u for u in todo}
            for fut in as_completed(futures):
                collect(futures[fut], fut.result())
    else:
        for u in todo:
            collect(u, _run_unit(u, vars(args)))
    wall = time.perf_counter() - start
    result = ComparisonResult(table=pd.concat([done[u] for u in units], ignore_index=True))
    assert len(result.table) == len(units) * n_methods
    write_markdown(args.out, result, command, wall, args)
    if args.csv:
        result.table.to_csv(args.csv, index=False)
        Path(args.csv + ".cmd").write_text(f"{command}\n{wall:.1f}\n")
    print(result.markdown("std_rmse"))
    print(f"\ntotal wall time: {wall:.0f} s ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
