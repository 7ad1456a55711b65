"""One self-contained HTML page describing an imputation run.

:func:`write_report` writes the run's settings, the clusters (sizes and a
missingness heatmap), the training-history plot, the imputed-versus-observed
distributions and a table of what was imputed per column. Every image is a PNG
embedded as a base64 ``data:`` URI, so the page needs no other file and no
network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os

import numpy as np
import pandas as pd

__all__ = ["write_report", "render_report", "figure_to_data_uri"]


def figure_to_data_uri(fig, dpi=100) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _table(rows, header) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if not np.isfinite(v) else f"{float(v):.4g}"
    return str(v)


def imputed_summary(original: pd.DataFrame, imputed: pd.DataFrame) -> pd.DataFrame:
    """Per column: cells missing, cells imputed, observed mean/std, imputed mean/std (NaN for labels)."""
    from ciss_vae.plots import is_label_column

    rows = []
    for col in original.columns:
        was = original[col].isna()
        now = imputed[col].notna()
        labels = is_label_column(imputed[col])
        obs = pd.Series(dtype=float) if labels else pd.to_numeric(original[col][~was], errors="coerce")
        imp = pd.Series(dtype=float) if labels else pd.to_numeric(imputed[col][was & now], errors="coerce")
        rows.append(dict(column=col, missing=int(was.sum()), imputed=int((was & now).sum()),
                         observed_mean=obs.mean(), observed_std=obs.std(), imputed_mean=imp.mean(),
                         imputed_std=imp.std()))
    return pd.DataFrame(rows)


def render_report(original, imputed, *, settings=None, clusters=None, history=None, summary=None,
                  title="CISS-VAE imputation report", max_columns=16) -> str:
    """The report as an HTML string; see :func:`write_report`."""
    from ciss_vae.plots import (
        is_label_column,
        level_frequencies,
        plot_imputed_distributions,
        plot_missingness_by_cluster,
        plot_training_history,
    )

    parts = [f"<h1>{_esc(title)}</h1>",
             f"<p class='meta'>Generated {_esc(_dt.datetime.now().isoformat(timespec='seconds'))}; "
             f"{original.shape[0]} rows &times; {original.shape[1]} columns, "
             f"{int(original.isna().to_numpy().sum())} missing cells, "
             f"{int((original.isna() & imputed.notna()).to_numpy().sum())} imputed.</p>"]

    parts.append("<h2>Settings</h2>")
    rows = [(k, _fmt(v)) for k, v in (settings or {}).items()]
    parts.append(_table(rows, ("setting", "value")) if rows else "<p>No settings recorded.</p>")
    if summary:
        parts.append("<h3>Training</h3>")
        parts.append(_table([(k, _fmt(v)) for k, v in summary.items()], ("result", "value")))

    parts.append("<h2>Clusters</h2>")
    if clusters is not None:
        labels = np.asarray(clusters).reshape(-1)
        values, counts = np.unique(labels, return_counts=True)
        parts.append(_table([(v, c, f"{c / len(labels):.1%}") for v, c in zip(values, counts)],
                            ("cluster", "rows", "share")))
        fig = plot_missingness_by_cluster(original, labels)
        parts.append(f"<figure><img alt='missingness by cluster' src='{figure_to_data_uri(fig)}'>"
                     "<figcaption>Fraction of missing cells per column and cluster.</figcaption></figure>")
    else:
        parts.append("<p>No cluster labels.</p>")

    parts.append("<h2>Training history</h2>")
    if history is not None and len(history):
        fig = plot_training_history(history)
        parts.append(f"<figure><img alt='training history' src='{figure_to_data_uri(fig)}'>"
                     "<figcaption>Training loss and validation error; the star marks the selected model."
                     "</figcaption></figure>")
    else:
        parts.append("<p>No training history (the model was not trained in this run).</p>")

    parts.append("<h2>Observed and imputed distributions</h2>")
    try:
        fig = plot_imputed_distributions(original, imputed, max_columns=max_columns)
    except ValueError as exc:
        parts.append(f"<p>{_esc(exc)}</p>")
    else:
        parts.append(f"<figure><img alt='imputed distributions' src='{figure_to_data_uri(fig)}'>"
                     "<figcaption>Density of observed and of imputed values per column.</figcaption></figure>")

    parts.append("<h2>What was imputed</h2>")
    table = imputed_summary(original, imputed)
    parts.append(_table([[_fmt(v) for v in r] for r in table.itertuples(index=False)], list(table.columns)))
    labelled = [c for c in original.columns if original[c].isna().any() and is_label_column(imputed[c])]
    if labelled:
        parts.append("<h3>Label columns: share of each level</h3>")
        rows = [(col, level, f"{f.observed:.1%}", f"{f.imputed:.1%}") for col in labelled
                for level, f in level_frequencies(original[col], imputed[col]).iterrows()]
        parts.append(_table(rows, ("column", "level", "observed", "imputed")))

    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
             "text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}"
             "img{max-width:100%}figure{margin:1em 0}.meta{color:#666}")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(path, original, imputed, *, settings=None, clusters=None, history=None, summary=None,
                 title="CISS-VAE imputation report", max_columns=16) -> str:
    """Write the HTML report of an imputation to ``path``; returns the path.

    Parameters
    ----------
    path : str or os.PathLike
    original, imputed : pandas.DataFrame
        The table before and after imputation.
    settings : dict, optional
        The run's settings (shown as a table).
    clusters : array-like, optional
        Cluster label of each row (sizes table and missingness heatmap).
    history : pandas.DataFrame, optional
        ``model.training_history_``.
    summary : dict, optional
        ``model.fit_summary_``.
    title : str
    max_columns : int, default 16
        Most columns in the distribution plot.
    """
    text = render_report(original, imputed, settings=settings, clusters=clusters, history=history,
                         summary=summary, title=title, max_columns=max_columns)
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)
