"""Schematic drawings of a CISS-VAE network.

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

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.colors import same_color
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

__all__ = ["plot_vae_architecture"]

# Above this many clusters a per-cluster stack shows C0..C{_HEAD-1}, an ellipsis and C{K-1}.
_MAX_FULL_STACK = 8
_HEAD = 3

# Layout, in data units.
_BOX_W = 1.2  # width of a column of boxes
_STEP = 2.0  # distance between the left edges of consecutive columns
_H = 6.0  # height of a shared box, and of a whole per-cluster stack
_SLOT_FILL = 0.8  # fraction of a stack slot that its box fills


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
    num_clusters = int(model.num_clusters)
    hidden = [int(h) for h in model.hidden_dims]
    slots = _slots(num_clusters)
    latent_label = "$\\mu$, $\\log\\sigma^2$"

    # One column per stage: (kind, shared, color, box text, header above, section).
    columns = [("input", True, color_input, f"Input\n{model.input_dim}", "", None)]
    for width, order in zip(hidden, model.layer_order_enc):
        shared = order == "shared"
        color = color_shared if shared else color_unshared
        columns.append(("hidden", shared, color, str(width), "" if shared else str(width), "Encoder"))
    if model.latent_shared:
        columns.append(("latent", True, color_latent, f"{latent_label}\n{model.latent_dim}", "Latent", None))
    else:
        columns.append(("latent", False, color_latent, "", f"Latent\n{latent_label}\n{model.latent_dim}", None))
    for width, order in zip(hidden[::-1], model.layer_order_dec):
        shared = order == "shared"
        color = color_shared if shared else color_unshared
        columns.append(("hidden", shared, color, str(width), "" if shared else str(width), "Decoder"))
    if model.output_shared:
        columns.append(("output", True, color_output, f"Output\n{model.input_dim}", "", None))
    else:
        columns.append(("output", False, color_output, "", f"Output\n{model.input_dim}", None))

    fig, ax = plt.subplots(figsize=figsize)
    ax.set_axis_off()

    top, bottom = _H / 2, -_H / 2
    slot_h = _H / len(slots)
    box_h = slot_h * _SLOT_FILL
    anchors = []  # per column: (x_left, x_right, [y of each connection point])
    for i, (kind, shared, color, text, header, _section) in enumerate(columns):
        x0 = i * _STEP
        x1 = x0 + _BOX_W
        xc = x0 + _BOX_W / 2
        if shared:
            ax.add_patch(Rectangle((x0, bottom), _BOX_W, _H, facecolor=color, edgecolor="black", linewidth=1.2))
            ax.text(xc, 0.0, text, ha="center", va="center", fontsize=fontsize_layer)
            ys = [0.0]
        else:
            ys = []
            for j, cluster in enumerate(slots):
                yc = top - (j + 0.5) * slot_h
                if cluster is None:
                    ax.text(xc, yc, "\u22ee", ha="center", va="center", fontsize=fontsize_layer * 1.5)
                    continue
                ax.add_patch(
                    Rectangle((x0, yc - box_h / 2), _BOX_W, box_h, facecolor=color, edgecolor="black", linewidth=1.0)
                )
                ax.text(xc, yc, f"C{cluster}", ha="center", va="center", fontsize=fontsize_layer)
                ys.append(yc)
            if len(slots) < num_clusters:
                ax.text(xc, bottom - 0.25, f"K = {num_clusters}", ha="center", va="top", fontsize=fontsize_layer * 0.85)
        if header:
            ax.text(xc, top + 0.2, header, ha="center", va="bottom", fontsize=fontsize_layer)
        anchors.append((x0, x1, ys))

    # Connections: matching clusters between two stacks, a fan between a box and a stack.
    for (_, a_right, a_ys), (b_left, _, b_ys) in zip(anchors, anchors[1:]):
        if len(a_ys) == len(b_ys):
            pairs = list(zip(a_ys, b_ys))
        elif len(a_ys) == 1:
            pairs = [(a_ys[0], y) for y in b_ys]
        else:
            pairs = [(y, b_ys[0]) for y in a_ys]
        for ya, yb in pairs:
            ax.add_patch(
                FancyArrowPatch(
                    (a_right + 0.05, ya), (b_left - 0.05, yb), arrowstyle="-|>", mutation_scale=12,
                    color="dimgray", linewidth=1.0, shrinkA=0, shrinkB=0,
                )
            )

    # Dashed frames around the encoder and decoder hidden layers.
    has_note = len(slots) < num_clusters
    frame_bottom = bottom - (0.85 if has_note else 0.35)
    frame_top = top + 0.9
    for section in ("Encoder", "Decoder"):
        idx = [i for i, col in enumerate(columns) if col[5] == section]
        x0 = idx[0] * _STEP - 0.3
        x1 = idx[-1] * _STEP + _BOX_W + 0.3
        ax.add_patch(
            Rectangle((x0, frame_bottom), x1 - x0, frame_top - frame_bottom, fill=False, edgecolor="gray",
                      linestyle="--", linewidth=1.5)
        )
        ax.text((x0 + x1) / 2, frame_top + 0.15, section, ha="center", va="bottom", fontsize=fontsize_section,
                fontweight="bold")

    x_max = (len(columns) - 1) * _STEP + _BOX_W
    ax.set_xlim(-0.5, x_max + 0.5)
    ax.set_ylim(frame_bottom - 0.3, frame_top + 0.9)

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
              frameon=False, fontsize=fontsize_layer)

    ax.set_title("CISS-VAE architecture" if title is None else title, fontsize=fontsize_title, fontweight="bold")
    fig.tight_layout()

    if save_path is not None:
        fig.savefig(os.fspath(save_path), bbox_inches="tight")
    if return_fig:
        return fig
    if _is_interactive_backend():
        plt.show()
    return None
