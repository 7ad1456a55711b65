"""The one training core: initial training, the impute-refit loop, validation, imputing.

Everything here works on tensors that stay on the model's device. A batch is an
index slice of those tensors (no per-row ``Dataset.__getitem__``, no collate),
validation is one batched deterministic pass over the rows that hold validation
cells, and a model snapshot is a copy of its ``state_dict`` tensors. Every face
of the package (``run_cissvae``, ``autotune``, the estimator, the CLI) trains
through :func:`fit`.

The algorithm is the published one (initial masked training, then loops of
"impute the missing cells with the model, refit on the completed table") with
its defects fixed:

* the initial model's validation error is the baseline a refit loop must beat;
* after a loop that does not improve, training restarts from the best model and
  the fill it produced, with the learning rate carried on;
* the result is the best model applied to the fill it was selected on;
* masked binary cells add nothing to the loss;
* validation errors of continuous columns are in standardised units, so that a
  column's scale does not decide early stopping.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ciss_vae.losses import ColumnKinds, kl_divergence, reconstruction_terms

logger = logging.getLogger(__name__)

EVAL_ROWS = 65536
FLUSH_EVERY = 64  # optimiser steps between flushes of subnormal parameters (see flush_subnormals)


def resolve_device(device=None) -> torch.device:
    """``device`` as a :class:`torch.device`; ``None`` picks CUDA when available."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but MPS is not available")
    return dev


def derived_seed(seed: int, tag: int, i: int) -> int:
    """A non-negative 63-bit seed for stream ``i`` of kind ``tag`` under ``seed``.

    Shifted as a Python int: numpy 1.x refuses ``np.uint64 >> int``.
    """
    return int(np.random.SeedSequence([int(seed), int(tag), int(i)]).generate_state(1, dtype=np.uint64)[0]) >> 1


@dataclass
class Generators:
    """Seeded random streams: row shuffling (CPU) and reparameterisation noise (device)."""

    shuffle: torch.Generator
    noise: torch.Generator

    @classmethod
    def from_seed(cls, seed: int, device) -> "Generators":
        a, b = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
        shuffle = torch.Generator().manual_seed(int(a) >> 1)
        noise = torch.Generator(device=device).manual_seed(int(b) >> 1)
        return cls(shuffle, noise)


@dataclass
class TrainingData:
    """Device-resident tensors of a :class:`~ciss_vae.dataset.ClusterDataset`."""

    data: torch.Tensor
    train_weight: torch.Tensor
    refit_weight: torch.Tensor | None
    fill_mask: torch.Tensor
    clusters: torch.Tensor
    kinds: ColumnKinds
    val_rows: torch.Tensor
    val_mask: torch.Tensor
    val_target: torch.Tensor
    val_counts: tuple
    replacement: float = 0.0

    @classmethod
    def from_dataset(cls, ds, device) -> "TrainingData":
        kinds = ColumnKinds.from_schema(ds.schema).to(device)
        val_rows = torch.nonzero(ds.val_mask.any(dim=1)).squeeze(1)
        vmask = ds.val_mask[val_rows]
        norm = (ds.val_data[val_rows] - ds.feature_means) / ds.feature_stds
        target = torch.where(vmask, norm, torch.zeros(()))
        n_cont = int(vmask[:, kinds.continuous.cpu()].sum()) if len(kinds.continuous) else 0
        n_bin = int(vmask[:, kinds.binary.cpu()].sum()) if len(kinds.binary) else 0
        n_cat = [int(vmask[:, g.cpu()].all(dim=1).sum()) for g in kinds.groups]
        return cls(
            data=ds.data.to(device),
            train_weight=ds.masks.to(device),  # bool; a batch's slice becomes float (no float copy of the table)
            refit_weight=ds.imputable.to(device) if ds.has_dni else None,
            fill_mask=(~ds.masks & ds.imputable).to(device),
            clusters=ds.cluster_labels.to(device),
            kinds=kinds,
            val_rows=val_rows.to(device),
            val_mask=vmask.to(device),
            val_target=target.to(device),
            val_counts=(n_cont, n_bin, tuple(n_cat)),
            replacement=ds.replacement_value,
        )

    def column_units(self) -> torch.Tensor:
        """For each column, the unit it is hidden with: its own, or its one-hot group's."""
        unit = torch.arange(self.data.shape[1], device=self.data.device)
        for g in self.kinds.groups:
            unit[g] = g[0]
        return unit

    @property
    def n_rows(self) -> int:
        return self.data.shape[0]


