"""The console's JSON API under /api/: the same actions as the pages, for a team's own tools.
Every call is authenticated (session cookie or bearer token) and role-checked."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from core.conversations import Conversation, Message, Note, Search, Transition
from core.desk import EMAIL_THREAD
from core.errors import (
    ChannelSendError,
    HandoffError,
    HeldByOther,
    NotWithPeople,
    QueueUnavailable,
    SendRefused,
)
from core.handoff import WITH_PEOPLE, State
from core.models import Inbound, Outbound, Sender
from core.redact import redact
from gateway.console.auth import Caller, desk_of, error, needs, sign_in, sign_out
from gateway.console.roles import ASSIGN, READ, REPLY, ROLES, TAKE_OVER, allowed
from gateway.services import SERVICES

log = structlog.get_logger(__name__)

MAX_TEXT = 4000
"""An agent's reply or note at most (the channel splits a long reply as it does the bot's)."""


def conversation_json(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "key": c.key,
        "channel": c.channel,
        "customer": {"id": c.customer_id, "name": c.customer_name},
        "state": c.state.value,
        "holder": c.holder,
        "intent": c.intent,
        "confidence": c.confidence,
        "slots": c.slots,
        "failed_actions": [f.model_dump() for f in c.failed_actions],
        "queue": c.handoff_queue,
        "handoff_at": c.handoff_at,
        "waiting_since": c.waiting_since,
        "waited_s": round(time.time() - c.waiting_since) if c.waiting_since else None,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "author": m.author,
        "agent": m.agent,
        "text": m.text,
        "at": m.at,
        "intent": m.intent,
        "confidence": m.confidence,
        "status": m.status,
        "error": m.error,
    }


def transition_json(t: Transition) -> dict[str, Any]:
    return {
        "from": t.from_state.value,
        "to": t.to_state.value,
        "by": t.actor,
        "reason": t.reason,
        "at": t.at,
    }


def note_json(n: Note) -> dict[str, Any]:
    return {"id": n.id, "agent": n.agent, "text": n.text, "at": n.at}


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise error(400, "send JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise error(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise error(400, "send a JSON object")
    return body


def _text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise error(400, "`text` must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise error(400, f"`text` is longer than {MAX_TEXT} characters")
    return text


async def _conversation(request: web.Request) -> Conversation:
    try:
        cid = int(request.match_info["id"])
    except ValueError:
        raise error(404, "no such conversation") from None
    conv = await desk_of(request).conversations.get(cid)
    if conv is None:
        raise error(404, "no such conversation")
    return conv


def _when(value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise error(400, f"`{name}` must be a date (2025-03-01) or seconds since 1970") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@needs(READ)
async def me(request: web.Request, who: Caller) -> web.Response:
    return web.json_response(
        {
            "name": who.agent.name,
            "role": who.agent.role,
            "csrf": who.csrf,
            "permissions": sorted(ROLES.get(who.agent.role, ())),
        }
    )


@needs(READ)
async def list_conversations(request: web.Request, who: Caller) -> web.Response:
    q = request.query
    store = desk_of(request).conversations
    if not any(k in q for k in ("q", "channel", "intent", "state", "since", "until")):
        found = await store.queue()
    else:
        state = q.get("state") or None
        if state is not None and state not in State.__members__.values():
            raise error(400, "`state` is one of bot, waiting, agent, resolved")
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            raise error(400, "`limit` must be a number") from None
        found = await store.search(
            Search(
                text=q.get("q") or None,
                channel=q.get("channel") or None,
                intent=q.get("intent") or None,
                state=State(state) if state else None,
                since=_when(q.get("since"), "since"),
                until=_when(q.get("until"), "until"),
                limit=limit,
            )
        )
    return web.json_response({"conversations": [conversation_json(c) for c in found]})


@needs(READ)
async def read(request: web.Request, who: Caller) -> web.Response:
    conv = await _conversation(request)
    store = desk_of(request).conversations
    return web.json_response(
        {
            "conversation": conversation_json(conv),
            "messages": [message_json(m) for m in await store.messages(conv.id)],
            "transitions": [transition_json(t) for t in await store.transitions(conv.id)],
            "notes": [note_json(n) for n in await store.notes(conv.id)],
        }
    )


async def _move(request: web.Request, who: Caller, to: State, **kw: Any) -> Transition | None:
    conv = await _conversation(request)
    desk = desk_of(request)
    try:
        moved = await desk.conversations.move(
            conv.id, to, actor=f"agent:{who.agent.name}", agent_id=who.agent.id, **kw
        )
    except HeldByOther as exc:
        raise error(409, str(exc), holder=exc.holder) from None
    except HandoffError as exc:
        raise error(409, str(exc)) from None
    if moved is not None:
        await desk.events.publish("queue", conversation=conv.id, state=to.value)
    return moved


@needs(REPLY)
async def claim(request: web.Request, who: Caller) -> web.Response:
    moved = await _move(request, who, State.AGENT, holder_id=who.agent.id)
    return web.json_response(
        {"changed": moved is not None, "state": "agent", "holder": who.agent.name}
    )


@needs(REPLY)
async def assign(request: web.Request, who: Caller) -> web.Response:
    body = await _body(request)
    name = body.get("agent")
    if not isinstance(name, str):
        raise error(400, "`agent` must be the name of an agent")
    conv = await _conversation(request)
    desk = desk_of(request)
    target = await desk.agents.get(name)
    if target is None or not target.active:
        raise error(400, f"no agent named {name!r}")
    holds = conv.state == State.AGENT and conv.holder == who.agent.name
    if not holds and not allowed(who.agent.role, ASSIGN):
        raise error(403, "only the agent who holds it or an admin may assign it")
    moved = await _move(
        request,
        who,
        State.AGENT,
        holder_id=target.id,
        reason=f"assigned to {target.name}",
        take_over=holds or allowed(who.agent.role, TAKE_OVER),
    )
    return web.json_response(
        {"changed": moved is not None, "state": "agent", "holder": target.name}
    )


async def _back_to_bot(request: web.Request, who: Caller, to: State) -> web.Response:
    conv = await _conversation(request)
    held = conv.state == State.AGENT and conv.holder not in (None, who.agent.name)
    if held and not allowed(who.agent.role, TAKE_OVER):
        raise error(409, f"{conv.holder} has this conversation", holder=conv.holder)
    reason = "handed back to the bot" if to == State.BOT else "resolved"
    moved = await _move(request, who, to, reason=reason)
    if moved is not None:
        # The bot takes it back in order with the customer's messages: a `/bot` press through
        # the queue, once per transition (a retried call queues the same event id).
        inbound = Inbound(
            event_id=f"console-{conv.id}-{moved.at:.6f}",
            conversation=conv.ref,
            sender=Sender(id="console", name=who.agent.name),
            payload="/bot",
        )
        try:
            await request.app[SERVICES].storage.queue.put(inbound)
        except QueueUnavailable:
            raise error(
                503, "queue unavailable: the bot will take it back on the customer's next message"
            ) from None
    return web.json_response({"changed": moved is not None, "state": to.value})


@needs(REPLY)
async def hand_back(request: web.Request, who: Caller) -> web.Response:
    return await _back_to_bot(request, who, State.BOT)


@needs(REPLY)
async def resolve(request: web.Request, who: Caller) -> web.Response:
    return await _back_to_bot(request, who, State.RESOLVED)


@needs(REPLY)
async def add_note(request: web.Request, who: Caller) -> web.Response:
    text = _text(await _body(request))
    conv = await _conversation(request)
    desk = desk_of(request)
    note = await desk.conversations.add_note(conv.id, who.agent.id, text)
    await desk.events.publish("note", conversation=conv.id)
    return web.json_response({"note": note_json(note)}, status=201)


def _window(request: web.Request, conv: Conversation) -> float | None:
    """The channel's reply window (WhatsApp: 24 h after the customer's last message)."""
    try:
        channel = request.app[SERVICES].outbox.channel(conv.channel)
    except SendRefused:
        return None
    return channel.capabilities.reply_window


async def _outside_window(request: web.Request, conv: Conversation) -> float | None:
    """Hours since the customer last wrote when that is past the channel's reply window."""
    window = _window(request, conv)
    if window is None:
        return None
    said = await desk_of(request).conversations.messages(conv.id)
    last = max((m.at for m in said if m.direction == "in"), default=None)
    if last is None or time.time() - last <= window:
        return None
    return (time.time() - last) / 3600


