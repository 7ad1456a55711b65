"""Figures of a CISS-VAE run: the network, its training, its imputations, its clusters.

* :func:`plot_vae_architecture`: the network as a schematic;
* :func:`plot_training_history`: loss and validation error across the initial
  phase and every refit loop, with the selected model marked;
* :func:`plot_imputed_distributions`: imputed versus observed values, per column;
* :func:`plot_missingness_by_cluster`: the fraction missing per column and cluster.

Each returns a :class:`matplotlib.figure.Figure` (``plot_vae_architecture`` with
``return_fig=True``) and saves it to ``save_path`` (PNG, SVG, ... by extension).

:func:`plot_vae_architecture` draws a :class:`ciss_vae.model.CISSVAE` left to
right: the input, the encoder's hidden layers, the latent layer (mu and
log sigma^2), the decoder's hidden layers and the output. A shared layer is one
tall box labelled with its width; a per-cluster ("unshared") layer is a stack of
K smaller boxes, one per cluster. For many clusters only the first few boxes,
an ellipsis and the last box are drawn, so the figure stays readable (and
cheap) whatever K is.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import same_color
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

__all__ = ["plot_vae_architecture", "plot_training_history", "plot_imputed_distributions",
           "plot_missingness_by_cluster"]

# Above this many clusters a per-cluster stack shows C0..C{_HEAD-1}, an ellipsis and C{K-1}.
_MAX_FULL_STACK = 8
_HEAD = 3

# Layout, in data units.
_BOX_W = 1.2  # width of a column of boxes
_STEP = 2.0  # distance between the left edges of consecutive columns
_H = 6.0  # height of a shared box, and of a whole per-cluster stack
_SLOT_FILL = 0.8  # fraction of a stack slot that its box fills
_HEADER_GAP = 0.2  # from the top of the boxes to the header text above a column
_NOTE_GAP = 0.25  # from the bottom of a stack to its "K = n" note
_ARROW_GAP = 0.05  # between a box and the end of an arrow
_FRAME_PAD_X = 0.3  # from the outer columns of a section to its dashed frame
_FRAME_PAD_TOP = 0.9  # from the top of the boxes to the top of a frame
_FRAME_PAD_BOTTOM = 0.35  # from the bottom of the boxes to the bottom of a frame
_FRAME_PAD_BOTTOM_NOTE = 0.85  # the same when "K = n" notes are drawn
_SECTION_GAP = 0.15  # from the top of a frame to its "Encoder" / "Decoder" label
_MARGIN_X = 0.5  # left of the first column and right of the last one
_MARGIN_BOTTOM = 0.3  # below the frames
_MARGIN_TOP = 0.9  # above the frames

# Line widths (points), arrow head size and font scales relative to ``fontsize_layer``.
_SHARED_EDGE_W = 1.2
_CLUSTER_EDGE_W = 1.0
_ARROW_W = 1.0
_ARROW_HEAD = 12
_FRAME_W = 1.5
_ELLIPSIS_FONT_SCALE = 1.5
_NOTE_FONT_SCALE = 0.85

_LATENT_LABEL = "$\\mu$, $\\log\\sigma^2$"
_SECTIONS = ("Encoder", "Decoder")

class _Column(NamedTuple):
    """One stage of the schematic, drawn as a shared box or a per-cluster stack."""

    shared: bool
    color: object
    text: str  # written on a shared box (unused for a stack)
    header: str  # above the column ("" for none)
    section: str | None  # "Encoder", "Decoder" or None


def _slots(num_clusters: int) -> list[int | None]:
    """Cluster indices to draw in a per-cluster stack, ``None`` marking the ellipsis."""
    if num_clusters <= _MAX_FULL_STACK:
        return list(range(num_clusters))
    return list(range(_HEAD)) + [None, num_clusters - 1]


def _is_interactive_backend() -> bool:
    """Whether the active matplotlib backend shows windows (so ``plt.show()`` makes sense)."""
    backend = str(matplotlib.get_backend()).lower()
    if backend.startswith("module://"):
        # Third-party backends (e.g. Jupyter's inline backend) display on show().
        return True
    try:  # matplotlib >= 3.9
        from matplotlib.backends import BackendFilter, backend_registry

        non_interactive = backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
    except ImportError:  # matplotlib 3.7 / 3.8
        from matplotlib import rcsetup

        non_interactive = rcsetup.non_interactive_bk
    return backend not in {name.lower() for name in non_interactive}


def _save(fig, save_path):
    """Save ``fig`` to ``save_path`` (format from the extension, tight bounding box) unless it is None."""
    if save_path is not None:
        fig.savefig(os.fspath(save_path), bbox_inches="tight")
    return fig


def _hidden_columns(widths, orders, section, color_shared, color_unshared) -> list[_Column]:
    """The hidden layers of the encoder or decoder: a labelled box if shared, else a stack headed by its width."""
    columns = []
    for width, order in zip(widths, orders):
        shared = order == "shared"
        color = color_shared if shared else color_unshared
        columns.append(_Column(shared, color, str(width), "" if shared else str(width), section))
    return columns


def _layout_columns(model, color_shared, color_unshared, color_latent, color_input, color_output) -> list[_Column]:
    """The columns of ``model`` from left to right: input, encoder, latent, decoder, output."""
    hidden = [int(h) for h in model.hidden_dims]
    columns = [_Column(True, color_input, f"Input\n{model.input_dim}", "", None)]
    columns += _hidden_columns(hidden, model.layer_order_enc, "Encoder", color_shared, color_unshared)
    if model.latent_shared:
        columns.append(_Column(True, color_latent, f"{_LATENT_LABEL}\n{model.latent_dim}", "Latent", None))
    else:
        columns.append(_Column(False, color_latent, "", f"Latent\n{_LATENT_LABEL}\n{model.latent_dim}", None))
    columns += _hidden_columns(hidden[::-1], model.layer_order_dec, "Decoder", color_shared, color_unshared)
    if model.output_shared:
        columns.append(_Column(True, color_output, f"Output\n{model.input_dim}", "", None))
    else:
        columns.append(_Column(False, color_output, "", f"Output\n{model.input_dim}", None))
    return columns


def _draw_shared_box(ax, x0, color, text, fontsize) -> list[float]:
    """One full-height box with ``text`` in its middle; returns the y of its connection point."""
    ax.add_patch(
        Rectangle((x0, -_H / 2), _BOX_W, _H, facecolor=color, edgecolor="black", linewidth=_SHARED_EDGE_W)
    )
    ax.text(x0 + _BOX_W / 2, 0.0, text, ha="center", va="center", fontsize=fontsize)
    return [0.0]


def _draw_cluster_stack(ax, x0, color, slots, num_clusters, fontsize) -> list[float]:
    """One box per cluster slot (an ellipsis for ``None``), with a ``K = n`` note when clusters are elided.

    Returns the y of each box's connection point, top to bottom.
    """
    xc = x0 + _BOX_W / 2
    slot_h = _H / len(slots)
    box_h = slot_h * _SLOT_FILL
    ys = []
    for j, cluster in enumerate(slots):
        yc = _H / 2 - (j + 0.5) * slot_h
        if cluster is None:
            ax.text(xc, yc, "\u22ee", ha="center", va="center", fontsize=fontsize * _ELLIPSIS_FONT_SCALE)
            continue
        ax.add_patch(
            Rectangle((x0, yc - box_h / 2), _BOX_W, box_h, facecolor=color, edgecolor="black",
                      linewidth=_CLUSTER_EDGE_W)
        )
        ax.text(xc, yc, f"C{cluster}", ha="center", va="center", fontsize=fontsize)
        ys.append(yc)
    if len(slots) < num_clusters:
        ax.text(xc, -_H / 2 - _NOTE_GAP, f"K = {num_clusters}", ha="center", va="top",
                fontsize=fontsize * _NOTE_FONT_SCALE)
    return ys


def _draw_columns(ax, columns, slots, num_clusters, fontsize) -> list[tuple[float, float, list[float]]]:
    """Draw every column with its header; returns ``(x_left, x_right, connection ys)`` per column."""
    anchors = []
    for i, col in enumerate(columns):
        x0 = i * _STEP
        if col.shared:
            ys = _draw_shared_box(ax, x0, col.color, col.text, fontsize)
        else:
            ys = _draw_cluster_stack(ax, x0, col.color, slots, num_clusters, fontsize)
        if col.header:
            ax.text(x0 + _BOX_W / 2, _H / 2 + _HEADER_GAP, col.header, ha="center", va="bottom", fontsize=fontsize)
        anchors.append((x0, x0 + _BOX_W, ys))
    return anchors


def _arrow_pairs(a_ys, b_ys) -> list[tuple[float, float]]:
    """Connections between two columns: matching clusters between two stacks, else a fan from/to a box."""
    if len(a_ys) == len(b_ys):
        return list(zip(a_ys, b_ys))
    if len(a_ys) == 1:
        return [(a_ys[0], y) for y in b_ys]
    return [(y, b_ys[0]) for y in a_ys]


def _draw_arrows(ax, anchors) -> None:
    """Arrows from each column to the next."""
    for (_, a_right, a_ys), (b_left, _, b_ys) in zip(anchors, anchors[1:]):
        for ya, yb in _arrow_pairs(a_ys, b_ys):
            ax.add_patch(
                FancyArrowPatch(
                    (a_right + _ARROW_GAP, ya), (b_left - _ARROW_GAP, yb), arrowstyle="-|>",
                    mutation_scale=_ARROW_HEAD, color="dimgray", linewidth=_ARROW_W, shrinkA=0, shrinkB=0,
                )
            )


def _draw_section_frames(ax, columns, has_note, fontsize) -> tuple[float, float]:
    """Dashed frames around the encoder and decoder hidden layers; returns the frames' (bottom, top)."""
    frame_bottom = -_H / 2 - (_FRAME_PAD_BOTTOM_NOTE if has_note else _FRAME_PAD_BOTTOM)
    frame_top = _H / 2 + _FRAME_PAD_TOP
    for section in _SECTIONS:
        idx = [i for i, col in enumerate(columns) if col.section == section]
        x0 = idx[0] * _STEP - _FRAME_PAD_X
        x1 = idx[-1] * _STEP + _BOX_W + _FRAME_PAD_X
        ax.add_patch(
            Rectangle((x0, frame_bottom), x1 - x0, frame_top - frame_bottom, fill=False, edgecolor="gray",
                      linestyle="--", linewidth=_FRAME_W)
        )
        ax.text((x0 + x1) / 2, frame_top + _SECTION_GAP, section, ha="center", va="bottom", fontsize=fontsize,
                fontweight="bold")
    return frame_bottom, frame_top


