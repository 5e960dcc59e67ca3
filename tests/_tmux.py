"""A real pseudo-terminal for the tests: a tmux server of the test's own, on
a socket in its temporary folder (nothing left in /tmp/tmux-UID, no other
tmux session touched), stopped at the end."""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class Pane:
    """One tmux session's window: ``screen()`` is what it shows."""

    def __init__(self, socket: Path):
        self.tmux = ["tmux", "-S", str(socket)]

    def screen(self, lines: int = 500) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-S", f"-{lines}",
                               "-t", "job"], capture_output=True, text=True).stdout

    def send_keys(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "job", *keys], check=True)


@contextlib.contextmanager
def terminal(folder: Path, command: str, width: int = 160,
             height: int = 60) -> Iterator[Pane]:
    """``command`` running in a ``width`` x ``height`` terminal."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the terminal tests: tmux is missing (.ci/run installs it)")
        pytest.skip("tmux is not installed")
    pane = Pane(folder / "tmux.sock")
    subprocess.run([*pane.tmux, "new-session", "-d", "-s", "job", "-x", str(width),
                    "-y", str(height), command], check=True)
    try:
        yield pane
    finally:
        subprocess.run([*pane.tmux, "kill-server"], capture_output=True)
