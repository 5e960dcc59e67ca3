"""Running the ``dkmeans`` command as a user does: a fresh process."""

import subprocess
import sys


def run(*args, check=True, timeout=300):
    """``python -m dkmeans ARGS`` (each argument ``str()``-ed); the completed
    process, or AssertionError with the end of stderr when ``check`` and it
    failed."""
    proc = subprocess.run([sys.executable, "-m", "dkmeans", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc
