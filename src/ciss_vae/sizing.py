"""Settings left unset, filled in from the table (``defaults="auto"``) or with the published values.

A setting declared with a ``published`` value in :mod:`ciss_vae.settings` has
the default None: "decide from the table". :func:`resolve` decides once the
rows are read and clustered, from what is observed only (the number of rows,
the cluster sizes and the silhouette of the clustering of the missingness
patterns), and says what it decided and why. ``defaults="published"`` puts the
published implementation's values there instead, so its runs can be repeated.

The rules, each measured in ``benchmarks/defaults_ablation.py`` (see
``docs/benchmarks.md``):

* **Per-cluster layers only for clear clusters.** The published network gives
  every cluster its own encoder layers. That pays when the missingness patterns
  form well separated groups of enough rows (the example cohort: 4 clusters of
  ~2,000 rows, silhouette 0.63), and costs accuracy when they do not (clusters
  of 87-482 rows at silhouette 0.07-0.36 on the scikit-learn tables, where a
  pooled network was better in most cases). Rule: private encoder, latent and
  output layers when the silhouette is at least ``CLEAR_SILHOUETTE`` (the usual
  reading of a silhouette of 0.5 or more: "a reasonable structure") and every
  cluster has at least ``MIN_CLUSTER_ROWS`` rows; otherwise every layer is
  shared (one pooled network; the clusters still shape the hold-out).
* **Hidden input cells when the network is pooled.** With every layer
  shared, ``INPUT_DROPOUT`` of the input cells of each training batch are
  hidden (set as a missing cell is) while the loss still scores them, so the
  network learns to predict a cell from the others instead of copying it
  through its bottleneck (a denoising autoencoder). On the accuracy suite (6
  tables x 4 mechanisms x 3 seeds, all pooled) it lowered the error in 50 of
  72 tables (published cohort MAR 0.127 -> 0.115, MNAR 0.085 -> 0.076; worse
  by more than 0.5 % only on breast_cancer, about 2 %) and on a simulated
  registry of 10,000 rows (0.549 -> 0.534); with the per-cluster layers of the
  example cohort's own missingness it cost 2-8 % (3 seeds), so per-cluster
  networks keep 0.
* **A network as wide as the table.** The published widths (150-120-60, a
  latent code of 15) were chosen for the 30-column example cohort. A table of
  ``d`` model columns gets the hidden widths scaled by ``d / FULL_WIDTH_COLUMNS``
  and the latent size by ``d / FULL_LATENT_COLUMNS`` when those are below 1 (at
  least ``MIN_WIDTH`` units per layer and ``MIN_LATENT`` latent dimensions);
  wider tables keep the published network. An oversized network copies its
  inputs through instead of learning how the columns relate: on a
  three-column regression table (x 40 % missing at random, 60 repetitions)
  the published network's multiple imputations put the slope of y on x at
  0.35 for a true 0.5 (95 % intervals covered it 48 % of the time); with
  30-24-12 and a latent code of 2, at 0.495 (97 % coverage in 30 repetitions),
  while wine and diabetes (10 and 13 columns) moved by +0.7 % in
  standardised RMSE over 24 cells (3 seeds; within the seeds' spread).
* **Several fits averaged on small tables.** A table of at most
  ``ENSEMBLE_MAX_ROWS`` rows is fitted ``ENSEMBLE_FITS`` times, each fit with
  its own seed and its own hold-out of validation cells, and the fits' outputs
  are averaged (bagging: with few rows the fitted network varies most from
  seed to seed and hold-out to hold-out, and a fit is cheap). Larger tables get
  one fit.
* **A normal blended into the continuous columns** (:mod:`ciss_vae.normal`):
  a multivariate normal fitted by EM (per cluster with per-cluster layers, one
  for all rows with a pooled network), averaged into each continuous column's
  imputations with the network's weight chosen on that column's validation
  cells. On seed 0 of the suite it lowered the error in 17 of 20 cells (up to
  20 %: breast_cancer, diabetes, the cohorts) and raised it on digits under
  MAR and latent-group MNAR (2-3 %). Tables of more than
  ``NORMAL_MAX_COLUMNS`` model columns are not blended: the E-step's cost
  grows with the cube of a row's missing cells.
* **A budget of optimiser steps instead of epochs.** The published batch of
  4,000 rows is the whole table for most tables, one step per epoch. Batches of
  about a sixteenth of the table (``MIN_BATCH`` .. ``MAX_BATCH`` rows),
  ``INITIAL_STEPS`` steps of initial training and ``LOOP_STEPS`` per refit loop,
  at most ``MAX_LOOPS`` loops, at a learning rate of ``LEARNING_RATE``; early
  stopping on the validation error ends a phase sooner. A table fitted once
  (over ``ENSEMBLE_MAX_ROWS`` rows) trains ``ONE_FIT_INITIAL_STEPS`` steps and
  at most ``ONE_FIT_MAX_LOOPS`` loops: with the normal blended in, the longer
  schedule bought 0.3-2 % on the 8,000-row cohorts for twice the time.
* **Epochs of at most ``EPOCH_ROWS`` rows.** Beyond 16,384 rows (16 batches
  of the largest size), an epoch is the next 16,384 rows of a running shuffle
  (``epoch_rows``), so a table of any size trains the same number of steps,
  validates every ``validate_every`` x 16 steps and stops early on the same
  cadence: a million rows do not take 60 times as long to train as 16,384 do,
  they only take longer to validate and impute. A caller who gives ``epochs``
  or ``epochs_per_loop`` counts in passes over the table, and gets them.
"""

