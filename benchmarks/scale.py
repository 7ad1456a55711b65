"""Registry scale: the default call end to end at 10k, 100k and 1M rows (wall time, peak RSS, steps, RMSE).

Each table is simulated by :func:`ciss_vae.data.simulate_registry` (100 columns:
continuous, binary and a categorical ``region``; 5 missingness clusters; MNAR),
written to Parquet, and imputed in a fresh process by each face:

* ``api``: ``pd.read_parquet`` -> ``run_cissvae(df)`` -> ``DataFrame.to_parquet``;
* ``cli``: ``ciss-vae impute in.parquet -o out.parquet``.

Timing and peak RSS are the child process's own (read, cluster, train,
impute, write; not the simulation). The child's log (the package's INFO lines,
stderr not a terminal) is kept beside the output. Scores are against the
simulated truth: standardised RMSE over the imputed continuous cells (each
column's error over its std in the complete table), and the share of imputed
binary and ``region`` cells given their true value. Also measured: the
``transform`` of fresh rows by the imputer fitted at that size (``--transform``).

    python benchmarks/scale.py --rows 10000 100000 1000000 --csv benchmarks/results/scale.csv
    python benchmarks/scale.py --rows 20000 --faces api      # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHILD = r"""
import json, logging, resource, sys, time
t0 = time.perf_counter()
face, src, dst, log = sys.argv[1:5]
logging.basicConfig(filename=log, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
import pandas as pd
if face == "api":
    from ciss_vae import run_cissvae
    df = pd.read_parquet(src)
    out = run_cissvae(df, return_model=False)
    out.to_parquet(dst, index=False)
elif face == "cli":
    from ciss_vae.cli import main
    code = main(["impute", src, "-o", dst])
    if code:
        sys.exit(code)
elif face == "transform":
    from ciss_vae import CISSVAEImputer
    model, fresh = sys.argv[5:7]
    imp = CISSVAEImputer.load(model)
    df = pd.read_parquet(fresh)
    t1 = time.perf_counter()
    out = imp.transform(df)
    t0 = t1  # the transform itself
    out.to_parquet(dst, index=False)
print(json.dumps(dict(seconds=time.perf_counter() - t0,
                      peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)))
"""

TRAINED = re.compile(r"trained (\d+) epochs \((\d+) optimiser steps, (\d+) refit loops, stopped: (.*)\); selected")


def run_child(face: str, src: Path, dst: Path, log: Path, *extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-c", CHILD, face, str(src), str(dst), str(log), *map(str, extra)],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{face} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    text = log.read_text() if log.exists() else ""
    found = TRAINED.findall(text)
    if found:
        epochs, steps, loops, reason = found[-1]
        out.update(epochs=int(epochs), steps=int(steps), refit_loops=int(loops), stop_reason=reason)
    return out


def scores(out_path: Path, reg) -> dict:
    """Standardised RMSE on the imputed continuous cells; accuracy on imputed binary and region cells."""
    out = pd.read_parquet(out_path)
    miss, full = reg.df_missing, reg.df_complete
    cont = [c for c in full.columns if c.startswith("x")]
    sq, n = 0.0, 0
    for c in cont:
        gap = miss[c].isna().to_numpy()
        if gap.any():
            err = (out[c].to_numpy()[gap] - full[c].to_numpy()[gap]) / full[c].std(ddof=0)
            sq, n = sq + float(np.sum(err ** 2)), n + int(gap.sum())
    right = total = 0
    for c in [c for c in full.columns if not c.startswith("x")]:
        gap = miss[c].isna().to_numpy()
        right += int((out[c].astype(str).to_numpy()[gap] == full[c].astype(str).to_numpy()[gap]).sum())
        total += int(gap.sum())
    left = int(out.isna().to_numpy().sum())
    return dict(std_rmse=float(np.sqrt(sq / max(n, 1))), label_accuracy=right / max(total, 1), cells_left=left)


def baseline(reg) -> float:
    """Standardised RMSE of the column mean on the same cells (the floor any imputer must beat)."""
    miss, full = reg.df_missing, reg.df_complete
    sq = n = 0
    for c in [c for c in full.columns if c.startswith("x")]:
        gap = miss[c].isna().to_numpy()
        err = (miss[c].mean() - full[c].to_numpy()[gap]) / full[c].std(ddof=0)
        sq, n = sq + float(np.sum(err ** 2)), n + int(gap.sum())
    return float(np.sqrt(sq / max(n, 1)))


def markdown(table: pd.DataFrame) -> str:
    """A markdown table, numbers to 4 significant digits."""
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--columns", type=int, default=100)
    ap.add_argument("--faces", nargs="+", default=["api", "cli"], choices=["api", "cli"])
    ap.add_argument("--transform", type=int, default=0, metavar="N",
                    help="also fit with --save-model and time transform of N fresh rows (at the largest size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work-dir", default=None, help="where the Parquet files and logs go (default: a temp dir)")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    from ciss_vae.data import simulate_registry

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ciss_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"work dir {work}", flush=True)
    for n in args.rows:
        t = time.perf_counter()
        reg = simulate_registry(n_rows=n, n_columns=args.columns, seed=args.seed)
        src = work / f"registry_{n}.parquet"
        reg.df_missing.to_parquet(src, index=False)
        print(f"{n} rows: simulated and written in {time.perf_counter() - t:.1f} s; "
              f"{reg.df_missing.isna().to_numpy().mean():.1%} missing", flush=True)
        mean_rmse = baseline(reg)
        for face in args.faces:
            dst, log = work / f"out_{face}_{n}.parquet", work / f"log_{face}_{n}.txt"
            r = run_child(face, src, dst, log)
            r.update(rows=n, face=face, mean_std_rmse=mean_rmse, **scores(dst, reg))
            rows.append(r)
            print(f"{n:>9} {face:>4}  {r['seconds']:7.1f} s  RSS {r['peak_rss_gb']:5.2f} GB  "
                  f"steps {r.get('steps')}  epochs {r.get('epochs')}  std RMSE {r['std_rmse']:.4f} "
                  f"(mean {mean_rmse:.4f})  labels {r['label_accuracy']:.3f}  stop: {r.get('stop_reason')}",
                  flush=True)
            if args.csv:
                pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.transform:
        n = args.rows[-1]
        src, model = work / f"registry_{n}.parquet", work / f"model_{n}"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        subprocess.run([sys.executable, "-m", "ciss_vae.cli", "impute", str(src), "-o", str(work / "fit.parquet"),
                        "--save-model", str(model)], check=True, env=env, capture_output=True)
        fresh = simulate_registry(n_rows=args.transform, n_columns=args.columns, seed=args.seed + 1,
                                  design_seed=args.seed)
        fresh_path = work / f"fresh_{args.transform}.parquet"
        fresh.df_missing.to_parquet(fresh_path, index=False)
        dst = work / "transform.parquet"
        r = run_child("transform", src, dst, work / "log_transform.txt", model, fresh_path)
        r.update(rows=args.transform, face="transform", **scores(dst, fresh))
        rows.append(r)
        print(f"transform of {args.transform} fresh rows (model fitted on {n}): {r['seconds']:.1f} s, "
              f"RSS {r['peak_rss_gb']:.2f} GB, std RMSE {r['std_rmse']:.4f}", flush=True)
    table = pd.DataFrame(rows)
    cols = [c for c in ["rows", "face", "seconds", "peak_rss_gb", "steps", "epochs", "refit_loops", "stop_reason",
                        "std_rmse", "mean_std_rmse", "label_accuracy", "cells_left"] if c in table]
    print(markdown(table[cols]))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
