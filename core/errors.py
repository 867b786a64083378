"""Every error the gateway raises on purpose, in one tree under `GatewayError`.

Each case is its own type, so a caller handles it by name instead of reading flags, and a reader
finds the whole tree here. The one error outside the root is `config.settings.SettingsError`:
`config/` imports nothing of the other rooms (a settings mistake must be reportable before any
of them loads), so it cannot derive from `GatewayError`; `gateway.cli` catches it beside
`StartupError`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ActionError",
    "ActionRefused",
    "AgentExists",
    "ChannelSendError",
    "ChannelUnreachable",
    "FlowError",
    "FlowIssue",
    "GatewayError",
    "HandoffError",
    "HeldByOther",
    "ModelDirError",
    "NluDataError",
    "NotWithPeople",
    "PayloadError",
    "QueueUnavailable",
    "ReleaseError",
    "RetryAfter",
    "SendRefused",
    "StaleSession",
    "StartupError",
    "StoreUnavailable",
    "TemplateError",
    "VerificationError",
    "YamlSyntaxError",
]


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


# -- a webhook (an adapter raises, the gateway answers) -------------------------------------


class VerificationError(GatewayError):
    """Signature, secret or timestamp does not check out: answered 401, nothing read further."""


class PayloadError(GatewayError):
    """The body is not what the platform sends: answered 400 with the reason logged."""


# -- sending a reply (an adapter raises, the outbox and the turn act on the type) -----------


class ChannelSendError(GatewayError):
    """A send failed; the subclass says what to do about it, and adapters raise only those.
    `steps_done`: the platform calls of this message that had succeeded before the failure (set
    by `core.channel.send_steps`), so a retry resumes after them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.steps_done = 0


class RetryAfter(ChannelSendError):
    """The platform asked to be called again after `retry_after` seconds (Slack's and Twilio's
    `Retry-After`, Telegram's `retry_after`): the outbox waits that long, then tries again."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message or f"rate limited: retry after {retry_after:g} s")
        self.retry_after = retry_after


class ChannelUnreachable(ChannelSendError):
    """The platform could not be reached or could not take the message now (connection error,
    timeout, a 5xx, a rate limit that names no wait, an SMTP 4xx): trying again may help, after
    the outbox's own back-off."""


class SendRefused(ChannelSendError):
    """The platform refused the message for good (a blocked bot, an unknown chat, a bad request,
    WhatsApp's 24-hour window, no adapter for the channel): trying again cannot help, so the
    turn's entries go to the dead letters without an apology that would be refused too."""


# -- the queue and the stores ---------------------------------------------------------------


class QueueUnavailable(GatewayError):
    """The queue cannot take the event durably right now: the webhook answers 503 so the platform
    retries."""


class StoreUnavailable(GatewayError):
    """The session store cannot be reached."""


class StaleSession(GatewayError):
    """A session save lost a race: the stored session is as new or newer (a worker that lost its
    partition lease while frozen, so another worker ran the conversation meanwhile). Raised by
    `SessionStore.save` (`core.redis.store.RedisStore`); the turn runner runs the turn again on
    the fresh state without counting it as a failed attempt."""


# -- flows and the actions they call --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowIssue:
    """One mistake in a flow file, pinned to its file and line."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class FlowError(GatewayError):
    """The flows cannot be loaded; `issues` lists every mistake found, in file order."""

    def __init__(self, issues: list[FlowIssue]):
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.reason))
        super().__init__("\n".join(str(i) for i in self.issues) or "flows: unknown error")


class YamlSyntaxError(GatewayError):
    """A flow file that is not YAML (or not readable, or not UTF-8): the loader turns it into a
    `FlowIssue` at `line`."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


class TemplateError(GatewayError):
    """A template or condition that does not compile; the loader turns it into file:line."""


class ActionError(GatewayError):
    """An integration action failed (timeout, refused, circuit open, bad answer). `retryable`
    says whether trying again may help (5xx, timeouts); a 4xx or a refusal will not."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class ActionRefused(ActionError):
    """An action or a handoff not done because an abuse limit said no (too many at once, or
    the same one for the same target a moment ago). `reply` tells the customer what happened
    and when to try again; the flow says it instead of its `on_error` steps, so the customer is
    never left without an answer nor told that something broke."""

    def __init__(self, reply: str, *, retry_after: float = 0.0):
        super().__init__(reply)
        self.reply = reply
        self.retry_after = retry_after


# -- the intent model -----------------------------------------------------------------------


class ModelDirError(GatewayError):
    """A model directory that cannot be served; the message has the path and the reason."""


class NluDataError(GatewayError):
    """Intent data that cannot be used: the message names the file and the reason."""


# -- the process ----------------------------------------------------------------------------


class StartupError(GatewayError):
    """The process cannot start as configured (missing model, broken flows, port taken...):
    a user's mistake, printed as one line that says what to do."""


class ReleaseError(GatewayError):
    """Nothing to roll back to, or a pointer that does not name a release."""


# -- the support desk -----------------------------------------------------------------------


class HandoffError(GatewayError):
    """A handoff transition refused; `str()` is the reason shown to the agent."""


class HeldByOther(HandoffError):
    """Another agent holds the conversation; `holder` names them."""

    def __init__(self, holder: str):
        super().__init__(f"{holder} has this conversation")
        self.holder = holder


class NotWithPeople(HandoffError):
    """The bot has the conversation: there is nothing for an agent to take or release."""

    def __init__(self) -> None:
        super().__init__("the bot has this conversation: nobody asked for a person")


class AgentExists(GatewayError):
    """An agent account of that name exists already."""