from __future__ import annotations

import logging
import math

import numpy as np

logger = logging.getLogger("ciss_vae")

CLEAR_SILHOUETTE = 0.5
MIN_CLUSTER_ROWS = 200
BATCHES_PER_EPOCH = 16
MIN_BATCH = 16
MAX_BATCH = 1024
INITIAL_STEPS = 4000
LOOP_STEPS = 1000
MAX_LOOPS = 5
ONE_FIT_INITIAL_STEPS = 2000
ONE_FIT_MAX_LOOPS = 2
LEARNING_RATE = 0.003
INPUT_DROPOUT = 0.1
PUBLISHED_HIDDEN = (150, 120, 60)
PUBLISHED_LATENT = 15
FULL_WIDTH_COLUMNS = 15
FULL_LATENT_COLUMNS = 30
MIN_WIDTH = 8
MIN_LATENT = 2
EPOCH_ROWS = MAX_BATCH * BATCHES_PER_EPOCH
ENSEMBLE_MAX_ROWS = 4096
ENSEMBLE_FITS = 3
NORMAL_MAX_COLUMNS = 256
MODES = ("auto", "published")


def network_size(n_columns: int) -> dict:
    """Hidden widths and latent size for a table of ``n_columns`` model columns (see the module notes)."""
    wide = min(1.0, n_columns / FULL_WIDTH_COLUMNS)
    deep = min(1.0, n_columns / FULL_LATENT_COLUMNS)
    return dict(hidden_dims=[max(MIN_WIDTH, round(w * wide)) for w in PUBLISHED_HIDDEN],
                latent_dim=max(MIN_LATENT, round(PUBLISHED_LATENT * deep)))


def published_layer_orders(n_layers: int) -> dict:
    """The published network's sharing for ``n_layers`` hidden layers: private encoder, shared decoder."""
    return dict(layer_order_enc=["unshared"] * n_layers, layer_order_dec=["shared"] * n_layers,
                latent_shared=False, output_shared=False)


def pooled_layer_orders(n_layers: int) -> dict:
    """Every layer shared: one network for all clusters."""
    return dict(layer_order_enc=["shared"] * n_layers, layer_order_dec=["shared"] * n_layers,
                latent_shared=True, output_shared=True)


def clear_clusters(cluster_sizes, silhouette) -> bool:
    """Do the clusters earn private layers: several, well separated, each with enough rows?"""
    sizes = np.asarray(cluster_sizes)
    return (len(sizes) > 1 and silhouette is not None and silhouette >= CLEAR_SILHOUETTE
            and int(sizes.min()) >= MIN_CLUSTER_ROWS)


