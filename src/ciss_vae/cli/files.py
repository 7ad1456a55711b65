"""Reading and writing the command line's tables (CSV, TSV, Parquet), and its one-line errors."""

from __future__ import annotations

import os

PROG = "ciss-vae"


_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class CLIError(Exception):
    """A failure reported as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _format(path: str, what: str) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _READERS:
        raise CLIError(f"{what} {path!r}: unknown extension {ext or '(none)'!r}; use .csv, .tsv or .parquet", 2)
    return _READERS[ext]


def read_table(path):
    """A CSV, TSV or Parquet file (by extension) as a DataFrame; one-line errors.

    Text reads as labels, whole numbers as (nullable) integers, so a column comes
    back from ``impute`` in the form it went in.
    """
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
            # nullable dtypes, so an integer column with gaps stays integer (Int64); floats stay float64
            df = pd.read_csv(path, sep="," if kind == "csv" else "\t", dtype_backend="numpy_nullable")
    except ImportError as exc:
        raise CLIError(f"reading Parquet needs pyarrow: pip install ciss-vae[parquet] ({exc})") from exc
    except (ValueError, OSError) as exc:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise CLIError(f"cannot read {path!r} as {kind.upper()}: {_one_line(exc)}") from exc
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise CLIError(f"input {path!r} has no {'columns' if df.shape[1] == 0 else 'rows'}")
    if kind != "parquet":
        df = df.astype({c: "float64" for c, t in df.dtypes.items() if isinstance(t, pd.Float64Dtype)})
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
