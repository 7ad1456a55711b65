"""``ciss-vae impute``: train and impute a file, or impute it with a saved model."""

from __future__ import annotations

import os
import time

from ciss_vae.cli.files import CLIError, _format, _one_line, read_table, write_table


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
        if args.save_model:
            from ciss_vae.imputer import CISSVAEImputer

            # The estimator trains through run_cissvae too, and keeps what imputing new rows needs.
            est = CISSVAEImputer(verbose=args.verbose, **common, **settings).fit(data, clusters=labels)
            imputed = est.fit_output_
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
            est.save(args.save_model)
            print(f"model saved to {args.save_model}/ (CISSVAEImputer.save)")
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
                "binary_output", "clip_to_observed")


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


def _impute_saved(path, data, labels, args):
    """Impute ``data`` with a model saved by ``--save-model`` (no training).

    The folder holds a :class:`~ciss_vae.imputer.CISSVAEImputer`; its
    ``transform`` assigns new rows to clusters by the imputer's own rule, and a
    ``--cluster-column`` is only carried through.
    """
    import numpy as np
    import pandas as pd

    from ciss_vae.imputer import CISSVAEImputer

    if not os.path.isdir(path):
        raise CLIError(f"--model {path!r}: expected the folder written by `ciss-vae impute --save-model`")
    try:
        est = CISSVAEImputer.load(path)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise CLIError(f"--model {path!r}: cannot load it: {_one_line(exc)}") from exc
    if args.device:
        est.device = args.device
    imputed = est.transform(data)
    if not isinstance(imputed, pd.DataFrame):
        imputed = pd.DataFrame(np.asarray(imputed), columns=data.columns, index=data.index)
    return imputed, labels