def _may_answer(conv: Conversation, who: Caller) -> None:
    if conv.state == State.AGENT and conv.holder != who.agent.name:
        raise error(409, f"{conv.holder} has this conversation", holder=conv.holder)
    if conv.state not in WITH_PEOPLE:
        raise error(409, str(NotWithPeople()))


async def _send(
    request: web.Request, who: Caller, conv: Conversation, text: str, meta: dict[str, str]
) -> web.Response:
    """The agent's message on the customer's channel through the outbox; kept either way,
    with the channel's reason when it refused."""
    desk = desk_of(request)
    services = request.app[SERVICES]
    if conv.state == State.WAITING:
        await _move(request, who, State.AGENT, holder_id=who.agent.id, reason="answered")
    msg = await desk.conversations.add_message(
        conv.id,
        key=f"agent:{uuid.uuid4().hex}",
        direction="out",
        author="agent",
        text=text if services.settings.store_raw_text else redact(text),
        agent_id=who.agent.id,
        status="sending",
    )
    thread = {k: str(v) for k, v in conv.meta.items() if k in EMAIL_THREAD}
    if thread.get("message_id"):
        # E-mail: answer under the customer's last mail, as the bot's replies do.
        last = Inbound(
            event_id=f"console-thread-{msg.id}",
            conversation=conv.ref,
            sender=Sender(id=conv.customer_id),
            meta=thread,
        )
        await services.outbox.before_turn(last)
    outbound = Outbound(conversation=conv.ref, text=text, meta=meta)
    try:
        await services.outbox.deliver(f"agent:{msg.id}", outbound)
    except ChannelSendError as exc:
        await desk.conversations.set_status(msg.id, "failed", str(exc))
        await desk.events.publish("message", conversation=conv.id)
        log.warning("console.reply_refused", conversation=conv.key, error=str(exc))
        failed = message_json(msg) | {"status": "failed", "error": str(exc)}
        raise error(
            502, f"{conv.channel} refused the reply: {exc}", reason=str(exc), message=failed
        ) from None
    await desk.conversations.set_status(msg.id, "sent")
    await desk.events.publish("message", conversation=conv.id)
    return web.json_response({"message": message_json(msg) | {"status": "sent"}}, status=201)


