"""Progress of training: rich bars on a terminal, log lines elsewhere; display only, never a change to training.

:class:`TrainingProgress` is a context manager whose :meth:`~TrainingProgress.on_epoch`
is the ``on_epoch(row)`` callback of :func:`ciss_vae.engine.fit` (and of
:func:`ciss_vae.pipeline.run_cissvae`). On a terminal it shows one bar for the
initial phase and one per refit loop; a phase that ends early
(``n_iter_no_change``) has its bar completed when the next phase starts or the
block ends, so every bar finishes cleanly. Elsewhere it logs the same facts
about every tenth of a phase, when the phase is slow enough for that to help.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time

__all__ = ["TrainingProgress", "epoch_logger", "progress_enabled", "report_to_stderr", "reporting"]

logger = logging.getLogger("ciss_vae")


def progress_enabled(show_progress=None, stream=None) -> bool:
    """``show_progress`` as a bool: None means "when ``stream`` (default stderr) is a terminal"."""
    if show_progress is not None:
        return bool(show_progress)
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class TrainingProgress:
    """Progress over the epochs of the initial phase and of each refit loop: bars, or log lines.

    On a terminal (or with ``enabled=True``) a bar per phase shows the epoch,
    the optimiser steps so far, the training loss, the last and best validation
    errors, the time spent and an estimate of the time left in the phase (an
    upper bound: a phase may stop early). Elsewhere (a notebook, CI, a log
    file) the same facts go to the ``ciss_vae`` logger at INFO, at every
    ``log_every`` of a phase's epochs, at most one line per ``min_interval``
    seconds (so a fit of a few seconds stays quiet), and at the end of a phase
    that took that long.

    Parameters
    ----------
    epochs : int
        Epochs of the initial phase (the bar's total).
    epochs_per_loop : int, optional
        Epochs of one refit loop; None uses ``epochs``.
    max_loops : int, optional
        Shown in the refit bars' labels ("refit 2/100").
    enabled : bool, optional
        None shows the bars only when stderr is a terminal.
    on_epoch : callable, optional
        Another ``on_epoch(row)`` callback, called first for every row.
    console : rich.console.Console, optional
        Where to draw (default: a console on stderr).
    log_every : float, default=0.1
        Share of a phase's epochs between two log lines when there are no bars.
    min_interval : float, default=10.0
        Fewest seconds between two log lines.

    Examples
    --------
    >>> with TrainingProgress(epochs=3, enabled=False) as progress:
    ...     progress.on_epoch(dict(phase="initial", loop=0, epoch=0, train_loss=1.0))
    >>> progress.rows_seen
    1
    """

    def __init__(self, epochs: int, epochs_per_loop: int | None = None, max_loops: int | None = None, *,
                 enabled=None, on_epoch=None, console=None, log_every: float = 0.1, min_interval: float = 10.0):
        self.epochs = int(epochs)
        self.epochs_per_loop = int(epochs if epochs_per_loop is None else epochs_per_loop)
        self.max_loops = max_loops
        self.enabled = progress_enabled(enabled) if console is None else (enabled is not False)
        self.inner = on_epoch
        self.console = console
        self.log_every, self.min_interval = log_every, min_interval
        self.rows_seen = 0
        self._progress = None
        self._task = None
        self._key = None
        self._phase = None
        self._done = []  # finished bars (rich Task objects), for inspection

    # -- context
    def __enter__(self) -> "TrainingProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            console = self.console if self.console is not None else Console(stderr=True)
            self._progress = Progress(TextColumn("{task.fields[label]:<14}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      TextColumn("{task.description}"), console=console, transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._end_phase()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # -- callback
    def on_epoch(self, row) -> None:
        """The engine's per-epoch callback: forwards ``row`` to the wrapped callback and reports it."""
        if self.inner is not None:
            self.inner(row)
        self.rows_seen += 1
        key = (row.get("phase"), row.get("loop"))
        if key != self._key:
            self._end_phase()
            self._key = key
            self._start_phase(row)
        ph = self._phase
        ph["done"] += 1
        ph["row"], ph["end"] = row, time.perf_counter()
        if row.get("imputation_error") is not None:
            ph["best"] = min(ph["best"], row["imputation_error"])
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=self._facts(row, ph))
        elif ph["next_log"] <= ph["done"] < ph["total"]:  # the phase's end has a line of its own
            ph["next_log"] += ph["step"]
            if time.perf_counter() - ph["last_log"] >= self.min_interval:
                self._log(ph)

    __call__ = on_epoch

    def _start_phase(self, row) -> None:
        if row.get("phase") == "initial":
            label, total = "initial", self.epochs
        else:
            loops = f"/{self.max_loops}" if self.max_loops else ""
            label, total = f"refit {row.get('loop')}{loops}", self.epochs_per_loop
        total = max(total, 1)
        now = time.perf_counter()
        step = max(1, math.ceil(total * self.log_every)) if self.log_every else total + 1
        self._phase = dict(label=label, total=total, done=0, start=now, end=now, last_log=now, step=step,
                           next_log=step, best=math.inf, row=row)
        if self._progress is not None:
            self._task = self._progress.add_task("", total=total, label=label)

    @staticmethod
    def _facts(row, ph) -> str:
        parts = []
        if row.get("steps") is not None:
            parts.append(f"step {row['steps']}")
        if row.get("train_loss") is not None:
            parts.append(f"loss {row['train_loss']:.4g}")
        if row.get("imputation_error") is not None:
            parts.append(f"val {row['imputation_error']:.4g}")
        if math.isfinite(ph["best"]):
            parts.append(f"best {ph['best']:.4g}")
        return "  ".join(parts)

    def _log(self, ph, final: bool = False) -> None:
        now = time.perf_counter()
        spent = now - ph["start"]
        if final:  # the phase ended with its last epoch, not when the next phase (or the fit) began
            when = f"done in {ph['end'] - ph['start']:.0f} s"
        else:
            left = spent / ph["done"] * (ph["total"] - ph["done"])
            when = f"{spent:.0f} s so far, at most ~{left:.0f} s left in this phase"
        logger.info("%s: epoch %d/%d (%d %%), %s; %s", ph["label"], ph["done"], ph["total"],
                    round(100 * ph["done"] / ph["total"]), self._facts(ph["row"], ph).replace("  ", ", "), when)
        ph["last_log"] = now

    def _end_phase(self) -> None:
        """Complete the current bar (a phase that stopped early ends at its last epoch), or log its end."""
        ph, self._phase = self._phase, None
        if ph is None:
            return
        if self._progress is not None and self._task is not None:
            task = next((t for t in self._progress.tasks if t.id == self._task), None)
            if task is not None:
                self._progress.update(self._task, total=max(task.completed, 1), completed=max(task.completed, 1))
                self._done.append(task)
            self._task = None
        elif self._progress is None and ph["end"] - ph["start"] >= self.min_interval:
            self._log(ph, final=True)


@contextlib.contextmanager
def report_to_stderr(enabled: bool, level=logging.INFO):
    """Show this package's log records on stderr while the block runs, unless logging is configured."""
    pkg = logging.getLogger("ciss_vae")
    if not enabled or pkg.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ciss_vae: %(message)s"))
    old = pkg.level
    pkg.addHandler(handler)
    pkg.setLevel(level)
    try:
        yield
    finally:
        pkg.removeHandler(handler)
        pkg.setLevel(old)


def reporting(print_dataset: bool, verbose: bool):
    """The logging scope of a run: summaries with ``print_dataset``, every validation too with ``verbose``."""
    return report_to_stderr(print_dataset or verbose, logging.DEBUG if verbose else logging.INFO)


def epoch_logger():
    """An ``on_epoch`` callback logging every validated epoch at DEBUG (what ``verbose`` adds)."""
    def on_epoch(row):
        if row.get("imputation_error") is not None:
            logger.debug("%s epoch %d: loss %.4g, imputation error %.4g, lr %.3g", row["phase"], row["epoch"],
                         row["train_loss"], row["imputation_error"], row["lr"])
    return on_epoch
