"""Conversation tests: YAML stories played through the real pipeline (queue → engine → intent
model → flows → outbox) with the replies, flow, slots and handoff checked after each turn."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from config.settings import Settings, load_settings
from core.channel import BaseChannel, SentMessage, WebhookReply, WebhookRequest
from core.dialogue.yamlsrc import LDict, LList, load_file
from core.errors import YamlSyntaxError
from core.models import Capabilities, ConversationRef, Inbound, Outbound, Sender
from core.ports import Dialogue, IntentParser
from core.session import Session
from gateway.build import build_gateway
from gateway.services import Services
from integrations.shop import Shop

TURN_TIMEOUT = 30.0
STEP_KEYS = {"user", "press", "payload"}
CHECK_KEYS = {
    "bot",
    "bot_any",
    "not_bot",
    "buttons",
    "not_buttons",
    "flow",
    "slots",
    "handoff",
    "silent",
    "intent",
}


class StoryChannel(BaseChannel):
    name: ClassVar[str] = "story"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text=100_000)

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    def verify(self, req: WebhookRequest) -> None:
        return None

    def parse(self, req: WebhookRequest) -> WebhookReply:
        return WebhookReply()

    async def send(self, msg: Outbound) -> SentMessage:
        self.sent.append(msg)
        return SentMessage()


@dataclass
class StoryResult:
    name: str
    where: str
    failures: list[str] = field(default_factory=list)
    turns: int = 0
    """Turns played; in scoring mode every turn is played whatever the ones before did."""
    failed_turns: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class StoryReport:
    results: list[StoryResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def format(self) -> str:
        lines = []
        for r in self.results:
            lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.where} {r.name}")
            lines += [f"    {f}" for f in r.failures]
        ok = sum(r.passed for r in self.results)
        lines.append(f"{ok}/{len(self.results)} stories passed")
        return "\n".join(lines)

    @property
    def turns(self) -> int:
        return sum(r.turns for r in self.results)

    @property
    def good_turns(self) -> int:
        return sum(r.turns - r.failed_turns for r in self.results)

    @property
    def share(self) -> float:
        """Share of turns handled well (a malformed story counts as one failed turn)."""
        broken = sum(1 for r in self.results if r.failures and not r.turns)
        total = self.turns + broken
        return self.good_turns / total if total else 0.0

    def format_score(self) -> str:
        """The benchmark's view: each failed turn, then the share of turns handled well."""
        lines = [f"FAIL {r.where} {r.name}\n" + "\n".join(f"    {f}" for f in r.failures)
                 for r in self.results if r.failures]  # fmt: skip
        conversations = len(self.results)
        lines.append(
            f"{self.good_turns}/{self.turns} turns handled well ({100 * self.share:.1f}%), "
            f"{sum(r.passed for r in self.results)}/{conversations} conversations without a miss"
        )
        return "\n".join(lines)


def story_settings(base: Settings | None = None) -> Settings:
    """Memory queue and store, the in-process shop, no outside webhooks: stories are
    deterministic and touch nothing outside the process."""
    settings = base or load_settings()
    return settings.model_copy(
        update={"redis_url": None, "handoff_webhook_url": None, "shop_api_url": None}
    )


async def run_stories(
    directory: Path,
    nlu: IntentParser,
    dialogue: Dialogue,
    settings: Settings | None = None,
    *,
    score: bool = False,
    shop: Shop | None = None,
) -> StoryReport:
    """Play every story under `directory` (*.yml, *.yaml) through a fresh pipeline. With
    `score` (the conversation benchmark) every turn is played and judged on its own, and a
    turn that gets no reply fails unless it says `silent: true`: no customer message may be
    left without an answer. `shop`, the demo shop the flows call, is restored before each
    story, so no story meets an order an earlier one cancelled."""
    report = StoryReport()
    stories = await asyncio.to_thread(_collect, directory, report)
    channel = StoryChannel()
    # A worker's parts: the queue, the store, the channels and the engine, no listener.
    services = build_gateway(
        story_settings(settings),
        "worker",
        nlu=nlu,
        dialogue=dialogue,
        channels={channel.name: channel},
        support_desk=False,
    )
    async with services.running():
        for path, name, where, steps in stories:
            if shop is not None:
                shop.restore()
            result = StoryResult(name, where)
            await _play(services, channel, steps, result, path, score)
            report.results.append(result)
    return report


def _collect(directory: Path, report: StoryReport) -> list[tuple[Path, str, str, LList]]:
    if directory.is_file():
        files = [directory]
    else:
        files = sorted([*directory.rglob("*.yml"), *directory.rglob("*.yaml")])
    if not files:
        report.results.append(StoryResult("(dir)", str(directory), ["no story files found"]))
    return [(path, *story) for path in files for story in _stories(path, report)]