# ---------------------------------------------------------------------- passes
def forward_rows(model, fill, clusters, rows=None):
    """Deterministic logits for ``rows`` (all rows when None), in batches."""
    n = fill.shape[0] if rows is None else rows.numel()
    outs = []
    for start in range(0, n, EVAL_ROWS):
        idx = slice(start, start + EVAL_ROWS) if rows is None else rows[start : start + EVAL_ROWS]
        logits, _, _ = model(fill[idx], clusters[idx], deterministic=True)
        outs.append(logits)
    return torch.cat(outs) if len(outs) != 1 else outs[0]


def activate(logits, kinds: ColumnKinds):
    """Model outputs in fill space: continuous as is, binary probabilities, one-hot groups."""
    out = logits.clone()
    if len(kinds.binary):
        out[:, kinds.binary] = torch.sigmoid(logits[:, kinds.binary])
    for g in kinds.groups:
        out[:, g] = F.one_hot(logits[:, g].argmax(dim=1), len(g)).to(out.dtype)
    return out


@torch.no_grad()
def predict_logits(model, td: TrainingData, fill):
    """Deterministic model outputs (logits) for every row, from the filled matrix ``fill``."""
    was = model.training
    model.eval()
    try:
        return forward_rows(model, fill, td.clusters)
    finally:
        model.train(was)


def impute(model, td: TrainingData, fill):
    """The next fill: ``fill`` with every missing or held-out cell replaced by the model's output."""
    return torch.where(td.fill_mask, activate(predict_logits(model, td, fill), td.kinds), fill)


@torch.no_grad()
def validate(model, td: TrainingData, fill) -> dict:
    """Validation errors of ``model`` fed with ``fill``.

    ``mse``: mean squared error over continuous validation cells, in standardised
    units; ``bce``: mean binary cross-entropy over binary validation cells; ``ce``:
    per one-hot group, mean cross-entropy over held-out rows, summed over groups.
    ``imputation_error`` is their sum. All are NaN when nothing is held out.
    """
    n_cont, n_bin, n_cat = td.val_counts
    if td.val_rows.numel() == 0:
        nan = float("nan")
        return dict(imputation_error=nan, val_mse=nan, val_bce=nan, val_ce=nan)
    was = model.training
    model.eval()
    try:
        logits = forward_rows(model, fill, td.clusters, td.val_rows)
    finally:
        model.train(was)
    m, y, k = td.val_mask, td.val_target, td.kinds
    terms = []
    if n_cont:
        c = k.continuous
        terms.append(((logits[:, c] - y[:, c]).square() * m[:, c]).sum() / n_cont)
    if n_bin:
        b = k.binary
        bce = F.binary_cross_entropy_with_logits(logits[:, b], y[:, b], weight=m[:, b].float(), reduction="sum")
        terms.append(bce / n_bin)
    for g, count in zip(k.groups, n_cat):
        if count:
            rows = m[:, g].all(dim=1)
            ce = F.cross_entropy(logits[:, g], y[:, g].argmax(dim=1), reduction="none")
            terms.append((ce * rows).sum() / count)
    values = torch.stack(terms).tolist() if terms else []
    mse = values.pop(0) if n_cont else 0.0
    bce = values.pop(0) if n_bin else 0.0
    ce = sum(values)
    return dict(imputation_error=mse + bce + ce, val_mse=mse, val_bce=bce, val_ce=ce)


# ---------------------------------------------------------------------- training
@dataclass
class Phase:
    """Settings of one training phase (the initial phase, or one refit loop)."""

    epochs: int
    lr: float
    decay_factor: float
    beta: float
    weight_decay: float
    batch_size: int
    precision: str = "float32"
    input_dropout: float = 0.0
    epoch_rows: int | None = None

    def autocast(self, device: torch.device):
        """Mixed precision for the training forward pass when ``precision`` is "bfloat16"."""
        if self.precision == "bfloat16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass
