"""autotune: an Optuna search over CISS-VAE architectures and training settings.

Each trial samples the parameters of a :class:`~ciss_vae.search_space.SearchSpace`,
trains through :func:`~ciss_vae.pipeline.train_on_dataset` (the path
``run_cissvae`` takes) and returns the selected model's validation error. The
keyword arguments with which ``run_cissvae`` reproduces the trial exactly are
stored in ``trial.user_attrs["run_cissvae_kwargs"]``; the returned model is the
winning trial's model (rebuilt from those arguments when another process ran it).
Trials report their error after initial training and after every refit loop, so
a pruner stops hopeless ones. Any Optuna storage works; with an RDB URL a
heartbeat lets workers retry the trials of a worker that died.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import warnings

import numpy as np
import optuna
import pandas as pd
import torch

from ciss_vae import settings as S
from ciss_vae.dataset import ClusterDataset
from ciss_vae.engine import resolve_device
from ciss_vae.pipeline import RunResult, resolve_seed, train_on_dataset
from ciss_vae.progress import reporting
from ciss_vae.search_space import (
    SAMPLED,
    SearchSpace,
    TrialSeededTPE,
    all_layer_orders,
    layer_order,
    order_string,
    sample_params,
    shared_positions,
    trial_seed_for,
)

__all__ = ["SearchSpace", "autotune"]

logger = logging.getLogger(__name__)

# Settings of run_cissvae that autotune relies on and records with every trial (their declared defaults).
RUN_DEFAULTS = dict({k: S.BY_NAME[k].default for k in ("tol", "validate_every", "n_iter_no_change", "precision",
                                                       "binary_output")}, print_dataset=False)
_EXPERIMENTAL = optuna.exceptions.ExperimentalWarning


def autotune(search_space, train_dataset, save_model_path=None, save_search_space_path=None, n_trials=20,
             study_name="vae_autotune", device_preference="cuda", show_progress=False, optuna_dashboard_db=None,
             load_if_exists=True, seed=42, verbose=False, constant_layer_size=False, evaluate_all_orders=False,
             max_exhaustive_orders=100, n_jobs=1, return_history=False, debug=False, *, storage=None,
             pruner="median", sampler=None, timeout=None, heartbeat_interval=60, grace_period=None, max_retry=3,
             tol=RUN_DEFAULTS["tol"], validate_every=RUN_DEFAULTS["validate_every"]):
    """Search ``search_space`` with Optuna; return the best trial's imputation and model.

    Parameters
    ----------
    search_space : SearchSpace
    train_dataset : ClusterDataset
        Never modified (one returned by ``run_cissvae(return_dataset=True)`` is
        tuned from its initial fill).
    save_model_path : str, optional
        Writes the best model's ``state_dict`` (``torch.save``) there and its
        constructor arguments as JSON to ``save_model_path + ".json"``.
    save_search_space_path : str, optional
        Writes ``search_space.save(path)`` at the start.
    n_trials : int, default=20
        Trials run by this call (with shared storage, by this worker).
    study_name : str, default="vae_autotune"
    device_preference : str, default="cuda"
        Falls back to the CPU (logged) when that device is absent (the published
        behaviour; ``run_cissvae``'s ``device`` raises instead).
    show_progress : bool, default=False
        A rich progress bar over trials on a terminal; display only
        (``run_cissvae``'s default None shows bars whenever stderr is a terminal).
    optuna_dashboard_db, storage : optional
        Where the study lives (give one): None keeps it in memory; an Optuna
        storage URL ("sqlite:///db.sqlite3" for optuna-dashboard,
        "postgresql://user@host/db", ...); a path ending in ".log" or ".journal"
        (a journal file); or an Optuna storage object. Several processes, on one
        machine or many, may run ``autotune`` on the same study and storage: they
        share the trials. With a URL, a worker sends a heartbeat every
        ``heartbeat_interval`` seconds, and a trial whose worker stopped beating
        for ``grace_period`` seconds (default twice the interval) is marked FAIL
        and queued again (up to ``max_retry`` times) for the next free worker.
    load_if_exists : bool, default=True
        Continue a study of that name. Continuing a study made for other data,
        another search space or other options raises ``ValueError``.
    seed : int or None, default=42
        Seeds the sampler and every trial (trial seed derived from ``seed`` and
        the trial number). Same seed, same search, same data: same study (with
        ``n_jobs=1`` and one worker).
    verbose : bool, default=False
        Log one line per trial, and every trial's refit loops (as ``run_cissvae``'s
        ``verbose``: DEBUG records on stderr unless logging is configured).
    constant_layer_size : bool, default=False
        One hidden size for all layers (Optuna parameter ``hidden_dim_constant``)
        instead of one per layer (``hidden_dim_0``, ...).
    evaluate_all_orders : bool, default=False
        Train every placement of the shared layers (at most
        ``max_exhaustive_orders``, a seeded sample beyond) and keep the best;
        the placement parameters are then ignored.
    n_jobs : int, default=1
        Trials run in parallel threads of this process.
    return_history : bool, default=False
        Also return the best model's training history.
    debug : bool
        No effect (compatibility).
    pruner : "median", None/"none", or an Optuna pruner, default="median"
        Each trial reports its validation error after initial training (step 0)
        and after every refit loop.
    sampler : optuna sampler, optional
        Default: TPE, reseeded for each trial from ``seed`` and the trial number.
    timeout : float, optional
        Stop starting trials after this many seconds.
    tol, validate_every :
        As in ``run_cissvae``.

    Returns
    -------
    best_imputed_df, best_model, study, results_df[, history]
        ``results_df`` has one row per trial of the study. For the best trial,
        ``run_cissvae(train_dataset.schema.original, clusters=train_dataset.clusters,
        **study.best_trial.user_attrs["run_cissvae_kwargs"])`` returns
        ``best_imputed_df`` again (same device; a dataset built with a
        do-not-impute matrix needs ``imputable_matrix=`` passed as well).
    """
    _check_arguments(search_space, train_dataset, n_trials, n_jobs, max_exhaustive_orders, storage,
                     optuna_dashboard_db)
    with reporting(verbose, verbose):
        result, study = tune(search_space, train_dataset, n_trials=n_trials, study_name=study_name,
                             device_preference=device_preference, show_progress=show_progress,
                             storage=storage if storage is not None else optuna_dashboard_db,
                             load_if_exists=load_if_exists, seed=seed, constant_layer_size=constant_layer_size,
                             evaluate_all_orders=evaluate_all_orders, max_exhaustive_orders=max_exhaustive_orders,
                             n_jobs=n_jobs, pruner=pruner, sampler=sampler, timeout=timeout,
                             heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_retry=max_retry,
                             tol=tol, validate_every=validate_every, save_search_space_path=save_search_space_path)
        if save_model_path is not None:
            torch.save(result.model.state_dict(), save_model_path)
            with open(f"{save_model_path}.json", "w") as f:
                json.dump(result.model.constructor_kwargs(), f, indent=2)
    out = (result.imputed, result.model, study, results_frame(study))
    return out + (result.history,) if return_history else out


def _check_arguments(search_space, train_dataset, n_trials, n_jobs, max_exhaustive_orders, storage, dashboard):
    if not isinstance(search_space, SearchSpace):
        raise TypeError(f"`search_space` must be a SearchSpace, got {type(search_space).__name__}")
    if not isinstance(train_dataset, ClusterDataset):
        raise TypeError(f"`train_dataset` must be a ClusterDataset, got {type(train_dataset).__name__}")
    if not bool(train_dataset.val_mask.any()):
        raise ValueError("`train_dataset` holds no validation cells (val_proportion=0?): trials cannot be scored")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"`n_jobs` must be a positive integer or -1, got {n_jobs!r}")
    S.integer(1)("max_exhaustive_orders", max_exhaustive_orders)
    if storage is not None and dashboard is not None:
        raise ValueError("give `storage` or `optuna_dashboard_db`, not both")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0):
        raise ValueError(f"`n_trials` must be a non-negative integer (0 reloads a stored study's best trial), "
                         f"got {n_trials!r}")


def tune(search_space, train_dataset, *, n_trials, study_name, device_preference, show_progress, storage,
         load_if_exists, seed, constant_layer_size, evaluate_all_orders, max_exhaustive_orders, n_jobs, pruner,
         sampler, timeout, heartbeat_interval, grace_period, max_retry, tol, validate_every,
         save_search_space_path=None) -> tuple[RunResult, optuna.Study]:
    """Run the study; return the best trial's :class:`~ciss_vae.pipeline.RunResult` and the study.

    :func:`autotune` without its published packaging (the command line's
    ``tune`` keeps the whole result, to save the winner as an imputer).
    """
    seed = resolve_seed(seed)
    device = _device(device_preference)
    base = train_dataset.initial_data
    dataset = train_dataset.with_data((train_dataset.data if base is None else base).clone())
    if train_dataset.val_seed is None:
        logger.warning("the dataset was built with val_seed=None: run_cissvae cannot rebuild its hold-out, so "
                       "trials cannot be reproduced with run_cissvae_kwargs")
    if save_search_space_path is not None:
        search_space.save(save_search_space_path)
    options = dict(constant_layer_size=bool(constant_layer_size), evaluate_all_orders=bool(evaluate_all_orders),
                   max_exhaustive_orders=int(max_exhaustive_orders), tol=float(tol),
                   validate_every=int(validate_every))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _EXPERIMENTAL)
        study = optuna.create_study(
            storage=_storage(storage, heartbeat_interval, grace_period, max_retry),
            sampler=sampler if sampler is not None else TrialSeededTPE(seed),
            pruner=_pruner(pruner), study_name=study_name, direction="minimize", load_if_exists=load_if_exists)
        _guard(study, data_fingerprint(dataset), search_space, options)
        study.set_metric_names(["imputation_error"])
    objective = _Objective(dataset, search_space, options, seed, device)
    with _progress(show_progress, n_trials) as callbacks, warnings.catch_warnings():
        warnings.simplefilter("ignore", _EXPERIMENTAL)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, n_jobs=n_jobs,
                       catch=(FloatingPointError,), callbacks=callbacks)
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise RuntimeError(f"no trial of study {study.study_name!r} completed (all pruned or failed)")
    best = study.best_trial
    if objective.best is not None and objective.best[0] == best.number:
        result = objective.best[2]
    else:
        logger.info("best trial %d ran in another process; rebuilding it from its run_cissvae_kwargs", best.number)
        result = _train(dataset, best.user_attrs["run_cissvae_kwargs"], device)
    logger.info("best trial %d: imputation error %.6g", best.number, best.value)
    return result, study


# ---------------------------------------------------------------------- one trial
class _Objective:
    """Sample, train through ``train_on_dataset``, record; keeps this process's best trial in memory."""

    def __init__(self, dataset, space: SearchSpace, options: dict, seed: int, device):
        self.dataset, self.space, self.options, self.seed, self.device = dataset, space, options, seed, device
        settings = {k: v for k, v in dataset.settings.items() if not (k == "imputable_matrix" and v is None)}
        self.base_kwargs = {**settings, **RUN_DEFAULTS, "tol": options["tol"],
                            "validate_every": options["validate_every"], "ensemble_size": 1}
        self.best = None  # (trial number, error, RunResult)
        self._lock = threading.Lock()
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, trial) -> float:
        trial.set_user_attr("worker", self.worker)
        p = sample_params(self.space, trial, self.options["constant_layer_size"])
        trial_seed = trial_seed_for(self.seed, trial.number)
        L = p["num_hidden_layers"]
        n_enc, n_dec = min(p["num_shared_encode"], L), min(p["num_shared_decode"], L)
        if self.options["evaluate_all_orders"]:
            rng = np.random.default_rng([trial_seed, 3])
            orders = all_layer_orders(L, n_enc, n_dec, self.options["max_exhaustive_orders"], rng)
        else:
            enc = shared_positions(L, n_enc, p["encoder_shared_placement"], np.random.default_rng([trial_seed, 1]))
            dec = shared_positions(L, n_dec, p["decoder_shared_placement"], np.random.default_rng([trial_seed, 2]))
            orders = [(layer_order(L, enc), layer_order(L, dec))]
        stride = p["refit_loops"] + 1
        best = None
        for i, (enc, dec) in enumerate(orders):
            kwargs = self.run_kwargs(p, enc, dec, trial_seed)
            floor = best[0] if best is not None else float("inf")

            def on_loop(step, error, offset=i * stride, floor=floor):
                trial.report(min(error, floor), offset + step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {offset + step} (error {error:.6g})")

            result = _train(self.dataset, kwargs, self.device, on_loop)
            err = float(result.summary["validation_error"])
            if best is None or err < best[0]:
                best = (err, kwargs, result)
        err, kwargs, result = best
        summary = result.summary
        trial.set_user_attr("run_cissvae_kwargs", kwargs)
        trial.set_user_attr("trial_seed", trial_seed)
        trial.set_user_attr("num_shared_encode_effective", n_enc)
        trial.set_user_attr("num_shared_decode_effective", n_dec)
        trial.set_user_attr("best_layer_order_enc", order_string(kwargs["layer_order_enc"]))
        trial.set_user_attr("best_layer_order_dec", order_string(kwargs["layer_order_dec"]))
        trial.set_user_attr("orders_evaluated", len(orders))
        trial.set_user_attr("epochs_trained", int(summary["epochs"]))
        trial.set_user_attr("refit_loops_run", int(summary["refit_loops"]))
        with self._lock:
            if self.best is None or (err, trial.number) < (self.best[1], self.best[0]):
                self.best = (trial.number, err, result)
        logger.info("trial %d: imputation error %.6g (%s / %s, %d epochs)", trial.number, err,
                    order_string(kwargs["layer_order_enc"]), order_string(kwargs["layer_order_dec"]), summary["epochs"])
        return err

    def run_kwargs(self, p: dict, enc, dec, trial_seed: int) -> dict:
        """``run_cissvae`` keyword arguments (JSON-ready) that train exactly this trial.

        Every SearchSpace parameter that stands for a setting (its name in the
        settings' "SearchSpace" face) becomes that setting; the shared-layer counts and placements become the
        layer orders, ``reset_lr_refit`` sets ``initial_lr_refit`` to the trial's ``lr``.
        """
        sampled = {s.name: _as_setting(s.name, p[s.name_in(S.SEARCH)]) for s in S.of(S.SEARCH)}
        return dict(self.base_kwargs, **sampled, layer_order_enc=list(enc), layer_order_dec=list(dec),
                    initial_lr_refit=float(p["lr"]) if p["reset_lr_refit"] else None, seed=int(trial_seed))


def _as_setting(name: str, value):
    """A sampled value checked as the setting ``name``, as the JSON type of its default."""
    value = S.BY_NAME[name].check(name, value)
    return float(value) if isinstance(S.BY_NAME[name].default, float) else value


def _train(dataset, kw: dict, device, on_loop=None) -> RunResult:
    """``run_cissvae``'s training for ``kw`` on ``dataset``, through ``train_on_dataset``."""
    settings = dict(S.defaults(S.RUN), **kw)
    return train_on_dataset(dataset, settings, seed=kw["seed"], device=device, on_loop=on_loop)


# ---------------------------------------------------------------------- study set-up
def _pruner(pruner):
    if pruner is None or (isinstance(pruner, str) and pruner.lower() == "none"):
        return optuna.pruners.NopPruner()
    if isinstance(pruner, str):
        if pruner.lower() == "median":
            return optuna.pruners.MedianPruner()
        raise ValueError(f"`pruner` must be 'median', 'none', None or an Optuna pruner, got {pruner!r}")
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise TypeError(f"`pruner` must be 'median', 'none', None or an Optuna pruner, got {type(pruner).__name__}")
    return pruner


def _storage(storage, heartbeat_interval, grace_period, max_retry):
    """An Optuna storage (or None for memory) from a URL, a journal-file path or a storage object."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"`storage` must be a URL, a journal file path or an Optuna storage, got {storage!r}")
    target = os.fspath(storage)
    if target.endswith((".log", ".journal")) and "://" not in target:
        backend = optuna.storages.journal.JournalFileBackend(target)
        return optuna.storages.JournalStorage(backend)
    if "://" not in target:
        raise ValueError(f"`storage` {target!r} is neither a URL (sqlite:///file.db, postgresql://...) nor a "
                         "journal file (.log or .journal)")
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # optuna >= 4.9
    key = "heartbeat_stale_trial_callback" if retry else "failed_trial_callback"
    retry = retry or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _EXPERIMENTAL)
        return optuna.storages.RDBStorage(target, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                          **{key: retry(max_retry=max_retry)})


def data_fingerprint(dataset) -> dict:
    """Short hashes of the dataset's values, masks, cluster labels and settings."""
    def digest(*parts):
        h = hashlib.sha256()
        for part in parts:
            if isinstance(part, torch.Tensor):
                part = part.detach().cpu().contiguous()
                h.update(f"{tuple(part.shape)}{part.dtype}".encode())
                part = part.numpy().tobytes()
            h.update(part if isinstance(part, bytes) else str(part).encode())
        return h.hexdigest()[:16]

    return dict(
        values=digest(dataset.raw_data, dataset.data, [str(n) for n in dataset.feature_names]),
        masks=digest(dataset.masks, dataset.val_mask, dataset.missing_mask, dataset.imputable),
        clusters=digest(dataset.cluster_labels, [str(n) for n in dataset.cluster_names]),
        settings=digest(json.dumps(dataset.settings, sort_keys=True, default=str)),
    )


def _guard(study, data: dict, space: SearchSpace, options: dict) -> None:
    """Mark a new study with what it searches; refuse to continue one made for something else."""
    marks = dict(ciss_vae_data=data, ciss_vae_search_space=space.to_dict(), ciss_vae_options=options)
    attrs = study.user_attrs
    if not any(k in attrs for k in marks):
        if not study.get_trials(deepcopy=False):
            for k, v in marks.items():
                study.set_user_attr(k, v)
            return
        attrs = study.user_attrs  # another worker may have marked it and started meanwhile
        if not any(k in attrs for k in marks):
            raise ValueError(f"study {study.study_name!r} already has trials that autotune did not record; "
                             "use another study_name")
    deadline = time.monotonic() + 10
    while not all(k in attrs for k in marks) and time.monotonic() < deadline:
        time.sleep(0.1)  # another worker is writing its marks right now
        attrs = study.user_attrs
    diffs = []
    old = attrs.get("ciss_vae_data", {})
    parts = [k for k in data if old.get(k) != data[k]]
    if parts:
        diffs.append(f"other data (its {', '.join(parts)} differ)")
    old = attrs.get("ciss_vae_search_space", {})
    names = [k for k in marks["ciss_vae_search_space"] if old.get(k) != marks["ciss_vae_search_space"][k]]
    if names:
        diffs.append(f"another search space ({', '.join(names)} differ)")
    old = attrs.get("ciss_vae_options", {})
    names = [f"{k}={old.get(k)!r}" for k in options if old.get(k) != options[k]]
    if names:
        diffs.append(f"other options ({', '.join(names)})")
    if diffs:
        raise ValueError(f"study {study.study_name!r} was created for {'; '.join(diffs)}. Resuming it would mix "
                         "results: use another study_name (or another storage)")


def _device(preference):
    try:
        return resolve_device(preference)
    except (ValueError, RuntimeError) as exc:
        logger.warning("device_preference=%r: %s; training on the CPU", preference, exc)
        return torch.device("cpu")


@contextlib.contextmanager
def _progress(enabled: bool, n_trials):
    """Optuna callbacks that drive a rich progress bar over trials (display only; off when not a terminal)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("autotune"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("", total=n_trials)

        def advance(study, trial):
            best = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
            bar.update(task, advance=1, description=f"best {min(best):.4g}" if best else "")

        yield [advance]


def results_frame(study) -> pd.DataFrame:
    """One row per trial: number, state, error, every parameter, the layer orders used."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(dict(trial_number=t.number, state=t.state.name, imputation_error=t.value, **t.params,
                         num_shared_encode_effective=t.user_attrs.get("num_shared_encode_effective"),
                         num_shared_decode_effective=t.user_attrs.get("num_shared_decode_effective"),
                         layer_order_enc_used=t.user_attrs.get("best_layer_order_enc"),
                         layer_order_dec_used=t.user_attrs.get("best_layer_order_dec"),
                         trial_seed=t.user_attrs.get("trial_seed"), worker=t.user_attrs.get("worker"),
                         retried_from=t.system_attrs.get("failed_trial")))
    df = pd.DataFrame(rows)
    params = [c for c in df.columns if c not in _RESULT_FIXED]
    rank = {n: i for i, n in enumerate(("num_hidden_layers", "hidden_dim_constant") + SAMPLED)}
    params.sort(key=lambda c: (rank.get(c, 1.5), int(c.rsplit("_", 1)[1]) if c.startswith("hidden_dim_") and
                               c[11:].isdigit() else 0))
    return df[["trial_number", "state", "imputation_error"] + params + _RESULT_FIXED[3:]] if rows else df


_RESULT_FIXED = ["trial_number", "state", "imputation_error", "num_shared_encode_effective",
                 "num_shared_decode_effective", "layer_order_enc_used", "layer_order_dec_used", "trial_seed", "worker", "retried_from"]
