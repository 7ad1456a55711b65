"""What flushing subnormal weights buys: the default call on the example cohort with and without it.

With coupled L2 weight decay, weights out of ReLU units that stopped firing
decay into the subnormal range (below ~1e-38 in float32), where CPU arithmetic
is many times slower; the engine sets them to zero every ``FLUSH_EVERY``
optimiser steps (:func:`ciss_vae.engine.flush_subnormals`). This script runs the
default call on the example cohort (what ``make run`` imputes) ``--repeats``
times each way, alternating, in one process, and prints median seconds, the
ratio, standardised RMSE and the subnormal parameters the fitted model holds.
"Kept" replaces the flush by a no-op for the run.

    .venv/bin/python benchmarks/subnormals.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import ciss_vae.engine as engine
from ciss_vae.data import load_example_dataset
from ciss_vae.evaluation import standardised_rmse
from ciss_vae.pipeline import fit_table
from ciss_vae.settings import RUN, defaults, validate


def subnormal_count(model) -> int:
    return sum(int(((p.abs() < torch.finfo(p.dtype).tiny) & (p != 0)).sum()) for p in model.parameters())


def run(flush: bool, seed: int):
    missing, complete, _ = load_example_dataset()
    real = engine.flush_subnormals
    if not flush:
        engine.flush_subnormals = lambda opt: None
    try:
        start = time.perf_counter()
        result = fit_table(missing, validate(dict(defaults(RUN), seed=seed, print_dataset=False), RUN))
        seconds = time.perf_counter() - start
    finally:
        engine.flush_subnormals = real
    return seconds, standardised_rmse(result.imputed, complete, missing), subnormal_count(result.model)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {True: [], False: []}
    for _ in range(args.repeats):
        for flush in (True, False):
            runs[flush].append(run(flush, args.seed))
    print(f"example cohort, default call, seed {args.seed}, {torch.get_num_threads()} threads, "
          f"{args.repeats} runs each\n")
    print("| subnormal weights | median s | x flushed | standardised RMSE | subnormal parameters at the end |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(s for s, _, _ in runs[True])
    for flush, label in ((True, "set to zero every %d steps" % engine.FLUSH_EVERY), (False, "kept")):
        secs = statistics.median(s for s, _, _ in runs[flush])
        rmse = sorted({round(r, 4) for _, r, _ in runs[flush]})
        print(f"| {label} | {secs:.1f} | {secs / base:.2f} | {', '.join(map(str, rmse))} | "
              f"{max(n for _, _, n in runs[flush])} |")


if __name__ == "__main__":
    main()
