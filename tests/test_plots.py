"""Tests of the architecture schematic in ciss_vae.plots."""

import matplotlib

matplotlib.use("Agg")

import doctest
import time

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import ciss_vae.plots as plots
from ciss_vae.model import CISSVAE
from ciss_vae.plots import plot_vae_architecture

COLORS = dict(
    color_shared="#1f77b4",
    color_unshared="#d62728",
    color_latent="#bcbd22",
    color_input="#2ca02c",
    color_output="#9467bd",
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def make_model(num_clusters=3, enc=("u", "u", "u"), dec=("s", "s", "s"), latent_shared=False, output_shared=False):
    return CISSVAE(
        input_dim=12,
        hidden_dims=[150, 120, 60],
        layer_order_enc=list(enc),
        layer_order_dec=list(dec),
        latent_shared=latent_shared,
        latent_dim=5,
        output_shared=output_shared,
        num_clusters=num_clusters,
    )


def boxes_of(fig, color):
    """Rectangles on the figure's axes filled with ``color``."""
    want = to_rgba(color)
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_facecolor() == pytest.approx(want)]


def texts_of(fig):
    ax = fig.axes[0]
    return [t.get_text() for t in ax.texts] + [ax.get_title()]


def test_returns_figure():
    fig = plot_vae_architecture(make_model(), return_fig=True)
    assert isinstance(fig, Figure)
    assert not fig.axes[0].axison


def test_box_counts_match_architecture():
    k = 3
    fig = plot_vae_architecture(make_model(num_clusters=k), return_fig=True, **COLORS)
    assert len(boxes_of(fig, COLORS["color_unshared"])) == 3 * k  # three per-cluster encoder layers
    assert len(boxes_of(fig, COLORS["color_shared"])) == 3  # three shared decoder layers
    assert len(boxes_of(fig, COLORS["color_latent"])) == k  # per-cluster latent
    assert len(boxes_of(fig, COLORS["color_output"])) == k  # per-cluster output
    assert len(boxes_of(fig, COLORS["color_input"])) == 1
    labels = texts_of(fig)
    for c in range(k):
        assert labels.count(f"C{c}") == 3 + 1 + 1  # three encoder layers, latent and output


def test_mixed_orders_and_shared_latent_output():
    k = 4
    model = make_model(num_clusters=k, enc=("u", "s", "u"), dec=("s", "u", "s"), latent_shared=True,
                       output_shared=True)
    fig = plot_vae_architecture(model, return_fig=True, **COLORS)
    assert len(boxes_of(fig, COLORS["color_unshared"])) == 3 * k
    assert len(boxes_of(fig, COLORS["color_shared"])) == 3
    assert len(boxes_of(fig, COLORS["color_latent"])) == 1
    assert len(boxes_of(fig, COLORS["color_output"])) == 1
    labels = texts_of(fig)
    assert "Encoder" in labels and "Decoder" in labels
    # Every hidden width appears: shared ones inside their box, unshared ones above their stack.
    for width in ("150", "120", "60"):
        assert labels.count(width) == 2


def test_default_colors_are_used():
    fig = plot_vae_architecture(make_model(num_clusters=2), return_fig=True)
    assert len(boxes_of(fig, "lightcoral")) == 3 * 2
    assert len(boxes_of(fig, "skyblue")) == 3
    assert len(boxes_of(fig, "gold")) == 2
    assert len(boxes_of(fig, "lightgreen")) == 1 + 2  # input and output share a default colour


def test_title():
    fig = plot_vae_architecture(make_model(), title="My network", return_fig=True)
    assert fig.axes[0].get_title() == "My network"
    fig = plot_vae_architecture(make_model(), return_fig=True)
    assert fig.axes[0].get_title() == "CISS-VAE architecture"


def test_many_clusters_stay_bounded():
    start = time.perf_counter()
    fig = plot_vae_architecture(make_model(num_clusters=1000), return_fig=True, **COLORS)
    fig.canvas.draw()
    elapsed = time.perf_counter() - start
    assert len(fig.axes[0].patches) < 200
    assert elapsed < 20
    labels = texts_of(fig)
    assert "C0" in labels and "C999" in labels and "C500" not in labels
    assert "K = 1000" in labels
    # First three clusters plus the last one, per per-cluster column.
    assert len(boxes_of(fig, COLORS["color_unshared"])) == 3 * 4


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_save_path(tmp_path, suffix, magic):
    path = tmp_path / f"arch{suffix}"
    result = plot_vae_architecture(make_model(), save_path=path)
    assert result is None
    data = path.read_bytes()
    assert len(data) > 0
    assert magic in data[:2000]


