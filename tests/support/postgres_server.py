"""A private PostgreSQL cluster for tests: `initdb` in a temp dir, `postgres` on a free
127.0.0.1 port with trust authentication for the test user, removed afterwards. Never the
system cluster. PostgreSQL refuses to run as root, so as root the cluster belongs to `nobody`
(`setpriv` drops the privileges of each of its processes)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = os.environ.get("POSTGRES_BIN") or next(
    iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), "/usr/lib/postgresql/bin"
)
UNPRIVILEGED = "nobody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={UNPRIVILEGED}", "--regid=nogroup", "--clear-groups", "--"]


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://gateway@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 30.0) -> None:
        initdb = Path(BIN) / "initdb"
        if not initdb.exists():
            pytest.skip(f"{initdb} not installed (apt-get install postgresql)")
        data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, UNPRIVILEGED)
        subprocess.run(
            [
                *_as_user(),
                str(initdb),
                "-D",
                str(data),
                "-U",
                "gateway",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.proc = subprocess.Popen(
            [
                *_as_user(),
                str(Path(BIN) / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [
                    str(Path(BIN) / "pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "gateway",
                    "-d",
                    "postgres",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not start on port {self.port}")

    def psql(self, sql: str) -> str:
        out = subprocess.run(
            [
                str(Path(BIN) / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "gateway",
                "-d",
                "postgres",
                "-Atc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown, done at once with no clients
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_server() -> Iterator[PostgresServer]:
    """Generator for a fixture: one cluster, stopped and removed afterwards."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away cluster for the test session; each test makes its own database in it."""
    yield from postgres_server()


_made = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty database in the session's cluster (async URL for SQLAlchemy)."""
    name = f"t{os.getpid()}_{next(_made)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The conversation store's URL: the embedded SQLite file and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'conversations.db'}"
    return str(request.getfixturevalue("postgres_url"))
