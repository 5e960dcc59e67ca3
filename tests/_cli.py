"""Running the ``dkmeans`` command as a user does: a process of its own, with
its arguments, working folder, environment, output and exit status.

The process is forked from a server that has already imported what the
command imports (``_cli_server.py``: 2.2 s of every ``python -m dkmeans``
here). What the start of a fresh interpreter itself decides (the entry
point, ``--version``, signals, a pipe closed by its reader, jobs killed
and resumed) is tested on ``python -m dkmeans`` started by subprocess.
"""

import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_server: subprocess.Popen | None = None


def _stop() -> None:
    """End the server (it leaves at the end of its input) and wait for it."""
    if _server is not None and _server.poll() is None:
        _server.stdin.close()
        try:
            _server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _server.kill()
            _server.wait()
        _server.stdout.close()


def _running_server() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        script = Path(__file__).with_name("_cli_server.py")
        _server = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        atexit.register(_stop)
    return _server


def run(*args, check=True, timeout=300, env=None, cwd=None):
    """``python -m dkmeans ARGS`` (each argument ``str()``-ed), in ``cwd``
    (default: this process') with ``env`` (default: this process'); the
    completed process, with its stdout and stderr as text. AssertionError
    with the end of stderr when ``check`` and it failed;
    ``subprocess.TimeoutExpired`` (the process killed) after ``timeout``
    seconds."""
    args = [str(a) for a in args]
    server = _running_server()
    with tempfile.TemporaryDirectory(prefix="dkmeans-cli-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        request = {"args": args, "cwd": str(cwd or os.getcwd()), "stdout": out, "stderr": err,
                   "env": dict(os.environ if env is None else env), "timeout": timeout}
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the command server ended (exit {server.wait()})")
        returncode = json.loads(reply)["returncode"]
        stdout, stderr = Path(out).read_text(), Path(err).read_text()
    argv = [sys.executable, "-m", "dkmeans", *args]
    if returncode is None:
        raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
    proc = subprocess.CompletedProcess(argv, returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr[-3000:]}")
    return proc
