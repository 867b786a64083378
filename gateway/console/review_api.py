"""The review inbox: its page (/console/review) and API (/api/review...), for reviewers and
admins. A label is kept in SQL and written to the reviewed examples file under FLOWS_DIR, which
the next retrain reads; live per-intent precision is estimated from the labels and shown beside
the deployed release's held-out figures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from config.settings import Settings
from core.errors import NluDataError
from core.nlu import scores
from core.nlu.data import OUT_OF_SCOPE, load_flows_dir
from core.review import trainfile
from core.review.examples import MAX_TEXT
from core.review.inbox import LABELS, REASONS, InboxItem, InboxQuery, Label, live_precision
from core.sql.reviews import SqlReviews
from gateway.console.api import _body, _when
from gateway.console.auth import Caller, desk_of, error, needs
from gateway.console.pages import role_page
from gateway.console.roles import REVIEW
from gateway.services import SERVICES

log = structlog.get_logger(__name__)

STATUSES = ("open", "done", "all")


def _settings(request: web.Request) -> Settings:
    return request.app[SERVICES].settings


def _reviews(request: web.Request) -> SqlReviews:
    return SqlReviews(desk_of(request).db)


def review_file(settings: Settings) -> Path:
    return trainfile.file_in(settings.flows_dir)


def _lock(settings: Settings) -> Path:
    return trainfile.lock_in(settings.data_dir)


def known_intents(settings: Settings) -> list[str]:
    """The intents the training data defines (what a label may name); `NluDataError` when the
    flow files cannot be read."""
    return sorted({e.intent for e in load_flows_dir(settings.flows_dir)} - {OUT_OF_SCOPE})


async def _intents(request: web.Request) -> list[str]:
    try:
        return await asyncio.to_thread(known_intents, _settings(request))
    except NluDataError as exc:
        raise error(409, f"the training data cannot be read: {exc}") from None


def label_json(label: Label | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {
        "label": label.kind,
        "intent": label.intent,
        "example": label.example,
        "predicted": label.predicted,
        "by": label.reviewer,
        "at": label.at,
    }


def item_json(i: InboxItem) -> dict[str, Any]:
    return {
        "turn": i.turn_id,
        "conversation": i.conversation_id,
        "channel": i.channel,
        "at": i.at,
        "text": i.text,
        "intent": i.intent,
        "confidence": i.confidence,
        "ranking": [{"intent": n, "confidence": c} for n, c in i.ranking],
        "outcome": i.outcome,
        "feedback": i.feedback,
        "reasons": i.reasons,
        "review": label_json(i.label),
    }


@needs(REVIEW)
async def inbox(request: web.Request, who: Caller) -> web.Response:
    q = request.query
    reason = q.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise error(400, f"`reason` is one of {', '.join(REASONS)}")
    status = q.get("status") or "open"
    if status not in STATUSES:
        raise error(400, f"`status` is one of {', '.join(STATUSES)}")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise error(400, "`limit` must be a number") from None
    below = _settings(request).review_below
    items = await _reviews(request).inbox(
        InboxQuery(
            reason=reason,  # type: ignore[arg-type]
            channel=q.get("channel") or None,
            intent=q.get("intent") or None,
            since=_when(q.get("since"), "since"),
            until=_when(q.get("until"), "until"),
            status=status,  # type: ignore[arg-type]
            below=below,
            limit=limit,
        )
    )
    return web.json_response(
        {"items": [item_json(i) for i in items], "reasons": list(REASONS), "below": below}
    )


@needs(REVIEW)
async def intents(request: web.Request, who: Caller) -> web.Response:
    return web.json_response({"intents": await _intents(request)})


def _turn_id(request: web.Request) -> int:
    try:
        return int(request.match_info["turn"])
    except ValueError:
        raise error(404, "no such turn") from None


async def _decide(
    request: web.Request, body: dict[str, Any], item: InboxItem, reviewer: str
) -> Label:
    """The label the body asks for, or 400 saying why not (an intent that does not exist is
    refused with the list of those that do)."""
    kind = body.get("label")
    if kind not in LABELS:
        raise error(400, f"`label` is one of {', '.join(LABELS)}")
    intent: str | None = None
    example: str | None = None
    if kind == "right":
        if item.intent is None:
            raise error(400, "the model gave this turn no intent: relabel it instead")
        intent = item.intent
    elif kind in ("relabel", "example"):
        known = await _intents(request)
        wanted = body.get("intent")
        if not isinstance(wanted, str) or wanted not in known:
            raise error(
                400, f"no intent named {str(wanted)[:128]!r}; the intents are listed", intents=known
            )
        intent = wanted
        if kind == "relabel" and intent == item.intent:
            kind = "right"  # what the model said: a relabel to it says the model was right
    if kind == "example":
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise error(400, "`text` must be the new example's words")
        if len(text) > MAX_TEXT:
            raise error(400, f"`text` is longer than {MAX_TEXT} characters")
        example = " ".join(text.split())
    return Label(item.turn_id, kind, intent, example, item.intent, reviewer, time.time())


def _write(settings: Settings, label: Label, text: str) -> bool:
    """The label into the reviewed examples file; False when it teaches nothing there (ignored,
    or the customer's words are empty or too long to be an example)."""
    path, lock = review_file(settings), _lock(settings)
    words = label.example if label.kind == "example" else text
    if label.kind == "ignore" or label.intent is None or not words or len(words) > MAX_TEXT:
        trainfile.drop(path, lock, label.turn_id)
        return False
    entry = trainfile.Entry(
        intent=label.intent,
        text=words,
        label=label.kind,
        by=label.reviewer,
        at=trainfile.iso(label.at),
        turn=label.turn_id,
        was=label.predicted,
    )
    trainfile.save(path, lock, entry)
    return True


@needs(REVIEW)
async def label(request: web.Request, who: Caller) -> web.Response:
    body = await _body(request)
    settings = _settings(request)
    store = _reviews(request)
    item = await store.item(_turn_id(request), settings.review_below)
    if item is None:
        raise error(404, "no such turn")
    decided = await _decide(request, body, item, who.agent.name)
    try:
        # The file first: a file broken by hand refuses the label, and SQL does not keep it.
        written = await asyncio.to_thread(_write, settings, decided, item.text.strip())
    except (NluDataError, OSError) as exc:
        raise error(409, f"the reviewed examples file cannot be written: {exc}") from None
    await store.label(decided, who.agent.id)
    log.info("review.labelled", turn=item.turn_id, label=decided.kind, intent=decided.intent)
    return web.json_response({"review": label_json(decided), "written": written})


@needs(REVIEW)
async def precision(request: web.Request, who: Caller) -> web.Response:
    """Live precision per intent from the labels, beside the deployed release's held-out
    precision and recall."""
    live = live_precision(await _reviews(request).judged())
    pointer = _settings(request).model_dir
    release = pointer.resolve() if pointer.exists() else None
    offline = await asyncio.to_thread(scores.read, release) if release else None
    names = sorted(set(live) | set(offline.precision if offline else ()))
    rows = []
    for name in names:
        p = live.get(name)
        rows.append(
            {
                "intent": name,
                "live": {
                    "precision": p.precision if p else None,
                    "right": p.right if p else 0,
                    "wrong": p.wrong if p else 0,
                },
                "offline": {
                    "precision": offline.precision.get(name) if offline else None,
                    "recall": offline.recall.get(name) if offline else None,
                },
            }
        )
    summary = (
        {"accuracy": round(offline.accuracy, 4), "n": offline.n, "release": release.name}
        if offline and release
        else None
    )
    return web.json_response({"intents": rows, "offline": summary})


async def page(request: web.Request) -> web.StreamResponse:
    return await role_page(request, REVIEW, "review.html", "Your role may not review turns.")


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/review", page)
    r.add_get("/api/review", inbox)
    r.add_get("/api/review/intents", intents)
    r.add_get("/api/review/precision", precision)
    r.add_post("/api/review/{turn}/label", label)