def _add_legend(ax, color_shared, color_unshared, color_latent, color_input, color_output, fontsize) -> None:
    """One legend entry per box colour (input and output share one when their colours agree), below the axes."""
    handles = [
        Patch(facecolor=color_shared, edgecolor="black", label="Shared layer"),
        Patch(facecolor=color_unshared, edgecolor="black", label="Per-cluster (unshared) layer"),
        Patch(facecolor=color_latent, edgecolor="black", label="Latent layer"),
    ]
    if same_color(color_input, color_output):
        handles.append(Patch(facecolor=color_input, edgecolor="black", label="Input / output"))
    else:
        handles.append(Patch(facecolor=color_input, edgecolor="black", label="Input"))
        handles.append(Patch(facecolor=color_output, edgecolor="black", label="Output"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              frameon=False, fontsize=fontsize)


def plot_vae_architecture(
    model,
    title=None,
    color_shared="skyblue",
    color_unshared="lightcoral",
    color_latent="gold",
    color_input="lightgreen",
    color_output="lightgreen",
    figsize=(16, 8),
    return_fig=False,
    fontsize_layer=12,
    fontsize_section=14,
    fontsize_title=16,
    save_path=None,
):
    """Draw the layer structure of a CISS-VAE as a left-to-right schematic.

    Parameters
    ----------
    model : ciss_vae.model.CISSVAE
        The network to draw. Its ``input_dim``, ``hidden_dims``, ``latent_dim``,
        ``num_clusters``, ``layer_order_enc``, ``layer_order_dec``,
        ``latent_shared`` and ``output_shared`` are read; nothing is run.
    title : str, optional
        Figure title. Defaults to ``"CISS-VAE architecture"``.
    color_shared : color, default "skyblue"
        Fill of shared hidden layers.
    color_unshared : color, default "lightcoral"
        Fill of the per-cluster boxes of unshared hidden layers.
    color_latent : color, default "gold"
        Fill of the latent box(es).
    color_input : color, default "lightgreen"
        Fill of the input box.
    color_output : color, default "lightgreen"
        Fill of the output box(es).
    figsize : tuple of float, default (16, 8)
        Figure size in inches.
    return_fig : bool, default False
        Return the :class:`matplotlib.figure.Figure` instead of showing it.
    fontsize_layer : float, default 12
        Font size of the labels on and above the boxes.
    fontsize_section : float, default 14
        Font size of the "Encoder" and "Decoder" labels.
    fontsize_title : float, default 16
        Font size of the title.
    save_path : str or os.PathLike, optional
        Where to save the figure; the format follows the extension (``.png``,
        ``.svg``, ...). Saved with ``bbox_inches="tight"``.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure when ``return_fig`` is true, else ``None``. With
        ``return_fig=False`` the figure is shown through ``plt.show()`` when an
        interactive backend is active, and left open (not shown) otherwise.

    Notes
    -----
    The encoder's hidden widths are ``model.hidden_dims``; the decoder's are the
    same widths reversed. A per-cluster layer with more than 8 clusters is drawn
    as ``C0``, ``C1``, ``C2``, an ellipsis and ``C{K-1}``, with a ``K = n`` note
    beneath it.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from ciss_vae.model import CISSVAE
    >>> from ciss_vae.plots import plot_vae_architecture
    >>> model = CISSVAE(input_dim=20, hidden_dims=[32, 16], layer_order_enc=["unshared", "shared"],
    ...                 layer_order_dec=["shared", "unshared"], latent_shared=False, latent_dim=4,
    ...                 output_shared=True, num_clusters=3)
    >>> fig = plot_vae_architecture(model, title="A small CISS-VAE", return_fig=True)
    >>> fig.axes[0].get_title()
    'A small CISS-VAE'
    >>> import matplotlib.pyplot as plt
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt

    num_clusters = int(model.num_clusters)
    slots = _slots(num_clusters)
    columns = _layout_columns(model, color_shared, color_unshared, color_latent, color_input, color_output)

    fig, ax = plt.subplots(figsize=figsize)
    ax.set_axis_off()
    anchors = _draw_columns(ax, columns, slots, num_clusters, fontsize_layer)
    _draw_arrows(ax, anchors)
    frame_bottom, frame_top = _draw_section_frames(ax, columns, len(slots) < num_clusters, fontsize_section)
    x_max = (len(columns) - 1) * _STEP + _BOX_W
    ax.set_xlim(-_MARGIN_X, x_max + _MARGIN_X)
    ax.set_ylim(frame_bottom - _MARGIN_BOTTOM, frame_top + _MARGIN_TOP)
    _add_legend(ax, color_shared, color_unshared, color_latent, color_input, color_output, fontsize_layer)
    ax.set_title("CISS-VAE architecture" if title is None else title, fontsize=fontsize_title, fontweight="bold")
    fig.tight_layout()

    _save(fig, save_path)
    if return_fig:
        return fig
    if _is_interactive_backend():
        plt.show()
    return None


# ---------------------------------------------------------------------- run figures
_PHASE_COLORS = {"initial": "tab:blue", "refit": "tab:orange"}  # training phase -> colour
_LOOP_SHADE = "0.92"  # grey behind every other refit loop
_HALF_EPOCH = 0.5  # a loop's shading reaches this far beyond its first and last epochs
_PANEL_SIZE = (3.2, 2.6)  # default inches per histogram panel
# Default heatmap size in inches: the larger of a minimum and a part per column
# (width) or cluster (height) plus a fixed part.
_HEATMAP_MIN_W = 6.0
_HEATMAP_W_PER_COLUMN = 0.35
_HEATMAP_W_EXTRA = 2.5
_HEATMAP_MIN_H = 3.0
_HEATMAP_H_PER_CLUSTER = 0.45
_HEATMAP_H_EXTRA = 1.8
_ANNOTATE_MAX_CELLS = 300  # largest heatmap annotated when ``annotate`` is None
_WHITE_TEXT_BELOW = 0.5  # fractions below this are written in white


def _history_frame(history):
    """``history`` with a fresh RangeIndex, after checking it is a non-empty training history."""
    need = {"phase", "loop", "epoch", "train_loss", "imputation_error"}
    if not isinstance(history, pd.DataFrame) or not need <= set(history.columns):
        raise ValueError(f"`history` must be a training history DataFrame with columns {sorted(need)}")
    if history.empty:
        raise ValueError("`history` is empty: nothing to plot")
    return history.reset_index(drop=True)


def _plot_train_loss(ax, epochs):
    """The training loss of every epoch, one colour per phase."""
    for phase, color in _PHASE_COLORS.items():
        part = epochs[epochs["phase"] == phase]
        if len(part):
            ax.plot(part["epoch"], part["train_loss"], ".", ms=2, color=color, label=f"{phase} phase")
    ax.set_ylabel("training loss")


def _plot_validation(ax, val):
    """Every validation of the initial phase, and the last validation of each refit loop."""
    init = val[(val["phase"] == "initial")]
    if len(init):
        ax.plot(init["epoch"], init["imputation_error"], "o-", ms=3, color=_PHASE_COLORS["initial"],
                label="initial phase (every validation)")
    refit_val = val[val["phase"] == "refit"]
    # One point per loop end: the last validation row of each refit loop (loop 0 = the initial model).
    ends = refit_val.groupby("loop", sort=True).tail(1) if len(refit_val) else refit_val
    if len(ends):
        ax.plot(ends["epoch"], ends["imputation_error"], "s-", ms=4, color=_PHASE_COLORS["refit"],
                label="end of each refit loop")


def _shade_refit_loops(axes, h):
    """Shade the epochs of every odd refit loop on each of ``axes``."""
    loops = sorted(int(x) for x in h.loc[h["phase"] == "refit", "loop"].unique() if x > 0)
    for loop in loops:
        span = h[(h["phase"] == "refit") & (h["loop"] == loop)]["epoch"]
        if len(span) and loop % 2 == 1:
            for ax in axes:
                ax.axvspan(span.min() - _HALF_EPOCH, span.max() + _HALF_EPOCH, color=_LOOP_SHADE, zorder=0)


def _mark_selected(ax_val, axes, h):
    """A star at the selected model's validation error on ``ax_val``, a vertical line at its epoch on ``axes``."""
    sel = h[h["selected"].eq(True)] if "selected" in h.columns else h.iloc[:0]
    if len(sel):
        row = sel.iloc[-1]
        label = "selected: initial model" if int(row["loop"]) == 0 else f"selected: refit loop {int(row['loop'])}"
        ax_val.plot([row["epoch"]], [row["imputation_error"]], "*", ms=16, color="tab:red", zorder=5, label=label)
        for ax in axes:
            ax.axvline(row["epoch"], color="tab:red", ls="--", lw=1)


def _log_scale_if_positive(ax, values):
    """Use a logarithmic y axis on ``ax`` when ``values`` is non-empty and its finite values are positive."""
    v = np.asarray(values, dtype=float)
    if len(v) and np.all(v[np.isfinite(v)] > 0):
        ax.set_yscale("log")


def plot_training_history(history, title=None, figsize=(10, 6), log_scale=True, save_path=None):
    """Training loss and validation error across the initial phase and every refit loop.

    Parameters
    ----------
    history : pandas.DataFrame
        ``model.training_history_`` (or ``run_cissvae(..., return_history=True)``):
        columns ``phase``, ``loop``, ``epoch``, ``train_loss``,
        ``imputation_error``, ``selected``.
    title : str, optional
        Defaults to ``"Training history"``.
    figsize : tuple of float, default (10, 6)
    log_scale : bool, default True
        Logarithmic y axes (when every plotted value is positive).
    save_path : str or os.PathLike, optional
        Where to save the figure (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes sharing the epoch axis: the training loss per epoch (top) and
        the validation error (bottom), refit loops shaded alternately, the
        selected model marked with a star and a vertical line.
    """
    import matplotlib.pyplot as plt

    h = _history_frame(history)
    fig, (ax_loss, ax_val) = plt.subplots(2, 1, figsize=figsize, sharex=True)
    epochs = h[h["train_loss"].notna()]
    _plot_train_loss(ax_loss, epochs)
    val = h[h["imputation_error"].notna()]
    _plot_validation(ax_val, val)
    _shade_refit_loops((ax_loss, ax_val), h)
    _mark_selected(ax_val, (ax_loss, ax_val), h)
    if log_scale:
        _log_scale_if_positive(ax_loss, epochs["train_loss"])
        _log_scale_if_positive(ax_val, val["imputation_error"])
    ax_val.set_ylabel("validation error")
    ax_val.set_xlabel("epoch")
    for ax in (ax_loss, ax_val):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=9)
        ax.grid(True, alpha=0.3)
    ax_loss.set_title("Training history" if title is None else title)
    fig.tight_layout()
    return _save(fig, save_path)


