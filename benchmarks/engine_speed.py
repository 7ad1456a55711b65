"""Per-epoch cost of the training engine against a plain dense floor, and a full reference run.

What it measures, on the published example cohort (``../shared/data/reference_example``,
falling back to the package's own cohort when that folder is absent):

* floor: a plain dense VAE MLP of the same widths (no clusters, no bookkeeping), masked
  squared error + KL, Adam, batches by index slicing: the least an epoch can cost;
* ours, K = 4: one training epoch of the engine with the true clusters;
* ours, K = 1000: the same with 1000 random clusters (8 rows each);
* a full ``run_cissvae`` with the settings of the reference folder's README: wall time,
  epochs, seconds per epoch and standardised RMSE on the missing cells.

Timings are medians over ``--repeats`` runs of ``--epochs`` epochs each, all in this one
process, with torch's default thread count unless ``--threads`` is given. Run::

    .venv/bin/python benchmarks/engine_speed.py --published-python /work/refvenv/bin/python
    .venv/bin/python benchmarks/engine_speed.py --skip-full
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ciss_vae.dataset import ClusterDataset
from ciss_vae.engine import Generators, History, Phase, TrainingData, make_adam, run_epochs
from ciss_vae.evaluation import standardised_rmse
from ciss_vae.pipeline import build_model, fit_table
from ciss_vae.settings import RUN, defaults

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "reference_example"
SETTINGS = dict(hidden_dims=[150, 120, 60], latent_dim=15, layer_order_enc=["unshared"] * 3,
                layer_order_dec=["shared"] * 3, latent_shared=False, output_shared=False, batch_size=4000,
                initial_lr=0.01, decay_factor=0.999, beta=0.001, weight_decay=0.001, epochs=500,
                epochs_per_loop=100, max_loops=20, patience=2, seed=42, normal_blend=False)
ARCH = {k: SETTINGS[k] for k in ("hidden_dims", "latent_dim", "layer_order_enc", "layer_order_dec",
                                 "latent_shared", "output_shared")}


def load():
    if REFERENCE.exists():
        read = lambda name: pd.read_csv(REFERENCE / name, index_col=0)  # noqa: E731
        return read("df_missing.csv"), read("df_complete.csv"), read("clusters.csv")["clusters"].to_numpy(), "published example"
    from ciss_vae.data import load_example_dataset

    m, c, k = load_example_dataset()
    return m, c, k, "package example"


class Floor(nn.Module):
    """The same widths as the default CISS-VAE, every layer shared."""

    def __init__(self, p, hidden=(150, 120, 60), latent=15):
        super().__init__()
        enc, dec = [p, *hidden], [latent, *hidden[::-1]]
        self.latent = latent
        self.enc = nn.Sequential(*[m for a, b in zip(enc, enc[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
                                 nn.Linear(enc[-1], 2 * latent))
        self.dec = nn.Sequential(*[m for a, b in zip(dec, dec[1:]) for m in (nn.Linear(a, b), nn.ReLU())],
                                 nn.Linear(dec[-1], p))

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = h[:, : self.latent], h[:, self.latent :]
        return self.dec(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)), mu, logvar


def floor_epochs(x, w, epochs, batch_size=4000):
    torch.manual_seed(0)
    model = Floor(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3, fused=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(x.shape[0]).split(batch_size):
            xb, wb = x[idx], w[idx]
            out, mu, logvar = model(xb)
            loss = ((out - xb).square() * wb).sum() - 0.0005 * (1 + logvar - mu.square() - logvar.exp()).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def engine_epochs(df, clusters, epochs, ignore):
    ds = ClusterDataset(df, clusters, columns_ignore=ignore)
    cpu = torch.device("cpu")
    model = build_model(ds, 0, cpu, **ARCH)
    td = TrainingData.from_dataset(ds, cpu)
    gens, history = Generators.from_seed(0, cpu), History()
    marks = [time.perf_counter()]
    phase = Phase(epochs, 1e-3, 0.999, 0.001, 0.001, 4000)
    run_epochs(model, td, td.data, td.train_weight, phase, gens, history, label="initial", loop=0,
               on_epoch=lambda row: marks.append(time.perf_counter()))
    times = np.diff(marks).tolist()
    return times, ds


def adam_epochs(ds, epochs, steps_per_epoch):
    """The optimizer alone: fused Adam updates of the model built on ``ds``, gradients already there."""
    model = build_model(ds, 0, torch.device("cpu"), **ARCH)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt = make_adam(model, 1e-3, 0.001)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps_per_epoch):
            opt.step()
        times.append(time.perf_counter() - start)
    return times, sum(p.numel() for p in model.parameters())


def median_of(fn, repeats):
    """Median epoch time over ``repeats`` runs (the first epoch of each run is warm-up)."""
    return statistics.median(t for _ in range(repeats) for t in fn()[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--full-repeats", type=int, default=3)
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--published-python", default=None,
                        help="python of a venv with ciss-vae==1.1.2, to time the published code in the same run")
    parser.add_argument("--published-repeats", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    df_missing, df_complete, clusters, name = load()
    ignore = list(df_missing.columns[:5])
    print(f"data: {name}, {df_missing.shape}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    ds = ClusterDataset(df_missing, clusters, columns_ignore=ignore)
    x, w = ds.data, ds.masks.float()
    floor = median_of(lambda: floor_epochs(x, w, args.epochs), args.repeats)
    k4 = median_of(lambda: engine_epochs(df_missing, clusters, args.epochs, ignore)[0], args.repeats)
    rng = np.random.default_rng(0)
    many = rng.permutation(np.arange(len(df_missing)) % 1000)
    k1000 = median_of(lambda: engine_epochs(df_missing, many, max(3, args.epochs // 3), ignore)[0], args.repeats)
    many_ds = ClusterDataset(df_missing, many, columns_ignore=ignore)
    steps = -(-len(df_missing) // SETTINGS["batch_size"])
    n_params = adam_epochs(many_ds, 1, steps)[1]
    adam = median_of(lambda: adam_epochs(many_ds, max(3, args.epochs // 3), steps)[0], args.repeats)
    rows = [("floor: dense MLP, same widths", floor, 1.0), ("engine, K = 4", k4, k4 / floor),
            ("engine, K = 1000", k1000, k1000 / floor),
            (f"of which the Adam update alone ({n_params / 1e6:.1f}M parameters, {steps} steps)", adam, adam / floor)]
    print("\n| training epoch | median ms | x floor |\n|---|---:|---:|")
    for label, t, r in rows:
        print(f"| {label} | {t * 1e3:.1f} | {r:.2f} |")

    if args.skip_full:
        return
    runs = []
    for _ in range(args.full_repeats):
        start = time.perf_counter()
        result = fit_table(df_missing, dict(defaults(RUN), columns_ignore=ignore, print_dataset=False,
                                            precision=args.precision, **SETTINGS), clusters=clusters)
        runs.append((time.perf_counter() - start, result.summary,
                     standardised_rmse(result.imputed, df_complete, df_missing)))
    wall = statistics.median(r[0] for r in runs)
    s, rmse = runs[0][1], runs[0][2]
    print(f"\n| full run, reference README settings ({args.precision}) | value |\n|---|---:|")
    print(f"| wall time, median of {len(runs)} (s) | {wall:.1f} (runs: {', '.join(f'{r[0]:.1f}' for r in runs)}) |")
    print(f"| epochs | {s['epochs']} ({s['refit_loops']} refit loops; stop: {s['stop_reason']}) |")
    print(f"| s per epoch (wall / epochs) | {wall / s['epochs']:.4f} |")
    print(f"| standardised RMSE | {rmse:.4f} |")
    if args.published_python:
        cmd = [args.published_python, str(Path(__file__).with_name("published_reference.py")), "--data",
               str(REFERENCE), "--repeats", str(args.published_repeats)]
        lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        pub = [json.loads(line) for line in lines if line.startswith('{"repeat"')]
        pwall = statistics.median(p["wall_s"] for p in pub)
        print("\n| published ciss-vae 1.1.2, same settings | value |\n|---|---:|")
        print(f"| wall time, median of {len(pub)} (s) | {pwall:.1f} |")
        print(f"| epochs | {pub[0]['epochs']} |\n| s per epoch | {pwall / pub[0]['epochs']:.4f} |")
        print(f"| standardised RMSE | {pub[0]['std_rmse']:.4f} |")
        print(f"| wall-time ratio published / ours | {pwall / wall:.1f}x |")

if __name__ == "__main__":
    main()
