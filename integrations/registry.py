"""Actions flows call by name: Python functions registered here and HTTP actions declared in YAML,
each call with a timeout, retries, a circuit breaker per target and optional caching."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from core.dialogue.model import HttpActionSpec
from core.errors import ActionError
from integrations.guard import ActionGuard, SideEffect
from integrations.http import IDEMPOTENCY_KEY, HttpAction, HttpClient
from integrations.resilience import CircuitBreaker, TtlCache, with_retries

log = structlog.get_logger(__name__)

ActionFn = Callable[[Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class CallPolicy:
    timeout: float = 5.0
    retries: int = 2
    cache_ttl: float = 0.0
    target: str | None = None
    """Which circuit breaker guards the call (default: the action's name)."""
    effect: SideEffect | None = None
    """Set for an action that changes something outside the bot: the registry's guard then
    limits how often it runs (overall, per target, once per target per period)."""


class ActionRegistry:
    """Implements `core.ports.Actions`. A call's idempotency key is visible to the action
    as `integrations.http.idempotency_key()` (HTTP actions send it as `Idempotency-Key`)."""

    def __init__(
        self,
        breaker_threshold: int = 5,
        breaker_reset: float = 30.0,
        rng: random.Random | None = None,
        backoff_base: float = 0.2,
        guard: ActionGuard | None = None,
    ):
        self._fns: dict[str, tuple[ActionFn, CallPolicy]] = {}
        self._http: dict[str, HttpAction] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._cache = TtlCache()
        self._threshold = breaker_threshold
        self._reset = breaker_reset
        self._rng = rng or random.Random()
        self._base = backoff_base
        self.guard = guard
        self.client = HttpClient()

    def register(self, name: str, fn: ActionFn, policy: CallPolicy | None = None) -> None:
        self._fns[name] = (fn, policy or CallPolicy())

    def declare_http(self, specs: Mapping[str, HttpActionSpec]) -> None:
        """(Re)declare the YAML actions; called again after a reload."""
        self._http = {name: HttpAction(spec, self.client) for name, spec in specs.items()}

    def names(self) -> Collection[str]:
        return {*self._fns, *self._http}

    def breaker(self, target: str) -> CircuitBreaker:
        if target not in self._breakers:
            self._breakers[target] = CircuitBreaker(self._threshold, self._reset)
        return self._breakers[target]

    async def call(self, name: str, args: Mapping[str, Any], key: str | None = None) -> Any:
        fn, policy = self._resolve(name, args)
        cached = (name, json.dumps(args, sort_keys=True, default=str))
        if policy.cache_ttl > 0:
            hit, value = self._cache.get(cached)
            if hit:
                return value
        claim = None
        if policy.effect is not None and self.guard is not None:
            claim = await self.guard.admit(name, policy.effect, args, key)
        breaker = self.breaker(policy.target or name)
        token = IDEMPOTENCY_KEY.set(key)
        try:
            result = await with_retries(
                lambda: breaker.call(lambda: fn(args)),
                retries=policy.retries,
                timeout=policy.timeout,
                base=self._base,
                rng=self._rng,
            )
        except BaseException:
            if claim is not None:
                await claim.release()
            raise
        finally:
            IDEMPOTENCY_KEY.reset(token)
        if policy.cache_ttl > 0:
            self._cache.put(cached, result, policy.cache_ttl)
        return result

    def _resolve(self, name: str, args: Mapping[str, Any]) -> tuple[ActionFn, CallPolicy]:
        if name in self._http:
            action = self._http[name]
            spec = action.spec
            try:
                target = action.target(args)
            except Exception:  # noqa: BLE001 - the call itself will report the bad template
                target = name
            return action, CallPolicy(spec.timeout, spec.retries, spec.cache_ttl, target)
        if name in self._fns:
            return self._fns[name]
        raise ActionError(f"no action named {name!r}")

    async def close(self) -> None:
        await self.client.close()
