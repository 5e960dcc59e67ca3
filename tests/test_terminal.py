"""What a person sees in a terminal: a real pseudo-terminal (a tmux pane)."""

import sys
import time

import numpy as np
import pytest
from _tmux import terminal

pytestmark = [pytest.mark.cluster]


def test_iteration_lines_never_share_a_line_with_a_bar(tmp_path):
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((200_000, 8),
                                                                 dtype=np.float32))
    command = (f"{sys.executable} -m dkmeans fit {tmp_path / 'X.npy'} -k 16 --tol 0 "
               f"--max-iter 8 --workers 2 -o {tmp_path / 'm'}; echo EXIT=$?; sleep 60")
    with terminal(tmp_path, command) as pane:
        deadline = time.monotonic() + 180
        shown = ""
        while time.monotonic() < deadline and "EXIT=" not in shown:
            time.sleep(0.2)
            shown = pane.screen()
    assert "EXIT=0" in shown, shown[-3000:]
    lines = [line.rstrip() for line in shown.splitlines()]
    iterations = [line for line in lines if "iteration " in line and "inertia" in line]
    assert len(iterations) == 8
    assert all(line.startswith("iteration ") for line in iterations), iterations
    assert not any("block/s" in line for line in lines if line)  # bars gone when done
