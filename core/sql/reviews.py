"""The review inbox in SQL: the recorded turns worth a look with their labels, one label per
turn (a later one replaces it), and the counts live precision is estimated from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select

from core.review.inbox import JUDGED, InboxItem, InboxQuery, Label, Reason, reasons_of
from core.sql.db import Database
from core.sql.models import ReviewRow, TurnRow

MAX_LIMIT = 200


def _reason(reason: Reason, below: float) -> ColumnElement[bool]:
    if reason == "low_confidence":
        return TurnRow.confidence < below
    if reason == "thumbs_down":
        return TurnRow.feedback == "down"
    return TurnRow.outcome == reason


class SqlReviews:
    """Read by the console's review API; written when a reviewer labels a turn."""

    def __init__(self, db: Database):
        self._db = db

    async def inbox(self, q: InboxQuery) -> list[InboxItem]:
        wanted = (
            _reason(q.reason, q.below)
            if q.reason
            else or_(
                TurnRow.confidence < q.below,
                TurnRow.outcome.in_(["clarified", "fallback", "handoff"]),
                TurnRow.feedback == "down",
            )
        )
        stmt = (
            select(TurnRow, ReviewRow)
            .outerjoin(ReviewRow, ReviewRow.turn_id == TurnRow.id)
            .where(wanted)
        )
        if q.channel:
            stmt = stmt.where(TurnRow.channel == q.channel)
        if q.intent:
            stmt = stmt.where(TurnRow.intent == q.intent)
        if q.since is not None:
            stmt = stmt.where(TurnRow.at >= q.since)
        if q.until is not None:
            stmt = stmt.where(TurnRow.at < q.until)
        if q.status == "open":
            stmt = stmt.where(ReviewRow.id.is_(None))
        elif q.status == "done":
            stmt = stmt.where(ReviewRow.id.is_not(None))
        stmt = stmt.order_by(TurnRow.at.desc(), TurnRow.id.desc()).limit(
            max(1, min(q.limit, MAX_LIMIT))
        )
        async with self._db.session() as s:
            return [_item(t, r, q.below) for t, r in await s.execute(stmt)]

    async def item(self, turn_id: int, below: float) -> InboxItem | None:
        """One recorded turn with its label (in the inbox or not)."""
        async with self._db.session() as s:
            found = (
                await s.execute(
                    select(TurnRow, ReviewRow)
                    .outerjoin(ReviewRow, ReviewRow.turn_id == TurnRow.id)
                    .where(TurnRow.id == turn_id)
                )
            ).first()
        return _item(found[0], found[1], below) if found else None

    async def label(self, label: Label, reviewer_id: int | None) -> None:
        """Keep the label, replacing the turn's earlier one."""
        async with self._db.session() as s, s.begin():
            await s.execute(delete(ReviewRow).where(ReviewRow.turn_id == label.turn_id))
            s.add(
                ReviewRow(
                    turn_id=label.turn_id,
                    label=label.kind,
                    intent=label.intent[:128] if label.intent else None,
                    example=label.example,
                    predicted=label.predicted[:128] if label.predicted else None,
                    reviewer=label.reviewer[:64],
                    reviewer_id=reviewer_id,
                    at=label.at,
                )
            )

    async def judged(self) -> list[tuple[str | None, str, int]]:
        """(predicted intent, label, count) of the labels that say right or wrong."""
        stmt = (
            select(ReviewRow.predicted, ReviewRow.label, func.count())
            .where(ReviewRow.label.in_(JUDGED))
            .group_by(ReviewRow.predicted, ReviewRow.label)
        )
        async with self._db.session() as s:
            return [(p, str(k), int(n)) for p, k, n in await s.execute(stmt)]


def _label(r: ReviewRow) -> Label:
    return Label(
        turn_id=r.turn_id,
        kind=r.label,  # type: ignore[arg-type]
        intent=r.intent,
        example=r.example,
        predicted=r.predicted,
        reviewer=r.reviewer,
        at=r.at,
    )


def _item(t: TurnRow, r: ReviewRow | None, below: float) -> InboxItem:
    ranking: list[Any] = t.ranking or []
    return InboxItem(
        turn_id=t.id,
        conversation_id=t.conversation_id,
        channel=t.channel,
        at=t.at,
        text=t.text,
        intent=t.intent,
        confidence=t.confidence,
        ranking=[(str(n), float(c)) for n, c in ranking],
        outcome=t.outcome,
        feedback=t.feedback,
        reasons=reasons_of(t.outcome, t.confidence, t.feedback, below),
        label=_label(r) if r is not None else None,
    )
