"""What stands between an anonymous visitor and the web chat: the signed session (see
`gateway.webchat_tokens`), the optional proof of work before the first message, and limits on
new sessions and messages per client address and overall. Sessions cost nothing to make, so
limits per session alone stop nobody."""

from __future__ import annotations

import ipaddress
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from config.settings import Settings
from core.errors import StoreUnavailable
from core.keys import hidden
from core.ports import Limits
from gateway.webchat_tokens import Pass, SessionTokens, load_key, pow_solved

log = structlog.get_logger(__name__)

MINUTE = 60.0
BUSY = "Too many new chats from your network right now. Please try again in {wait}."
FLOODED = "Too many messages from your network right now. Please wait {wait} and send that again."
UNSOLVED = "This page is still checking it may chat (a few seconds); your message was not sent."


@dataclass
class Visitor:
    """One socket's visitor: its session, and the token and challenge the page is sent."""

    session: str
    token: str
    address: str
    challenge: dict[str, Any] | None = None

    def hello(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"session": self.token}
        if self.challenge is not None:
            frame["challenge"] = self.challenge
        return frame


@dataclass(frozen=True, slots=True)
class Refusal:
    text: str
    retry_after: float

    def frame(self) -> dict[str, Any]:
        return {"error": self.text, "retry_after": math.ceil(self.retry_after)}


class WebChatGuard:
    def __init__(
        self,
        tokens: SessionTokens,
        limits: Limits,
        *,
        sessions_per_address: int = 20,
        sessions_per_minute: int = 600,
        messages_per_address: int = 120,
        pow_bits: int | None = None,
        trusted_proxies: tuple[str, ...] = (),
    ):
        self.tokens = tokens
        self._limits = limits
        self._per_address = sessions_per_address
        self._per_minute = sessions_per_minute
        self._messages = messages_per_address
        self._bits = pow_bits
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    def address(self, request: web.BaseRequest) -> str:
        """The client's address, as limits count it: behind a trusted proxy, the last address
        of `X-Forwarded-For` that is not a proxy's; an IPv6 client by its /64, as one machine
        usually holds the whole network."""
        peer = request.remote or ""
        if self._trusted(peer):
            hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
            peer = next((h for h in reversed(hops) if h and not self._trusted(h)), peer)
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return peer
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)

    async def open(self, token: str | None, address: str) -> Visitor | Refusal:
        """The visitor of a new socket: the session its token names, or a new one (counted
        against the address and overall); a `Refusal` when no new one may be made now."""
        known = self.tokens.read(token)
        if known is not None:
            return self._visitor(known, address)
        event = uuid.uuid4().hex
        checks = (
            (f"webchat:new:{hidden(address)}", self._per_address),
            ("webchat:new", self._per_minute),
        )
        for key, limit in checks:
            wait = await self._hit(key, limit, event)
            if wait > 0:
                log.warning("webchat.sessions_limited", retry_after=round(wait))
                return Refusal(BUSY.format(wait=_wait(wait)), wait)
        return self._visitor(self.tokens.new(verified=self._bits is None), address)

    def _visitor(self, p: Pass, address: str) -> Visitor:
        challenge = None
        if not p.verified and self._bits is not None:
            challenge = {"kind": "pow", "seed": p.session, "bits": self._bits}
        return Visitor(p.session, self.tokens.token(p), address, challenge)

    def check(self, visitor: Visitor, data: str) -> dict[str, Any] | None:
        """While the visitor's challenge is open: the frame to answer `data` with (a new token
        once it is solved, an error otherwise); None when `data` may go on to the bot."""
        if visitor.challenge is None:
            return None
        nonce = _nonce(data)
        if nonce is not None and pow_solved(visitor.session, nonce, visitor.challenge["bits"]):
            visitor.challenge = None
            visitor.token = self.tokens.token(Pass(visitor.session, verified=True))
            return {"session": visitor.token}
        return {"error": UNSOLVED, "challenge": visitor.challenge}

    async def admit(self, visitor: Visitor, event: str) -> Refusal | None:
        """A message from the visitor, counted against its address (every session there)."""
        wait = await self._hit(f"webchat:msg:{hidden(visitor.address)}", self._messages, event)
        if wait > 0:
            log.warning("webchat.messages_limited", retry_after=round(wait))
            return Refusal(FLOODED.format(wait=_seconds(wait)), wait)
        return None

    async def _hit(self, key: str, limit: int, event: str) -> float:
        # Fails open: with Redis unreachable the queue is too, and the visitor is told the bot
        # is busy when the message cannot be queued.
        try:
            return await self._limits.hit(key, limit, MINUTE, event)
        except StoreUnavailable as exc:
            log.warning("webchat.limits_unreachable", error=str(exc))
            return 0.0


def _nonce(data: str) -> str | None:
    if len(data) > 200:
        return None
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return None
    value = frame.get("pow") if isinstance(frame, dict) else None
    return value if isinstance(value, str) else None


def _wait(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _seconds(seconds: float) -> str:
    n = max(1, math.ceil(seconds))
    return "1 second" if n == 1 else f"{n} seconds"


def build_guard(settings: Settings, limits: Limits) -> WebChatGuard:
    if settings.webchat_secret is None and settings.redis_url is not None:
        log.warning(
            "webchat.secret_unset",
            hint="serve processes that do not share DATA_DIR must share WEBCHAT_SECRET",
        )
    secret = settings.webchat_secret.get_secret_value() if settings.webchat_secret else None
    return WebChatGuard(
        SessionTokens(load_key(secret, settings.data_dir)),
        limits,
        sessions_per_address=settings.webchat_sessions_per_address,
        sessions_per_minute=settings.webchat_sessions_per_minute,
        messages_per_address=settings.webchat_messages_per_address,
        pow_bits=settings.webchat_pow_bits if settings.webchat_challenge == "pow" else None,
        trusted_proxies=settings.trusted_proxies,
    )


GUARD = web.AppKey("webchat_guard", WebChatGuard)
