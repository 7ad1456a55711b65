"""Real tables with label columns: R mice's ``boys`` (and ``nhanes2``), 20 % of observed cells masked.

The tables ship in ``tests/data`` (exported from R's mice with ``write.csv``).
They are read with R's column types: ``gen`` and ``phb`` ordered categories,
``reg`` (``age`` and ``hyp`` of nhanes2) unordered categories, ``tv`` a
nullable integer. For each seed a share of the *observed* cells is masked
(uniformly, seeded); every method gets the same masked table and is scored on
the masked cells against the values it never saw:

- numeric columns: RMSE in units of each column's std, pooled over the masked
  numeric cells (as ``ciss_vae.evaluation.standardised_rmse``);
- label columns: accuracy (share of masked cells given the true label), and
  for ordered ones the mean absolute distance in levels.

Methods: CISS-VAE's default call (label columns as one-hot groups), the
same with ordered categories given as integer codes instead (the ordinal
alternative of the issue: rounded, clipped to the codes' range), the column
mean / mode, R's mice with its default method per column type (pmm for numbers,
polr for ordered, polyreg for unordered factors, logreg for two levels;
``m = 5, maxit = 5``) and miceforest (LightGBM, native pandas categories,
5 datasets x 5 iterations). The multiple-imputation peers' point imputation is
the mean (numbers) or the most frequent label (labels) of their 5 tables.

    python benchmarks/real_tables.py                 # boys and nhanes2, seeds 0 1 2
    python benchmarks/real_tables.py --tables boys --seeds 0 --out /tmp/real.md
    python benchmarks/real_tables.py --from-csv benchmarks/results/real_tables.csv

R's mice needs Debian's ``r-base-core r-cran-mice`` and, for polr and polyreg,
``r-cran-mass r-cran-nnet``; miceforest ``pip install miceforest==6.0.5 lightgbm==4.5.0``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ciss_vae import run_cissvae  # noqa: E402
from ciss_vae.peers import PeerUnavailableError, _import_miceforest, _rscript, _thread_env  # noqa: E402

DATA = ROOT / "tests" / "data"
TABLES = {
    "boys": dict(ordered=["gen", "phb"], unordered={"reg": ["north", "east", "west", "south", "city"]},
                 integer=["tv"]),
    "nhanes2": dict(ordered=[], unordered={"age": ["20-39", "40-59", "60-99"], "hyp": ["no", "yes"]},
                    integer=[]),
}


def load(name: str) -> pd.DataFrame:
    """The table with R's column types."""
    spec = TABLES[name]
    df = pd.read_csv(DATA / f"{name}.csv")
    for c in spec["ordered"]:
        df[c] = pd.Categorical(df[c], categories=sorted(df[c].dropna().unique()), ordered=True)
    for c, levels in spec["unordered"].items():
        df[c] = pd.Categorical(df[c], categories=levels)
    for c in spec["integer"]:
        df[c] = df[c].astype("Int64")
    return df


