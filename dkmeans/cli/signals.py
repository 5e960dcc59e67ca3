"""Stopping a job cleanly: SIGTERM (cron, SLURM's preemption, ``scancel``,
walltime, Kubernetes) and SIGINT (Ctrl-C), and a cluster that lost every
worker.

The first SIGTERM or SIGINT raises :class:`Stopped` in the job's main
thread: the current pass is abandoned, the last finished iteration is
written as a checkpoint when the job writes them, the cluster is shut down
and the scratch folder removed on the way out, and the command prints one
line and exits with 128 + the signal (143 for TERM, 130 for INT). A second
signal exits at once, unless it comes within :data:`SAME_STOP_SECONDS` of
the first (SLURM signals every process of a job, and its script too).

:func:`watch_workers` guards a running job against a cluster that lost every
worker: when none has been connected for the cluster file's ``timeout``,
it stops the job with :class:`WorkersLost` (exit 3) naming the workers it
had, rather than letting it wait forever.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

#: Exit status of a job that gave up on its cluster.
EXIT_NO_CLUSTER = 3


class Stopped(BaseException):
    """The job was asked to stop by a signal (not an ``Exception``, so no
    library's ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class WorkersLost(BaseException):
    """Every worker of the cluster has been gone for longer than its timeout."""


_STATE: dict[str, Any] = {"signum": None, "lost": None, "since": 0.0}

#: Signals within this many seconds of the first are the same stop: a
#: resource manager signals every process of a job, and a job script passes
#: the signal on too.
SAME_STOP_SECONDS = 2.0


def _on_signal(signum: int, frame: Any) -> None:
    if _STATE["signum"] is not None:  # asked again: at once
        if time.monotonic() - _STATE["since"] < SAME_STOP_SECONDS:
            return
        os._exit(128 + signum)
    _STATE["signum"], _STATE["since"] = signum, time.monotonic()
    raise Stopped(signum)


def _on_lost(signum: int, frame: Any) -> None:
    if _STATE["lost"] is not None and _STATE["signum"] is None:
        raise WorkersLost(_STATE["lost"])


def stop_signal() -> int | None:
    """The signal that asked this job to stop, if one did."""
    return _STATE["signum"]


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Stopped` in this (main) thread while
    the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, h) for s, h in ((signal.SIGTERM, _on_signal),
                                               (signal.SIGINT, _on_signal),
                                               (signal.SIGUSR1, _on_lost))}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def ignoring_sigint() -> Iterator[None]:
    """Processes started in the block ignore SIGINT (an ignored signal stays
    ignored across exec): Ctrl-C in a terminal reaches the whole process
    group, and the job, not each worker, decides how to stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def watch_workers(client: Any, timeout: float, interval: float = 1.0) -> Iterator[None]:
    """Stop the job (:class:`WorkersLost` in the main thread) when the
    cluster has had no worker for ``timeout`` seconds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Event()

    def watch() -> None:
        known: set[str] = set()
        since = None
        while not done.wait(interval):
            try:
                workers = set(client.scheduler_info(n_workers=-1)["workers"])
            except Exception:  # the client is closing
                return
            if workers:
                known |= workers
                since = None
                continue
            since = since or time.monotonic()
            if time.monotonic() - since > timeout:
                _STATE["lost"] = (f"every worker of the cluster is gone ({', '.join(sorted(known))}"
                                  f") and none joined within {timeout:g} s: gave up")
                _thread.interrupt_main(signal.SIGUSR1)
                return

    thread = threading.Thread(target=watch, daemon=True, name="dkmeans-watch-workers")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def checkpoint_on_stop(save_last: Any) -> Iterator[None]:
    """When the block ends because the job is stopping (a signal, or what the
    signal did to the workers), call ``save_last()``, which writes the last
    finished iteration if the job keeps checkpoints and returns how to go on
    (``"after iteration 12; rerun with --resume to continue"``), and raise
    :class:`Stopped` carrying it."""
    try:
        yield
    except BaseException as err:
        signum = stop_signal()
        if signum is None:
            raise
        stop = err if isinstance(err, Stopped) else Stopped(signum)
        stop.note = save_last()
        raise stop from None


def stop_note(args: Any, n_iter: int | None, saved: int | None, checkpoint: Any) -> str:
    """Write the last finished iteration as a checkpoint if the job keeps
    them (``checkpoint()``); what the stop line says after the signal."""
    if n_iter is None:
        return " before the first iteration finished; rerun the job"
    if getattr(args, "checkpoint_every", None) and saved != n_iter:
        checkpoint()
        saved = n_iter
    if saved is None:
        return (f" after iteration {n_iter}; no checkpoint was written (--checkpoint-every N "
                "writes them): rerun the job")
    return f" after iteration {n_iter}; rerun with --resume to continue from iteration {saved}"


class IterationCheckpoints:
    """A job's checkpoints: every ``--checkpoint-every`` iterations, and of
    the last finished iteration when the job is stopped. A subclass says how
    one is written (:meth:`write`) and calls :meth:`finished` after each
    iteration."""

    def __init__(self, args: Any, out: Any):
        self.args, self.out = args, out
        self.last: Any = None  # the last finished iteration
        self.saved: int | None = None  # the iteration of the last checkpoint

    def write(self, progress: Any) -> None:
        raise NotImplementedError

    def finished(self, progress: Any) -> None:
        self.last = progress
        every = getattr(self.args, "checkpoint_every", None)
        if every and progress.n_iter % every == 0 and not progress.converged:
            self.checkpoint(progress)

    def checkpoint(self, progress: Any) -> None:
        import logging

        self.write(progress)
        self.saved = progress.n_iter
        logging.getLogger("dkmeans").info("checkpoint: iteration %d written to %s",
                                          progress.n_iter, self.out)

    def on_stop(self) -> str:
        """Checkpoint the last finished iteration (if the job keeps them);
        how to go on."""
        return stop_note(self.args, self.last and self.last.n_iter, self.saved,
                         lambda: self.checkpoint(self.last))
