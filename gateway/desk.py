"""The support desk of one process, built from the settings: the conversation store (SQL), the
agents, live news for the console, and the turn's handoff wrapper and recorder. An async context
manager: entering migrates the database and starts listening for news."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from config.settings import Settings, SettingsError
from core.desk import DeskDialogue, Recorder
from core.events import DeskEvents
from core.hours import SupportHours
from core.models import ConversationRef
from core.notice import Deliver, WaitingNotice
from core.ports import Dialogue
from core.sql.agents import SqlAgents
from core.sql.db import Database, database_url
from core.sql.store import SqlConversations
from gateway.storage import build_relay


@dataclass
class Desk:
    settings: Settings
    db: Database
    conversations: SqlConversations
    agents: SqlAgents
    events: DeskEvents
    hours: SupportHours

    def dialogue(self, inner: Dialogue) -> DeskDialogue:
        use_log = getattr(inner, "use_feedback_log", None)
        if callable(use_log):  # "Did that help?" remembered past a session's end
            use_log(self.conversations)
        return DeskDialogue(
            inner,
            self.conversations,
            self.agents,
            self.hours,
            remind_every=self.settings.handoff_reminder_interval,
            presence_window=self.settings.console_presence_window,
        )

    def recorder(self, deliver: Deliver | None = None) -> Recorder:
        """The turn's recorder; `deliver` (the outbox's) posts the team's notices."""
        return Recorder(
            self.conversations,
            self.events,
            self.notice(deliver),
            raw_text=self.settings.store_raw_text,
        )

    def notice(self, deliver: Deliver | None) -> WaitingNotice | None:
        to = self.settings.console_notify_slack_channel
        if deliver is None or not to:
            return None
        return WaitingNotice(
            deliver, ConversationRef(channel="slack", chat_id=to), console_url(self.settings)
        )

    async def __aenter__(self) -> Desk:
        await self.db.__aenter__()
        await self.events.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.events.close()
        finally:
            await self.db.__aexit__(exc_type, exc, tb)

    async def open(self) -> None:
        await self.__aenter__()

    async def close(self) -> None:
        await self.__aexit__(None, None, None)


def console_url(settings: Settings) -> str | None:
    if settings.console_url:
        return settings.console_url
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + "/console"
    return None


def build_desk(settings: Settings, *, migrate: bool = True) -> Desk:
    try:
        hours = SupportHours.parse(settings.support_hours, settings.support_timezone)
    except ValueError as exc:
        raise SettingsError(f"SUPPORT_HOURS: {exc}") from None
    url = settings.database_url.get_secret_value() if settings.database_url else None
    db = Database(database_url(url, settings.data_dir), migrate=migrate)
    return Desk(
        settings=settings,
        db=db,
        conversations=SqlConversations(db),
        agents=SqlAgents(db),
        events=DeskEvents(build_relay(settings)),
        hours=hours,
    )
