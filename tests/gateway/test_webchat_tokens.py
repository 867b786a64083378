"""Web chat session tokens: only the server makes them, nothing in them can be changed, the key
survives a restart; and the proof of work checks in one hash."""

from __future__ import annotations

import hashlib
import itertools
import stat
from pathlib import Path

from gateway.webchat_tokens import SECRET_FILE, Pass, SessionTokens, load_key, pow_solved


def test_a_token_names_its_session_and_nothing_else_passes() -> None:
    tokens = SessionTokens(b"k" * 32)
    p = tokens.new(verified=False)
    token = tokens.token(p)
    assert tokens.read(token) == p
    session, flag, signature = token.split(".")
    forged = [
        None,
        "",
        session,  # the bare session id: what a client used to be able to pick
        f"{session}.v.{signature}",  # claims the challenge was solved
        f"{'A' * 22}.{flag}.{signature}",  # someone else's session, same signature
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        SessionTokens(b"x" * 32).token(p),  # signed with another key
        token + "\n",
    ]
    assert [tokens.read(t) for t in forged] == [None] * len(forged)
    assert tokens.read(tokens.token(Pass(session, verified=True))) == Pass(session, True)


def test_new_sessions_are_unguessable_and_distinct() -> None:
    tokens = SessionTokens(b"k" * 32)
    ids = {tokens.new(verified=True).session for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 22 for i in ids)


def test_the_key_is_made_once_and_kept_in_data_dir(tmp_path: Path) -> None:
    first = load_key(None, tmp_path)
    assert load_key(None, tmp_path) == first  # a restart: the visitors' tokens stay valid
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    assert load_key("from-the-environment-1234", tmp_path) == b"from-the-environment-1234"
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]


def test_a_data_dir_that_cannot_hold_the_key_gives_a_key_for_this_process(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    one, two = load_key(None, blocked), load_key(None, blocked)
    assert len(one) == 32 and one != two


def test_proof_of_work() -> None:
    seed = "AbCdEfGhIjKlMnOpQrStUv"
    nonce = next(
        str(n)
        for n in itertools.count()
        if hashlib.sha256(f"{seed}:{n}".encode()).digest()[:1] == b"\0"
    )
    assert pow_solved(seed, nonce, 8)
    assert not pow_solved("another-seed-entirely-", nonce, 8) or nonce == "0"
    assert not pow_solved(seed, nonce + " ", 8)  # only short lowercase nonces are looked at
    assert not pow_solved(seed, "x" * 1000, 8)
    hard = next(str(n) for n in itertools.count() if not pow_solved(seed, str(n), 8))
    assert not pow_solved(seed, hard, 8)
