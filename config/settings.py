"""Typed settings: defaults in `config/gateway.yaml` (or the file `GATEWAY_CONFIG` names),
overridden by environment variables; secrets come from the environment only."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG = Path(__file__).with_name("gateway.yaml")
_ORIGIN = re.compile(r"https?://[^/\s?#@]+")
"""A web origin as a browser sends it: scheme and host, with a port perhaps, no path."""


class SettingsError(Exception):
    """A user's configuration mistake: printed as one line, no traceback."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False, env_prefix="")

    # -- the process -----------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_base_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    max_body_bytes: int = Field(1_048_576, ge=1024)
    data_dir: Path = Path("var")
    embedded_worker: Literal["auto", "on", "off"] = "auto"
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # -- clients on the internet (README: Security) ---------------------------------------
    body_read_timeout: float = Field(10.0, gt=0, le=300)
    """Seconds a webhook body may take to arrive once its headers are in: 408, then closed."""
    idle_timeout: float = Field(15.0, gt=0)
    """Seconds a connection may go without a whole request (idle keep-alive, or headers still
    arriving) before it is closed."""
    max_connections_per_client: int = Field(100, ge=0)
    """Open connections one client address may hold (0: no limit); more are refused at once."""
    max_connections: int | None = Field(None, ge=1)
    """Open connections in all; unset: the open-file limit less what Redis and sends need."""
    enqueue_timeout: float = Field(0.5, gt=0, le=30)
    """Seconds a webhook waits for Redis to take its event before answering 503."""
    webchat_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Pages that may open the web chat socket (`https://shop.example`, or `*`); empty: the
    gateway's own host."""
    webchat_title: str = Field("Support", min_length=1, max_length=60)
    """The web chat page's title and heading (shown as text)."""
    webchat_color: str = Field("#2f6fed", pattern=r"^#[0-9a-fA-F]{6}$")
    """The web chat's accent colour, `#RRGGBB`: the visitor's messages, buttons, links."""
    webchat_welcome: str = Field(
        "Hi! I'm the shop's assistant. Here's what I can help with:", min_length=1, max_length=500
    )
    """The web chat's first message, shown above the flows' menu as buttons."""

    # -- the engine ------------------------------------------------------------------------
    concurrency: int = Field(64, ge=1, le=1024)
    prefetch: int = Field(64, ge=1)
    max_attempts: int = Field(3, ge=1, le=20)
    dedupe_ttl: float = Field(86400.0, gt=0)
    session_ttl: float = Field(1800.0, gt=0)
    history_turns: int = Field(20, ge=1)
    shutdown_timeout: float = Field(25.0, gt=0)
    send_attempts: int = Field(4, ge=1, le=20)

    # -- Redis (scale-out) -----------------------------------------------------------------
    redis_url: SecretStr | None = None
    redis_prefix: str = "gateway"
    claim_idle_ms: int = Field(30_000, ge=100)

    # -- the intent model ------------------------------------------------------------------
    model_dir: Path = Path("var/model")
    base_model: str = "distilbert-base-uncased"
    hf_endpoint: str = "https://huggingface.co"
    hf_hub_offline: bool = False
    nlu_threads: int = Field(2, ge=1, le=64)
    nlu_quantize: Literal["auto", "on", "off"] = "auto"
    """int8 serving: `auto` where the model's training-time check passed (no more than half a
    point of accuracy lost, an encoder wide enough to gain); true/false are on/off."""
    nlu_train_bf16: Literal["auto", "on", "off"] = "auto"
    """Fine-tuning a pretrained base in bfloat16: `auto` where the CPU has it natively."""
    nlu_batch_wait_ms: float = Field(3.0, ge=0, le=1000)
    nlu_max_batch: int = Field(32, ge=1, le=1024)
    nlu_max_chars: int = Field(512, ge=16)

    # -- the dialogue ----------------------------------------------------------------------
    flows_dir: Path = Path("flows")
    flows_watch: bool = False
    confidence_threshold: float | None = Field(None, ge=0, le=1)
    ambiguity_margin: float = Field(0.1, ge=0, le=1)
    handoff_after: int | None = Field(None, ge=1)
    """Turns in a row with nothing plausible before a person takes over (None: the flows')."""
    handoff_webhook_url: str | None = None
    handoff_api_token: SecretStr | None = None
    """Bearer token for POST /api/handoff/{key}/release (env only; unset: the API is off)."""
    shop_api_url: str | None = None

    # -- the support team's side: conversation store and console (README: Agent console) -----
    database_url: SecretStr | None = None
    """The conversation store (env only: it may hold a password); unset: SQLite in DATA_DIR."""
    support_hours: str | None = None
    """When people answer, like `Mon-Fri 09:00-17:00; Sat 10:00-13:00`; unset: always."""
    support_timezone: str = "UTC"
    handoff_reminder_interval: float = Field(300.0, ge=0)
    """A waiting customer who keeps writing is told where they stand at most this often."""
    console_session_ttl: float = Field(43_200.0, gt=0)
    console_presence_window: float = Field(120.0, gt=0)
    """An agent seen in the console this recently counts as online."""
    console_notify_slack_channel: str | None = None
    """A Slack channel id (`C0123…`) told each time a customer starts waiting, through the
    Slack channel's bot token; unset: no notice."""
    console_url: str | None = None
    """The console's address as agents reach it (`https://desk.example.com/console`), for
    links in notices; unset: PUBLIC_BASE_URL + /console."""
    whatsapp_reengage_template: str | None = None
    """A Twilio Content SID (`HX…`) of an approved template an agent may send to a WhatsApp
    customer silent for more than 24 hours; unset: such a reply is refused with the reason."""

    # -- abuse limits: the web chat, actions and handoffs (README: Security) ---------------
    webchat_secret: SecretStr | None = None
    """Signs the web chat's session tokens (env only); unset: a key made once and kept in
    DATA_DIR/webchat-secret, so a restart keeps the visitors' sessions."""
    webchat_challenge: Literal["off", "pow"] = "off"
    """`pow`: the page solves a small proof of work before its first message is taken."""
    webchat_pow_bits: int = Field(16, ge=1, le=28)
    webchat_sessions_per_address: int = Field(20, ge=0)
    """New web chat sessions one client address may start a minute (0: no limit)."""
    webchat_sessions_per_minute: int = Field(600, ge=0)
    webchat_messages_per_address: int = Field(120, ge=0)
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses (or networks) of the proxies in front: from them, the client address is the
    last one of `X-Forwarded-For` that is not a proxy's."""
    action_rate_limit: int = Field(30, ge=0)
    action_target_limit: int = Field(5, ge=0)
    action_repeat_period: float = Field(600.0, ge=0)
    handoff_rate_limit: int = Field(20, ge=0)

    # -- Slack -----------------------------------------------------------------------------
    slack_signing_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_typing_status: str = Field("is typing…", max_length=100)
    """The thread status shown while the bot works (`assistant.threads.setStatus`); empty: off."""
    slack_mode: Literal["webhook", "socket"] = "webhook"
    """`socket`: events come over Slack's Socket Mode WebSocket (no public URL needed). Unset,
    it is `socket` when there is an app token and no signing secret."""
    slack_app_token: SecretStr | None = None
    """The app-level token (`xapp-...`) Socket Mode connects with (env only)."""
    slack_socket_ping_interval: float = Field(10.0, gt=0, le=300)
    """Seconds between pings on the Socket Mode connection; a lost one is noticed within a few."""

    # -- Telegram --------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = None
    telegram_secret_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_bot_username: str | None = None
    """The bot's @name, to see mentions in group chats; learned from getMe at start when unset."""
    telegram_edits_as_new: bool = False
    """An edited message arrives as a plain new message (answered); by default it is an edit
    event, handled by the flows' `edits` rule."""
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    """`polling`: updates are fetched with getUpdates (no public URL needed). Unset, it is
    `polling` when there is a bot token and no secret token (a webhook cannot be verified
    without one)."""
    telegram_poll_timeout: float = Field(25.0, ge=1, le=50)
    """Seconds one getUpdates waits for an update before answering empty."""

    # -- WhatsApp through Twilio -----------------------------------------------------------
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    twilio_messaging_url: str = "https://messaging.twilio.com"
    """Twilio's Messaging API, where the typing indicator is posted."""
    whatsapp_typing: bool = True
    """Show "typing…" (and the message read) while the bot works on a WhatsApp message."""

    # -- e-mail ----------------------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    email_from: str | None = None
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int | None = Field(None, ge=1, le=65535)
    mailgun_signing_key: SecretStr | None = None
    email_autoreply_period: float = Field(3600.0, ge=0)
    email_max_attachment_bytes: int = Field(10_485_760, ge=0)
    imap_host: str | None = None
    """A mailbox to read customers' mail from (no public URL or MX needed)."""
    imap_port: int | None = Field(None, ge=1, le=65535)
    """Unset: 993 with IMAP_TLS on, 143 otherwise."""
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_move_to: str | None = None
    """A folder each message is moved to once queued (made if missing); unset: it is marked
    seen where it is."""
    imap_tls: bool = True
    """IMAP over TLS (port 993); off: plain IMAP, for a server on this machine or a test."""
    imap_poll_interval: float = Field(60.0, ge=1)
    """Seconds between two looks at the folder when the server has no IDLE."""

    # -- learning from production: privacy, retention, the model's releases ---------------
    store_raw_text: bool = False
    """Keep customers' text as written in stored turns and review items (default: redacted)."""
    feedback_every: float = Field(86_400.0, ge=0)
    """Seconds between two "Did that help?" in one conversation (0: after every flow the
    flows' `feedback:` names)."""
    retention_days: int = Field(30, ge=0)
    """Kept customer records older than this are deleted daily (0: kept until erased)."""
    review_below: float = Field(0.7, ge=0, le=1)
    """Turns the bot answered with less confidence than this are listed in the review inbox."""
    gate_max_intent_drop: float = Field(0.05, ge=0, le=1)
    """A retrained model is refused when any intent's held-out recall falls by more."""
    model_watch_interval: float = Field(2.0, gt=0)
    """Seconds between looks at the deployed model's pointer (Redis announces sooner)."""

    @field_validator(
        "slack_api_url",
        "telegram_api_url",
        "twilio_api_url",
        "twilio_messaging_url",
        "public_base_url",
    )
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be an app-level token starting with xapp- (Basic Information > App-Level "
                "Tokens, scope connections:write), not the bot token (xoxb-)"
            )
        return v

    @model_validator(mode="after")
    def _modes_from_credentials(self) -> Settings:
        """The way in that the credentials given allow, when no mode is set: a bot with only
        the tokens that need no public URL runs without one."""
        chosen = self.model_fields_set
        if (
            "slack_mode" not in chosen
            and self.slack_app_token is not None
            and self.slack_signing_secret is None
        ):
            self.slack_mode = "socket"
        if (
            "telegram_mode" not in chosen
            and self.telegram_bot_token is not None
            and self.telegram_secret_token is None
        ):
            self.telegram_mode = "polling"
        return self

    @field_validator("nlu_quantize", "nlu_train_bf16", mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:
        words = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
        if isinstance(v, bool):
            return "on" if v else "off"
        return words.get(str(v).strip().lower(), v)

    @field_validator("webchat_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> tuple[str, ...]:
        items = v.replace(",", " ").split() if isinstance(v, str) else list(v or ())
        out = []
        for item in items:
            origin = str(item).strip().rstrip("/").lower()
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{item!r} is not an origin like https://shop.example or *")
            out.append(origin)
        return tuple(out)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, v: Any) -> tuple[str, ...]:
        items = v.replace(",", " ").split() if isinstance(v, str) else list(v or ())
        for item in items:
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return tuple(str(i) for i in items)

    @field_validator("support_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"{v!r} is not a time zone like Europe/Berlin or UTC") from None
        return v

    @field_validator("webchat_title", "webchat_welcome")
    @classmethod
    def _one_line(cls, v: str) -> str:
        v = v.strip()
        if not v or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in v):
            raise ValueError("must be one line of text without control characters")
        return v

    @field_validator("webchat_secret")
    @classmethod
    def _long_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a random string)")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))


