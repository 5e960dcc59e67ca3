"""Starts ``python -m dkmeans`` processes for the tests, forked from an
interpreter that has already imported what the command imports.

Each request (a JSON line on stdin: arguments, working folder, environment,
files for stdout and stderr, timeout) forks a child that becomes what
``python -m dkmeans ARGS`` is at its first line: its own working folder,
environment (dask's configuration read from it again), ``sys.argv`` and
``sys.path[0]``, stdin from /dev/null, stdout and stderr to the files. It
then runs ``dkmeans.__main__`` as ``-m`` does, and leaves by the
interpreter's own exit (non-daemon threads joined, atexit run, streams
flushed). The reply is the child's exit status as subprocess reports it
(negative: the signal that ended it; ``null``: killed at the timeout).

Why: the imports (dask.array, distributed, scikit-learn through scipy) take
2.2 s of every ``python -m dkmeans`` on a 2-core machine, most of a small
job, and the suite runs the command a few hundred times. Nothing runs here
before a fork but imports: no thread, pool or event loop exists to be
copied half-alive into a child.
"""

import json
import os
import runpy
import sys
import tempfile
import time

import dask
import dask.array
import distributed  # noqa: F401
import sklearn.base  # noqa: F401

import dkmeans.algorithms.fit
import dkmeans.cli.command
import dkmeans.estimators  # noqa: F401


def _become(request: dict) -> None:
    """In the child: the state ``python -m dkmeans`` starts from."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR read again from this environment
    dask.config.refresh()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    sys.argv = ["-m", *request["args"]]
    sys.path[0] = request["cwd"]


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit status (subprocess' sign convention); ``None``
    after killing it when ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become(request)
            runpy.run_module("dkmeans", run_name="__main__", alter_sys=True)
            return  # the interpreter's exit, as at the end of `python -m dkmeans`
        print(json.dumps({"returncode": _wait(pid, request["timeout"])}), flush=True)


if __name__ == "__main__":
    main()