def auto_values(n_rows: int, n_columns: int, n_layers: int, cluster_sizes, silhouette, clusters_given: bool,
                batch_size: int | None = None) -> tuple[dict, dict]:
    """The table-sized value of every sized setting, and per setting a few words on why.

    The step budgets are counted in batches of ``batch_size`` when the caller gave one. Not
    ``input_dropout``: it follows the layer orders in use, given or decided (:func:`input_dropout`).
    """
    net = network_size(n_columns)
    batch = batch_size or int(min(MAX_BATCH, max(MIN_BATCH, n_rows // BATCHES_PER_EPOCH)))
    epoch_rows = EPOCH_ROWS if n_rows > EPOCH_ROWS else None
    per_epoch = math.ceil((epoch_rows or n_rows) / batch)
    fits = ENSEMBLE_FITS if n_rows <= ENSEMBLE_MAX_ROWS else 1
    steps, loops = (INITIAL_STEPS, MAX_LOOPS) if fits > 1 else (ONE_FIT_INITIAL_STEPS, ONE_FIT_MAX_LOOPS)
    values = dict(batch_size=batch, epochs=max(10, math.ceil(steps / per_epoch)),
                  epochs_per_loop=max(5, math.ceil(LOOP_STEPS / per_epoch)), initial_lr=LEARNING_RATE,
                  max_loops=loops, ensemble_size=fits, epoch_rows=epoch_rows,
                  normal_blend=n_columns <= NORMAL_MAX_COLUMNS, **net)
    why = dict(hidden_dims=f"hidden_dims={net['hidden_dims']}, latent_dim={net['latent_dim']} ({n_columns} columns)",
               latent_dim=f"hidden_dims={net['hidden_dims']}, latent_dim={net['latent_dim']} ({n_columns} columns)",
               batch_size=f"batch_size={batch}", epochs=f"epochs={values['epochs']} ({steps} steps)",
               epochs_per_loop=f"epochs_per_loop={values['epochs_per_loop']} ({LOOP_STEPS} steps)",
               initial_lr=f"initial_lr={LEARNING_RATE:g}", max_loops=f"max_loops={loops}",
               normal_blend=(f"normal_blend={n_columns <= NORMAL_MAX_COLUMNS} ({n_columns} columns; at most "
                             f"{NORMAL_MAX_COLUMNS} are blended)"),
               epoch_rows=(f"epoch_rows={EPOCH_ROWS} (an epoch of {per_epoch} steps)" if epoch_rows
                           else "epoch_rows=None (an epoch is a pass)"),
               ensemble_size=(f"ensemble_size={fits} (the mean of {fits} fits on {fits} hold-outs: at most "
                              f"{ENSEMBLE_MAX_ROWS} rows)" if fits > 1
                              else f"ensemble_size=1 (over {ENSEMBLE_MAX_ROWS} rows)"))
    k = len(cluster_sizes)
    if clusters_given and k > 1:
        values.update(published_layer_orders(n_layers))
        sharing = f"{k} given clusters: per-cluster encoder, latent and output layers"
    elif clear_clusters(cluster_sizes, silhouette):
        values.update(published_layer_orders(n_layers))
        sharing = (f"{k} clear clusters (silhouette {silhouette:.2f}, smallest {int(np.min(cluster_sizes))} rows): "
                   "per-cluster encoder, latent and output layers")
    else:
        values.update(pooled_layer_orders(n_layers))
        weak = "one cluster" if k == 1 else (
            f"{k} clusters, silhouette {'n/a' if silhouette is None else f'{silhouette:.2f}'}, smallest "
            f"{int(np.min(cluster_sizes))} rows")
        sharing = f"{weak}: every layer shared"
    why.update(dict.fromkeys(LAYERS, sharing))
    return values, why


def pooled(layers: dict) -> bool:
    """Is every layer of ``layers`` (the four layer settings) shared: one network for all clusters?"""
    from ciss_vae.model import normalize_layer_order

    words = [w for k in ("layer_order_enc", "layer_order_dec")
             for w in normalize_layer_order(layers[k], len(layers[k]), k)]
    return set(words) <= {"shared"} and bool(layers["latent_shared"]) and bool(layers["output_shared"])


def input_dropout(layers: dict) -> float:
    """``INPUT_DROPOUT`` for a pooled network (every layer of ``layers`` shared), else 0 (see the module notes)."""
    return INPUT_DROPOUT if pooled(layers) else 0.0


def published_values(n_layers: int) -> dict:
    """The published implementation's value of every sized setting."""
    return dict(hidden_dims=list(PUBLISHED_HIDDEN), latent_dim=PUBLISHED_LATENT, batch_size=4000, epochs=500,
                epochs_per_loop=None, initial_lr=0.01, max_loops=100, ensemble_size=1, epoch_rows=None,
                input_dropout=0.0, normal_blend=False, **published_layer_orders(n_layers))


SIZED = tuple(published_values(1))
LAYERS = ("layer_order_enc", "layer_order_dec", "latent_shared", "output_shared")


def resolve(s: dict, *, n_rows: int, n_columns: int, cluster_sizes, silhouette=None,
            clusters_given: bool = False) -> tuple[dict, str | None]:
    """``s`` with every sized setting that is None decided (``s["defaults"]`` says how), and what was done.

    Returns the settings and a sentence saying what was decided and why (None
    when nothing was unset); the sentence is also logged.
    In published mode an unset ``epochs_per_loop`` becomes ``epochs``, as published.
    """
    unset = [k for k in SIZED if s[k] is None]
    if not unset:
        return s, None
    n_layers = len(PUBLISHED_HIDDEN if s["hidden_dims"] is None else s["hidden_dims"])
    if s["defaults"] == "published":
        values = published_values(n_layers)
        text = f"published defaults for {', '.join(unset)}"
    else:
        values, why = auto_values(n_rows, n_columns, n_layers, cluster_sizes, silhouette, clusters_given,
                                  s.get("batch_size"))
        values["input_dropout"] = input_dropout({k: values[k] if s[k] is None else s[k] for k in LAYERS})
        why["input_dropout"] = (f"input_dropout={values['input_dropout']:g} "
                                f"({'a pooled network' if values['input_dropout'] else 'per-cluster layers'})")
        if s["epochs"] is not None or s["epochs_per_loop"] is not None:  # the caller counts in passes
            values["epoch_rows"], why["epoch_rows"] = None, "epoch_rows=None (epochs given: an epoch is a pass)"
        text = (f"decided from the table ({n_rows} rows, {n_columns} columns): "
                + "; ".join(dict.fromkeys(why[k] for k in unset)))
    logger.info("%s", text)
    out = dict(s, **{k: values[k] for k in unset})
    if "epochs_per_loop" in unset and out["epochs_per_loop"] is None:
        out["epochs_per_loop"] = out["epochs"]
    return out, text