class History:
    """Training history, one row per epoch plus one per validation of a refit loop."""

    rows: list = field(default_factory=list)
    epoch: int = 0
    steps: int = 0

    def frame(self) -> pd.DataFrame:
        cols = ["phase", "loop", "epoch", "train_loss", "train_mse", "train_bce", "train_ce", "train_kl",
                "imputation_error", "val_mse", "val_bce", "val_ce", "lr", "selected"]
        df = pd.DataFrame(self.rows, columns=cols)
        df["selected"] = df["selected"].eq(True)
        return df


def make_adam(model, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with coupled L2 ``weight_decay``; the fused kernel where this torch has one for the device.

    The fused update touches every parameter once, which matters with many
    per-cluster replicas (K = 1000 gives ~36M parameters for the default widths).

    One optimizer covers each stacked ``[K, in, out]`` weight, so a replica whose
    cluster has no row in a batch still takes that step (zero gradient plus the
    L2 term, moved by its Adam moments). The published per-cluster modules skip
    it (their gradient is None). The two agree whenever every cluster has a row
    in every batch: always with the default ``batch_size=4000`` on tables of up
    to 4000 rows; otherwise a cluster of m rows misses a batch with probability
    about ``(1 - batch_size / n_rows) ** m``.
    """
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@torch.no_grad()
def flush_subnormals(opt) -> None:
    """Set the subnormal parameters and Adam moments of ``opt`` to zero (CPU tensors only).

    With coupled L2 weight decay, the weights out of a ReLU unit that no longer
    fires get no gradient but the decay, and shrink towards zero until they are
    subnormal (below ``finfo.tiny``, ~1e-38 in float32). CPUs compute with
    subnormals many times slower than with normal numbers, and every matrix
    product that touches them slows down: on the example cohort the default
    call's initial phase took 38 s instead of 15 s with thousands of them.
    Zeroing them changes each value by less than 1.2e-38, which no output can
    show; no process-wide flush-to-zero flag is set. GPUs handle subnormals at
    full speed, so CUDA tensors are left alone. Called every ``FLUSH_EVERY``
    optimiser steps by :func:`run_epochs`.
    """
    for group in opt.param_groups:
        for p in group["params"]:
            if p.device.type != "cpu" or not p.is_floating_point():
                continue
            tiny = torch.finfo(p.dtype).tiny
            for t in (p, *(v for v in opt.state.get(p, {}).values() if torch.is_tensor(v) and v.shape == p.shape)):
                t.masked_fill_(t.abs() < tiny, 0.0)


def snapshot(model) -> dict:
    """A detached copy of the model's parameters and buffers."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def hide_cells(x, units, rate: float, value: float, generator):
    """``x`` with a random ``rate`` of its cells (whole one-hot groups together) set to ``value``.

    The hidden cells look exactly like missing ones do to the model, and the
    loss still asks for their values: the network learns to predict a cell
    from the others instead of copying it through.
    """
    hide = torch.rand(x.shape, generator=generator, device=x.device) < rate
    return torch.where(hide[:, units], x.new_tensor(value), x)


class RowStream:
    """The order rows are trained in: a fresh shuffle per pass over the table, handed out a slice at a time.

    An epoch of the whole table takes one shuffle, as it always did; an epoch of
    ``epoch_rows`` rows takes the next rows of the running shuffle (across
    epochs), so every row is seen once per pass whatever the epoch size.
    """

    def __init__(self, n: int, generator: torch.Generator, device):
        self.n, self.generator, self.device = n, generator, device
        self.perm, self.pos = None, n

    def take(self, size: int) -> torch.Tensor:
        parts = []
        while size:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.generator).to(self.device), 0
            k = min(size, self.n - self.pos)
            parts.append(self.perm[self.pos : self.pos + k])
            self.pos, size = self.pos + k, size - k
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def run_epochs(model, td: TrainingData, fill, weight, phase: Phase, gens: Generators, history: History, *,
               label: str, loop, validate_every: int = 0, patience: int | None = None, on_epoch=None,
               validate_on=None):
    """Train up to ``phase.epochs`` epochs on ``fill`` with cell weights ``weight``.

    An epoch is a pass over the table, or the next ``phase.epoch_rows`` rows of
    a running shuffle when that is set and smaller (see :class:`RowStream`).
    A fresh Adam (coupled L2 ``weight_decay``) starts at ``phase.lr``, decayed by
    ``decay_factor`` after each epoch. With ``validate_every`` > 0, the model is
    validated every that many epochs and after the last one, and the best
    validated state is returned as ``(error, state)``; with ``patience``, the
    phase ends once that many validations in a row do not beat its best.
    Returns the learning rate reached and that pair (``(inf, None)`` without
    validation). ``validate_on`` = ``(td, fill)`` validates on another table
    than the one trained on (a bootstrap resample is validated on the
    original rows' held-out cells). Every ``FLUSH_EVERY`` steps, subnormal
    parameters are set to zero (:func:`flush_subnormals`).
    """
    opt = make_adam(model, phase.lr, phase.weight_decay)
    units = td.column_units() if phase.input_dropout else None
    n = td.n_rows
    device = fill.device
    best = (math.inf, None)
    stale = 0
    lr = phase.lr
    stream = RowStream(n, gens.shuffle, device)
    rows_per_epoch = n if phase.epoch_rows is None else min(n, phase.epoch_rows)
    model.train()
    for e in range(phase.epochs):
        for group in opt.param_groups:
            group["lr"] = lr
        perm = stream.take(rows_per_epoch)
        acc = fill.new_zeros(5)
        for idx in perm.split(phase.batch_size):
            xb = fill[idx]
            wb = None if weight is None else weight[idx].to(xb.dtype)
            xin = xb if units is None else hide_cells(xb, units, phase.input_dropout, td.replacement, gens.noise)
            with phase.autocast(device):
                logits, mu, logvar = model(xin, td.clusters[idx], generator=gens.noise)
            logits, mu, logvar = logits.float(), mu.float(), logvar.float()
            mse, bce, ce = reconstruction_terms(logits, xb, wb, td.kinds)
            kl = kl_divergence(mu, logvar)
            loss = mse + bce + ce + phase.beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.steps += 1
            if history.steps % FLUSH_EVERY == 0:
                flush_subnormals(opt)
            acc += torch.stack([loss, mse, bce, ce, kl]).detach()
        stats = (acc / rows_per_epoch).tolist()
        row = dict(phase=label, loop=loop, epoch=history.epoch, steps=history.steps, train_loss=stats[0],
                   train_mse=stats[1], train_bce=stats[2], train_ce=stats[3], train_kl=stats[4], lr=lr)
        if not math.isfinite(stats[0]):
            raise FloatingPointError(
                f"training diverged in the {label} phase at epoch {history.epoch} (loss {stats[0]}); "
                "lower the learning rate, or check for columns with extreme values"
            )
        last = e == phase.epochs - 1
        if validate_every and ((e + 1) % validate_every == 0 or last):
            row.update(validate(model, *(validate_on or (td, fill))))
            stale += 1
            if row["imputation_error"] < best[0]:
                best, stale = (row["imputation_error"], snapshot(model)), 0
        history.rows.append(row)
        history.epoch += 1
        lr *= phase.decay_factor
        if on_epoch is not None:
            on_epoch(row)
        if patience and stale >= patience:
            break
    return lr, best


