"""`/api/insights`: admins only, computed from the turns table, bad ranges refused."""

from __future__ import annotations

from typing import Any

from core.conversations import Said, TurnFact, TurnLog
from core.models import ConversationRef, Sender
from tests.gateway.console.test_api import sign_in
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

DAY = 1_764_979_200.0  # 2025-12-06 00:00 UTC


def logged(chat: str, n: int, outcome: str, latency: float, feedback: str | None = None) -> TurnLog:
    ref = ConversationRef(channel="telegram", chat_id=chat)
    key = f"{chat}-{n}"
    fact = TurnFact(key, DAY + 3600 + n, "text", "order_status", 0.9, [], outcome, None, None,
                    latency)  # fmt: skip
    return TurnLog(ref, Sender(id=chat), [Said(key, "text", DAY + n)], [], "order_status", 0.9,
                   {}, outcome == "handoff", None, DAY + n if outcome == "handoff" else None,
                   turn=fact, feedback=(feedback, f"{chat}-0") if feedback else None)  # fmt: skip


async def test_insights_from_known_turns_for_admins_only(
    gateway_factory: Any, recording_channel: RecordingChannel
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(), dialogue=PersonDialogue(), channels={"test": recording_channel}
    ) as (client, services):
        store = services.desk.conversations
        await store.record_turn(logged("a", 0, "answered", 0.2))
        await store.record_turn(logged("a", 1, "fallback", 0.4, feedback="up"))
        await store.record_turn(logged("b", 0, "handoff", 0.8))
        await services.desk.agents.add("ann", "agent", "ann-password")
        await services.desk.agents.add("root", "admin", "root-password")
        window = {"since": "2025-12-06", "until": "2025-12-07"}

        await sign_in(client, "ann", "ann-password")
        assert (await client.get("/api/insights", params=window)).status == 403

        await sign_in(client, "root", "root-password")
        r = await client.get("/api/insights", params=window)
        assert r.status == 200, await r.text()
        [day] = (await r.json())["days"]
        assert (day["day"], day["channel"], day["turns"], day["conversations"]) == (
            "2025-12-06",
            "telegram",
            3,
            2,
        )
        assert day["containment"] == 0.5 and day["handoff_rate"] == round(1 / 3, 4)
        assert day["fallback_rate"] == round(1 / 3, 4) and day["satisfaction"] == 1.0
        assert (day["latency_p50"], day["latency_p95"]) == (0.4, 0.8)
        assert day["intents"] == {"order_status": 3}
        later = await client.get(
            "/api/insights", params={"since": "2025-12-07", "until": "2025-12-08"}
        )
        assert (await later.json())["days"] == []

        bad = await client.get("/api/insights", params={"since": "yesterday"})
        assert bad.status == 400 and "since" in (await bad.json())["error"]
        backwards = await client.get(
            "/api/insights", params={"since": "2025-12-07", "until": "2025-12-06"}
        )
        assert backwards.status == 400
        too_long = await client.get(
            "/api/insights", params={"since": "2025-01-01", "until": "2025-12-06"}
        )
        assert too_long.status == 400