def mask_observed(df: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """Boolean mask of ``share`` of the observed cells, drawn uniformly."""
    observed = np.flatnonzero(df.notna().to_numpy().ravel())
    rng = np.random.default_rng(seed)
    pick = rng.choice(observed, size=int(round(share * len(observed))), replace=False)
    mask = np.zeros(df.size, dtype=bool)
    mask[pick] = True
    return mask.reshape(df.shape)


def masked_table(df, mask):
    out = df.copy()
    for j, c in enumerate(df.columns):
        out.loc[mask[:, j], c] = pd.NA if df[c].dtype == "Int64" else np.nan
    return out


# ----------------------------------------------------------------------------- methods
def ciss_vae(masked, seed):
    return run_cissvae(masked, seed=seed, return_model=False, print_dataset=False, show_progress=False)


def ciss_vae_codes(masked, seed):
    """Ordered categories given as integer codes (1..L), imputed as rounded numbers, mapped back."""
    coded = masked.copy()
    ordered = [c for c in masked.columns if isinstance(masked[c].dtype, pd.CategoricalDtype) and masked[c].cat.ordered]
    for c in ordered:
        codes = masked[c].cat.codes.astype("Int64") + 1
        coded[c] = codes.mask(masked[c].isna())
    out = run_cissvae(coded, seed=seed, return_model=False, print_dataset=False, show_progress=False)
    for c in ordered:
        cats = masked[c].cat.categories
        k = np.clip(out[c].to_numpy(dtype=float), 1, len(cats)).astype(int) - 1
        out[c] = pd.Categorical.from_codes(k, categories=cats, ordered=True)
    return out


def mean_mode(masked, seed):
    out = masked.copy()
    for c in masked.columns:
        col = masked[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[c] = col.fillna(col.mode().iloc[0])
        elif col.dtype == "Int64":
            out[c] = col.fillna(int(round(col.mean())))
        else:
            out[c] = col.fillna(col.mean())
    return out


def _pool(masked, tables):
    """Point imputation of m completed tables: mean of numbers, most frequent label (first on ties)."""
    out = masked.copy()
    for c in masked.columns:
        miss = masked[c].isna().to_numpy()
        if not miss.any():
            continue
        if isinstance(masked[c].dtype, pd.CategoricalDtype):
            votes = pd.concat([t[c].astype(object).reset_index(drop=True) for t in tables], axis=1)
            out.loc[miss, c] = votes[miss].mode(axis=1).iloc[:, 0].to_numpy()
        else:
            mean = np.mean([t[c].to_numpy(dtype=float) for t in tables], axis=0)
            out.loc[miss, c] = np.rint(mean[miss]).astype(int) if masked[c].dtype == "Int64" else mean[miss]
    return out


_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
x <- utils::read.csv(args[[1]], na.strings = "NA")
spec <- utils::read.csv(args[[2]], stringsAsFactors = FALSE)
for (i in seq_len(nrow(spec))) {
  v <- spec$column[[i]]
  lv <- strsplit(spec$levels[[i]], "|", fixed = TRUE)[[1]]
  if (spec$kind[[i]] == "ordered") x[[v]] <- factor(x[[v]], levels = lv, ordered = TRUE)
  if (spec$kind[[i]] == "unordered") x[[v]] <- factor(x[[v]], levels = lv)
  if (spec$kind[[i]] == "integer") x[[v]] <- as.integer(x[[v]])
}
imp <- mice::mice(x, m = 5, maxit = 5, seed = as.integer(args[[4]]), printFlag = FALSE)
utils::write.csv(mice::complete(imp, "long"), args[[3]], row.names = FALSE)
"""


def r_mice(masked, seed):
    exe = _rscript("Rscript")
    spec = []
    for c in masked.columns:
        t = masked[c].dtype
        if isinstance(t, pd.CategoricalDtype):
            spec.append((c, "ordered" if t.ordered else "unordered", "|".join(map(str, t.categories))))
        elif t == "Int64":
            spec.append((c, "integer", ""))
    with tempfile.TemporaryDirectory(prefix="ciss_vae_real_") as tmp:
        paths = [os.path.join(tmp, f) for f in ("impute.R", "x.csv", "spec.csv", "long.csv")]
        Path(paths[0]).write_text(_R_SCRIPT)
        masked.to_csv(paths[1], index=False, na_rep="NA")
        pd.DataFrame(spec, columns=["column", "kind", "levels"]).to_csv(paths[2], index=False)
        proc = subprocess.run([exe, "--no-init-file", *paths, str(seed)], capture_output=True, text=True,
                              env=_thread_env(1))
        if proc.returncode:
            raise RuntimeError(proc.stderr[-1500:])
        long = pd.read_csv(paths[3])
    tables = [g.drop(columns=[".imp", ".id"]).reset_index(drop=True) for _, g in long.groupby(".imp")]
    return _pool(masked, tables)


def miceforest(masked, seed):
    mf = _import_miceforest()
    data = masked.copy()
    ints = [c for c in data.columns if data[c].dtype == "Int64"]
    data[ints] = data[ints].astype(float)
    kernel = mf.ImputationKernel(data.reset_index(drop=True), num_datasets=5, random_state=int(seed))
    kernel.mice(5, num_threads=1)
    return _pool(masked, [kernel.complete_data(dataset=i) for i in range(5)])


METHODS = {"CISS-VAE": ciss_vae, "CISS-VAE (ordinal as codes)": ciss_vae_codes, "Mean/mode": mean_mode,
           "R-mice": r_mice, "miceforest": miceforest}


# ----------------------------------------------------------------------------- scores
def scores(truth, imputed, mask) -> dict:
    num_err, num_cells, right, total, dist, dist_n = 0.0, 0, 0, 0, 0.0, 0
    for j, c in enumerate(truth.columns):
        rows = mask[:, j]
        if not rows.any():
            continue
        t, v = truth[c][rows], imputed[c][rows]
        if isinstance(truth[c].dtype, pd.CategoricalDtype):
            right += int((t.astype(object).to_numpy() == v.astype(object).to_numpy()).sum())
            total += int(rows.sum())
            if truth[c].cat.ordered:
                cats = list(truth[c].cat.categories)
                dist += float(np.abs(np.array([cats.index(a) - cats.index(b) for a, b in zip(t, v)])).sum())
                dist_n += int(rows.sum())
        else:
            std = truth[c].astype(float).std(ddof=0)
            num_err += float((((t.to_numpy(dtype=float) - v.to_numpy(dtype=float)) / std) ** 2).sum())
            num_cells += int(rows.sum())
    return dict(std_rmse=np.sqrt(num_err / num_cells) if num_cells else np.nan,
                accuracy=right / total if total else np.nan,
                ordinal_distance=dist / dist_n if dist_n else np.nan)


def run(tables, seeds, share, methods):
    rows = []
    for name in tables:
        truth = load(name)
        for seed in seeds:
            mask = mask_observed(truth, share, seed)
            masked = masked_table(truth, mask)
            for method in methods:
                t0 = time.perf_counter()
                try:
                    out = METHODS[method](masked, seed)
                except PeerUnavailableError as exc:
                    print(f"skipped {method}: {exc}", file=sys.stderr)
                    continue
                secs = time.perf_counter() - t0
                assert not out.isna().any().any(), (method, out.isna().sum())
                row = dict(table=name, seed=seed, method=method, seconds=secs, **scores(truth, out, mask))
                rows.append(row)
                print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                      file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame) -> str:
    def cell(s):
        s = s.dropna()
        if s.empty:
            return ""
        return f"{s.mean():.3f} ± {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.mean():.3f}"

    lines = []
    for name, part in df.groupby("table", sort=False):
        n = part.seed.nunique()
        lines += [f"**{name}** ({n} seed{'s' if n > 1 else ''}; mean ± std over seeds)", "",
                  "| method | numeric std. RMSE (lower is better) | label accuracy (higher) | "
                  "ordered labels: mean level distance (lower) | seconds |", "|---|---|---|---|---|"]
        for method, g in part.groupby("method", sort=False):
            lines.append(f"| {method} | {cell(g.std_rmse)} | {cell(g.accuracy)} | {cell(g.ordinal_distance)} | "
                         f"{g.seconds.median():.1f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--share", type=float, default=0.2, help="share of the observed cells masked (default 0.2)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--csv", help="also write the tidy table here")
    p.add_argument("--out", help="write the markdown here (default: print it)")
    p.add_argument("--from-csv", help="only rebuild the markdown from a table written by --csv")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.from_csv:
        text = markdown(pd.read_csv(args.from_csv))
    else:
        df = run(args.tables, args.seeds, args.share, args.methods)
        if args.csv:
            df.to_csv(args.csv, index=False)
        text = markdown(df) + f"\nWall time: {time.perf_counter() - t0:.0f} s.\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