SECRET_FIELDS = frozenset(
    name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
)


def config_path() -> Path:
    return Path(os.environ.get("GATEWAY_CONFIG") or DEFAULT_CONFIG)


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file, with keys named as the settings (lower case). Secrets are refused here."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        self._data = _read_yaml(config_path())

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if v is not None}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SettingsError(
            f"GATEWAY_CONFIG: {path} does not exist; point it at a YAML settings file"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SettingsError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of setting: value")
    data = {str(k).lower(): v for k, v in data.items()}
    secrets = sorted(SECRET_FIELDS & {k for k, v in data.items() if v is not None})
    if secrets:
        names = ", ".join(s.upper() for s in secrets)
        raise SettingsError(
            f"{path}: {names} is a secret; remove it from the file and set the environment variable"
        )
    return data


def load_settings(**overrides: Any) -> Settings:
    """Settings from the file and the environment; `SettingsError` names what is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
        if err["type"] == "extra_forbidden":
            parts.append(f"{name}: unknown setting in {config_path()}; see README.md for the list")
            continue
        got = err.get("input")
        shown = "" if name.lower() in SECRET_FIELDS or isinstance(got, dict) else f" (got {got!r})"
        parts.append(
            f"{name}: {err['msg']}{shown}; set {name} in the environment or {config_path()}"
        )
    return "; ".join(parts)
