"""Command-line values as settings: what the user gave, converted to what the Python faces take."""

from __future__ import annotations

from ciss_vae import settings as S
from ciss_vae.cli.files import CLIError


def names(values):
    """Repeated or comma-separated column names as one list (None when none were given)."""
    if not values:
        return None
    out = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def groups(values):
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


_CONVERT = {"names": names, "groups": groups, "int_or_none": lambda v: None if v == "none" else v}


def given(args, face: str = S.CLI) -> dict:
    """The settings the user set on the command line (unset ones keep the declared defaults)."""
    out = {}
    for s in S.of(face):
        value = getattr(args, s.name, None)
        if value is None or s.name == "clusters" or (s.cli.get("kind") == "store_true" and not value):
            continue
        out[s.name] = _CONVERT.get(s.cli.get("kind"), lambda v: v)(value)
    if getattr(args, "no_early_stop", False):
        out["n_iter_no_change"] = None
    for s in S.of(face):  # a default of the command line's own (bootstrap_models=0) applies when not given
        if s.name not in out and s.name in vars(args) and s.default_in(face) != s.default:
            out[s.name] = s.default_in(face)
    return out


def value(args, name: str):
    """The user's value of setting ``name``, or its declared default."""
    return given(args).get(name, S.BY_NAME[name].default)


def check_columns(df, cols, option):
    if cols:
        unknown = [c for c in cols if c not in df.columns]
        if unknown:
            raise CLIError(f"{option}: no column {unknown[0]!r} in the input (columns: "
                           f"{', '.join(map(str, list(df.columns)[:12]))}{', ...' if df.shape[1] > 12 else ''})", 2)


def split_clusters(df, column):
    """(table without the label column, labels or None, the column's position)."""
    if column is None:
        return df, None, None
    check_columns(df, [column], "--cluster-column")
    labels = df[column]
    if labels.isna().any():
        raise CLIError(f"--cluster-column {column!r} has missing labels")
    return df.drop(columns=[column]), labels.to_numpy(), list(df.columns).index(column)


def read_input(args):
    """The input table, the settings given, the cluster labels (or None) and the label column's position."""
    from ciss_vae.cli.files import read_table

    df = read_table(args.input)
    settings = given(args)
    check_columns(df, settings.get("columns_ignore"), "--ignore")
    check_columns(df, settings.get("binary_feature_mask"), "--binary")
    for cols in (settings.get("categorical_column_map") or {}).values():
        check_columns(df, cols, "--categorical")
    data, labels, label_pos = split_clusters(df, getattr(args, "clusters", None))
    return df, data, settings, labels, label_pos
