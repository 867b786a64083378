"""A real IMAP server for the mailbox tests: Debian's dovecot (`dovecot-imapd`), started on a
free loopback port with a configuration of the test's own (plain-text login, one user, Maildir
under the test's directory) and stopped after it. Skipped, saying how to install it, when the
program is missing (scripts/system-deps.sh installs it)."""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "bot"
PASSWORD = "imap-test-password"


class Dovecot:
    def __init__(self, workdir: Path, extra: str = "") -> None:
        self.dir = workdir
        self.extra = extra
        """More configuration lines (e.g. an `imap_capability` without MOVE)."""
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        d = self.dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if os.getuid() == 0:
            # dovecot's login process refuses to run as root: its own users, made by the package
            internal, login, mail = "dovecot", "dovenull", "dovecot"
            uid, gid = pwd.getpwnam(mail).pw_uid, grp.getgrnam(mail).gr_gid
            os.chown(d / "mail", uid, gid)
            d.chmod(0o755)
        else:
            internal = login = mail = pwd.getpwuid(os.getuid()).pw_name
        conf = d / "dovecot.conf"
        conf.write_text(
            f"""
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={mail} gid={mail} home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
{self.extra}
"""
        )
        return conf

    def start(self, timeout: float = 15.0) -> None:
        conf = self._config()
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.dir / "dovecot.log").read_text() if (self.dir / "dovecot.log").exists() else ""
        self.stop()
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def kick(self) -> None:
        """Every IMAP connection cut (as a server restart or a network failure does)."""
        subprocess.run(
            ["doveadm", "-c", str(self.dir / "dovecot.conf"), "kick", USER],
            check=False,
            capture_output=True,
        )

    def client(self) -> imaplib.IMAP4:
        m = imaplib.IMAP4(self.host, self.port)
        m.login(USER, PASSWORD)
        return m

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """A message put in the mailbox, unseen (as the MTA's delivery would)."""
        m = self.client()
        try:
            m.append(folder, None, None, raw)
        finally:
            m.logout()

    def count(self, criterion: str, folder: str = "INBOX") -> int:
        """Messages of `folder` that match a SEARCH `criterion` (`SEEN`, `UNSEEN`...)."""
        m = self.client()
        try:
            m.select(folder, readonly=True)
            _, data = m.search(None, criterion)
        finally:
            m.logout()
        return len(data[0].split()) if data and data[0] else 0

    def flags(self, folder: str = "INBOX") -> dict[str, str]:
        """Message-ID → the message's flags."""
        m = self.client()
        try:
            m.select(folder, readonly=True)
            _, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        finally:
            m.logout()
        out: dict[str, str] = {}
        for item in data:
            if isinstance(item, tuple):
                head = item[0].decode()
                mid = item[1].decode().split(":", 1)[-1].strip()
                out[mid] = head[head.find("FLAGS (") + 7 : head.find(")", head.find("FLAGS ("))]
        return out


@contextlib.contextmanager
def running_dovecot(extra: str = "") -> Iterator[Dovecot]:
    """dovecot started for the block (skipping the test when it is not installed), with the
    `extra` configuration lines."""
    if not Path(DOVECOT).exists():
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    # Not under pytest's tmp_path: as root, dovecot's own users must reach the files, and
    # pytest keeps its directories to their owner.
    workdir = Path(tempfile.mkdtemp(prefix="dovecot-test-"))
    workdir.chmod(0o755)
    server = Dovecot(workdir, extra)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server
