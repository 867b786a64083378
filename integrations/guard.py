"""Limits on what anonymous visitors can make the bot do outside itself: each action with a side
effect (a password reset, a refund) and each handoff is counted across every conversation, per
target and overall, and the same action for the same target is done once per period. Sessions
are free, so a limit per session holds nobody back; these hold across sessions, and across
processes when the limits live in Redis."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from core.errors import ActionRefused, StoreUnavailable
from core.keys import hidden
from core.ports import HandoffRecord, HandoffTarget, Limits

log = structlog.get_logger(__name__)

MINUTE = 60.0
HOUR = 3600.0
BUSY = "Too many requests right now, so I couldn't do that. Please try again in {wait}."
HANDOFF_BUSY = (
    "Our support team can't take more requests right now, so I couldn't pass you on. "
    "Please try again in {wait}."
)


@dataclass(frozen=True, slots=True)
class SideEffect:
    """Marks an action as changing something outside the bot, so the guard counts it."""

    target: str
    """The argument that names what the action acts on (an e-mail address, an order number)."""
    repeated: str
    """Told to the customer when the same target was done within the period; `{wait}` is how
    long until it may be asked again ("5 minutes")."""


@dataclass(frozen=True, slots=True)
class GuardSettings:
    per_minute: int = 30
    """Each action with a side effect, across all conversations (0: no limit)."""
    per_target: int = 5
    """The same action for one target, per hour (0: no limit)."""
    period: float = 600.0
    """The same action for the same target is done once within this many seconds (0: off)."""
    handoffs_per_minute: int = 20
    """Handoff records, across all conversations (0: no limit); per conversation, `per_target`
    an hour."""


class ActionGuard:
    """Asked by the action registry before an action with a side effect runs, and by
    `GuardedHandoff` before a handoff record goes to the team."""

    def __init__(self, limits: Limits, settings: GuardSettings | None = None):
        self._limits = limits
        self._s = settings or GuardSettings()

    async def admit(
        self, action: str, effect: SideEffect, args: Mapping[str, Any], key: str | None
    ) -> Claim | None:
        """Raises `ActionRefused` when the call may not happen now. The returned claim is
        released if the call then fails, so a failed reset can be asked for again at once.
        `key` is the call's idempotency key: the same turn run again is let through."""
        owner = key or uuid.uuid4().hex
        target = str(args.get(effect.target) or "").strip().casefold()
        named = hidden(target)
        claim = None
        if target and self._s.period > 0:
            once = f"act:{action}:once:{named}"
            wait = await self._limits.claim(once, self._s.period, owner)
            if wait > 0:
                log.info("action.repeated", action=action, retry_after=round(wait))
                raise ActionRefused(effect.repeated.format(wait=_wait(wait)), retry_after=wait)
            claim = Claim(self._limits, once, owner)
        # Narrowest first: a check that passes counts, so a refusal by the overall limit may
        # use up one place of this target's, never one of everybody's for this target's sake.
        checks = [(f"act:{action}:to:{named}", self._s.per_target, HOUR)] if target else []
        checks.append((f"act:{action}:all", self._s.per_minute, MINUTE))
        try:
            for name, limit, window in checks:
                wait = await self._limits.hit(name, limit, window, owner)
                if wait > 0:
                    log.warning("action.limited", action=action, retry_after=round(wait))
                    raise ActionRefused(BUSY.format(wait=_wait(wait)), retry_after=wait)
        except BaseException:
            if claim is not None:  # not done, so not "already done" for the next one asking
                await claim.release()
            raise
        return claim

    async def admit_handoff(self, record: HandoffRecord) -> None:
        """Raises `ActionRefused` when no record may go to the team now: too many overall, or
        this conversation asked too often (while a handoff is open the bot stays silent, so
        each record here is a new request)."""
        owner = record.key or uuid.uuid4().hex
        checks = (
            (f"handoff:to:{hidden(record.conversation)}", self._s.per_target, HOUR),
            ("handoff:all", self._s.handoffs_per_minute, MINUTE),
        )
        for name, limit, window in checks:
            wait = await self._limits.hit(name, limit, window, owner)
            if wait > 0:
                log.warning("handoff.limited", retry_after=round(wait))
                raise ActionRefused(HANDOFF_BUSY.format(wait=_wait(wait)), retry_after=wait)

    async def close(self) -> None:
        await self._limits.close()


@dataclass(frozen=True, slots=True)
class Claim:
    limits: Limits
    key: str
    owner: str

    async def release(self) -> None:
        try:
            await self.limits.release(self.key, self.owner)
        except StoreUnavailable:
            log.warning("action.release_failed")  # the claim runs out by itself


class GuardedHandoff:
    """A `HandoffTarget` that asks the guard before passing a record on. With the limits
    unreachable the record still goes: a person is the safety net of every conversation."""

    def __init__(self, inner: HandoffTarget, guard: ActionGuard):
        self.inner = inner
        self._guard = guard

    async def notify(self, record: HandoffRecord) -> None:
        try:
            await self._guard.admit_handoff(record)
        except StoreUnavailable as exc:
            log.warning("handoff.limits_unreachable", error=str(exc))
        await self.inner.notify(record)


def _wait(seconds: float) -> str:
    """ "1 minute", "5 minutes": limits are minutes and hours long, and a customer reads
    "try again in 37 seconds" as "now"."""
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
