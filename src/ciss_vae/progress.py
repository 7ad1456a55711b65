"""Rich progress bars for training: display only, never a change to what is trained.

:class:`TrainingProgress` is a context manager whose :meth:`~TrainingProgress.on_epoch`
is the ``on_epoch(row)`` callback of :func:`ciss_vae.engine.fit` (and of
:func:`ciss_vae.pipeline.run_cissvae`). It shows one bar for the initial phase
and one per refit loop. A phase that ends early (``n_iter_no_change``) has its
bar completed when the next phase starts or the block ends, so every bar
finishes cleanly. Nothing is shown unless stderr is a terminal (or ``enabled``
is forced on with a console of your own).
"""

from __future__ import annotations

import contextlib
import logging
import sys

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
    """Progress bars over the epochs of the initial phase and of each refit loop.

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

    Examples
    --------
    >>> with TrainingProgress(epochs=3, enabled=False) as progress:
    ...     progress.on_epoch(dict(phase="initial", loop=0, epoch=0, train_loss=1.0))
    >>> progress.rows_seen
    1
    """

    def __init__(self, epochs: int, epochs_per_loop: int | None = None, max_loops: int | None = None, *,
                 enabled=None, on_epoch=None, console=None):
        self.epochs = int(epochs)
        self.epochs_per_loop = int(epochs if epochs_per_loop is None else epochs_per_loop)
        self.max_loops = max_loops
        self.enabled = progress_enabled(enabled) if console is None else (enabled is not False)
        self.inner = on_epoch
        self.console = console
        self.rows_seen = 0
        self._progress = None
        self._task = None
        self._key = None
        self._done = []  # finished bars (rich Task objects), for inspection

    # -- context
    def __enter__(self) -> "TrainingProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = self.console if self.console is not None else Console(stderr=True)
            self._progress = Progress(TextColumn("{task.fields[label]:<14}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                                      transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._finish_task()
            self._progress.stop()
            self._progress = None

    # -- callback
    def on_epoch(self, row) -> None:
        """The engine's per-epoch callback: forwards ``row`` to the wrapped callback and advances a bar."""
        if self.inner is not None:
            self.inner(row)
        self.rows_seen += 1
        if self._progress is None:
            return
        key = (row.get("phase"), row.get("loop"))
        if key != self._key:
            self._finish_task()
            self._key = key
            if row.get("phase") == "initial":
                label, total = "initial", self.epochs
            else:
                loops = f"/{self.max_loops}" if self.max_loops else ""
                label, total = f"refit {row.get('loop')}{loops}", self.epochs_per_loop
            self._task = self._progress.add_task("", total=max(total, 1), label=label)
        desc = f"loss {row['train_loss']:.4g}" if row.get("train_loss") is not None else ""
        if row.get("imputation_error") is not None:
            desc += f"  val {row['imputation_error']:.4g}"
        self._progress.update(self._task, advance=1, description=desc)

    __call__ = on_epoch

    def _finish_task(self) -> None:
        """Complete the current bar (a phase that stopped early ends at its last epoch)."""
        if self._progress is not None and self._task is not None:
            task = next((t for t in self._progress.tasks if t.id == self._task), None)
            if task is not None:
                self._progress.update(self._task, total=max(task.completed, 1), completed=max(task.completed, 1))
                self._done.append(task)
            self._task = None


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
