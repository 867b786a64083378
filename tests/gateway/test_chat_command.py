"""`python -m gateway chat`: stdin line by line through the same queue, engine and channel
machinery as any channel; options numbered; ends at end of input."""

from __future__ import annotations

import io
from pathlib import Path

from adapters.terminal import TerminalChannel
from config.settings import load_settings
from core.models import Button
from gateway.build import build_gateway
from gateway.commands.chat import converse
from tests.support.doubles import EchoDialogue, KeywordNlu


async def test_scripted_conversation(tmp_path: Path) -> None:
    out = io.StringIO()
    terminal = TerminalChannel(out)
    dialogue = EchoDialogue(
        buttons=(Button(label="Yes", payload="/affirm"), Button(label="No", payload="/deny"))
    )
    services = build_gateway(
        load_settings(data_dir=tmp_path),
        "chat",
        nlu=KeywordNlu(),
        dialogue=dialogue,
        channels={terminal.name: terminal},
    )
    stdin = io.StringIO("hi\n\n2\nno\n")
    await converse(services, terminal, stdin)
    assert out.getvalue().splitlines() == [
        "bot> #1 hi",
        "     1. Yes",
        "     2. No",
        "bot> #2 /deny",
        "     1. Yes",
        "     2. No",
        "bot> #3 /deny",
        "     1. Yes",
        "     2. No",
    ]
    # Each line was its own turn (the chat waits for the answer before reading on).
    assert [t for _, t, _ in dialogue.seen] == ["hi", "2", "no"]


async def test_quit_and_exit_leave_and_the_start_says_how(tmp_path: Path) -> None:
    for word in ("quit", "EXIT", " exit "):
        out, err = io.StringIO(), io.StringIO()
        terminal = TerminalChannel(out)
        dialogue = EchoDialogue()
        services = build_gateway(
            load_settings(data_dir=tmp_path / word.strip()),
            "chat",
            nlu=KeywordNlu(),
            dialogue=dialogue,
            channels={terminal.name: terminal},
        )
        # The line after the word would be a turn if the chat went on.
        await converse(services, terminal, io.StringIO(f"hi\n{word}\nstill here?\n"), err)
        assert out.getvalue().splitlines() == ["bot> #1 hi"], word
        assert [t for _, t, _ in dialogue.seen] == ["hi"], word
        assert "quit" in err.getvalue() and "Ctrl-D" in err.getvalue()
