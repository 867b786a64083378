"""Flow-file mistakes, each pinned to the file and line that holds it."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import GatewayError


@dataclass(frozen=True, slots=True)
class FlowIssue:
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
