"""WhatsApp's 24-hour window from the console: a reply to a customer silent for longer is refused
with the reason before anything is stored or sent, and the agent may send the approved template
(a Twilio Content SID) instead, which reaches the fake Twilio as a ContentSid message."""

from __future__ import annotations

import time
from typing import Any

from core.models import ConversationRef, Inbound, Sender
from gateway.services import Services
from tests.gateway.console.test_api import sign_in
from tests.support.doubles import KeywordNlu
from tests.support.fakes.twilio import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, TwilioServer
from tests.support.handoff import PersonDialogue

TEMPLATE = "HX" + "a" * 32
NUMBER = "+15550001111"
_n = iter(range(1_000_000))


async def write(services: Services, text: str, hours_ago: float) -> None:
    """A WhatsApp message from the customer, received `hours_ago`."""
    inbound = Inbound(
        event_id=f"w{next(_n)}",
        conversation=ConversationRef(channel="whatsapp", chat_id=NUMBER),
        sender=Sender(id=NUMBER, name="Wanda"),
        text=text,
        received_at=time.time() - hours_ago * 3600,
    )
    assert services.engine is not None
    done = services.engine.expect(inbound)
    await services.storage.queue.put(inbound)
    await done


def _twilio(server: TwilioServer, **more: Any) -> dict[str, Any]:
    return {
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_whatsapp_from": TWILIO_FROM,
        "twilio_api_url": server.url,
        "twilio_messaging_url": server.url,
        **more,
    }


async def test_past_the_window_the_template_is_offered_and_sent(
    gateway_factory: Any, fake_twilio: TwilioServer
) -> None:
    twilio = fake_twilio.fake
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        **_twilio(fake_twilio, whatsapp_reengage_template=TEMPLATE),
    ) as (client, services):
        await services.desk.agents.add("ann", "agent", "ann-password")
        await write(services, "I want a person", hours_ago=30)
        [conv] = await services.desk.conversations.queue()
        csrf = await sign_in(client, "ann", "ann-password")
        sent_before = len(twilio.messages)
        url = f"/api/conversations/{conv.id}"

        r = await client.post(f"{url}/reply", json={"text": "Hi Wanda"}, headers=csrf)
        assert r.status == 409
        body = await r.json()
        assert body["reason"] == "outside_reply_window" and body["template"] is True
        assert "within 24 hours" in body["error"] and "30 hours ago" in body["error"]
        assert len(twilio.messages) == sent_before
        seen = await (await client.get(url)).json()
        assert "Hi Wanda" not in [m["text"] for m in seen["messages"]]
        assert seen["conversation"]["state"] == "waiting"  # nobody took it by failing

        r = await client.post(f"{url}/template", headers=csrf)
        assert r.status == 201, await r.text()
        last = twilio.messages[-1]
        assert last["ContentSid"] == TEMPLATE and last["To"] == f"whatsapp:{NUMBER}"
        assert "Body" not in last
        seen = await (await client.get(url)).json()
        assert seen["messages"][-1]["text"] == f"[approved template {TEMPLATE}]"
        assert seen["conversation"]["holder"] == "ann"

        # The customer writes back: the window is open again and free text goes out.
        await write(services, "yes, still need help", hours_ago=0)
        r = await client.post(f"{url}/reply", json={"text": "Hi Wanda"}, headers=csrf)
        assert r.status == 201, await r.text()
        assert twilio.bodies(f"whatsapp:{NUMBER}")[-1] == "Hi Wanda"


async def test_without_a_template_the_reason_is_given_and_nothing_offered(
    gateway_factory: Any, fake_twilio: TwilioServer, recording_channel: Any
) -> None:
    async with gateway_factory(
        nlu=KeywordNlu(),
        dialogue=PersonDialogue(),
        channels={"test": recording_channel},
        **_twilio(fake_twilio),
    ) as (client, services):
        await services.desk.agents.add("ann", "agent", "ann-password")
        await write(services, "a person please", hours_ago=25)
        [conv] = await services.desk.conversations.queue()
        csrf = await sign_in(client, "ann", "ann-password")
        r = await client.post(
            f"/api/conversations/{conv.id}/reply", json={"text": "hello"}, headers=csrf
        )
        body = await r.json()
        assert r.status == 409 and body["template"] is False and "template" not in body["error"]
        r = await client.post(f"/api/conversations/{conv.id}/template", headers=csrf)
        assert r.status == 400
        assert "WHATSAPP_REENGAGE_TEMPLATE" in (await r.json())["error"]
