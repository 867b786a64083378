"""The HTTP listening socket of `serve`, with a cap on open connections per client address and
in all, applied before aiohttp sees a connection: one client opening connections it never
finishes cannot take every file descriptor of the process (aiohttp itself has no such cap)."""

from __future__ import annotations

import asyncio
import ipaddress
import resource
import time
from collections.abc import Callable, Iterable
from typing import cast

import structlog
from aiohttp import web

from config.settings import Settings

log = structlog.get_logger(__name__)

FD_RESERVE = 128
"""File descriptors kept out of the connection cap: Redis, the outgoing platform clients, the
SMTP listener, log and spill files."""
_LOG_EVERY = 10.0
"""Seconds between two log lines about refused connections (an attack would flood the log)."""


def _refusal(status: str, reason: str) -> bytes:
    body = reason.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n"
    ).encode() + body


_PER_CLIENT = _refusal("429 Too Many Requests", "too many connections from your address")
_IN_ALL = _refusal("503 Service Unavailable", "too many connections")


class ConnectionLimit:
    """Open connections counted per client address and in all. Behind a proxy every connection
    comes from the proxy's address: the proxies named in `exempt` (TRUSTED_PROXIES) count in
    the total only, and limit each client themselves (README: Security)."""

    def __init__(self, per_client: int, total: int, exempt: Iterable[str] = ()) -> None:
        self.per_client = per_client
        self.total = total
        self._exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        self.open: dict[str, int] = {}
        self.count = 0
        self.refused = 0
        self._logged_at = 0.0
        self._logged = 0

    def admit(self, peer: str) -> bytes | None:
        """None when the connection may go on (and is counted), else the answer to write."""
        held = self.open.get(peer, 0)
        if self.count >= self.total:
            refusal = _IN_ALL
        elif self.per_client and held >= self.per_client and not self._exempted(peer):
            refusal = _PER_CLIENT
        else:
            self.open[peer] = held + 1
            self.count += 1
            return None
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            log.warning(
                "http.connections_refused",
                peer=peer,
                refused=self.refused - self._logged,
                open=self.count,
                per_client=self.per_client,
                total=self.total,
            )
            self._logged_at, self._logged = now, self.refused
        return refusal

    def _exempted(self, peer: str) -> bool:
        if not self._exempt:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._exempt)

    def release(self, peer: str) -> None:
        self.count -= 1
        held = self.open.pop(peer) - 1
        if held:  # a client with none open leaves no entry behind
            self.open[peer] = held


class _Guard(asyncio.Protocol):
    """Stands before aiohttp's protocol of one connection: admits or refuses it, and counts it
    until it closes. aiohttp's protocol is made only for an admitted connection."""

    __slots__ = ("_inner", "_limit", "_make", "_peer")

    def __init__(self, make: Callable[[], asyncio.Protocol], limit: ConnectionLimit) -> None:
        self._make = make
        self._limit = limit
        self._peer: str | None = None
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        refusal = self._limit.admit(host)
        if refusal is not None:
            # uvloop's transports are not `asyncio.Transport` instances: cast, not checked
            cast(asyncio.Transport, transport).write(refusal)
            transport.close()
            return
        self._peer = host
        self._inner = self._make()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._peer is None or self._inner is None:
            return
        self._limit.release(self._peer)
        self._peer = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """aiohttp's TCP site with every connection passed through a `ConnectionLimit` (or none)."""

    __slots__ = ("_bound", "_host", "_limit", "_port", "_serving")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, limit: ConnectionLimit | None
    ) -> None:
        super().__init__(runner)
        self._serving = runner
        self._host = host
        self._port = port
        self._limit = limit
        self._bound: int | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port once started (the one chosen for port 0), else the one asked for."""
        return self._bound if self._bound is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._serving.server
        assert server is not None
        limit = self._limit
        factory: Callable[[], asyncio.Protocol] = (
            server if limit is None else lambda: _Guard(server, limit)
        )
        loop = asyncio.get_running_loop()
        listening = await loop.create_server(factory, self._host, self._port)
        self._server = listening
        if listening.sockets:
            self._bound = int(listening.sockets[0].getsockname()[1])


def open_file_limit() -> int:
    """The process's soft limit on open files."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_limit(settings: Settings) -> ConnectionLimit:
    """MAX_CONNECTIONS_PER_CLIENT (TRUSTED_PROXIES exempt) and MAX_CONNECTIONS (unset: the
    open-file limit less `FD_RESERVE`, so connections alone never use up the descriptors)."""
    total = settings.max_connections
    if total is None:
        soft = open_file_limit()
        unlimited = soft < 0 or soft == resource.RLIM_INFINITY
        total = 1 << 20 if unlimited else max(64, soft - FD_RESERVE)
    return ConnectionLimit(settings.max_connections_per_client, total, settings.trusted_proxies)
