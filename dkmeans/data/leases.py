"""One writer at a time per output, on any filesystem: a lease beside the target.

Two cron runs of one job, or two notebooks saving one model, must not
interleave their writes: one could delete the arrays the other's
``model.json`` names, or swap a half-written labels array over a complete
one. Every dkmeans writer (model directories, checkpoints, labels) first
takes the lease ``.NAME.lock`` beside its target:

- It is created exclusively: ``O_CREAT | O_EXCL`` on a local disk, a
  conditional PUT (``If-None-Match: *``, fsspec's ``mode="create"``) on an
  object store.
- It holds the writer's id, host, process and the time it was last renewed;
  a thread renews it every :data:`RENEW_SECONDS` while the write goes on.
- A lease held by a process of this host that no longer runs, or not
  renewed for :data:`EXPIRES_SECONDS` (its writer died elsewhere), is broken.
- Another writer waits for a live holder up to ``wait`` seconds, then raises
  :class:`~dkmeans.errors.WriteConflictError` naming it. A writer whose lease
  was broken under it (it stalled past the expiry) learns so from
  :meth:`Lease.check` before it commits anything, and raises the same error.

Writers also check, after their last step, that the target is theirs
(see :mod:`dkmeans.data.outputs`), so a lost race is reported, never hidden.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from dkmeans.data.storage import Location, put_atomic
from dkmeans.errors import WriteConflictError

#: A lease not renewed for this long is taken to be a dead writer's.
EXPIRES_SECONDS = 120.0
#: How often a live writer renews its lease.
RENEW_SECONDS = 15.0
#: How long a writer waits for another's lease by default: long enough for a
#: dead writer's lease to expire.
WAIT_SECONDS = EXPIRES_SECONDS + 2 * RENEW_SECONDS

#: Object stores have no exclusive create through fsspec's in-memory
#: filesystem: creation is serialised within this process there.
_CREATE_LOCK = threading.Lock()


def lock_location(target: Location) -> Location:
    """Where the lease of ``target`` lives: ``.NAME.lock`` beside it."""
    return target.sibling(f".{target.name}.lock")


def _create(loc: Location, data: bytes) -> bool:
    """Create ``loc`` holding ``data`` if nothing is there; False if something is."""
    if loc.is_local:
        os.makedirs(os.path.dirname(loc.path), exist_ok=True)
        try:
            fd = os.open(loc.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True
    with _CREATE_LOCK:
        try:
            loc.fs.pipe_file(loc.path, data, mode="create")
        except FileExistsError:
            return False
    loc.fs.invalidate_cache()
    return True


def _read(loc: Location) -> dict | None:
    """The lease's record, or None if there is none (or it is unreadable)."""
    loc.fs.invalidate_cache()
    try:
        record = json.loads(loc.read_bytes())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(record: dict) -> bool:
    """Whether a lease's writer is gone: a dead process here, or no renewal."""
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int) \
            and not _pid_alive(record["pid"]):
        return True
    renewed = record.get("renewed")
    return not isinstance(renewed, (int, float)) or time.time() - renewed > EXPIRES_SECONDS


class Lease:
    """A held lease on one target; renewed by a thread until released."""

    def __init__(self, target: Location, what: str):
        self.target, self.what = target, what
        self.loc = lock_location(target)
        self.owner = uuid.uuid4().hex
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(),
                           "pid": os.getpid(), "what": self.what,
                           "renewed": time.time()}).encode()

    def acquire(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        delay = 0.05
        while not _create(self.loc, self._record()):
            holder = _read(self.loc)
            if holder is not None and holder.get("owner") == self.owner:
                break  # our own create, whose answer was lost and the request retried
            if holder is not None and _stale(holder):
                with contextlib.suppress(FileNotFoundError):
                    if _read(self.loc) == holder:  # nobody broke and retook it meanwhile
                        self.loc.fs.rm_file(self.loc.path)
                continue
            if time.monotonic() > deadline:
                raise WriteConflictError(
                    f"Another writer is writing {self.target.url!r} ({_describe(holder)}); "
                    f"gave up after waiting {wait:.0f} s. Nothing was changed. If no other "
                    f"job is running, remove {self.loc.url!r}.")
            time.sleep(delay)
            delay = min(1.0, delay * 2)
        renew = threading.Thread(target=self._renew, daemon=True, name="dkmeans-lease")
        self._thread = renew
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            record = _read(self.loc)
            if record is None or record.get("owner") != self.owner:
                self._lost.set()
                return
            with contextlib.suppress(OSError):
                put_atomic(self.loc, self._record())

    def check(self) -> None:
        """Raise :class:`WriteConflictError` unless the lease is still ours."""
        record = _read(self.loc)
        if self._lost.is_set() or record is None or record.get("owner") != self.owner:
            self._lost.set()
            raise WriteConflictError(
                f"Lost the lease on {self.target.url!r} to another writer "
                f"({_describe(record)}) while writing: this write stalled past "
                f"{EXPIRES_SECONDS:.0f} s. The other writer's result stands.")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        record = _read(self.loc)
        if record is not None and record.get("owner") == self.owner:
            with contextlib.suppress(FileNotFoundError):
                self.loc.fs.rm_file(self.loc.path)


def _describe(record: dict | None) -> str:
    if record is None:
        return "its lease is unreadable"
    age = time.time() - record["renewed"] if isinstance(record.get("renewed"), (int, float)) \
        else float("nan")
    return (f"process {record.get('pid')} on {record.get('host')!s}, renewed "
            f"{age:.0f} s ago")


@contextlib.contextmanager
def lease(target: Location, what: str = "output", wait: float | None = None,
          ) -> Iterator[Lease]:
    """Hold the lease on ``target`` for the block's duration (see the module).

    Parameters
    ----------
    target : Location
        The output (a model directory, a labels array).
    what : str
        What is being written, recorded in the lease for the other writers' errors.
    wait : float, optional
        Seconds to wait for another writer's lease; default :data:`WAIT_SECONDS`.

    Raises
    ------
    WriteConflictError
        Another live writer held the lease for longer than ``wait``.
    """
    held = Lease(target, what)
    held.acquire(WAIT_SECONDS if wait is None else wait)
    try:
        yield held
    finally:
        held.release()


def is_lock_name(name: str) -> bool:
    """Whether a file name is a lease's (so listings can pass over it)."""
    return name.startswith(".") and name.endswith(".lock")


__all__ = ["EXPIRES_SECONDS", "Lease", "WAIT_SECONDS", "is_lock_name", "lease",
           "lock_location"]
