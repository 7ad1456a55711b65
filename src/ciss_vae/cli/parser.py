"""The argument parser of every subcommand."""

from __future__ import annotations

import argparse

from ciss_vae.cli.commands import _cluster, _demo, _evaluate, _tune
from ciss_vae.cli.files import PROG
from ciss_vae.cli.impute import _impute


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


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
    train.add_argument("--clip-to-observed", action="store_true", default=None,
                       help="keep each continuous imputation within its column's observed range")
    io_ = imp.add_argument_group("model files and report")
    io_.add_argument("--save-model", metavar="PATH",
                     help="save the trained model as a folder (CISSVAEImputer.save), for --model or "
                          "CISSVAEImputer.load")
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
