"""`serve` and `shop` with a port that is taken or out of range: one line saying what to do,
exit status 2, no traceback."""

from __future__ import annotations

import socket

import pytest

from gateway.cli import main


def test_a_taken_port_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["shop", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_a_port_out_of_range_is_refused_by_the_usage_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["shop", "--port", "99999"])
    assert exit_.value.code == 2
    assert "port must be 0-65535" in capsys.readouterr().err


def test_event_loop_setting_picks_the_loop() -> None:
    import asyncio

    import uvloop

    from gateway.commands._common import new_event_loop

    fast, plain = new_event_loop("uvloop"), new_event_loop("asyncio")
    try:
        assert isinstance(fast, uvloop.Loop)
        assert not isinstance(plain, uvloop.Loop)
        assert isinstance(plain, asyncio.AbstractEventLoop)
    finally:
        fast.close()
        plain.close()
