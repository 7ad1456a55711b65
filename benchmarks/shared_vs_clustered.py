"""Would the validation error pick between the clustered default and an all-shared network well?

For each (dataset, mechanism) of the accuracy suite (same amputation as benchmarks/accuracy.py),
trains run_cissvae's default (per-cluster encoder layers) and the same network with every layer
shared (the model then ignores the clusters) on the same dataset, clusters and hold-out (same
seed), and prints both validation errors, both standardised RMSEs on the amputated cells and the
one a "lowest validation error" rule would keep. One thread per run.

    python benchmarks/shared_vs_clustered.py
    python benchmarks/shared_vs_clustered.py --cases breast_cancer:MAR digits:MAR --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import COHORT_COVARIATES, load  # noqa: E402

from ciss_vae import run_cissvae  # noqa: E402
from ciss_vae.evaluation import ampute, standardised_rmse  # noqa: E402

SHARED = dict(layer_order_enc=["s"] * 3, layer_order_dec=["s"] * 3, latent_shared=True, output_shared=True)
CASES = ("breast_cancer:MAR", "breast_cancer:MNAR_group", "digits:MAR", "wine:MCAR", "example_cohort:MCAR",
         "example_cohort:MNAR")


def run(name, mech, seed):
    complete = load(name)
    kw = {"observed": COHORT_COVARIATES} if name in ("example_cohort", "reference_example") else {}
    amputed = ampute(complete, mech, p=0.3, seed=seed, **kw)
    out = {}
    for label, extra in (("clustered", {}), ("shared", SHARED)):
        start = time.perf_counter()
        imputed, _, clusters, history = run_cissvae(amputed, seed=seed, print_dataset=False, return_clusters=True,
                                                    return_history=True, **extra)
        val = history.loc[history.selected, "imputation_error"].item()
        out[label] = (val, standardised_rmse(imputed, complete, amputed), time.perf_counter() - start,
                      len(set(clusters)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), help="dataset:mechanism pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| dataset | mechanism | K | clustered: val / test (s) | shared: val / test (s) | picked | picked test |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        name, mech = case.split(":")
        out = run(name, mech, args.seed)
        pick = min(out, key=lambda k: out[k][0])
        c, s = out["clustered"], out["shared"]
        print(f"| {name} | {mech} | {c[3]} | {c[0]:.4f} / {c[1]:.3f} ({c[2]:.0f}) | {s[0]:.4f} / {s[1]:.3f} "
              f"({s[2]:.0f}) | {pick} | {out[pick][1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
