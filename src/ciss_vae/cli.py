"""The ``ciss-vae`` command line.

Subcommands:

* ``impute INPUT -o OUTPUT``: impute a CSV, TSV or Parquet file (format by
  extension), optionally saving the model (``--save-model``), imputing with a
  saved model instead of training (``--model``) and writing an HTML report
  (``--report``);
* ``tune INPUT``: Optuna search over a :class:`~ciss_vae.search_space.SearchSpace`;
  with ``--storage URL --study NAME`` every process started with the same
  command joins the same study;
* ``cluster INPUT -o OUTPUT``: cluster labels of the rows' missingness patterns;
* ``evaluate INPUT``: the amputation comparison on a complete file (needs
  ``ciss_vae.evaluation``);
* ``demo``: the bundled example cohort end to end (what ``make run`` runs).

Errors print one line, ``ciss-vae: error: ...``, on stderr: exit code 2 for a
wrong command line (or a feature this version lacks), 1 for a failed run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

PROG = "ciss-vae"
_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class CLIError(Exception):
    """A failure reported as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def standardised_rmse(imputed, complete, missing) -> float:
    """RMSE over the cells missing in ``missing``, each column's error divided by its std in ``complete``."""
    import numpy as np

    mask = missing.isna().to_numpy() & imputed.notna().to_numpy()
    std = complete.std(ddof=0).to_numpy()
    err = (imputed.to_numpy(dtype=float) - complete.to_numpy(dtype=float)) / std
    return float(np.sqrt(np.mean(err[mask] ** 2)))


# ---------------------------------------------------------------------- files
def _format(path: str, what: str) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _READERS:
        raise CLIError(f"{what} {path!r}: unknown extension {ext or '(none)'!r}; use .csv, .tsv or .parquet", 2)
    return _READERS[ext]


def read_table(path):
    """A CSV, TSV or Parquet file (by extension) as a DataFrame; one-line errors."""
    import pandas as pd

    kind = _format(path, "input")
    if not os.path.exists(path):
        raise CLIError(f"input {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise CLIError(f"input {path!r} is empty")
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, sep="," if kind == "csv" else "\t")
    except ImportError as exc:
        raise CLIError(f"reading Parquet needs pyarrow: pip install ciss-vae[parquet] ({exc})") from exc
    except (ValueError, OSError) as exc:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise CLIError(f"cannot read {path!r} as {kind.upper()}: {_one_line(exc)}") from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise CLIError(f"input {path!r} has no {'columns' if df.shape[1] == 0 else 'rows'}")
    return df


def write_table(df, path) -> None:
    kind = _format(path, "output")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CLIError(f"output folder {parent!r} does not exist")
    if kind == "parquet":
        try:
            df.to_parquet(path, index=False)
        except ImportError as exc:
            raise CLIError(f"writing Parquet needs pyarrow: pip install ciss-vae[parquet] ({exc})") from exc
    else:
        df.to_csv(path, sep="," if kind == "csv" else "\t", index=False)


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _names(values):
    """Repeated or comma-separated column names as one list (None when none were given)."""
    if not values:
        return None
    out = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _categorical(values):
    """``VAR=col1,col2`` items as ``{VAR: [col1, col2]}``."""
    if not values:
        return None
    out = {}
    for item in values:
        name, sep, cols = item.partition("=")
        if not sep or not name.strip() or not cols.strip():
            raise CLIError(f"--categorical {item!r}: expected NAME=COL1,COL2,...", 2)
        out[name.strip()] = [c.strip() for c in cols.split(",") if c.strip()]
    return out


def _check_columns(df, cols, option):
    if cols:
        unknown = [c for c in cols if c not in df.columns]
        if unknown:
            raise CLIError(f"{option}: no column {unknown[0]!r} in the input (columns: "
                           f"{', '.join(map(str, list(df.columns)[:12]))}{', ...' if df.shape[1] > 12 else ''})", 2)