@dataclass
class FitResult:
    """What :func:`fit` found: the selected model state, its fill and how it got there."""

    state: dict
    fill: torch.Tensor
    error: float
    history: History
    final_lr: float
    epochs: int
    loops: int
    stop_reason: str
    selected_phase: str
    passes: int = 1  # imputation passes behind the selected model's output (its fill's depth + 1)

    def summary(self) -> dict:
        return dict(epochs=self.epochs, steps=self.history.steps, refit_loops=self.loops,
                    stop_reason=self.stop_reason, selected=self.selected_phase, validation_error=self.error,
                    final_lr=self.final_lr, imputation_passes=self.passes)


def train_initial(model, td: TrainingData, phase: Phase, gens: Generators, history: History, *,
                  validate_every: int = 1, patience: int | None = None, restore_best: bool = True, on_epoch=None):
    """Masked training on the observed cells; returns ``(lr reached, best validation error)``.

    The best validated epoch is restored at the end when ``restore_best`` (the
    published code kept the last epoch whatever its error).
    """
    lr, (err, state) = run_epochs(model, td, td.data, td.train_weight, phase, gens, history, label="initial",
                                  loop=0, validate_every=validate_every, patience=patience, on_epoch=on_epoch)
    if restore_best and state is not None:
        model.load_state_dict(state)
    return lr, err


