"""A private `redis-server` for tests: its own binary on a free 127.0.0.1 port, no persistence
files unless asked, stopped afterwards. Never the system Redis on 6379."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARY = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """`restart()` stops it with SHUTDOWN SAVE and starts it again on the same port from the
    snapshot (like a Redis with persistence restarting); `stop()` alone is an outage."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.dir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if shutil.which(BINARY) is None:
            pytest.skip(f"{BINARY} not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [
                BINARY,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def cli(self, *args: str) -> str | None:
        """One command over a raw socket (inline protocol), None when nobody answers."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
                s.sendall((" ".join(args) + "\r\n").encode())
                return s.recv(4096).decode().strip().lstrip("+")
        except OSError:
            return None

    def stop(self, save: bool = False) -> None:
        if self.proc is None:
            return
        if save:
            self.cli("SHUTDOWN", "SAVE")
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop(save=True)
        time.sleep(down_for)
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The shared server, emptied before each test."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.cli("FLUSHALL")
    yield redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, for tests that stop or restart it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