@needs(REPLY)
async def reply(request: web.Request, who: Caller) -> web.Response:
    text = _text(await _body(request))
    conv = await _conversation(request)
    _may_answer(conv, who)
    hours = await _outside_window(request, conv)
    if hours is not None:
        # The platform would refuse free text now; say why before anything is stored or sent.
        template = request.app[SERVICES].settings.whatsapp_reengage_template
        offer = " Send the approved template to ask them to write back." if template else ""
        raise error(
            409,
            f"{conv.channel} accepts free text only within 24 hours of the customer's last "
            f"message; theirs was {hours:.0f} hours ago.{offer}",
            reason="outside_reply_window",
            template=bool(template),
        )
    return await _send(request, who, conv, text, {})


@needs(REPLY)
async def send_template(request: web.Request, who: Caller) -> web.Response:
    """The approved re-engagement template (WHATSAPP_REENGAGE_TEMPLATE), for a customer past
    the channel's reply window."""
    conv = await _conversation(request)
    sid = request.app[SERVICES].settings.whatsapp_reengage_template
    if _window(request, conv) is None:
        raise error(400, f"{conv.channel} takes free text at any time: no template needed")
    if not sid:
        raise error(400, "no template is configured (WHATSAPP_REENGAGE_TEMPLATE)")
    _may_answer(conv, who)
    return await _send(request, who, conv, f"[approved template {sid}]", {"content_sid": sid})


@needs(READ)
async def agents(request: web.Request, who: Caller) -> web.Response:
    found = await desk_of(request).agents.all()
    return web.json_response(
        {
            "agents": [
                {"name": a.name, "role": a.role, "last_seen_at": a.last_seen_at}
                for a in found
                if a.active
            ]
        }
    )


@web.middleware
async def _store_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except SQLAlchemyError as exc:
        if not request.path.startswith(("/api/", "/console")):
            raise
        log.error("console.store_unavailable", error=str(exc))
        raise error(503, "the conversation store is unavailable; try again") from None


def register(app: web.Application) -> None:
    app.middlewares.append(_store_errors)
    r = app.router
    r.add_post("/api/signin", sign_in)
    r.add_post("/api/signout", sign_out)
    r.add_get("/api/me", me)
    r.add_get("/api/agents", agents)
    r.add_get("/api/conversations", list_conversations)
    r.add_get("/api/conversations/{id}", read)
    r.add_post("/api/conversations/{id}/reply", reply)
    r.add_post("/api/conversations/{id}/template", send_template)
    r.add_post("/api/conversations/{id}/claim", claim)
    r.add_post("/api/conversations/{id}/assign", assign)
    r.add_post("/api/conversations/{id}/handback", hand_back)
    r.add_post("/api/conversations/{id}/resolve", resolve)
    r.add_post("/api/conversations/{id}/notes", add_note)
