"""HTTP calls for actions: one shared client session, JSON in and out, and failures sorted into
retryable (5xx, timeouts, connection errors) and final (4xx, bad answers)."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Any

import aiohttp

from core.dialogue.model import HttpActionSpec
from core.dialogue.templates import Template
from core.errors import ActionError

IDEMPOTENCY_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "idempotency_key", default=None
)
"""Set by `ActionRegistry.call` around one action call."""


def idempotency_key() -> str | None:
    """The idempotency key of the action call running now (None outside a keyed call): an
    action with side effects passes it on (the `Idempotency-Key` header) so a turn run again
    does the work once."""
    return IDEMPOTENCY_KEY.get()


class HttpClient:
    """Owns one `aiohttp.ClientSession`, opened on first use inside the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """(status, body): body parsed as JSON when it says so, else text. A status in `ok`
        (besides 2xx) is returned, not raised."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method, url, headers=dict(headers or {}), json=json
            ) as resp:
                if resp.content_type == "application/json":
                    body: Any = await resp.json()
                else:
                    body = await resp.text()
                status = resp.status
        except aiohttp.ClientError as exc:
            raise ActionError(f"{method} {url}: {type(exc).__name__}", retryable=True) from exc
        if 200 <= status < 300 or status in ok:
            return status, body
        raise ActionError(f"{method} {url}: HTTP {status}", retryable=status >= 500)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _render(value: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, Template):
        return value.value(ctx)
    if isinstance(value, dict):
        return {k: _render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, ctx) for v in value]
    return value


class HttpAction:
    """An action declared in YAML. Its templates see the call's arguments (as `args` and by
    name) and `env`: only the environment variables the action lists under `secrets`."""

    def __init__(self, spec: HttpActionSpec, client: HttpClient):
        self.spec = spec
        self._client = client

    def target(self, args: Mapping[str, Any]) -> str:
        url = str(self.spec.url.value(self._context(args)))
        return url.split("/")[2] if "://" in url else url

    def _context(self, args: Mapping[str, Any]) -> dict[str, Any]:
        env = {name: os.environ.get(name, "") for name in self.spec.secrets}
        return {**args, "args": dict(args), "env": env}

    async def __call__(self, args: Mapping[str, Any]) -> Any:
        ctx = self._context(args)
        try:
            method = str(self.spec.method.value(ctx)).upper()
            url = str(self.spec.url.value(ctx))
            headers = {k: str(v.value(ctx)) for k, v in self.spec.headers.items()}
            body = _render(self.spec.json, ctx)
        except Exception as exc:
            raise ActionError(f"action {self.spec.name}: cannot build request") from exc
        key = idempotency_key()
        if key is not None:
            headers.setdefault("Idempotency-Key", key)
        _, data = await self._client.request(method, url, headers=headers, json=body)
        return data