def _split_clusters(df, column):
    """(table without the label column, labels or None, the column's position)."""
    if column is None:
        return df, None, None
    _check_columns(df, [column], "--cluster-column")
    labels = df[column]
    if labels.isna().any():
        raise CLIError(f"--cluster-column {column!r} has missing labels")
    return df.drop(columns=[column]), labels.to_numpy(), list(df.columns).index(column)


def _int_list(text):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _order_list(text):
    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in ("shared", "unshared", "s", "u")]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of shared/unshared (s/u), got {text!r}")
    return values


# ---------------------------------------------------------------------- impute
def _impute(args) -> int:
    from ciss_vae.pipeline import run_cissvae

    start = time.perf_counter()
    df = read_table(args.input)
    _format(args.output, "output")
    ignore = _names(args.ignore)
    binary = _names(args.binary)
    categorical = _categorical(args.categorical)
    _check_columns(df, ignore, "--ignore")
    _check_columns(df, binary, "--binary")
    for cols in (categorical or {}).values():
        _check_columns(df, cols, "--categorical")
    data, labels, label_pos = _split_clusters(df, args.cluster_column)
    n_missing = int(data.isna().to_numpy().sum())
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns, {n_missing} missing cells")

    history = summary = None
    if args.model:
        imputed, clusters = _impute_saved(args.model, data, labels, args)
        print(f"imputed with the saved model {args.model} (no training)")
    else:
        settings = _run_settings(args)
        common = dict(columns_ignore=ignore, binary_feature_mask=binary, categorical_column_map=categorical,
                      seed=args.seed, device=args.device)
        imputer_cls = _imputer_class() if args.save_model else None
        if imputer_cls is not None:
            # The estimator trains through run_cissvae too, and keeps what imputing new rows needs.
            est = imputer_cls(verbose=args.verbose, **common, **settings).fit(data, clusters=labels)
            imputed, model = est.fit_output_, est.model_
            clusters = labels if labels is not None else est.clusterer_.labels_
            history, summary = est.training_history_, est.fit_summary_
        else:
            imputed, model, dataset = run_cissvae(
                data, clusters=labels, verbose=args.verbose, print_dataset=args.verbose, return_dataset=True,
                show_progress=args.progress, **common, **settings)
            clusters = dataset.clusters
            history, summary = model.training_history_, model.fit_summary_
        print(f"clusters: {summary['n_clusters']}; epochs: {summary['epochs']} ({summary['refit_loops']} refit loops, "
              f"stopped: {summary['stop_reason']}); validation error {summary['validation_error']:.4g}")
        if args.save_model:
            if imputer_cls is not None:
                est.save(args.save_model)
                print(f"model saved to {args.save_model}/ (CISSVAEImputer.save)")
            else:
                _save_model(args.save_model, model, dataset, args, settings, ignore, binary, categorical)
                print(f"model saved to {args.save_model} (+ {args.save_model}.json)")
    n_imputed = int((data.isna() & imputed.notna()).to_numpy().sum())
    print(f"cells imputed: {n_imputed}")
    out = imputed
    if label_pos is not None:
        out = imputed.copy()
        out.insert(label_pos, args.cluster_column, df[args.cluster_column].to_numpy())
    write_table(out, args.output)
    print(f"imputed table written to {args.output}")
    if args.report:
        from ciss_vae.report import write_report

        report_settings = dict(input=args.input, output=args.output, model=args.model or "trained in this run",
                               cluster_column=args.cluster_column, columns_ignore=ignore, binary=binary,
                               categorical=categorical, seed=args.seed, device=args.device or "auto")
        if not args.model:
            report_settings.update(_run_settings(args))
        write_report(args.report, data, imputed, settings=report_settings, clusters=clusters, history=history,
                     summary=summary, title=f"CISS-VAE imputation of {os.path.basename(args.input)}")
        print(f"report written to {args.report}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


_RUN_OPTIONS = ("epochs", "epochs_per_loop", "max_loops", "patience", "initial_lr", "decay_factor", "weight_decay",
                "beta", "batch_size", "val_proportion", "validate_every", "n_iter_no_change", "tol", "hidden_dims",
                "latent_dim", "layer_order_enc", "layer_order_dec", "latent_shared", "output_shared", "n_clusters",
                "binary_output")


def _run_settings(args) -> dict:
    """The run_cissvae keyword arguments the user set (unset ones keep run_cissvae's defaults)."""
    out = {k: getattr(args, k) for k in _RUN_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "no_early_stop", False):
        out["n_iter_no_change"] = None
    if out.get("hidden_dims") is not None:
        n = len(out["hidden_dims"])
        for key in ("layer_order_enc", "layer_order_dec"):
            if key not in out:
                out[key] = ["unshared" if key == "layer_order_enc" else "shared"] * n
    return out


def _imputer_class():
    """:class:`ciss_vae.imputer.CISSVAEImputer` when this version has it (with save/load/transform), else None."""
    try:
        from ciss_vae.imputer import CISSVAEImputer
    except ImportError:
        return None
    if all(hasattr(CISSVAEImputer, name) for name in ("save", "load", "transform", "fit")):
        return CISSVAEImputer
    return None


def _save_model(path, model, dataset, args, settings, ignore, binary, categorical) -> None:
    """state_dict with torch.save, and a JSON of what rebuilds the model and its data preparation."""
    import numpy as np
    import torch

    schema = dataset.schema
    raw = dataset.raw_data.numpy()
    codes = dataset.cluster_labels.numpy()
    centroids = [np.isnan(raw[codes == k]).mean(axis=0).tolist() for k in range(dataset.n_clusters)]
    meta = dict(
        format="ciss_vae.cli.saved_model/1",
        constructor_kwargs=model.constructor_kwargs(),
        columns=[str(c) for c in schema.original.columns] if hasattr(schema, "original") else None,
        model_names=[str(c) for c in dataset.feature_names],
        cluster_column=args.cluster_column, cluster_names=[_py(x) for x in dataset.cluster_names.tolist()],
        missing_centroids=centroids, means=dataset.means_.tolist(), stds=dataset.stds_.tolist(),
        replacement_value=dataset.replacement_value, columns_ignore=ignore, binary=binary, categorical=categorical,
        binary_output=settings.get("binary_output", "label"),
        settings={k: v for k, v in settings.items()}, seed=args.seed, fit_summary={
            k: _py(v) for k, v in model.fit_summary_.items()},
    )
    torch.save(model.state_dict(), path)
    with open(f"{path}.json", "w") as f:
        json.dump(meta, f, indent=2)


def _py(x):
    import numpy as np

    return x.item() if isinstance(x, np.generic) else x


def _impute_saved(path, data, labels, args):
    """Impute ``data`` with a model saved by ``--save-model`` (no training).

    A directory is a :class:`~ciss_vae.imputer.CISSVAEImputer` (``transform``:
    new rows are assigned to clusters by the imputer's own rule, and a
    ``--cluster-column`` is only carried through). A file is the fallback
    format (``PATH`` state_dict + ``PATH.json``) written when the imputer is not
    available: one imputation pass from ``replacement_value``, no refit. The table is standardised with the saved training statistics. Rows are put
    in the cluster given by ``--cluster-column`` when there is one, else in the
    saved cluster whose per-column missing rates are nearest to the row's
    missingness pattern.
    """
    import numpy as np
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader

    from ciss_vae.dataset import ClusterDataset
    from ciss_vae.model import CISSVAE
    from ciss_vae.stepwise import get_imputed_df

    if os.path.isdir(path):
        imputer_cls = _imputer_class()
        if imputer_cls is None:
            raise CLIError(f"--model {path!r} is a saved CISSVAEImputer, which this version cannot load")
        try:
            est = imputer_cls.load(path)
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise CLIError(f"--model {path!r}: cannot load it: {_one_line(exc)}") from exc
        if args.device:
            est.device = args.device
        imputed = est.transform(data)
        if not isinstance(imputed, pd.DataFrame):
            imputed = pd.DataFrame(np.asarray(imputed), columns=data.columns, index=data.index)
        return imputed, labels
    meta_path = f"{path}.json"
    if not os.path.exists(path) or not os.path.exists(meta_path):
        raise CLIError(f"--model {path!r}: needs {path} and {meta_path}, as written by --save-model")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (ValueError, OSError, RuntimeError, EOFError) as exc:
        raise CLIError(f"--model {path!r}: cannot read it: {_one_line(exc)}") from exc
    if meta.get("format") != "ciss_vae.cli.saved_model/1":
        raise CLIError(f"--model {path!r}: {meta_path} was not written by `ciss-vae impute --save-model`")
    ds = ClusterDataset(data, None, val_proportion=0.0, replacement_value=meta["replacement_value"],
                        columns_ignore=meta["columns_ignore"], val_seed=0, binary_feature_mask=meta["binary"],
                        categorical_column_map=meta["categorical"])
    if [str(c) for c in ds.feature_names] != meta["model_names"]:
        raise CLIError(f"--model {path!r}: the input's model columns differ from those the model was trained on")
    raw = ds.raw_data.numpy().astype(np.float64)
    names = meta["cluster_names"]
    if labels is not None:
        lookup = {str(n): i for i, n in enumerate(names)}
        unknown = sorted({str(x) for x in labels} - set(lookup))
        if unknown:
            raise CLIError(f"--cluster-column: label {unknown[0]!r} was not among the model's clusters {names}")
        codes = np.array([lookup[str(x)] for x in labels], dtype=np.int64)
    else:
        cent = np.asarray(meta["missing_centroids"], dtype=np.float64)
        pattern = np.isnan(raw).astype(np.float64)
        codes = ((pattern[:, None, :] - cent[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    means, stds = np.asarray(meta["means"]), np.asarray(meta["stds"])
    norm = (raw - means) / stds
    ds.means_, ds.stds_ = means, stds
    ds.feature_means = torch.tensor(means, dtype=torch.float32)
    ds.feature_stds = torch.tensor(stds, dtype=torch.float32)
    ds.data = torch.tensor(np.where(np.isnan(norm), ds.replacement_value, norm), dtype=torch.float32)
    ds.cluster_labels = torch.tensor(codes)
    ds.cluster_names = np.asarray(names, dtype=object)
    ds.n_clusters = len(names)
    model = CISSVAE(**meta["constructor_kwargs"])
    model.load_state_dict(state)
    device = args.device or "cpu"
    imputed = get_imputed_df(model, DataLoader(ds, batch_size=4096), device=device,
                             binary_output=meta.get("binary_output", "label"))
    return imputed, np.asarray([names[c] for c in codes])


# ---------------------------------------------------------------------- tune
def _tune(args) -> int:
    from ciss_vae.dataset import ClusterDataset
    from ciss_vae.search_space import SearchSpace
    from ciss_vae.tuning import autotune

    start = time.perf_counter()
    df = read_table(args.input)
    ignore, binary, categorical = _names(args.ignore), _names(args.binary), _categorical(args.categorical)
    _check_columns(df, ignore, "--ignore")
    _check_columns(df, binary, "--binary")
    data, labels, _ = _split_clusters(df, args.cluster_column)
    if labels is None:
        labels = _cluster_labels(data, ignore, args.n_clusters, args.seed)
    if args.search_space:
        space = SearchSpace.load(args.search_space)
    else:
        space = SearchSpace()
    overrides = {k: v for k, v in dict(num_epochs=args.epochs, refit_loops=args.max_loops,
                                       epochs_per_loop=args.epochs_per_loop).items() if v is not None}
    if overrides:
        params = {k: getattr(space, k) for k in _space_params(space)}
        params.update(overrides)
        space = SearchSpace(**params)
    dataset = ClusterDataset(data, labels, val_proportion=args.val_proportion, columns_ignore=ignore,
                             val_seed=args.seed, binary_feature_mask=binary, categorical_column_map=categorical)
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns, {dataset.n_clusters} clusters")
    if args.storage:
        print(f"study {args.study!r} on {_redact(args.storage)}: this worker runs {args.n_trials} trial(s)")
    imputed, _model, study, results = autotune(
        space, dataset, n_trials=args.n_trials, study_name=args.study, storage=args.storage, seed=args.seed,
        device_preference=args.device or "cuda", timeout=args.timeout, verbose=args.verbose,
        show_progress=_show(args.progress), save_model_path=args.save_model)
    best = study.best_trial
    print(f"trials in the study: {len(results)}; best trial {best.number}: imputation error {best.value:.4g}")
    print("best parameters: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    if args.results:
        write_table(results.astype({c: str for c in results.columns if results[c].dtype == object}), args.results)
        print(f"trial table written to {args.results}")
    if args.output:
        write_table(imputed, args.output)
        print(f"imputed table of the best trial written to {args.output}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


def _space_params(space):
    from ciss_vae.search_space import DEFAULTS

    return [k for k in DEFAULTS if hasattr(space, k)]


def _redact(url: str) -> str:
    """A storage URL without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _show(progress):
    from ciss_vae.progress import progress_enabled

    return progress_enabled(progress)


# ---------------------------------------------------------------------- cluster
def _cluster_labels(data, ignore, n_clusters, seed, **opts):
    try:
        from ciss_vae.clustering import cluster_on_missing
    except ImportError as exc:
        raise CLIError(f"clustering needs extra packages: pip install ciss-vae[clustering] ({exc})") from exc
    labels, _ = cluster_on_missing(data, cols_ignore=ignore, n_clusters=n_clusters, seed=seed, **opts)
    return labels


def _cluster(args) -> int:
    import numpy as np
    import pandas as pd

    try:
        from ciss_vae.clustering import cluster_on_missing
    except ImportError as exc:
        raise CLIError(f"clustering needs extra packages: pip install ciss-vae[clustering] ({exc})") from exc
    df = read_table(args.input)
    _format(args.output, "output")
    ignore = _names(args.ignore)
    _check_columns(df, ignore, "--ignore")
    opts = {k: v for k, v in dict(k_neighbors=args.k_neighbors, leiden_resolution=args.resolution).items()
            if v is not None}
    labels, sil = cluster_on_missing(df, cols_ignore=ignore, n_clusters=args.n_clusters, seed=args.seed, **opts)
    out = pd.DataFrame({args.column: labels})
    if args.keep_columns:
        out = pd.concat([df.reset_index(drop=True), out], axis=1)
    write_table(out, args.output)
    sizes = np.bincount(labels)
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns")
    print(f"clusters: {len(sizes)} (sizes {sizes.tolist()}), silhouette {'n/a' if sil is None else f'{sil:.3f}'}")
    print(f"cluster labels written to {args.output} (column {args.column!r})")
    if args.plot:
        from ciss_vae.plots import plot_missingness_by_cluster

        plot_missingness_by_cluster(df.drop(columns=ignore or []), labels, save_path=args.plot)
        print(f"missingness heatmap written to {args.plot}")
    return 0


# ---------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    try:
        from ciss_vae import evaluation
    except ImportError:
        evaluation = None
    compare = getattr(evaluation, "compare", None)
    if compare is None:
        raise CLIError("evaluate is not available in this version (ciss_vae.evaluation is missing)", 2)
    start = time.perf_counter()
    df = read_table(args.input)
    if df.isna().to_numpy().any():
        raise CLIError(f"evaluate needs a complete file; {args.input!r} has {int(df.isna().to_numpy().sum())} "
                       "missing cells")
    mechanisms = _names(args.mechanism) or ["MCAR", "MAR", "MNAR"]
    methods = _names(args.methods)
    kwargs = {k: v for k, v in dict(epochs=args.epochs, max_loops=args.max_loops, epochs_per_loop=args.epochs_per_loop,
                                    hidden_dims=args.hidden_dims, device=args.device).items() if v is not None}
    if "hidden_dims" in kwargs:
        n = len(kwargs["hidden_dims"])
        kwargs.update(layer_order_enc=["unshared"] * n, layer_order_dec=["shared"] * n)
    name = os.path.splitext(os.path.basename(args.input))[0]
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns; mechanisms {', '.join(mechanisms)}, "
          f"rates {', '.join(f'{r:g}' for r in args.rates)}, seeds {', '.join(map(str, args.seeds))}")
    result = compare({name: df}, mechanisms=mechanisms, rates=args.rates, seeds=args.seeds, methods=methods,
                     ciss_vae_kwargs=kwargs or None)
    print(result.markdown(args.metric))
    failed = result.table[result.table["error"].astype(bool)]
    for row in failed.itertuples():
        print(f"{row.method} failed on {row.mechanism} {row.rate:g} seed {row.seed}: {row.error}", file=sys.stderr)
    if args.output:
        write_table(result.table, args.output)
        print(f"comparison table written to {args.output}")
    if args.plot:
        result.plot(args.metric).savefig(args.plot, bbox_inches="tight")
        print(f"comparison plot written to {args.plot}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


def _float_list(text):
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected proportions between 0 and 1, got {text!r}")
    return values


def _seed_list(text):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


# ---------------------------------------------------------------------- demo
def _demo(args) -> int:
    from ciss_vae.data import load_example_dataset
    from ciss_vae.pipeline import run_cissvae

    df_missing, df_complete, _ = load_example_dataset()
    start = time.perf_counter()
    imputed, model = run_cissvae(df_missing, seed=args.seed, device=args.device, verbose=args.verbose,
                                 show_progress=args.progress)
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


# ---------------------------------------------------------------------- parser
def _common(p, device=True):
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    if device:
        p.add_argument("--device", default=None,
                       help="torch device, e.g. cpu or cuda (default: CUDA if available)")
    p.add_argument("--verbose", "-v", action="store_true", help="log progress details through `logging` (stderr)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show rich progress bars (default: only when stderr is a terminal)")


def _columns(p, cluster=True):
    p.add_argument("--ignore", action="append", metavar="COL",
                   help="column(s) to leave as they are: never imputed nor clustered on (repeat, or COL1,COL2)")
    if cluster:
        p.add_argument("--cluster-column", metavar="COL",
                       help="column holding each row's cluster label (default: cluster the missingness patterns)")
    p.add_argument("--binary", action="append", metavar="COL",
                   help="0/1 column(s), imputed as 0/1 (repeat, or COL1,COL2)")
    p.add_argument("--categorical", action="append", metavar="NAME=COL1,COL2",
                   help="one-hot dummy columns of a categorical variable, imputed as one valid category (repeat)")
    p.add_argument("--n-clusters", type=int, metavar="K",
                   help="with no --cluster-column: KMeans with K clusters (default: Leiden chooses)")
    p.add_argument("--val-proportion", type=float, default=0.1, metavar="F",
                   help="fraction of each cluster's observed cells held out for validation (default 0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Impute missing values in tables with CISS-VAE.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imp = sub.add_parser("impute", help="impute a CSV, TSV or Parquet file",
                         description="Impute the missing cells of a CSV, TSV or Parquet file (format by extension).")
    imp.add_argument("input", metavar="INPUT", help="table to impute (.csv, .tsv or .parquet)")
    imp.add_argument("--output", "-o", required=True, help="where to write the imputed table (.csv, .tsv, .parquet)")
    _columns(imp)
    model = imp.add_argument_group("model (default: run_cissvae's defaults)")
    model.add_argument("--hidden-dims", type=_int_list, metavar="W1,W2,...",
                       help="hidden layer widths (default 150,120,60)")
    model.add_argument("--latent-dim", type=int, metavar="N", help="latent dimension (default 15)")
    model.add_argument("--layer-order-enc", type=_order_list, metavar="ORDER",
                       help="shared/unshared per encoder layer, e.g. unshared,unshared,shared")
    model.add_argument("--layer-order-dec", type=_order_list, metavar="ORDER",
                       help="shared/unshared per decoder layer")
    model.add_argument("--latent-shared", action=argparse.BooleanOptionalAction, default=None,
                       help="one latent layer for all clusters (default: per cluster)")
    model.add_argument("--output-shared", action=argparse.BooleanOptionalAction, default=None,
                       help="one output layer for all clusters (default: per cluster)")
    train = imp.add_argument_group("training (default: run_cissvae's defaults)")
    train.add_argument("--epochs", type=int, metavar="N", help="initial training epochs (default 500)")
    train.add_argument("--epochs-per-loop", type=int, metavar="N", help="epochs per refit loop (default: --epochs)")
    train.add_argument("--max-loops", type=int, metavar="N", help="most impute-refit loops (default 100)")
    train.add_argument("--patience", type=int, metavar="N", help="refit loops without improvement before stopping "
                                                                 "(default 2)")
    train.add_argument("--lr", dest="initial_lr", type=float, metavar="LR", help="initial learning rate "
                                                                                   "(default 0.01)")
    train.add_argument("--decay-factor", type=float, metavar="F", help="learning-rate factor per epoch "
                                                                       "(default 0.999)")
    train.add_argument("--weight-decay", type=float, metavar="F", help="Adam L2 penalty (default 0.001)")
    train.add_argument("--beta", type=float, metavar="F", help="weight of the KL term (default 0.001)")
    train.add_argument("--batch-size", type=int, metavar="N", help="rows per batch (default 4000)")
    train.add_argument("--validate-every", type=int, metavar="N", help="epochs between validations (default 10)")
    train.add_argument("--n-iter-no-change", type=int, metavar="N",
                       help="end a phase after N validations without improvement (default 5)")
    train.add_argument("--no-early-stop", action="store_true", help="train every epoch of every phase")
    train.add_argument("--tol", type=float, metavar="F", help="relative improvement a refit loop must make to reset "
                                                              "the patience count (default 0.01)")
    train.add_argument("--binary-output", choices=("label", "probability"),
                       help="imputed binary cells as 0/1 labels (default) or probabilities")
    io_ = imp.add_argument_group("model files and report")
    io_.add_argument("--save-model", metavar="PATH",
                     help="save the trained model: a CISSVAEImputer directory (CISSVAEImputer.save) when this "
                          "version has ciss_vae.imputer, else PATH (torch state_dict) and PATH.json")
    io_.add_argument("--model", metavar="PATH",
                     help="impute with a model saved by --save-model instead of training (the model and training "
                          "options are then ignored)")
    io_.add_argument("--report", metavar="HTML", help="write a self-contained HTML report of the run")
    _common(imp)
    imp.set_defaults(func=_impute)

    tune = sub.add_parser("tune", help="tune the hyperparameters with Optuna (one worker of a shared study)",
                          description="Search hyperparameters with Optuna. With --storage and --study, the same "
                                      "command started on several machines works on one shared study.")
    tune.add_argument("input", metavar="INPUT", help="table to tune on (.csv, .tsv or .parquet)")
    _columns(tune)
    tune.add_argument("--search-space", metavar="JSON", help="a SearchSpace saved with SearchSpace.save "
                                                             "(default: the published search space)")
    tune.add_argument("--epochs", type=int, metavar="N", help="fix num_epochs of the search space to N")
    tune.add_argument("--epochs-per-loop", type=int, metavar="N", help="fix epochs_per_loop to N")
    tune.add_argument("--max-loops", type=int, metavar="N", help="fix refit_loops to N")
    tune.add_argument("--n-trials", type=int, default=20, metavar="N", help="trials this worker runs (default 20)")
    tune.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna storage shared by the workers: sqlite:///tune.db, postgresql://..., or a "
                           "journal file path ending in .log (default: in memory, this process only)")
    tune.add_argument("--study", default="vae_autotune", metavar="NAME", help="study name (default vae_autotune)")
    tune.add_argument("--output", "-o", metavar="PATH", help="write the best trial's imputed table here")
    tune.add_argument("--results", metavar="PATH", help="write the table of all trials here (.csv, .tsv, .parquet)")
    tune.add_argument("--save-model", metavar="PATH", help="save the best model's state_dict (+ PATH.json)")
    _common(tune)
    tune.set_defaults(func=_tune)

    clu = sub.add_parser("cluster", help="cluster the rows of a file by their missingness pattern",
                         description="Write the cluster label of each row, from its missingness pattern.")
    clu.add_argument("input", metavar="INPUT", help="table with missing cells (.csv, .tsv or .parquet)")
    clu.add_argument("--output", "-o", required=True, help="where to write the labels (.csv, .tsv or .parquet)")
    clu.add_argument("--ignore", action="append", metavar="COL", help="column(s) not clustered on (repeat, or "
                                                                      "COL1,COL2)")
    clu.add_argument("--n-clusters", type=int, metavar="K", help="KMeans with K clusters (default: Leiden chooses)")
    clu.add_argument("--k-neighbors", type=int, metavar="N", help="Leiden: neighbours in the kNN graph (default 30)")
    clu.add_argument("--resolution", type=float, metavar="R", help="Leiden resolution (default: chosen "
                                                                   "automatically)")
    clu.add_argument("--column", default="cluster", help="name of the label column (default 'cluster')")
    clu.add_argument("--keep-columns", action="store_true", help="write the input's columns too, labels last")
    clu.add_argument("--plot", metavar="PNG", help="also save the missingness-by-cluster heatmap (.png or .svg)")
    clu.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    clu.set_defaults(func=_cluster)

    ev = sub.add_parser("evaluate", help="compare imputers on amputed copies of a complete file",
                        description="Ampute a complete file and score the imputations (needs ciss_vae.evaluation).")
    ev.add_argument("input", metavar="INPUT", help="complete table (.csv, .tsv or .parquet)")
    ev.add_argument("--mechanism", action="append", metavar="NAME",
                    help="amputation mechanism(s): MCAR, MAR, MNAR, MNAR_self, MNAR_quantile, MNAR_group "
                         "(repeat, or comma-separated; default MCAR,MAR,MNAR)")
    ev.add_argument("--rates", type=_float_list, default=[0.3], metavar="P1,P2",
                    help="target missing proportion(s) (default 0.3)")
    ev.add_argument("--seeds", type=_seed_list, default=[0, 1, 2], metavar="S1,S2",
                    help="amputation seeds, one repetition each (default 0,1,2)")
    ev.add_argument("--methods", action="append", metavar="NAME",
                    help="methods to compare: CISS-VAE, Mean, KNN, MICE, MissForest (default: all)")
    ev.add_argument("--metric", default="std_rmse", choices=("std_rmse", "rmse", "mae", "wasserstein", "accuracy"),
                    help="metric of the printed table and the plot (default std_rmse)")
    ev.add_argument("--epochs", type=int, metavar="N", help="CISS-VAE initial epochs (default: run_cissvae's)")
    ev.add_argument("--epochs-per-loop", type=int, metavar="N", help="CISS-VAE epochs per refit loop")
    ev.add_argument("--max-loops", type=int, metavar="N", help="CISS-VAE most refit loops")
    ev.add_argument("--hidden-dims", type=_int_list, metavar="W1,W2,...", help="CISS-VAE hidden layer widths")
    ev.add_argument("--device", default=None, help="torch device of CISS-VAE (default: CUDA if available)")
    ev.add_argument("--output", "-o", metavar="PATH", help="write the full comparison table here")
    ev.add_argument("--plot", metavar="PNG", help="save the comparison plot (.png or .svg)")
    ev.set_defaults(func=_evaluate)

    demo = sub.add_parser("demo", help="impute the bundled example cohort with default settings and score it",
                          description="Impute the bundled example cohort end to end and score it against the "
                                      "ground truth.")
    demo.add_argument("--output", "-o", default=None, help="write the imputed table to this CSV file")
    _common(demo)
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = logging.getLogger("ciss_vae")
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, ImportError, OSError, RuntimeError, KeyError, FloatingPointError) as exc:
        log.debug("command failed", exc_info=True)
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
