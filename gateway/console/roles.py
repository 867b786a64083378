"""What each role may do: every page and API call names the permission it needs. A new role
(a reviewer who labels turns) is one more line here."""

from __future__ import annotations

READ = "read"
REPLY = "reply"
ASSIGN = "assign"
TAKE_OVER = "take_over"
MANAGE = "manage_agents"
INSIGHTS = "insights"
REVIEW = "review"
FORGET = "forget"
RETRAIN = "retrain"

_AGENT = frozenset({READ, REPLY})
ROLES: dict[str, frozenset[str]] = {
    "agent": _AGENT,
    "admin": _AGENT | {ASSIGN, TAKE_OVER, MANAGE, INSIGHTS, REVIEW, FORGET, RETRAIN},
    "reviewer": frozenset({READ, REVIEW, INSIGHTS}),
}


def allowed(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())