def _distribution_columns(original, imputed, columns, max_columns):
    """The columns to draw, after checking the two tables agree (see :func:`plot_imputed_distributions`)."""
    if not isinstance(original, pd.DataFrame) or not isinstance(imputed, pd.DataFrame):
        raise TypeError("`original` and `imputed` must be DataFrames")
    if original.shape != imputed.shape or list(original.columns) != list(imputed.columns):
        raise ValueError(f"`original` {original.shape} and `imputed` {imputed.shape} must have the same shape "
                         "and columns")
    if columns is None:
        miss = original.isna().sum()
        drawable = [c for c in original.columns if miss[c] > 0 and (pd.api.types.is_numeric_dtype(imputed[c])
                                                                    or is_label_column(imputed[c]))]
        columns = sorted(drawable, key=lambda c: -miss[c])[:max_columns]
        columns = [c for c in original.columns if c in set(columns)]
    else:
        unknown = [c for c in columns if c not in original.columns]
        if unknown:
            raise ValueError(f"unknown columns: {unknown!r}")
        columns = list(columns)
    if not columns:
        raise ValueError("no column to draw: no numeric or label column has missing cells")
    return columns


def is_label_column(col: pd.Series) -> bool:
    """A column of labels (category, text or bool), drawn as level frequencies rather than a histogram."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    return (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)) and \
        pd.to_numeric(col.dropna(), errors="coerce").isna().any()


def level_frequencies(original: pd.Series, imputed: pd.Series) -> pd.DataFrame:
    """Share of each level among the observed cells and among the imputed cells of a label column."""
    was_missing = original.isna().to_numpy()
    obs = original[~was_missing].astype(object).value_counts(normalize=True)
    imp = imputed[was_missing].astype(object).value_counts(normalize=True)
    levels = list(original.cat.categories) if isinstance(original.dtype, pd.CategoricalDtype) else \
        sorted(set(obs.index) | set(imp.index), key=str)
    return pd.DataFrame({"observed": obs.reindex(levels, fill_value=0.0),
                         "imputed": imp.reindex(levels, fill_value=0.0)})


def _draw_levels(ax, col, original, imputed, color_observed, color_imputed):
    """Side-by-side bars: share of each level among the observed and among the imputed cells."""
    freq = level_frequencies(original[col], imputed[col])
    x = np.arange(len(freq))
    n_obs, n_imp = int(original[col].notna().sum()), int(original[col].isna().sum())
    ax.bar(x - 0.2, freq["observed"], width=0.4, color=color_observed, alpha=0.7, label=f"observed ({n_obs})")
    ax.bar(x + 0.2, freq["imputed"], width=0.4, color=color_imputed, alpha=0.7, label=f"imputed ({n_imp})")
    ax.set_xticks(x, [str(v) for v in freq.index], fontsize=7, rotation=45 if len(freq) > 6 else 0)
    ax.set_ylabel("share", fontsize=8)
    ax.set_title(str(col), fontsize=10)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7)


def _draw_distribution(ax, col, original, imputed, bins, color_observed, color_imputed):
    """Densities of the observed and of the imputed cells of column ``col``, over shared bins."""
    was_missing = original[col].isna().to_numpy()
    obs = pd.to_numeric(original[col][~was_missing], errors="coerce").dropna().to_numpy(dtype=float)
    imp = pd.to_numeric(imputed[col][was_missing], errors="coerce").dropna().to_numpy(dtype=float)
    both = np.concatenate([obs, imp])
    if len(both) and np.ptp(both) > 0:
        edges = np.histogram_bin_edges(both, bins=bins)
    else:
        edges = bins
    if len(obs):
        ax.hist(obs, bins=edges, density=True, alpha=0.5, color=color_observed, label=f"observed ({len(obs)})")
    if len(imp):
        ax.hist(imp, bins=edges, density=True, alpha=0.5, color=color_imputed, label=f"imputed ({len(imp)})")
    ax.set_title(str(col), fontsize=10)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7)


def plot_imputed_distributions(original, imputed, columns=None, bins=30, ncols=4, max_columns=16, figsize=None,
                               title=None, color_observed="tab:blue", color_imputed="tab:orange", save_path=None):
    """Imputed versus observed values, one panel per column.

    A numeric column gets the histograms of its observed and imputed values; a
    label column (category, text, bool) side-by-side bars of each level's share
    among its observed and among its imputed cells.

    Parameters
    ----------
    original : pandas.DataFrame
        The table with missing cells.
    imputed : pandas.DataFrame
        The imputed table (same index and columns).
    columns : list of str, optional
        Columns to draw; default: the numeric and label columns that had missing
        cells, at most ``max_columns`` of them (those with the most missing first).
    bins : int, default 30
    ncols : int, default 4
        Panels per row.
    max_columns : int, default 16
    figsize : tuple of float, optional
        Default: 3.2 x 2.6 inches per panel.
    title : str, optional
        Defaults to ``"Observed and imputed values"``.
    color_observed, color_imputed : color
    save_path : str or os.PathLike, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes per column, each with the density of the observed cells and
        of the imputed cells over shared bins (level shares for a label column).
    """
    import matplotlib.pyplot as plt

    columns = _distribution_columns(original, imputed, columns, max_columns)
    n = len(columns)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    panel_w, panel_h = _PANEL_SIZE
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (panel_w * ncols, panel_h * nrows), squeeze=False)
    for ax, col in zip(axes.flat, columns):
        if is_label_column(imputed[col]):
            _draw_levels(ax, col, original, imputed, color_observed, color_imputed)
        else:
            _draw_distribution(ax, col, original, imputed, bins, color_observed, color_imputed)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.suptitle("Observed and imputed values" if title is None else title)
    fig.tight_layout()
    return _save(fig, save_path)


def _missing_by_cluster(data, clusters, columns):
    """Fraction missing per cluster (rows) and column, and the row count of each cluster."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data, dtype=float))
    if columns is not None:
        frame = frame[list(columns)]
    labels = np.asarray(clusters).reshape(-1)
    if len(labels) != len(frame):
        raise ValueError(f"`clusters` has {len(labels)} labels, but the data has {len(frame)} rows")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError("`data` is empty: nothing to plot")
    return frame.isna().groupby(labels).mean(), pd.Series(labels).value_counts()