def test_return_fig_false_returns_none():
    assert plot_vae_architecture(make_model(), return_fig=False) is None


def test_does_not_print(capsys):
    plot_vae_architecture(make_model(), return_fig=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_docstring_examples():
    result = doctest.testmod(plots, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_show_only_with_interactive_backend(monkeypatch):
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    assert not plots._is_interactive_backend()  # Agg
    plot_vae_architecture(make_model())
    assert calls == []
    monkeypatch.setattr(plots, "_is_interactive_backend", lambda: True)
    assert plot_vae_architecture(make_model()) is None
    assert calls == [1]
    plot_vae_architecture(make_model(), return_fig=True)
    assert calls == [1]


# ---------------------------------------------------------------------- run figures
import numpy as np  # noqa: E402

from ciss_vae.plots import plot_imputed_distributions, plot_missingness_by_cluster, plot_training_history  # noqa: E402


@pytest.fixture(scope="module")
def run_result():
    from conftest import FAST, make_table

    from ciss_vae.pipeline import run_cissvae

    data, _, clusters = make_table(n=120)
    kw = dict(FAST, epochs=6, epochs_per_loop=4, max_loops=3, validate_every=2, n_iter_no_change=None,
              show_progress=False)
    imputed, model, history = run_cissvae(data, clusters=clusters, return_history=True, **kw)
    return data, imputed, clusters, history


def test_training_history_marks_selected_model(run_result, tmp_path):
    _, _, _, history = run_result
    fig = plot_training_history(history, title="History", save_path=tmp_path / "h.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    ax_loss, ax_val = fig.axes
    assert ax_loss.get_title() == "History"
    labels = ax_val.get_legend_handles_labels()[1]
    assert any(label.startswith("selected:") for label in labels)
    assert "end of each refit loop" in labels and "initial phase (every validation)" in labels
    # Every epoch's training loss is drawn (initial and refit phases).
    n_points = sum(len(line.get_xdata()) for line in ax_loss.get_lines() if line.get_linestyle() == "None")
    assert n_points == history["train_loss"].notna().sum()
    sel = history[history["selected"]].iloc[-1]
    star = [line for line in ax_val.get_lines() if line.get_marker() == "*"][0]
    assert star.get_xdata()[0] == sel["epoch"] and star.get_ydata()[0] == pytest.approx(sel["imputation_error"])


def test_training_history_rejects_bad_input():
    import pandas as pd

    with pytest.raises(ValueError):
        plot_training_history(pd.DataFrame({"a": [1]}))


def test_imputed_distributions(run_result, tmp_path):
    data, imputed, _, _ = run_result
    fig = plot_imputed_distributions(data, imputed, save_path=tmp_path / "d.svg")
    assert b"<svg" in (tmp_path / "d.svg").read_bytes()[:2000]
    with_missing = [c for c in data.columns if data[c].isna().any()]
    drawn = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in drawn] == with_missing
    for ax in drawn:
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[0].startswith("observed") and legend[1].startswith("imputed")
    fig = plot_imputed_distributions(data, imputed, columns=["x1"])
    assert [ax.get_title() for ax in fig.axes] == ["x1"]
    with pytest.raises(ValueError):
        plot_imputed_distributions(data, imputed, columns=["nope"])


def test_missingness_by_cluster(run_result, tmp_path):
    data, _, clusters, _ = run_result
    fig = plot_missingness_by_cluster(data, clusters, save_path=tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    grid = ax.get_images()[0].get_array()
    expected = data.isna().groupby(clusters).mean().to_numpy()
    assert grid.shape == expected.shape == (3, data.shape[1])
    assert np.allclose(np.asarray(grid), expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(data.columns)
    with pytest.raises(ValueError):
        plot_missingness_by_cluster(data, clusters[:10])