def refit_loop(model, td: TrainingData, phase: Phase, gens: Generators, history: History, *,
               max_loops: int, patience: int, tol: float = 0.0, validate_every: int = 0,
               phase_patience: int | None = None, on_epoch=None, on_loop=None) -> FitResult:
    """Impute-and-refit until ``patience`` loops in a row fail to improve the best error.

    The baseline is the current model fed with the dataset's own fill (for the
    initial model, the replacement-filled table it was trained on). Loop k refits
    on the model's imputation of the best fill so far and is scored on that fill.
    A loop with a lower error becomes the best model; it resets the patience
    count only when it lowers the error by more than the fraction ``tol``. After
    a loop with no lower error, training restarts from the best model. The
    result's ``passes`` counts the imputations chained into the selected fill,
    plus the one that makes the output: what ``CISSVAEImputer.transform`` repeats
    on new rows.
    ``on_loop(step, error)`` sees the baseline (step 0) and every loop's error;
    it may raise to stop training (for example to prune a tuning trial).
    With ``validate_every``, each loop is validated as it trains, ends early
    after ``phase_patience`` validations without a better error, and keeps its
    best validated state.
    """
    fill, depth = td.data, 0
    scores = validate(model, td, fill)
    best_err, best_state, best_fill, best_depth = scores["imputation_error"], snapshot(model), fill, 0
    selected = "initial"
    history.rows.append(dict(phase="refit", loop=0, epoch=history.epoch - 1, **scores))
    best_row = len(history.rows) - 1
    if on_loop is not None:
        on_loop(0, best_err)
    next_fill, next_depth = impute(model, td, fill), 1
    lr, bad, loops, reason = phase.lr, 0, 0, f"max_loops={max_loops} reached"
    if max_loops == 0:
        reason = "no refit loops asked for"
    for loop in range(1, max_loops + 1):
        fill, depth = next_fill, next_depth
        lr, (err, state) = run_epochs(model, td, fill, td.refit_weight, dataclasses.replace(phase, lr=lr), gens,
                                      history, label="refit", loop=loop, validate_every=validate_every,
                                      patience=phase_patience, on_epoch=on_epoch)
        loops = loop
        if state is not None:
            model.load_state_dict(state)
        scores = validate(model, td, fill)
        history.rows.append(dict(phase="refit", loop=loop, epoch=history.epoch - 1, lr=lr, **scores))
        err = scores["imputation_error"]
        logger.debug("refit loop %d: imputation error %.6g (best %.6g)", loop, err, best_err)
        if on_loop is not None:
            on_loop(loop, err)
        improved = err < best_err * (1 - tol)
        if err < best_err:
            best_err, best_state, best_fill, best_depth = err, snapshot(model), fill, depth
            best_row, selected = len(history.rows) - 1, f"refit loop {loop}"
            next_fill, next_depth = impute(model, td, fill), depth + 1
        else:
            model.load_state_dict(best_state)
        bad = 0 if improved else bad + 1
        if bad >= patience:
            reason = f"no improvement{f' above {tol:g}' if tol else ''} in {patience} loop(s)"
            break
    if math.isnan(best_err):
        reason += " (no validation cells: the last model is kept)"
        best_state, best_fill, best_depth = snapshot(model), fill, depth
    history.rows[best_row]["selected"] = True
    return FitResult(best_state, best_fill, best_err, history, lr, history.epoch, loops, reason, selected,
                     best_depth + 1)


