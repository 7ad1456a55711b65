"""``ciss-vae tune``, ``cluster``, ``evaluate`` and ``demo``."""

from __future__ import annotations

import os
import sys
import time

from ciss_vae.cli.files import CLIError, _format, read_table, write_table
from ciss_vae.cli.impute import _categorical, _check_columns, _names, _split_clusters


def standardised_rmse(imputed, complete, missing) -> float:
    """RMSE over the cells missing in ``missing``, each column's error divided by its std in ``complete``."""
    import numpy as np

    mask = missing.isna().to_numpy() & imputed.notna().to_numpy()
    std = complete.std(ddof=0).to_numpy()
    err = (imputed.to_numpy(dtype=float) - complete.to_numpy(dtype=float)) / std
    return float(np.sqrt(np.mean(err[mask] ** 2)))


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
