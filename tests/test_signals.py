"""A job stopped by SIGTERM (cron, SLURM, Kubernetes) or by Ctrl-C in a
terminal: a checkpoint of the last finished iteration, the cluster and its
scratch folder gone, one line, exit 143 or 130, quickly; a second signal
exits at once; workers print no tracebacks."""

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _tmux import terminal

import dkmeans

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def uniform(tmp_path_factory):
    """Rows with no clusters: Lloyd runs long enough to be stopped."""
    path = tmp_path_factory.mktemp("signals") / "X.npy"
    np.save(path, np.random.default_rng(0).random((400_000, 16), dtype=np.float32))
    return path


def _job(uniform, out, every=50):
    return [sys.executable, "-m", "dkmeans", "fit", str(uniform), "-k", "48", "--tol", "0",
            "--max-iter", "25", "--checkpoint-every", str(every), "--workers", "2",
            "-o", str(out)]


def _scratch():
    return {p.name for p in Path(tempfile.gettempdir()).glob("dkmeans-scratch-*")}


def test_sigterm_checkpoints_the_last_iteration_and_exits_143(uniform, tmp_path):
    before = _scratch()
    proc = subprocess.Popen(_job(uniform, tmp_path / "m"), stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not any(s.startswith("iteration 4 ") for s in lines):
        time.sleep(0.05)
    assert proc.poll() is None, "".join(lines)[-2000:]
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.wait(timeout=60)
    seconds = time.monotonic() - t0
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 143, err[-3000:]
    assert seconds < 30
    last = err.strip().splitlines()[-1]
    n = int(last.split("after iteration ")[1].split(";")[0])
    assert last == (f"dkmeans: stopped by SIGTERM after iteration {n}; rerun with --resume to "
                    f"continue from iteration {n}")
    assert "Traceback" not in err and "leaked" not in err
    assert _scratch() <= before  # the cluster's scratch folder is gone
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["state"] == "checkpoint" and meta["fitted"]["n_iter"] == n  # not a multiple of 50
    resumed = subprocess.run([*_job(uniform, tmp_path / "m"), "--resume", "--json", "-q"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_from"] == n
    assert dkmeans.load(tmp_path / "m").n_iter_ == 25


def test_ctrl_c_in_a_terminal_stops_cleanly_without_worker_tracebacks(uniform, tmp_path):
    command = " ".join(_job(uniform, tmp_path / "m", every=5)) + "; echo EXIT=$?; sleep 60"
    with terminal(tmp_path, command, width=200, height=50) as pane:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "iteration 6 " not in pane.screen(200):
            time.sleep(0.1)
        pane.send_keys("C-c")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "EXIT=" not in pane.screen(200):
            time.sleep(0.1)
        shown = pane.screen(200)
    assert "EXIT=130" in shown, shown[-3000:]
    assert "dkmeans: stopped by SIGINT after iteration" in shown
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown


_TWICE = """
import os, signal, time
from dkmeans.cli.signals import Stopped, handle_signals
with handle_signals():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except Stopped:
        os.kill(os.getpid(), signal.SIGTERM)   # within 2 s: the same stop
        time.sleep(2.5)
        print("still stopping", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)   # later: at once
        time.sleep(30)
"""


def test_a_second_signal_exits_at_once_unless_it_is_the_same_stop():
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _TWICE], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 143 and proc.stdout == "still stopping\n", proc.stderr
    assert time.monotonic() - t0 < 15
