"""Nothing a job leaves on the workers outlives its client.

Folding passes note on each worker what they ran over
(:mod:`dkmeans.runner.notes`), and tasks that read from object storage
leave fsspec filesystems in the workers' instance caches: both may hold
storage credentials. :class:`ForgetOnClientExit`, a scheduler plugin, has
every worker drop them (:func:`~dkmeans.runner.notes.forget_worker_state`)
when a client leaves the scheduler. The ``dkmeans`` command also asks for
it at the end of each job (:func:`dkmeans.cli.cluster.connect`), which needs
nothing on the scheduler.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from dkmeans.runner.notes import forget_worker_state

log = logging.getLogger("dkmeans")

#: Seconds after a client leaves that the scheduler forgets its filesystems
FORGET_DELAY = 0.5


class ForgetOnClientExit(SchedulerPlugin):
    """When a client leaves, every worker forgets what jobs left on it."""

    name = "dkmeans-forget-on-client-exit"

    def remove_client(self, scheduler: Any, client: str) -> None:
        scheduler.loop.add_callback(_forget_everywhere, scheduler)
        # the scheduler unpickled the graphs too; what the client's tasks
        # held is let go in the callbacks that follow
        scheduler.loop.call_later(FORGET_DELAY, forget_worker_state)


async def _forget_everywhere(scheduler: Any) -> None:
    """Each worker forgets; one that is gone (a cluster shutting down) has
    nothing left to forget, and is passed over quietly."""
    function = pickle.dumps(forget_worker_state)
    for address in list(scheduler.workers):
        try:
            await scheduler.rpc(address).run(function=function, wait=True)
        except Exception as err:  # the worker left
            log.debug("forgetting on %s: %s", address, err)


_REGISTERED: set[str] = set()


def ensure_forgetting(client: Any) -> None:
    """Register :class:`ForgetOnClientExit` on ``client``'s scheduler, once."""
    if client.id in _REGISTERED:
        return
    _REGISTERED.add(client.id)
    try:
        client.register_plugin(ForgetOnClientExit(), name=ForgetOnClientExit.name)
    except Exception as err:  # a scheduler that cannot import dkmeans
        log.debug("no forgetting plugin on the scheduler: %s", err)


def forget_on_workers(client: Any) -> None:
    """Have every worker of ``client``, and its scheduler, forget what jobs
    left on them, now."""
    try:
        client.run(forget_worker_state)
        client.run_on_scheduler(forget_worker_state)  # it unpickled the graphs too
    except Exception as err:  # a worker gone: nothing of ours is left on it
        log.debug("forgetting on the workers: %s", err)
