"""A table in, an imputed table out: read once, cluster, build the dataset, train, impute.

The data flow down, once::

    table --read_table--> schema + values --cluster_rows--> labels --ClusterDataset.from_table-->
    dataset --train_on_dataset (engine.fit)--> model + selected fill --imputed_frame--> caller's table

:func:`fit_table` runs it and returns a :class:`RunResult`; it is the one path of
:func:`run_cissvae`, :class:`~ciss_vae.imputer.CISSVAEImputer` and the command
line. :func:`train_on_dataset` (from a built dataset on) is shared with
:func:`~ciss_vae.tuning.autotune`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ciss_vae import settings as S
from ciss_vae import sizing
from ciss_vae.clustering import MissingnessClusterer, cluster_on_missing_prop
from ciss_vae.dataset import ClusterDataset
from ciss_vae.engine import (Generators, Phase, TrainingData, bootstrap_rows, bootstrap_states, derived_seed, fit,
                             predict_logits, resolve_device)
from ciss_vae.model import CISSVAE, average_of
from ciss_vae.normal import ClusterNormal, NormalBlend, fit_blend, fit_normal, standardised_observed
from ciss_vae.output import imputed_frame
from ciss_vae.progress import TrainingProgress, epoch_logger, reporting
from ciss_vae.schema import TableSchema

logger = logging.getLogger("ciss_vae")

ARCHITECTURE = ("hidden_dims", "latent_dim", "layer_order_enc", "layer_order_dec", "latent_shared", "output_shared")
# Settings passed to MissingnessClusterer when given (None keeps the clusterer's own default).
CLUSTERER_OPTIONS = ("k_neighbors", "leiden_resolution", "leiden_objective")


@dataclass
class RunResult:
    """Everything one run produced (the return value of :func:`fit_table`).

    Attributes
    ----------
    imputed : DataFrame
        The caller's table with the missing cells filled.
    model : CISSVAE
        The selected model.
    dataset : ClusterDataset
        The dataset as built (its ``data`` is the initial fill).
    fill : torch.Tensor
        The standardised table the model was selected on (CPU).
    history : DataFrame
        One row per epoch and per refit validation; ``selected`` marks the chosen model.
    summary : dict
        Epochs, refit loops, why training stopped, the selected phase, its
        validation error, the final learning rate, the seed, the number of
        clusters, ``settings`` (the value of every setting that
        :mod:`ciss_vae.sizing` decides, as used) and ``decided`` (what was
        decided from the table, and why; None when every such setting was given).
    silhouette : float or None
        Of the clustering this run did (None when clusters were given).
    clusterer : MissingnessClusterer or None
        The fitted clusterer, when this run clustered the rows' missingness.
    fits : list of RunResult
        The fits averaged into this one (``ensemble_size`` > 1); empty for a single fit.
    blend : NormalBlend or None
        With ``normal_blend``: the normal averaged into ``imputed`` and each column's weights.
    """

    imputed: pd.DataFrame
    model: CISSVAE
    dataset: ClusterDataset
    fill: torch.Tensor
    history: pd.DataFrame
    summary: dict
    silhouette: float | None = None
    clusterer: MissingnessClusterer | None = None
    fits: list = field(default_factory=list)
    blend: NormalBlend | None = None

    @property
    def selected_dataset(self) -> ClusterDataset:
        """The dataset whose ``data`` is the selected fill: ``get_imputed_df(model, it)`` gives ``imputed``.

        (Without a blend; with one, the network's part of ``imputed``.)
        """
        return self.dataset.with_data(self.fill, initial=self.dataset.data)


def resolve_seed(seed) -> int:
    """``seed`` as an int; ``None`` draws one from the OS (and logs it)."""
    seed = S.seed("seed", seed)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
        logger.info("seed=None: drew seed %d", seed)
    return seed


# ---------------------------------------------------------------------- the steps
def read_table(data, s: dict) -> tuple[TableSchema, np.ndarray]:
    """Read and validate the caller's table once: its schema and the model columns' float64 values."""
    return TableSchema.from_data(data, s["columns_ignore"], s["binary_feature_mask"], s["categorical_column_map"])


def cluster_rows(schema: TableSchema, X: np.ndarray, s: dict, seed: int, proportions=None):
    """``(labels, silhouette, clusterer)`` of the rows, from the schema's missingness mask.

    The mask covers the columns modelled outside ``columns_ignore`` (a label
    column once, not once per label); with
    ``proportions`` (a missingness-proportion matrix) the rows are clustered on
    it instead and no clusterer is kept.
    """
    opts = {k: s[k] for k in CLUSTERER_OPTIONS if s[k] is not None}
    if proportions is not None:
        labels, sil = cluster_on_missing_prop(proportions, n_clusters=s["n_clusters"], seed=seed,
                                              scale_features=s["scale_features"], **opts)
        sizes = np.bincount(labels)
        logger.info("clustering found %d clusters (sizes %s), silhouette %s", len(sizes), sizes.tolist(),
                    "n/a" if sil is None else f"{sil:.3f}")
        return labels, sil, None
    clusterer = MissingnessClusterer(s["n_clusters"], seed=seed, **opts)
    mask = schema.cluster_mask(np.isnan(X))
    clusterer.fit_mask(mask, schema.clustered_columns(), positional=schema.kind != "frame",
                       n_input_columns=len(schema.names))
    return clusterer.labels_, clusterer.silhouette_, clusterer


def build_model(dataset: ClusterDataset, seed: int, device, **arch) -> CISSVAE:
    """A :class:`CISSVAE` for ``dataset``, initialised from ``seed`` (the global RNG is not used)."""
    with torch.device("meta"):
        model = CISSVAE(input_dim=dataset.n_features, num_clusters=dataset.n_clusters, **arch)
    model = model.to_empty(device="cpu")
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model.to(device)


def phases(s: dict) -> tuple[Phase, Phase]:
    """The initial phase and the refit loops' phase of settings ``s`` (refit ``None``s resolved)."""
    initial = Phase(s["epochs"], s["initial_lr"], s["decay_factor"], s["beta"], s["weight_decay"], s["batch_size"],
                    s["precision"], s["input_dropout"], s["epoch_rows"])
    pick = lambda v, fallback: fallback if v is None else v  # noqa: E731
    refit = Phase(pick(s["epochs_per_loop"], s["epochs"]), s["initial_lr_refit"],
                  pick(s["decay_factor_refit"], s["decay_factor"]), pick(s["beta_refit"], s["beta"]),
                  s["weight_decay"], s["batch_size"], s["precision"], s["input_dropout"], s["epoch_rows"])
    return initial, refit


def train_on_dataset(dataset: ClusterDataset, s: dict, *, seed: int, device, on_epoch=None, on_loop=None,
                     decide: bool = True) -> RunResult:
    """Build a model for ``dataset``, train it through the engine and impute.

    The one path from a :class:`ClusterDataset` to an imputed table, shared by
    :func:`fit_table` and :func:`~ciss_vae.tuning.autotune`. ``on_loop(step,
    error)`` is called with the initial model's validation error (step 0) and
    after every refit loop. ``decide=False``: ``s`` holds settings already
    decided by :func:`ciss_vae.sizing.resolve` (a None there is a decision).
    """
    decided = None
    if decide:
        s, decided = sizing.resolve(s, n_rows=len(dataset), n_columns=dataset.n_features,
                                    cluster_sizes=np.bincount(dataset.cluster_labels.numpy()))
    model = build_model(dataset, seed, device, **{k: s[k] for k in ARCHITECTURE})
    td = TrainingData.from_dataset(dataset, device)
    initial, refit = phases(s)
    result = fit(model, td, initial, refit, Generators.from_seed(seed, device), max_loops=s["max_loops"],
                 patience=s["patience"], tol=s["tol"], validate_every=s["validate_every"],
                 phase_patience=s["n_iter_no_change"], on_epoch=on_epoch, on_loop=on_loop)
    summary = dict(result.summary(), seed=seed, n_clusters=dataset.n_clusters,
                   settings={k: s[k] for k in sizing.SIZED}, decided=decided)
    logger.info("trained %d epochs (%d optimiser steps, %d refit loops, stopped: %s); selected %s, "
                "validation error %.4g", result.epochs, result.history.steps, result.loops, result.stop_reason,
                result.selected_phase, result.error)
    logits = predict_logits(model, td, result.fill).cpu()
    blend = None
    if s["normal_blend"]:
        blend = fit_blend(dataset, logits, pooled=sizing.pooled({k: s[k] for k in sizing.LAYERS}), seed=seed)
        logits = blend.apply(logits, standardised_observed(dataset), dataset.cluster_labels)
    imputed = imputed_frame(dataset, logits, s["binary_output"], s["clip_to_observed"], s["integer_output"])
    return RunResult(imputed, model, dataset, result.fill.cpu(), result.history.frame(), summary, blend=blend)


def ensemble_seed(seed: int, k: int) -> int:
    """The seed of fit ``k`` of an ensemble: the run's own seed for the first fit."""
    if k == 0:
        return seed
    return derived_seed(seed, 6007, k)


def average_runs(runs: list[RunResult], s: dict) -> RunResult:
    """One result from the fits of an ensemble: their averaged model applied to their averaged fill.

    The fits share one standardisation (the first fit's). The fill keeps every
    observed cell as observed (the fits' hold-outs differ, so none is held out
    here) and puts the mean of the fits' imputations in the missing cells; the
    model is :func:`~ciss_vae.model.average_of` the fits' models. The history
    stacks the fits' histories with a ``fit`` column (0, 1, ...); ``selected``
    marks each fit's selected model. The summary is the first fit's, with
    epochs and loops summed over the fits, the mean validation error, and
    ``fits``: each fit's own summary.
    """
    first = runs[0]
    ds = first.dataset
    model = average_of([r.model for r in runs])
    norm = (ds.raw_data - ds.feature_means) / ds.feature_stds
    fill = torch.where(ds.missing_mask, ds.data, norm)
    fill = torch.where(ds.missing_mask & ds.imputable, torch.stack([r.fill for r in runs]).mean(dim=0), fill)
    device = next(model.parameters()).device
    td = TrainingData.from_dataset(ds, device)
    logits = predict_logits(model, td, fill.to(device)).cpu()
    blend = None
    if first.blend is not None:
        blend = NormalBlend(first.blend.normal, torch.stack([r.blend.weights for r in runs]).mean(dim=0),
                            np.sqrt(np.mean([np.square(r.blend.residual_std) for r in runs], axis=0)),
                            np.mean([r.blend.noise_scale for r in runs], axis=0))
        logits = blend.apply(logits, standardised_observed(ds), ds.cluster_labels)
    imputed = imputed_frame(ds, logits, s["binary_output"], s["clip_to_observed"], s["integer_output"])
    history = pd.concat([r.history.assign(fit=k) for k, r in enumerate(runs)], ignore_index=True)
    own = ("epochs", "steps", "refit_loops", "stop_reason", "selected", "validation_error", "final_lr", "seed",
           "imputation_passes")
    fits = [{key: r.summary[key] for key in own} for r in runs]
    summary = dict(first.summary, epochs=sum(f["epochs"] for f in fits), steps=sum(f["steps"] for f in fits),
                   refit_loops=sum(f["refit_loops"] for f in fits),
                   validation_error=float(np.mean([f["validation_error"] for f in fits])),
                   stop_reason="; ".join(f"fit {k + 1}: {f['stop_reason']}" for k, f in enumerate(fits)),
                   selected="the mean of " + ", ".join(f"{f['selected']} (fit {k + 1})" for k, f in enumerate(fits)),
                   imputation_passes=int(np.ceil(np.median([f["imputation_passes"] for f in fits]))),
                   fits=fits)
    logger.info("averaged %d fits (validation errors %s)", len(runs),
                ", ".join(f"{f['validation_error']:.4g}" for f in fits))
    return RunResult(imputed, model, ds, fill, history, summary, fits=runs, blend=blend)


def bootstrap_refits(result: RunResult, s: dict, n_models: int) -> list[dict]:
    """Parameters of ``n_models`` bootstrap fits of ``result.model``'s network (:func:`~.engine.bootstrap_states`).

    Each is trained from new initial parameters with the run's initial phase
    (``epochs`` as decided for the run, its learning rate and schedule) on a
    resample of the rows, and keeps its best validated state. Refits
    warm-started from the selected model (up to one refit loop at a tenth of
    the learning rate) cost about half as much but stayed near it and kept its
    bias: on ``benchmarks/mi_coverage.py``'s designs (small network, 200
    repetitions) the slope at n = 200 covered 87 % with them and 95.5 % from
    scratch, the mean of an outcome 88.5 % and 95.5 %.

    For an average of fits, refit ``b`` is a bootstrap fit in the place of fit
    ``b mod k`` alone, on that fit's own fill and hold-out, put back in the
    averaged network's shape as ``k`` copies of itself: its output is that one
    fit's. An average of ``k`` varies about ``k`` times less than one fit does,
    and draws from averages would understate the model's uncertainty.
    """
    s = {**s, **result.summary["settings"]}
    phase = phases(s)[0]
    device = next(result.model.parameters()).device
    options = dict(validate_every=max(1, s["validate_every"]), patience=s["n_iter_no_change"])
    if not result.fits:
        td = TrainingData.from_dataset(result.dataset, device)
        return bootstrap_states(result.model, td, result.fill.to(device), phase, n_models, result.summary["seed"],
                                **options)
    states, k = [], len(result.fits)
    for b in range(n_models):
        fit_b = result.fits[b % k]
        td = TrainingData.from_dataset(fit_b.dataset, device)
        state = bootstrap_states(fit_b.model, td, fit_b.fill.to(device), phase, 1, result.summary["seed"], first=b,
                                 **options)[0]
        refit = copy.deepcopy(fit_b.model)
        refit.load_state_dict(state)
        states.append(average_of([refit] * k).state_dict())
    return states


def bootstrap_normals(result: RunResult, n_models: int) -> list[ClusterNormal]:
    """The normal of each of ``n_models`` bootstrap refits: ``result.blend``'s, fitted again to that refit's rows.

    Refit ``b`` resamples the rows as :func:`bootstrap_refits` does (:func:`~.engine.bootstrap_rows`); its
    normal is fitted by EM to every observed cell of those rows, starting from the blend's normal, so that a
    draw's conditional means carry the normal's sampling uncertainty as its network's carry the network's.
    """
    ds, normal, seed = result.dataset, result.blend.normal, result.summary["seed"]
    Z = standardised_observed(ds)
    out = []
    for b in range(n_models):
        rows = bootstrap_rows(len(ds), seed, b)
        out.append(fit_normal(Z[rows], ds.cluster_labels[rows], normal.n_clusters, start=normal,
                              generator=torch.Generator().manual_seed(derived_seed(seed, 104729, b))))
    return out


def check_architecture(s: dict) -> None:
    """Raise before any work when the layer orders given do not fit ``hidden_dims``."""
    widths = sizing.PUBLISHED_HIDDEN if s["hidden_dims"] is None else s["hidden_dims"]  # decided: as many layers
    unset = dict(sizing.published_layer_orders(len(widths)), hidden_dims=widths, latent_dim=sizing.PUBLISHED_LATENT)
    arch = {k: unset[k] if s[k] is None else s[k] for k in ARCHITECTURE}
    with torch.device("meta"):
        CISSVAE(input_dim=1, num_clusters=1, **arch)


def fit_table(data, s: dict, *, clusters=None, imputable=None, proportions=None) -> RunResult:
    """Read ``data`` once, cluster it (unless ``clusters``), build the dataset, train and impute.

    ``s`` holds every setting of :func:`run_cissvae` by its name, checked by
    :func:`ciss_vae.settings.validate`.
    """
    check_architecture(s)
    device = resolve_device(s["device"])
    with reporting(s["print_dataset"], s["verbose"]):
        seed = resolve_seed(s["seed"])
        schema, X = read_table(data, s)
        silhouette = clusterer = None
        if clusters is None:
            clusters, silhouette, clusterer = cluster_rows(schema, X, s, seed, proportions)

        def dataset_of(fit_seed, statistics=None):
            return ClusterDataset.from_table(schema, X, clusters, val_proportion=s["val_proportion"],
                                             replacement_value=s["replacement_value"], imputable=imputable,
                                             val_seed=fit_seed if s["val_seed"] is None else s["val_seed"],
                                             statistics=statistics)

        dataset = dataset_of(seed)
        if s["print_dataset"]:
            logger.info("%r", dataset)
        s, decided = sizing.resolve(s, n_rows=len(X), n_columns=dataset.n_features,
                                    cluster_sizes=np.bincount(dataset.cluster_labels.numpy()), silhouette=silhouette,
                                    clusters_given=clusterer is None and proportions is None)
        if s["ensemble_size"] == 1:
            X = None  # the dataset holds the values now; only the datasets of further fits read them again
        runs = []
        with TrainingProgress(s["epochs"], s["epochs_per_loop"], s["max_loops"], enabled=s["show_progress"],
                              on_epoch=epoch_logger() if s["verbose"] else None) as progress:
            for k in range(s["ensemble_size"]):
                fit_seed = ensemble_seed(seed, k)
                ds = dataset if k == 0 else dataset_of(fit_seed, (dataset.means_, dataset.stds_))
                runs.append(train_on_dataset(ds, s, seed=fit_seed, device=device, on_epoch=progress.on_epoch,
                                             decide=False))
        result = runs[0] if len(runs) == 1 else average_runs(runs, s)
    result.silhouette, result.clusterer = silhouette, clusterer
    result.summary["decided"] = decided
    return result


# ---------------------------------------------------------------------- the published face
def run_cissvae(
    data,
    val_proportion=0.1,
    replacement_value=0.0,
    columns_ignore=None,
    print_dataset=True,
    imputable_matrix=None,
    binary_feature_mask=None,
    categorical_column_map=None,
    clusters=None,
    n_clusters=None,
    k_neighbors=None,
    leiden_resolution=None,
    leiden_objective=None,
    seed=42,
    missingness_proportion_matrix=None,
    scale_features=False,
    hidden_dims=None,
    latent_dim=None,
    layer_order_enc=None,
    layer_order_dec=None,
    latent_shared=None,
    output_shared=None,
    batch_size=None,
    return_model=True,
    epochs=None,
    initial_lr=None,
    decay_factor=0.999,
    weight_decay=0.001,
    beta=0.001,
    device=None,
    max_loops=None,
    patience=2,
    epochs_per_loop=None,
    initial_lr_refit=None,
    decay_factor_refit=None,
    beta_refit=None,
    verbose=False,
    return_clusters=False,
    return_silhouettes=False,
    return_history=False,
    return_dataset=False,
    debug=False,
    *,
    defaults="auto",
    binary_output="label",
    integer_output="integer",
    clip_to_observed=False,
    validate_every=10,
    tol=0.01,
    n_iter_no_change=5,
    precision="float32",
    input_dropout=None,
    normal_blend=None,
    val_seed=None,
    show_progress=None,
    ensemble_size=None,
    epoch_rows=None,
):
    s = S.validate({k: v for k, v in locals().items() if k != "data"}, S.RUN)
    result = fit_table(data, s, clusters=clusters, imputable=imputable_matrix,
                       proportions=missingness_proportion_matrix)
    out = [result.imputed]
    if return_model:
        out.append(result.model)
    if return_dataset:
        out.append(result.selected_dataset)
    if return_clusters:
        out.append(result.dataset.clusters)
    if return_silhouettes:
        out.append(result.silhouette)
    if return_history:
        out.append(result.history)
    return out[0] if len(out) == 1 else tuple(out)


run_cissvae.__doc__ = f"""Impute a table with CISS-VAE in one run: cluster, train, impute-and-refit, impute.

    Parameters
    ----------
    data : pandas.DataFrame, numpy.ndarray or torch.Tensor
        The table, NaN or None for missing cells. Columns outside
        ``columns_ignore`` must be numeric (bool counts as binary).
{S.parameters_doc(S.RUN)}

    Returns
    -------
    imputed_df : pandas.DataFrame
        The caller's table (same index, columns, dtypes, observed values) with
        missing cells filled; do-not-impute cells stay missing.
    model : CISSVAE
        If ``return_model``.
    dataset : ClusterDataset
        If ``return_dataset``. Its ``data`` is the fill the returned model was
        selected on, so ``get_imputed_df(model, DataLoader(dataset))`` gives
        ``imputed_df`` again when no normal was blended in
        (``normal_blend=False``); with the blend it gives the network's part.
    clusters : numpy.ndarray
        If ``return_clusters``: the cluster label of each row (the caller's own
        labels when given).
    silhouette : float or None
        If ``return_silhouettes``; None when clusters were given.
    history : pandas.DataFrame
        If ``return_history``: one row per epoch and per refit validation;
        ``selected`` marks the chosen model.

    A bare DataFrame is returned when nothing else is asked for. Every setting
    is declared in :mod:`ciss_vae.settings` and checked there before any work.

    Notes
    -----
    Differences from the published implementation (see the engine module):
    the initial model is the baseline of the refit loop, the output is the best
    model on the fill it was selected on, no process-wide torch flag is set,
    ``seed`` also drives the hold-out and the noise, ``seed=None`` works, and
    validation errors are in standardised units. With ``clusters=None`` the
    table is read once and its missingness mask is clustered
    (:class:`~ciss_vae.clustering.MissingnessClusterer`).

    Examples
    --------
    >>> from ciss_vae.data import load_example_dataset
    >>> from ciss_vae.utils.run_cissvae import run_cissvae
    >>> df_missing, df_complete, clusters = load_example_dataset()
    >>> imputed = run_cissvae(df_missing.iloc[:400], clusters=clusters[:400], epochs=5,
    ...                       max_loops=1, epochs_per_loop=5, return_model=False, print_dataset=False)
    >>> int(imputed.isna().sum().sum())
    0
    """
