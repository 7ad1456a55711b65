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

import logging
import sys

from ciss_vae.cli.files import PROG, CLIError, _one_line, read_table, write_table
from ciss_vae.cli.parser import build_parser
from ciss_vae.evaluation import standardised_rmse

__all__ = ["CLIError", "build_parser", "main", "read_table", "standardised_rmse", "write_table"]


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
