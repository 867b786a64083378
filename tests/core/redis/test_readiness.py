"""With Redis unreachable, /readyz turns red and a webhook answers 503 (the platform retries);
once Redis is back, both recover without a restart of the gateway."""

from __future__ import annotations

import json

from tests.core.redis.harness import probe
from tests.support.doubles import SIGNATURE, EchoDialogue, KeywordNlu, sign
from tests.support.gateway_app import running_gateway
from tests.support.redis_server import RedisServer


async def test_readyz_and_webhooks_follow_redis(own_redis: RedisServer, tmp_path: object) -> None:
    channel = probe("s3cret", None)
    body = json.dumps({"id": "r1", "chat": "c", "text": "hi"}).encode()
    headers = {SIGNATURE: sign(b"s3cret", body)}
    async with running_gateway(
        nlu=KeywordNlu(),
        dialogue=EchoDialogue(),
        channels={"probe": channel},
        with_worker=False,
        redis_url=own_redis.url,
        data_dir=str(tmp_path),
    ) as (client, services):
        assert services.storage.durable
        assert (await client.get("/readyz")).status == 200
        own_redis.stop()
        assert (await client.get("/readyz")).status == 503
        resp = await client.post("/webhooks/probe", data=body, headers=headers)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        own_redis.start()
        assert (await client.get("/readyz")).status == 200
        assert (await client.post("/webhooks/probe", data=body, headers=headers)).status == 200
        assert (await client.post("/webhooks/probe", data=body, headers=headers)).status == 200
        assert await services.storage.queue.depth() == 1, "the retry was a duplicate"
