"""``ciss-vae impute``: train and impute a file, or impute it with a saved model."""

from __future__ import annotations

import os
import time

from ciss_vae.cli.files import CLIError, _format, _one_line, write_table
from ciss_vae.cli.options import read_input
from ciss_vae.progress import report_to_stderr


def _impute(args) -> int:
    start = time.perf_counter()
    _format(args.output, "output")
    df, data, settings, labels, label_pos = read_input(args)
    print(f"read {args.input}: {df.shape[0]} rows x {df.shape[1]} columns, "
          f"{int(data.isna().to_numpy().sum())} missing cells")
    history = summary = None
    clusters = labels
    if args.model:
        imputed = _impute_saved(args.model, data, args)
        print(f"imputed with the saved model {args.model} (no training)")
    else:
        from ciss_vae.imputer import CISSVAEImputer

        with report_to_stderr(True):  # what is decided, and progress lines when stderr is not a terminal
            est = CISSVAEImputer(**settings).fit(data, clusters=labels)
        imputed, history, summary = est.fit_output_, est.training_history_, est.fit_summary_
        if labels is None:
            clusters = est.clusterer_.labels_
        print(f"clusters: {summary['n_clusters']}; epochs: {summary['epochs']} ({summary['refit_loops']} refit loops, "
              f"stopped: {summary['stop_reason']}); validation error {summary['validation_error']:.4g}")
        if args.save_model:
            est.save(args.save_model)
            print(f"model saved to {args.save_model}/ (CISSVAEImputer.save)")
    print(f"cells imputed: {int((data.isna() & imputed.notna()).to_numpy().sum())}")
    out = imputed
    if label_pos is not None:
        out = imputed.copy()
        out.insert(label_pos, args.clusters, df[args.clusters].to_numpy())
    write_table(out, args.output)
    print(f"imputed table written to {args.output}")
    if args.report:
        from ciss_vae.report import write_report

        report_settings = dict(input=args.input, output=args.output, model=args.model or "trained in this run",
                               cluster_column=args.clusters, **settings)
        write_report(args.report, data, imputed, settings=report_settings, clusters=clusters, history=history,
                     summary=summary, title=f"CISS-VAE imputation of {os.path.basename(args.input)}")
        print(f"report written to {args.report}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return 0


def _impute_saved(path, data, args):
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
    return imputed
