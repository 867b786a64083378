"""Telegram (Bot API webhooks): secret-token check, updates to Inbound through
python-telegram-bot's `Update`, replies through its `Bot` with inline keyboards."""

from __future__ import annotations

import datetime as dtm
import hmac
import logging
import re
import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar, Literal

import structlog
from telegram import (
    Audio,
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    Video,
    Voice,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.error import RetryAfter as FloodControl
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from core.channel import (
    BaseChannel,
    SentMessage,
    Step,
    WebhookReply,
    WebhookRequest,
    json_object,
    send_steps,
)
from core.errors import (
    ChannelSendError,
    ChannelUnreachable,
    PayloadError,
    RetryAfter,
    SendRefused,
    VerificationError,
)
from core.models import (
    Attachment,
    AttachmentKind,
    Capabilities,
    ConversationRef,
    Inbound,
    Outbound,
    Sender,
)
from core.render import PayloadKeys, fit_buttons, split_text, with_options

log = structlog.get_logger(__name__)

# httpx logs every request line at INFO, and a Bot API URL carries the bot token
# (`/bot<token>/sendMessage`): keep those lines out of the logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
CALLBACK_LIMIT = 64
"""Bytes of callback data Telegram keeps on an inline button."""
_SPACES = re.compile(r"[ \t]{2,}")
_GROUPS = frozenset({"group", "supergroup"})
_IGNORED_UPDATES = ("channel_post", "edited_channel_post")


class TelegramChannel(BaseChannel):
    name: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text=4096,
        buttons="native",
        max_buttons=10,
        max_button_label=64,
        max_payload_bytes=CALLBACK_LIMIT,
        attachments=True,
        threads=True,  # forum topics
        per_chat_interval=1.0,  # Telegram: about one message a second per chat
    )

    def __init__(
        self,
        *,
        bot_token: str,
        secret_token: str,
        api_url: str,
        bot_username: str | None = None,
        edits_as_new: bool = False,
    ):
        self._secret = secret_token.encode()
        self._bot = Bot(
            bot_token,
            base_url=api_url,
            request=HTTPXRequest(connection_pool_size=16),
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        head = bot_token.split(":", 1)[0]
        self._bot_id = int(head) if head.isdigit() else None
        """The bot's user id is the token's first part: replies to the bot are seen without I/O."""
        self._username = bot_username.lstrip("@").lower() if bot_username else None
        self._edits_as_new = edits_as_new
        self._keys = PayloadKeys()
        self._ready = False

    @property
    def bot(self) -> Bot:
        return self._bot

    async def start(self) -> None:
        await self._initialize()

    async def _initialize(self) -> None:
        """`Bot.initialize` asks getMe; learns the @name for group mentions when not set. A
        Telegram that is down at start does not stop the gateway: sends try again."""
        if self._ready:
            return
        try:
            await self._bot.initialize()
        except InvalidToken:
            log.error("telegram.token_rejected", hint="check TELEGRAM_BOT_TOKEN")
            return
        except TelegramError as exc:
            log.warning("telegram.unreachable_at_start", error=type(exc).__name__)
            return
        self._ready = True
        if self._username is None and self._bot.bot.username:
            self._username = self._bot.bot.username.lower()

    async def close(self) -> None:
        await self._bot.shutdown()
        self._ready = False

    # -- inbound ---------------------------------------------------------------------------

    def precheck(self, req: WebhookRequest) -> None:
        # The secret is a header: checked before the body is waited for.
        self.verify(req)

    def verify(self, req: WebhookRequest) -> None:
        # The header's own bytes (aiohttp keeps bytes that are not UTF-8 as surrogate escapes)
        given = req.header(SECRET_HEADER).encode("utf-8", "surrogateescape")
        if not given:
            raise VerificationError("X-Telegram-Bot-Api-Secret-Token missing")
        if not hmac.compare_digest(given, self._secret):
            raise VerificationError("X-Telegram-Bot-Api-Secret-Token does not match")

    def parse(self, req: WebhookRequest) -> WebhookReply:
        data = json_object(req.body)
        if not isinstance(data.get("update_id"), int):
            raise PayloadError("not a Telegram update: no integer update_id")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                update = Update.de_json(data, None)
            return self._update(update, data)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # PTB builds objects without checking field types: a wrong type surfaces only when
            # a field is used (a str where a size is added up, a list where a name is expected).
            raise PayloadError(f"malformed Telegram update: {type(exc).__name__}") from None

    def _update(self, update: Update, data: dict[str, Any]) -> WebhookReply:
        if update.callback_query is not None:
            return self._callback(update.update_id, update.callback_query, data)
        if update.message is not None:
            return self._message(update.update_id, update.message, data)
        if update.edited_message is not None:
            # An edit of its own kind (the flows' `edits` rule decides); TELEGRAM_EDITS_AS_NEW
            # keeps its old meaning: the edit arrives as a plain new message.
            edit: Literal["message", "edit"] = "message" if self._edits_as_new else "edit"
            return self._message(update.update_id, update.edited_message, data, kind=edit)
        kinds = [k for k in data if k != "update_id"]
        if any(k in _IGNORED_UPDATES for k in kinds):
            return WebhookReply(note="channel post ignored")
        return WebhookReply(note=f"update kind {','.join(kinds) or 'none'} not handled")

    def _message(
        self,
        update_id: int,
        msg: Message,
        raw: dict[str, Any],
        *,
        kind: Literal["message", "edit"] = "message",
    ) -> WebhookReply:
        user = msg.from_user
        if user is not None and user.is_bot:
            return WebhookReply(note="message from a bot ignored")
        text = msg.text or msg.caption or ""
        attachments = attachments_of(msg)
        if not text.strip() and not attachments:
            return WebhookReply(note="service message ignored")
        if msg.chat.type in _GROUPS:
            addressed, text = self._addressed(msg, text)
            if not addressed:
                return WebhookReply(note="group message not addressed to the bot")
        thread = _thread_of(msg)
        sender_id = str(user.id) if user is not None else str(msg.chat.id)
        inbound = Inbound(
            event_id=str(update_id),
            conversation=ConversationRef(
                channel=self.name, chat_id=str(msg.chat.id), thread_id=thread
            ),
            sender=Sender(id=sender_id, name=user.full_name if user is not None else None),
            text=text,
            attachments=attachments,
            locale=user.language_code if user is not None else None,
            meta={"message_id": str(msg.message_id), "chat_type": msg.chat.type},
            raw=raw,
            kind=kind,
            # A message's id is unique in its chat; an edit names the message it changes (and
            # its update_id, the event id, is its own: a redelivery dedupes, an edit is new).
            message_id=str(msg.message_id),
            target_id=str(msg.message_id) if kind == "edit" else None,
        )
        return WebhookReply(events=(inbound,))

    def _addressed(self, msg: Message, text: str) -> tuple[bool, str]:
        """In a group the bot answers a reply to one of its messages, an @mention of it, or a
        command addressed to it (`/help@name`); the mention is taken out of the text."""
        replied = msg.reply_to_message
        addressed = bool(
            replied is not None
            and replied.from_user is not None
            and replied.from_user.id == self._bot_id
        )
        kinds: list[str | None] = [
            MessageEntity.MENTION,
            MessageEntity.TEXT_MENTION,
            MessageEntity.BOT_COMMAND,
        ]
        found = (
            msg.parse_entities(kinds) if msg.text is not None else msg.parse_caption_entities(kinds)
        )
        for entity, value in found.items():
            if entity.type == MessageEntity.TEXT_MENTION:
                hit = entity.user is not None and entity.user.id == self._bot_id
            elif self._username is None:
                hit = False
            elif entity.type == MessageEntity.MENTION:
                hit = value[1:].lower() == self._username
            else:
                hit = value.lower().endswith(f"@{self._username}")
            if hit:
                addressed = True
                if entity.type == MessageEntity.MENTION:
                    text = text.replace(value, " ")
                elif entity.type == MessageEntity.BOT_COMMAND:
                    text = text.replace(value, value.split("@", 1)[0])
        return addressed, _SPACES.sub(" ", text).strip()

    def _callback(self, update_id: int, cq: CallbackQuery, raw: dict[str, Any]) -> WebhookReply:
        msg = cq.message
        if not isinstance(msg, Message) or cq.data is None:
            return WebhookReply(note="callback without a chat message or data ignored")
        label = _label_of(msg, cq.data)
        thread = _thread_of(msg)
        inbound = Inbound(
            event_id=str(update_id),
            conversation=ConversationRef(
                channel=self.name, chat_id=str(msg.chat.id), thread_id=thread
            ),
            sender=Sender(id=str(cq.from_user.id), name=cq.from_user.full_name),
            # A key issued before a restart is unknown here: the label stands for the choice.
            text=label,
            payload=self._keys.decode(cq.data),
            locale=cq.from_user.language_code,
            meta={"callback_query_id": cq.id},
            raw=raw,
        )
        return WebhookReply(events=(inbound,))

    # -- outbound --------------------------------------------------------------------------

    async def before_turn(self, inbound: Inbound) -> None:
        """A pressed inline button shows a spinner until the query is answered; the chat shows
        "typing…" while the bot works (Telegram clears it with the reply, or after 5 s), so a
        slow integration call does not look like a dead bot."""
        await self._initialize()
        query = inbound.meta.get("callback_query_id")
        if query:
            try:
                await self._bot.answer_callback_query(query)
            except TelegramError as exc:
                log.warning("telegram.answer_callback_failed", error=type(exc).__name__)
        thread = inbound.conversation.thread_id
        try:
            await self._bot.send_chat_action(
                inbound.conversation.chat_id,
                ChatAction.TYPING,
                message_thread_id=int(thread) if thread else None,
            )
        except TelegramError as exc:  # only a courtesy: the turn goes on
            log.info("telegram.typing_failed", error=type(exc).__name__)

    async def send(self, msg: Outbound) -> SentMessage:
        await self._initialize()
        caps = self.capabilities
        native, overflow = fit_buttons(msg.buttons, caps)
        parts = split_text(with_options(msg.text, overflow), caps.max_text)
        markup = self._keyboard(native)
        if not parts and markup is not None:
            parts = ["Please choose:"]
        chat = msg.conversation.chat_id
        thread = int(msg.conversation.thread_id) if msg.conversation.thread_id else None

        async def attachment(a: Attachment) -> None:
            try:
                await send_attachment(self._bot, chat, a, thread)
            except TelegramError as exc:
                raise send_error(exc) from None

        async def text(part: str, last: bool) -> SentMessage:
            try:
                out = await self._bot.send_message(
                    chat, part, reply_markup=markup if last else None, message_thread_id=thread
                )
            except TelegramError as exc:
                raise send_error(exc) from None
            return SentMessage(platform_id=str(out.message_id))

        steps: list[Step] = [partial(attachment, a) for a in msg.attachments]
        steps += [partial(text, part, i == len(parts) - 1) for i, part in enumerate(parts)]
        return await send_steps(msg, steps)

    def _keyboard(self, buttons: Sequence[Any]) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        rows = [
            [
                InlineKeyboardButton(
                    b.label, callback_data=self._keys.encode(b.payload, CALLBACK_LIMIT)
                )
            ]
            for b in buttons
        ]
        return InlineKeyboardMarkup(rows)


def _thread_of(msg: Message) -> str | None:
    """The forum topic a message belongs to. A topic message without a thread id is answered in
    the chat (an id of "None" would fail every send); an id that is not a number is no update
    Telegram sends."""
    thread = msg.message_thread_id
    if not msg.is_topic_message or thread is None:
        return None
    if not isinstance(thread, int) or isinstance(thread, bool):
        raise PayloadError("message_thread_id is not an integer")
    return str(thread)


def _label_of(msg: Any, data: str) -> str:
    markup = getattr(msg, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if button.callback_data == data:
                return str(button.text)
    return ""


def send_error(exc: TelegramError) -> ChannelSendError:
    """Telegram's error tree to ours: flood control carries its wait; a blocked bot, a bad
    request or a rejected token will not get better by trying again."""
    if isinstance(exc, FloodControl):
        with warnings.catch_warnings():  # an int here is deprecated unless PTB_TIMEDELTA is on
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            after = exc.retry_after
        wait = after.total_seconds() if isinstance(after, dtm.timedelta) else float(after)
        return RetryAfter(wait, "telegram flood control (429)")
    if isinstance(exc, Forbidden | BadRequest | InvalidToken):
        return SendRefused(f"telegram refused: {exc.message}")
    if isinstance(exc, NetworkError):
        return ChannelUnreachable(f"telegram unreachable: {exc.message}")
    return SendRefused(f"telegram error: {exc.message}")


# -- media ----------------------------------------------------------------------------------


def attachments_of(msg: Message) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if msg.photo:
        best = max(msg.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        found.append(
            Attachment(
                kind="image", mime_type="image/jpeg", size=best.file_size, file_id=best.file_id
            )
        )
    doc = msg.document
    if doc is not None:
        image = (doc.mime_type or "").startswith("image/")
        found.append(
            Attachment(
                kind="image" if image else "file",
                mime_type=doc.mime_type,
                size=doc.file_size,
                name=doc.file_name,
                file_id=doc.file_id,
            )
        )
    media_kinds: tuple[tuple[Audio | Voice | Video | None, AttachmentKind], ...] = (
        (msg.audio, "audio"),
        (msg.voice, "audio"),
        (msg.video, "video"),
    )
    for media, kind in media_kinds:
        if media is not None:
            found.append(
                Attachment(
                    kind=kind,
                    mime_type=media.mime_type,
                    size=media.file_size,
                    file_id=media.file_id,
                )
            )
    if msg.video_note is not None:
        found.append(
            Attachment(kind="video", size=msg.video_note.file_size, file_id=msg.video_note.file_id)
        )
    if msg.sticker is not None:
        found.append(
            Attachment(kind="sticker", size=msg.sticker.file_size, file_id=msg.sticker.file_id)
        )
    if msg.location is not None:
        found.append(
            Attachment(
                kind="location",
                latitude=msg.location.latitude,
                longitude=msg.location.longitude,
            )
        )
    return tuple(found)


async def send_attachment(bot: Bot, chat: str, a: Attachment, thread: int | None) -> None:
    """An image as a photo, anything else as a document; by URL or a Telegram file id. Bytes
    (`content`) are uploaded under the attachment's name."""
    if a.kind == "location" and a.latitude is not None and a.longitude is not None:
        await bot.send_location(chat, a.latitude, a.longitude, message_thread_id=thread)
        return
    source = a.content if a.content is not None else (a.file_id or a.url)
    if source is None:
        return
    if a.kind == "image":
        await bot.send_photo(chat, source, message_thread_id=thread)
    else:
        await bot.send_document(chat, source, filename=a.name, message_thread_id=thread)
