"""`/api/insights` and `/api/insights/export`: admins only (checked on each call, the page's
too), figures computed from a known set of recorded turns per day or week and channel (on
SQLite and a real PostgreSQL), the turns exported as CSV and JSON Lines with the text as
stored (redacted), bad ranges refused."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from core.turn_export import FIELDS
from gateway.services import Services
from tests.gateway.console.test_api import sign_in
from tests.gateway.test_desk import say
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue
from tests.support.postgres_server import database_url, postgres, postgres_url

__all__ = ["database_url", "postgres", "postgres_url"]

DAY = 1_764_979_200.0  # 2025-12-06 00:00 UTC, a Saturday
TWO_DAYS = {"since": "2025-12-06", "until": "2025-12-08"}


def logged(
    channel: str,
    chat: str,
    n: int,
    outcome: str,
    latency: float,
    confidence: float,
    *,
    day: int = 0,
    intent: str = "order_status",
    queue: str | None = None,
    feedback: str | None = None,
) -> TurnLog:
    ref = ConversationRef(channel=channel, chat_id=chat)
    key = f"{chat}-{n}"
    at = DAY + day * 86_400 + 3600 + n
    fact = TurnFact(key, at, f"text {key}", intent, confidence, [(intent, confidence)], outcome,
                    None, None, latency)  # fmt: skip
    return TurnLog(ref, Sender(id=chat), [Said(key, "text", at)], [], intent, confidence, {},
                   queue is not None, queue, at if queue else None, turn=fact,
                   feedback=(feedback, f"{chat}-0") if feedback else None)  # fmt: skip


KNOWN = [
    # Saturday, Telegram: one conversation kept by the bot, one handed off after misreadings.
    logged("telegram", "a", 0, "answered", 0.2, 0.95),
    logged("telegram", "a", 1, "fallback", 0.4, 0.30, feedback="up"),
    logged("telegram", "b", 0, "clarified", 0.6, 0.55),
    logged("telegram", "b", 1, "handoff", 0.8, 0.20, queue="fallback"),
    # Sunday, web chat: one asked for a person, one kept by the bot.
    logged("webchat", "c", 0, "answered", 1.0, 0.91, day=1),
    logged(
        "webchat",
        "c",
        1,
        "handoff",
        1.2,
        0.97,
        day=1,
        intent="human",
        queue="support",
        feedback="down",
    ),
    logged("webchat", "d", 0, "answered", 0.3, 0.88, day=1),
    logged("webchat", "d", 1, "answered", 0.5, 0.75, day=1),
]


async def record_known(services: Services) -> None:
    assert services.desk is not None
    for log in KNOWN:
        await services.desk.conversations.record_turn(log)
    await services.desk.agents.add("ann", "agent", "ann-password")
    await services.desk.agents.add("root", "admin", "root-password")


async def test_figures_of_known_turns_for_admins_only(
    gateway_factory: Any, recording_channel: RecordingChannel, database_url: str
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        database_url=database_url,
    ) as (client, services):
        await record_known(services)
        assert (await client.get("/api/insights", params=TWO_DAYS)).status == 401
        page = await client.get("/console/insights", allow_redirects=False)
        assert (page.status, page.headers["Location"]) == (302, "/console")

        await sign_in(client, "ann", "ann-password")
        assert (await client.get("/api/insights", params=TWO_DAYS)).status == 403
        assert (await client.get("/api/insights/export", params=TWO_DAYS)).status == 403
        assert (await client.get("/console/insights")).status == 403
        assert "insights" not in (await (await client.get("/api/me")).json())["permissions"]

        await sign_in(client, "root", "root-password")
        assert "insights" in (await (await client.get("/api/me")).json())["permissions"]
        page = await client.get("/console/insights")
        assert page.status == 200 and "chart-intents" in await page.text()
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        vendored = await client.get("/console/static/vendor/uPlot.iife.min.js")
        assert vendored.status == 200 and "uPlot" in await vendored.text()
        assert (await client.get("/console/static/vendor/nothing.js")).status == 404

        r = await client.get("/api/insights", params=TWO_DAYS)
        assert r.status == 200, await r.text()
        got = await r.json()
        total = got["total"]
        assert (total["turns"], total["conversations"], total["handoffs"]) == (8, 4, 2)
        assert total["containment"] == 0.5
        assert (total["fallback_rate"], total["clarification_rate"]) == (0.125, 0.125)
        assert total["handoff_rate"] == 0.25
        assert total["handoff_reasons"] == {"fallback": 1, "support": 1}
        assert total["satisfaction"] == 0.5 and total["feedback"] == {"up": 1, "down": 1}
        assert total["intents"] == {"order_status": 7, "human": 1}
        assert total["confidence"] == [0, 0, 1, 1, 0, 1, 0, 1, 1, 3]
        assert (total["latency_p50"], total["latency_p95"]) == (0.5, 1.2)
        assert [(p["period"], p["turns"], p["containment"]) for p in got["periods"]] == [
            ("2025-12-06", 4, 0.5),
            ("2025-12-07", 4, 0.5),
        ]
        assert [(c["channel"], c["turns"], c["handoff_reasons"]) for c in got["channels"]] == [
            ("telegram", 4, {"fallback": 1}),
            ("webchat", 4, {"support": 1}),
        ]
        assert [(r["period"], r["channel"]) for r in got["rows"]] == [
            ("2025-12-06", "telegram"),
            ("2025-12-07", "webchat"),
        ]

        weekly = await client.get("/api/insights", params={**TWO_DAYS, "period": "week"})
        [week] = (await weekly.json())["periods"]
        assert (week["period"], week["turns"], week["satisfaction"]) == ("2025-12-01", 8, 0.5)
        web = await client.get("/api/insights", params={**TWO_DAYS, "channel": "webchat"})
        web_total = (await web.json())["total"]
        assert (web_total["turns"], web_total["satisfaction"], web_total["latency_p50"]) == (
            4,
            0.0,
            0.5,
        )

        later = await client.get(
            "/api/insights", params={"since": "2025-12-08", "until": "2025-12-09"}
        )
        assert (await later.json())["total"]["turns"] == 0
        for params, word in (
            ({"since": "yesterday"}, "since"),
            ({"since": "2025-12-07", "until": "2025-12-06"}, "before"),
            ({"since": "2025-01-01", "until": "2025-12-06"}, "92 days"),
            ({**TWO_DAYS, "period": "month"}, "period"),
            ({**TWO_DAYS, "channel": "x" * 100}, "channel"),
        ):
            bad = await client.get("/api/insights", params=params)
            assert bad.status == 400 and word in (await bad.json())["error"], params
        bad = await client.get("/api/insights/export", params={**TWO_DAYS, "format": "xlsx"})
        assert bad.status == 400


async def test_export_streams_the_turns_as_stored(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (client, services):
        await record_known(services)
        # One customer through the whole turn: their text is stored redacted.
        await say(services, "=HYPERLINK(1) I am ann@example.com, card 4111 1111 1111 1111")
        await sign_in(client, "root", "root-password")

        r = await client.get("/api/insights/export", params={**TWO_DAYS, "format": "csv"})
        assert r.status == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert r.headers["Content-Disposition"] == (
            "attachment; filename=turns-2025-12-06-2025-12-08.csv"
        )
        rows = list(csv.reader(io.StringIO(await r.text())))
        assert tuple(rows[0]) == FIELDS and len(rows) == 9
        first = dict(zip(FIELDS, rows[1], strict=True))
        assert first == {
            **first,
            "channel": "telegram",
            "key": "a-0",
            "at": "2025-12-06T01:00:00+00:00",
            "text": "text a-0",
            "intent": "order_status",
            "confidence": "0.95",
            "ranking": '[["order_status", 0.95]]',
            "outcome": "answered",
            "latency": "0.2",
            "feedback": "up",
        }

        web = await client.get(
            "/api/insights/export", params={**TWO_DAYS, "format": "jsonl", "channel": "webchat"}
        )
        assert web.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
        assert web.headers["Content-Disposition"].endswith("-webchat.jsonl")
        lines = [json.loads(x) for x in (await web.text()).splitlines()]
        assert [(x["key"], x["outcome"], x["feedback"]) for x in lines] == [
            ("c-0", "answered", "down"),
            ("d-0", "answered", None),
            ("c-1", "handoff", None),
            ("d-1", "answered", None),
        ]
        assert set(lines[0]) == set(FIELDS)

        today = await client.get("/api/insights/export", params={"format": "jsonl"})
        [now] = [json.loads(x) for x in (await today.text()).splitlines()]
        assert now["text"] == "=HYPERLINK(1) I am [email], card [card]"
        assert now["channel"] == "test" and "ann@" not in await today.text()
        as_csv = await (await client.get("/api/insights/export")).text()
        assert "'=HYPERLINK(1) I am [email], card [card]" in as_csv
        assert "4111" not in as_csv
