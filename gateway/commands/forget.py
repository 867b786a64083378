"""`forget`: erase one customer from the gateway's stores and say what was removed."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from core.forget import Customer
from gateway.commands._common import add_log_level, settings_from
from gateway.privacy import forget_customer


def register(sub: Any) -> None:
    p = sub.add_parser(
        "forget",
        help="erase one customer: conversations, sessions, queued events, dedupe keys",
        description=(
            "Erase everything the gateway keeps about one customer of one channel: their "
            "conversations in the conversation store (messages, turns and their feedback, "
            "handoffs, notes, and rows of any table pointing at those), their sessions and web "
            "chat transcripts, their events still queued or dead-lettered (with Redis), the "
            "spill file's lines (without), the dedupe keys of their events and their flood "
            "counters. Prints what was removed, or that nothing was found."
        ),
    )
    p.add_argument("--channel", required=True, help="slack, telegram, whatsapp, email, webchat")
    p.add_argument(
        "--user", required=True, help="the platform's id: whatsapp:+1..., an address, a chat id"
    )
    add_log_level(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    erasure = asyncio.run(forget_customer(settings, Customer(args.channel, args.user)))
    print(erasure.report())
    return 0
