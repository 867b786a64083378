"""What the web chat's pages say to browsers (no framing, no type sniffing, only the page's own
scripts and sockets), and which pages may open the web chat's socket."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The web chat page loads its script and style sheet from /chat/static and talks over its
own socket; nothing inline, nothing from elsewhere. A message shown as HTML by mistake could
then run no script."""

BROWSER_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
"""Sent with the web chat's page, its script and style sheet, and the redirect to it: set by
their handlers, not by a hook on every response, which every webhook would pay for (see
`bench/ingress.py`) in answers no browser renders."""


def origin_allowed(request: web.BaseRequest, allowed: Collection[str], base: str | None) -> bool:
    """Whether the page that opens a socket may (WEBCHAT_ALLOWED_ORIGINS). A browser always
    sends `Origin` with a WebSocket; a request without one comes from no browser page, so no
    visitor's session can be ridden through it. Without a list, the gateway's own host (as the
    request names it, or PUBLIC_BASE_URL's) is the one origin allowed."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if allowed:
        return "*" in allowed or origin in allowed
    own = {request.host.lower()}
    if base:
        own.add(urlsplit(base).netloc.lower())
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc in own