def _annotate_fractions(ax, values):
    """Write each fraction in its heatmap cell, white on the low (dark) end of the scale."""
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if values[i, j] < _WHITE_TEXT_BELOW else "black")


def plot_missingness_by_cluster(data, clusters, columns=None, title=None, figsize=None, cmap="viridis",
                                annotate=None, save_path=None):
    """Heatmap of the fraction of missing cells per column (x) and cluster (y).

    Parameters
    ----------
    data : pandas.DataFrame or array-like of shape (n_rows, n_columns)
        The table with missing cells (NaN/None).
    clusters : array-like of shape (n_rows,)
        The cluster label of each row.
    columns : list, optional
        Columns to draw (default: all).
    title : str, optional
        Defaults to ``"Fraction missing by cluster"``.
    figsize : tuple of float, optional
        Default grows with the number of columns and clusters.
    cmap : str or Colormap, default "viridis"
    annotate : bool, optional
        Write each fraction in its cell; default when the grid is small.
    save_path : str or os.PathLike, optional

    Returns
    -------
    matplotlib.figure.Figure
        The heatmap, with the row count of each cluster in its label and a
        colour bar from 0 to 1.
    """
    import matplotlib.pyplot as plt

    miss, sizes = _missing_by_cluster(data, clusters, columns)
    fig_w = max(_HEATMAP_MIN_W, _HEATMAP_W_PER_COLUMN * miss.shape[1] + _HEATMAP_W_EXTRA)
    fig_h = max(_HEATMAP_MIN_H, _HEATMAP_H_PER_CLUSTER * miss.shape[0] + _HEATMAP_H_EXTRA)
    fig, ax = plt.subplots(figsize=figsize or (fig_w, fig_h))
    im = ax.imshow(miss.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0,
                   interpolation="nearest")
    ax.set_xticks(range(miss.shape[1]))
    ax.set_xticklabels([str(c) for c in miss.columns], rotation=90, fontsize=8)
    ax.set_yticks(range(miss.shape[0]))
    ax.set_yticklabels([f"{k} (n={sizes[k]})" for k in miss.index], fontsize=9)
    ax.set_xlabel("column")
    ax.set_ylabel("cluster")
    if annotate is None:
        annotate = miss.size <= _ANNOTATE_MAX_CELLS
    if annotate:
        _annotate_fractions(ax, miss.to_numpy(dtype=float))
    fig.colorbar(im, ax=ax, label="fraction missing")
    ax.set_title("Fraction missing by cluster" if title is None else title)
    fig.tight_layout()
    return _save(fig, save_path)