def fit(model, td: TrainingData, initial: Phase, refit: Phase | None, gens: Generators, *, max_loops: int,
        patience: int, tol: float = 0.0, validate_every: int = 10, phase_patience: int | None = None,
        on_epoch=None, on_loop=None) -> FitResult:
    """Initial training, then the impute-refit loop; loads the selected state into ``model``.

    ``refit.lr`` None continues from the learning rate reached by the initial phase.
    """
    history = History()
    lr, _ = train_initial(model, td, initial, gens, history, validate_every=validate_every, patience=phase_patience,
                          on_epoch=on_epoch)
    model.set_final_lr(lr)
    refit = refit or initial
    start = dataclasses.replace(refit, lr=lr if refit.lr is None else refit.lr)
    result = refit_loop(model, td, start, gens, history, max_loops=max_loops, patience=patience, tol=tol,
                        validate_every=validate_every if phase_patience else 0, phase_patience=phase_patience,
                        on_epoch=on_epoch, on_loop=on_loop)
    model.load_state_dict(result.state)
    model.set_final_lr(result.final_lr)
    return result


def bootstrap_rows(n: int, seed: int, b: int) -> torch.Tensor:
    """Row indices of bootstrap resample ``b`` of ``n`` rows: ``n`` drawn with replacement, seeded by ``(seed, b)``."""
    return torch.randint(n, (n,), generator=torch.Generator().manual_seed(derived_seed(seed, 104729, b)))


def bootstrap_states(model, td: TrainingData, fill, phase: Phase, n_models: int, seed: int, *,
                     validate_every: int, patience: int | None, first: int = 0) -> list[dict]:
    """Parameters of ``n_models`` fits of ``model``'s network, each from scratch on a bootstrap resample of the rows.

    Fit ``b`` re-initialises a copy of ``model`` (left untouched) and trains
    up to ``phase.epochs`` epochs on ``n`` rows drawn with replacement from
    ``fill``, scoring the same observed, non-validation cells as training does,
    and is selected as the fit was: the state with the lowest error on the
    held-out validation cells of the original rows (validated every
    ``validate_every`` epochs; ``patience`` validations without improvement end
    it). Its parameters reflect the uncertainty of the fit to this sample of
    rows, so a multiple imputation drawn from fit ``b`` is "proper" in Rubin's
    sense (bootstrap-then-impute, Bartlett & Hughes 2020).

    Every fit starts from the same initial parameters and sees its rows in the
    same random order (both seeded by ``seed``); only the resample differs
    (seeded by ``(seed, b)``, ``b`` counting from ``first``). Fits are then a
    function of their rows, and the spread between them is the sampling
    variation Rubin's rules expect. With their own initial parameters and
    order as well, the spread also held the optimiser's randomness, which the
    pooled variance counts in full although the average of ``m`` draws holds
    a ``1/m`` share of it: intervals too wide (``benchmarks/mi_coverage.py``,
    small network, 200 repetitions: slope at n = 200 covered 98 %, pooled SE
    0.099 for an empirical 0.086; with shared randomness 95.5 %, 0.092 and 0.089).
    """
    states = []
    for b in range(first, first + n_models):
        gens = Generators.from_seed(derived_seed(seed, 104723, 0), fill.device)  # the same for every b
        rows = bootstrap_rows(td.n_rows, seed, b).to(fill.device)
        sample = dataclasses.replace(td, data=td.data[rows], clusters=td.clusters[rows],
                                     train_weight=td.train_weight[rows])
        refit = copy.deepcopy(model)
        refit.reset_parameters(gens.shuffle)
        _, (_, best) = run_epochs(refit, sample, fill[rows], sample.train_weight, phase, gens, History(),
                                  label="bootstrap", loop=b, validate_every=validate_every, patience=patience,
                                  validate_on=(td, fill))
        states.append(best if best is not None else snapshot(refit))
    return states
