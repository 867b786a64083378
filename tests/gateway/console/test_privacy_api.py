"""`POST /api/forget` end to end, with Redis and the SQL conversation store: a customer who
talked, was handed to a person and got a note is erased, and nothing in SQL, in Redis or in the
logs written by the erasure names them or holds their words; another customer stays. Admins
only, with the CSRF token; an unknown customer is told as nothing found."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import MetaData, select
from structlog.testing import capture_logs

from core.keys import hashed
from core.models import ConversationRef, Inbound, Sender
from core.sql.db import Database
from gateway.services import Services
from tests.core.redis.test_forget import everything
from tests.gateway.console.test_api import sign_in
from tests.support.doubles import KeywordNlu, RecordingChannel
from tests.support.handoff import PersonDialogue

ANA, BEN = "ana-5521", "ben-7730"
WORDS = "my plan is ZEBRA-UMBRELLA, write to ana.q@example.com"


async def say(services: Services, who: str, n: int, text: str) -> None:
    inbound = Inbound(
        event_id=f"{who}-e{n}",
        conversation=ConversationRef(channel="test", chat_id=who),
        sender=Sender(id=who, name=f"Customer {who}"),
        text=text,
    )
    assert services.engine is not None
    done = services.engine.expect(inbound)
    await services.storage.queue.put(inbound)
    await done


async def all_rows(db: Database) -> str:
    async with db.engine.connect() as conn:
        meta = MetaData()
        await conn.run_sync(meta.reflect)
        return "\n".join([repr((await conn.execute(select(t))).all()) for t in meta.sorted_tables])


async def test_forget_leaves_no_trace_in_sql_redis_or_the_logs(
    gateway_factory: Any, recording_channel: RecordingChannel, redis_url: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        redis_url=redis_url,
        redis_prefix=prefix,
    ) as (client, services):
        desk = services.desk
        await say(services, ANA, 1, WORDS)
        await say(services, ANA, 2, "I want a person")
        await say(services, BEN, 1, "hello from ben")
        ana = await desk.conversations.by_key(f"test:{ANA}")
        assert ana is not None
        await desk.agents.add("ann", "agent", "ann-password")
        root = await desk.agents.add("root", "admin", "root-password")
        await desk.conversations.add_note(ana.id, root.id, f"called {ANA} back")
        lines = len(await desk.conversations.messages(ana.id))
        assert ANA in await all_rows(desk.db) and ANA in await everything(redis_url)

        csrf = await sign_in(client, "ann", "ann-password")
        who = {"channel": "test", "user": ANA}
        assert (await client.post("/api/forget", json=who, headers=csrf)).status == 403
        csrf = await sign_in(client, "root", "root-password")
        assert (await client.post("/api/forget", json=who)).status == 403, "no CSRF token"
        no_user = await client.post("/api/forget", json={"channel": "test"}, headers=csrf)
        assert no_user.status == 400
        assert ANA in await all_rows(desk.db), "nothing was erased by a refused call"

        with capture_logs() as logs:
            r = await client.post("/api/forget", json=who, headers=csrf)
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["found"] is True
        removed = body["removed"]
        assert removed["conversations"] == 1 and removed["messages"] == lines
        assert removed["turns"] == 2 and removed["notes"] == 1 and removed["handoffs"] == 1
        # Redis: handled events have left the queue; their dedupe keys are known from SQL.
        assert removed["sessions"] == 1 and removed["dedupe keys"] == 2
        assert removed["rate-limit counters"] == 1

        rows, keys = await all_rows(desk.db), await everything(redis_url)
        for trace in (ANA, "ZEBRA", "ana.q@", hashed(f"test:{ANA}"), hashed(f"test:{ANA}-e1")):
            assert trace not in rows, trace
            assert trace not in keys, trace
        assert ANA not in repr(logs) and "ZEBRA" not in repr(logs)
        assert BEN in rows and hashed(f"test:{BEN}") in keys, "another customer stays"

        again = await client.post("/api/forget", json=who, headers=csrf)
        assert await again.json() == {
            "found": False,
            "removed": {},
            "notes": [],
            "report": "nothing was found",
        }
