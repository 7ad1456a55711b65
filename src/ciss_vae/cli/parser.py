"""The argument parser of every subcommand."""

from __future__ import annotations

import argparse

from ciss_vae import settings as S
from ciss_vae.cli.commands import _cluster, _demo, _evaluate, _tune
from ciss_vae.cli.files import PROG
from ciss_vae.cli.impute import _impute
from ciss_vae.evaluation import OPTIONAL_METHODS, default_methods


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


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


_COLUMNS = ("columns_ignore", "clusters", "binary_feature_mask", "categorical_column_map", "n_clusters",
            "k_neighbors", "leiden_resolution", "leiden_objective", "val_proportion")
_RUN = ("seed", "device", "verbose", "show_progress")
_SPACE_FIXES = {"epochs": "num_epochs", "epochs_per_loop": "epochs_per_loop", "max_loops": "refit_loops"}


def _impute_parser(sub):
    imp = sub.add_parser("impute", help="impute a CSV, TSV or Parquet file",
                         description="Impute the missing cells of a CSV, TSV or Parquet file (format by extension). "
                                     "Every model and training option defaults to run_cissvae's default.")
    imp.add_argument("input", metavar="INPUT", help="table to impute (.csv, .tsv or .parquet)")
    imp.add_argument("--output", "-o", required=True, help="where to write the imputed table (.csv, .tsv, .parquet)")
    groups = {"data": imp.add_argument_group("columns"), "clustering": imp.add_argument_group("clustering"),
              "model": imp.add_argument_group("model"), "training": imp.add_argument_group("training"),
              "output": imp.add_argument_group("output"), "run": imp.add_argument_group("run")}
    for s in S.of(S.CLI):
        S.add_flags(groups[s.group], [s.name])
    groups["training"].add_argument("--no-early-stop", action="store_true",
                                    help="train every epoch of every phase (--n-iter-no-change none)")
    io_ = imp.add_argument_group("model files and report")
    io_.add_argument("--save-model", metavar="PATH",
                     help="save the trained model as a folder (CISSVAEImputer.save), for --model or "
                          "CISSVAEImputer.load")
    io_.add_argument("--model", metavar="PATH",
                     help="impute with a model saved by --save-model instead of training (the model and training "
                          "options are then ignored)")
    io_.add_argument("--report", metavar="HTML", help="write a self-contained HTML report of the run")
    imp.set_defaults(func=_impute)


def _tune_parser(sub):
    tune = sub.add_parser("tune", help="tune the hyperparameters with Optuna (one worker of a shared study)",
                          description="Search hyperparameters with Optuna. With --storage and --study, the same "
                                      "command started on several machines works on one shared study.")
    tune.add_argument("input", metavar="INPUT", help="table to tune on (.csv, .tsv or .parquet)")
    S.add_flags(tune, _COLUMNS + _RUN)
    tune.add_argument("--search-space", metavar="JSON", help="a SearchSpace saved with SearchSpace.save "
                                                             "(default: the published search space)")
    for name, space_name in _SPACE_FIXES.items():
        S.add_flags(tune, [name], suffix=f"; fixes the search space's {space_name}")
    tune.add_argument("--n-trials", type=int, default=20, metavar="N", help="trials this worker runs (default 20)")
    tune.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna storage shared by the workers: sqlite:///tune.db, postgresql://..., or a "
                           "journal file path ending in .log (default: in memory, this process only)")
    tune.add_argument("--study", default="vae_autotune", metavar="NAME", help="study name (default vae_autotune)")
    tune.add_argument("--output", "-o", metavar="PATH", help="write the best trial's imputed table here")
    tune.add_argument("--results", metavar="PATH", help="write the table of all trials here (.csv, .tsv, .parquet)")
    tune.add_argument("--save-model", metavar="PATH",
                      help="save the best trial's model as a folder (CISSVAEImputer.save), for `impute --model`")
    tune.set_defaults(func=_tune)


def _cluster_parser(sub):
    clu = sub.add_parser("cluster", help="cluster the rows of a file by their missingness pattern",
                         description="Write the cluster label of each row, from its missingness pattern.")
    clu.add_argument("input", metavar="INPUT", help="table with missing cells (.csv, .tsv or .parquet)")
    clu.add_argument("--output", "-o", required=True, help="where to write the labels (.csv, .tsv or .parquet)")
    S.add_flags(clu, ("columns_ignore", "n_clusters", "k_neighbors", "leiden_resolution", "leiden_objective",
                      "seed", "verbose"))
    clu.add_argument("--column", default="cluster", help="name of the label column (default 'cluster')")
    clu.add_argument("--keep-columns", action="store_true", help="write the input's columns too, labels last")
    clu.add_argument("--plot", metavar="PNG", help="also save the missingness-by-cluster heatmap (.png or .svg)")
    clu.set_defaults(func=_cluster)


def _evaluate_parser(sub):
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
                    help=f"methods to compare: {', '.join(default_methods(optional=True))} (default: the first "
                         f"five; {' and '.join(OPTIONAL_METHODS)} need optional software)")
    ev.add_argument("--metric", default="std_rmse", choices=("std_rmse", "rmse", "mae", "wasserstein", "accuracy"),
                    help="metric of the printed table and the plot (default std_rmse)")
    S.add_flags(ev, ("epochs", "epochs_per_loop", "max_loops", "hidden_dims", "device"), suffix=" (CISS-VAE)")
    ev.add_argument("--output", "-o", metavar="PATH", help="write the full comparison table here")
    ev.add_argument("--plot", metavar="PNG", help="save the comparison plot (.png or .svg)")
    ev.set_defaults(func=_evaluate)


def _demo_parser(sub):
    demo = sub.add_parser("demo", help="impute the bundled example cohort with default settings and score it",
                          description="Impute the bundled example cohort end to end and score it against the "
                                      "ground truth.")
    demo.add_argument("--output", "-o", default=None, help="write the imputed table to this CSV file")
    S.add_flags(demo, _RUN + ("defaults",))
    demo.set_defaults(func=_demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``ciss-vae`` parser; the settings' flags come from :mod:`ciss_vae.settings`."""
    parser = _Parser(prog=PROG, description="Impute missing values in tables with CISS-VAE.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_impute_parser, _tune_parser, _cluster_parser, _evaluate_parser, _demo_parser):
        add(sub)
    return parser
