"""`chat`: talk to the bot in the terminal, through the same queue, engine and flows as any
channel. One message per input line, so it can be scripted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from adapters.terminal import TerminalChannel
from gateway.build import build_gateway
from gateway.commands._common import settings_from
from gateway.services import Services


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chat",
        help="talk to the bot in this terminal (reads stdin line by line)",
        description=(
            "Talk to the bot here. Each line of standard input is one message; the bot's "
            "messages are printed on standard output with their options numbered (type the "
            "number or the label to choose). Ends at end of input (Ctrl-D) or with a line "
            "that says quit or exit. Logs and the how-to-leave note go to "
            "standard error. Example: printf 'hi\\nwhere is my order\\n' | python -m gateway chat"
        ),
    )
    p.add_argument("--session", default="local", help="conversation id (default: local)")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="warning",
        help="log level on standard error (default: warning)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    terminal = TerminalChannel(sys.stdout, session=args.session)
    services = build_gateway(settings, "chat", channels={terminal.name: terminal})
    asyncio.run(converse(services, terminal, sys.stdin))
    return 0


LEAVE = frozenset({"quit", "exit", "/quit", "/exit", ":q"})
"""A line that is one of these ends the chat instead of going to the bot (where "quit" would
read as cancelling the current flow)."""
HOW_TO_LEAVE = "Chatting with the bot. Type quit or exit (or press Ctrl-D) to leave."


async def converse(
    services: Services, terminal: TerminalChannel, stdin: Any, err: TextIO | None = None
) -> None:
    engine = services.engine
    assert engine is not None
    loop = asyncio.get_running_loop()
    prompt = stdin.isatty() and sys.stdout.isatty()
    # On standard error, like the Python prompt's banner: a script reading standard output
    # sees only the bot.
    note = sys.stderr if err is None else err
    note.write(HOW_TO_LEAVE + "\n")
    note.flush()
    async with services.running():
        while True:
            if prompt:
                sys.stdout.write("you> ")
                sys.stdout.flush()
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            if line.strip().casefold() in LEAVE:
                break
            inbound = terminal.inbound(line)
            done = engine.expect(inbound)
            await services.storage.queue.put(inbound)
            await done
