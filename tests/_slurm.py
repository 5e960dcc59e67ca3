"""A real single-node SLURM for the tests: munged, slurmctld and slurmd from
Debian's packages (``.ci/run`` installs ``slurm-wlm`` and ``munge`` when
missing), everything they write in one temporary folder, on loopback ports
of their own; stopped, with every job they ran, when the session ends.

Nothing here touches a SLURM or munge already running on the machine: our
munged listens on a socket in the folder, and the client commands find our
``slurm.conf`` through ``SLURM_CONF``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def available() -> str | None:
    """Why SLURM cannot run here, or None when it can."""
    missing = [d for d in (*DAEMONS, "sbatch", "sinfo") if shutil.which(d) is None
               and not Path(f"/usr/sbin/{d}").exists()]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing; .ci/run installs it)"
    if os.geteuid() != 0:
        return "a test SLURM needs root (SlurmdUser=root); CI runs as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _conf(folder: Path, socket_path: Path) -> str:
    host = socket.gethostname()
    cpus = os.cpu_count() or 2
    return "\n".join([
        "ClusterName=dkmeans-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "ReturnToService=2",
        "JobRequeue=1",
        "SchedulerType=sched/backfill",
        "InactiveLimit=0",
        "KillWait=20",
        "MinJobAge=30",
        "SlurmdTimeout=30",
        "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP "
        "OverSubscribe=FORCE:4",
        "",
    ])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid: int | None, timeout: float = 15) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_idle(env: dict, folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                              env=env)
        state = proc.stdout.strip()
        if proc.returncode == 0 and state.startswith("idle"):
            return
        time.sleep(0.3)
    logs = "".join((folder / f).read_text()[-1500:] for f in ("slurmctld.log", "slurmd.log")
                   if (folder / f).exists())
    raise RuntimeError(f"SLURM's node did not become idle (state {state!r}): {logs}")


@contextlib.contextmanager
def single_node(folder: Path) -> Iterator[dict]:
    """Start munged, slurmctld and slurmd with everything in ``folder``;
    yield the environment their client commands need (``SLURM_CONF``); stop
    every job and daemon on exit."""
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    munge = folder / "munge"
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge.chmod(0o700)
    socket_path = munge / "munge.socket"
    conf = folder / "slurm.conf"
    conf.write_text(_conf(folder, socket_path))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[Path] = []
    try:
        subprocess.run([_binary("munged"), "--force", f"--socket={socket_path}",
                        f"--key-file={key}", f"--pid-file={munge}/munged.pid",
                        f"--log-file={munge}/munged.log", f"--seed-file={munge}/seed"],
                       check=True, capture_output=True, timeout=30)
        started.append(munge / "munged.pid")
        subprocess.run([_binary("slurmctld"), "-f", str(conf)], check=True, env=env,
                       capture_output=True, timeout=30)
        started.append(folder / "slurmctld.pid")
        subprocess.run([_binary("slurmd"), "-f", str(conf)], check=True, env=env,
                       capture_output=True, timeout=30)
        started.append(folder / "slurmd.pid")
        _wait_idle(env, folder)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], env=env, capture_output=True,
                       timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True,
                                 timeout=30).stdout.strip()
            if not out:
                break
            time.sleep(0.3)
        for pidfile in reversed(started):
            _stop(_pid(pidfile))
        # job steps of ours that outlived slurmd (it does not wait for them)
        subprocess.run(["pkill", "-f", f"slurmstepd.*{folder}"], capture_output=True)