def _stories(path: Path, report: StoryReport) -> list[tuple[str, str, LList]]:
    try:
        doc = load_file(path)
    except YamlSyntaxError as exc:
        report.results.append(StoryResult("(file)", f"{path}:{exc.line}", [exc.reason]))
        return []
    if not isinstance(doc, LDict) or not isinstance(doc.get("stories"), LList):
        report.results.append(StoryResult("(file)", f"{path}:1", ["expected stories: [...]"]))
        return []
    out = []
    stories = doc["stories"]
    for i, story in enumerate(stories):
        where = f"{path}:{stories.line_of(i)}"
        if not isinstance(story, LDict) or not isinstance(story.get("steps"), LList):
            report.results.append(StoryResult("(story)", where, ["expected name: and steps:"]))
            continue
        out.append((str(story.get("name", f"story {i + 1}")), where, story["steps"]))
    return out


async def _play(
    services: Services,
    channel: StoryChannel,
    steps: LList,
    result: StoryResult,
    path: Path,
    score: bool = False,
) -> None:
    chat = uuid.uuid4().hex[:12]
    conv = ConversationRef(channel=channel.name, chat_id=chat)
    assert services.engine is not None
    for i, step in enumerate(steps):
        at = f"{path}:{steps.line_of(i)}"
        if not isinstance(step, LDict) or len(STEP_KEYS & set(step)) != 1:
            result.failures.append(f"{at}: a step needs exactly one of user, press, payload")
            return
        unknown = set(step) - STEP_KEYS - CHECK_KEYS
        if unknown:
            result.failures.append(f"{at}: unknown key {sorted(unknown)[0]!r}")
            return
        session = await services.storage.store.load(conv.key)
        result.turns += 1
        if "press" in step:
            labels = [b.label for b in (session.offered if session else [])]
            label = step.text_of("press")
            if label not in labels:
                result.failures.append(f"{at}: no button {label!r} offered ({labels})")
                result.failed_turns += 1
                if not score:
                    return
                continue
        inbound = Inbound(
            event_id=uuid.uuid4().hex,
            conversation=conv,
            sender=Sender(id=chat, name="story"),
            text=step.text_of("user" if "user" in step else "press"),
            payload=step.text_of("payload") if "payload" in step else None,
        )
        before = len(channel.sent)
        done = services.engine.expect(inbound)
        await services.storage.queue.put(inbound)
        await asyncio.wait_for(done, TURN_TIMEOUT)
        replies = [m for m in channel.sent[before:] if m.conversation == conv]
        session = await services.storage.store.load(conv.key)
        found = check(step, replies, session)
        if score and not replies and not step.get("silent"):
            found.append("no reply: the customer's message was left without an answer")
        result.failures += [f"{at}: {f}" for f in found]
        result.failed_turns += bool(found)
        if result.failures and not score:
            return


def check(step: LDict, replies: list[Outbound], session: Session | None) -> list[str]:
    """What differs between a step's expectations and what the bot did."""
    text = "\n".join(r.text for r in replies)
    folded = text.casefold()
    said = f"(bot said: {text!r})"
    out: list[str] = []
    for want in _list(step.get("bot")):
        if str(want).casefold() not in folded:
            out.append(f"expected the reply to contain {want!r} {said}")
    wanted_any = [str(w) for w in _list(step.get("bot_any"))]
    if wanted_any and not any(w.casefold() in folded for w in wanted_any):
        out.append(f"expected the reply to contain one of {wanted_any} {said}")
    for unwanted in _list(step.get("not_bot")):
        if str(unwanted).casefold() in folded:
            out.append(f"expected the reply not to contain {unwanted!r} {said}")
    labels = [b.label for r in replies for b in r.buttons]
    for label in _list(step.get("buttons")):
        if label not in labels:
            out.append(f"expected a button {label!r} (got {labels})")
    for label in _list(step.get("not_buttons")):
        if label in labels:
            out.append(f"expected no button {label!r} (got {labels})")
    if step.get("silent") and replies:
        out.append(f"expected no reply {said}")
    if "silent" in step and not step["silent"] and not replies:
        out.append("expected a reply, got none")
    top = session.stack[-1].flow if session and session.stack else None
    if "flow" in step and step["flow"] != top:
        out.append(f"expected flow {step['flow']!r}, is {top!r}")
    if "handoff" in step and bool(step["handoff"]) != bool(session and session.handoff):
        out.append(f"expected handoff {step['handoff']!r}")
    slots = session.slots if session else {}
    for name, value in (step.get("slots") or {}).items():
        if slots.get(name) != value:
            out.append(f"expected slot {name}={value!r}, is {slots.get(name)!r}")
    if "intent" in step:
        got = session.history[-1].intent if session and session.history else None
        if got != step["intent"]:
            out.append(f"expected intent {step['intent']!r}, is {got!r}")
    return out


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
