"""Process and port helpers shared by the embedded servers (api/embedded.py,
api/embedded_redis.py) and `trendscope up`'s supervisor (api/supervisor.py)."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

HOST = "127.0.0.1"
PORT_FILE = "embedded.port"


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent dies (None when
    the platform has no such thing).

    Why prctl(PR_SET_PDEATHSIG) and not a parent-watch in the child: the kernel delivers it
    even when the parent is SIGKILLed (no code of ours runs then), it costs nothing, and it
    works for children we cannot change (postgres, redis-server, Dramatiq after execv): the
    setting survives execve of a non-setuid binary. It is set after subprocess' setuid (the
    root-runs-postgres-as-pgserver case), which would clear it. Caveat: it fires when the
    *thread* that spawned the child ends, so only the main thread of ``up`` spawns. Not on
    macOS (children of a killed ``up`` are then left running; ``up`` on Linux is what the
    orphan test covers)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            os._exit(126)  # refusing to run unsupervised beats leaving an orphan
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
            os.kill(os.getpid(), sig)

    return preexec


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``data_dir``."""
    with open(data_dir / ".embedded.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _port_is_free(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return False  # something answers
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_port(preferred: int | None) -> int:
    """Return ``preferred`` if it is free, else a free ephemeral port."""
    if preferred and _port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _package_dir(name: str) -> Path | None:
    """Locate an installed package without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _server_process(pid: int | None, name: str, workdir: Path) -> psutil.Process | None:
    """The live process ``pid`` if it is a ``name`` server whose cwd is ``workdir``."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != name:
            return None
        return proc if Path(proc.cwd()) == workdir else None
    except (psutil.Error, OSError):
        return None


def _leftovers(name: str, workdir: Path) -> list[psutil.Process]:
    """Live ``name`` processes running in ``workdir`` (servers chdir to their data dir)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != name:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == workdir:
                found.append(proc)
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        if not proc.is_running():  # also detects a reused pid
            return True
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)  # reap it if it is our child
    return True


def _terminate(procs: list[psutil.Process], sigs: tuple[tuple[int, float], ...]) -> None:
    """Send each signal in turn, waiting up to its timeout, until every process is gone."""
    for sig, timeout in sigs:
        alive = [p for p in procs if not _gone(p)]
        if not alive:
            return
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(_gone(p) for p in alive):
            time.sleep(0.05)
    if any(not _gone(p) for p in procs):
        raise RuntimeError(f"could not stop processes {[p.pid for p in procs]}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Server:
    """What the supervisor needs of a server: is it dead, how did it end."""

    proc: psutil.Process | None
    popen: subprocess.Popen[bytes] | None

    def dead(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is not None  # also reaps it
        return self.proc is not None and _gone(self.proc)

    def exit_code(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None
