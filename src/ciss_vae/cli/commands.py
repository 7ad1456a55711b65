"""``ciss-vae tune``, ``cluster``, ``evaluate`` and ``demo``."""

from __future__ import annotations

import os
import sys
import time

from ciss_vae.cli.files import CLIError, _format, read_table, write_table
from ciss_vae.cli.options import check_columns, given, names, read_input, value


def _clusterer(args, settings):
    try:
        from ciss_vae.clustering import MissingnessClusterer
    except ImportError as exc:
        raise CLIError(f"clustering needs extra packages: pip install ciss-vae[clustering] ({exc})") from exc
    from ciss_vae.pipeline import CLUSTERER_OPTIONS

    opts = {k: settings[k] for k in CLUSTERER_OPTIONS if k in settings}
    return MissingnessClusterer(settings.get("n_clusters"), cols_ignore=settings.get("columns_ignore"),
                                seed=value(args, "seed"), **opts)


def _tune(args) -> int:
    from ciss_vae import settings as S
    from ciss_vae.dataset import ClusterDataset
    from ciss_vae.imputer import CISSVAEImputer
    from ciss_vae.progress import reporting
    from ciss_vae.progress import progress_enabled
    from ciss_vae.search_space import SearchSpace
    from ciss_vae.tuning import RUN_DEFAULTS, results_frame, tune

    start = time.perf_counter()
    df, data, settings, labels, _ = read_input(args)
    clusterer = None
    if labels is None:
        clusterer = _clusterer(args, settings).fit(data)
        labels = clusterer.labels_
    space = SearchSpace.load(args.search_space) if args.search_space else SearchSpace()
    fixed = {space_name: settings[name] for name, space_name in (("epochs", "num_epochs"),
                                                                 ("epochs_per_loop", "epochs_per_loop"),
                                                                 ("max_loops", "refit_loops")) if name in settings}
    if fixed:
        space = SearchSpace.from_dict({**space.to_dict(), **fixed})
    seed = value(args, "seed")
    dataset = ClusterDataset(data, labels, val_proportion=settings.get("val_proportion", 0.1),
                             columns_ignore=settings.get("columns_ignore"), val_seed=seed,
                             binary_feature_mask=settings.get("binary_feature_mask"),
                             categorical_column_map=settings.get("categorical_column_map"))
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns, {dataset.n_clusters} clusters")
    if args.storage:
        print(f"study {args.study!r} on {_redact(args.storage)}: this worker runs {args.n_trials} trial(s)")
    verbose = bool(settings.get("verbose"))
    with reporting(verbose, verbose):
        result, study = tune(
            space, dataset, n_trials=args.n_trials, study_name=args.study, device_preference=args.device or "cuda",
            show_progress=progress_enabled(settings.get("show_progress")),
            storage=args.storage, load_if_exists=True, seed=seed, constant_layer_size=False,
            evaluate_all_orders=False, max_exhaustive_orders=100, n_jobs=1, pruner="median", sampler=None,
            timeout=args.timeout, heartbeat_interval=60, grace_period=None, max_retry=3,
            tol=RUN_DEFAULTS["tol"], validate_every=RUN_DEFAULTS["validate_every"])
    best = study.best_trial
    results = results_frame(study)
    print(f"trials in the study: {len(results)}; best trial {best.number}: imputation error {best.value:.4g}")
    print("best parameters: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    if args.results:
        write_table(results.astype({c: str for c in results.columns if results[c].dtype == object}), args.results)
        print(f"trial table written to {args.results}")
    if args.output:
        write_table(result.imputed, args.output)
        print(f"imputed table of the best trial written to {args.output}")
    if args.save_model:
        kwargs = {k: v for k, v in best.user_attrs["run_cissvae_kwargs"].items() if S.BY_NAME[k].takes(S.IMPUTER)}
        est = CISSVAEImputer(**kwargs)
        est._check_input(data, reset=True)
        result.clusterer = clusterer
        est._set_fitted(result).save(args.save_model)
        print(f"best model saved to {args.save_model}/ (CISSVAEImputer.save; `ciss-vae impute --model` reads it)")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


def _redact(url: str) -> str:
    """A storage URL without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _cluster(args) -> int:
    import numpy as np
    import pandas as pd

    from ciss_vae.progress import reporting

    df = read_table(args.input)
    _format(args.output, "output")
    settings = given(args)
    ignore = settings.get("columns_ignore")
    check_columns(df, ignore, "--ignore")
    with reporting(bool(settings.get("verbose")), bool(settings.get("verbose"))):
        model = _clusterer(args, settings).fit(df)
    labels, sil = model.labels_, model.silhouette_
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
    from ciss_vae.evaluation import compare

    start = time.perf_counter()
    df = read_table(args.input)
    if df.isna().to_numpy().any():
        raise CLIError(f"evaluate needs a complete file; {args.input!r} has {int(df.isna().to_numpy().sum())} "
                       "missing cells")
    mechanisms = names(args.mechanism) or ["MCAR", "MAR", "MNAR"]
    kwargs = {k: v for k, v in given(args).items() if k in ("epochs", "epochs_per_loop", "max_loops", "hidden_dims",
                                                            "layer_order_enc", "layer_order_dec", "device")}
    name = os.path.splitext(os.path.basename(args.input))[0]
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns; mechanisms {', '.join(mechanisms)}, "
          f"rates {', '.join(f'{r:g}' for r in args.rates)}, seeds {', '.join(map(str, args.seeds))}")
    result = compare({name: df}, mechanisms=mechanisms, rates=args.rates, seeds=args.seeds,
                     methods=names(args.methods), ciss_vae_kwargs=kwargs or None)
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
    from ciss_vae import settings as S
    from ciss_vae.data import load_example_dataset
    from ciss_vae.evaluation import standardised_rmse
    from ciss_vae.pipeline import fit_table

    df_missing, df_complete, _ = load_example_dataset()
    start = time.perf_counter()
    result = fit_table(df_missing, dict(S.defaults(S.RUN), **given(args)))
    wall = time.perf_counter() - start
    imputed, s = result.imputed, result.summary
    n_imputed = int((df_missing.isna() & imputed.notna()).to_numpy().sum())
    print(f"example cohort: {df_missing.shape[0]} rows x {df_missing.shape[1]} columns, "
          f"{int(df_missing.isna().to_numpy().sum())} missing cells")
    if s["decided"]:
        print(s["decided"])
    print(f"clusters: {s['n_clusters']}; epochs: {s['epochs']} ({s['refit_loops']} refit loops, "
          f"stopped: {s['stop_reason']})")
    print(f"cells imputed: {n_imputed}")
    print(f"standardised RMSE on the imputed cells: {standardised_rmse(imputed, df_complete, df_missing):.4f}")
    print(f"wall time: {wall:.1f} s")
    if args.output:
        imputed.to_csv(args.output)
        print(f"imputed table written to {args.output}")
    return 0
