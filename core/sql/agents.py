"""`AgentStore` in SQL: accounts with argon2 password hashes, sessions and API tokens kept as
SHA-256 digests (a leaked table signs nobody in)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from core.conversations import Agent
from core.errors import AgentExists
from core.sql.db import Database
from core.sql.models import AgentRow, AgentSessionRow


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SqlAgents:
    """The agents' accounts, sessions and tokens in SQL; passwords hashed with argon2, session
    and token secrets kept only as SHA-256 digests. Used by the console's sign-in and API."""

    def __init__(self, db: Database, hasher: PasswordHasher | None = None):
        self._db = db
        self._hasher = hasher or PasswordHasher()
        # Checked against for an unknown name, so it costs as long as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    async def add(self, name: str, role: str, password: str) -> Agent:
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        row = AgentRow(
            name=name, role=role, password_hash=hashed, created_at=time.time(), active=True
        )
        try:
            async with self._db.session() as s, s.begin():
                s.add(row)
        except IntegrityError:
            raise AgentExists(name) from None
        return _agent(row)

    async def set_password(self, name: str, password: str) -> bool:
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        async with self._db.session() as s, s.begin():
            row = (
                await s.execute(select(AgentRow).where(AgentRow.name == name))
            ).scalar_one_or_none()
            if row is None:
                return False
            row.password_hash = hashed
            await s.execute(delete(AgentSessionRow).where(AgentSessionRow.agent_id == row.id))
        return True

    async def get(self, name: str) -> Agent | None:
        async with self._db.session() as s:
            row = (
                await s.execute(select(AgentRow).where(AgentRow.name == name))
            ).scalar_one_or_none()
        return _agent(row) if row else None

    async def by_id(self, agent_id: int) -> Agent | None:
        async with self._db.session() as s:
            row = await s.get(AgentRow, agent_id)
        return _agent(row) if row else None

    async def all(self) -> list[Agent]:
        async with self._db.session() as s:
            rows = (await s.execute(select(AgentRow).order_by(AgentRow.name))).scalars()
            return [_agent(r) for r in rows]

    async def verify(self, name: str, password: str) -> Agent | None:
        async with self._db.session() as s:
            row = (
                await s.execute(select(AgentRow).where(AgentRow.name == name))
            ).scalar_one_or_none()
        hashed = row.password_hash if row is not None and row.active else self._decoy
        try:
            await asyncio.to_thread(self._hasher.verify, hashed, password)
        except (VerificationError, InvalidHashError):
            return None
        return _agent(row) if row is not None and row.active else None

    async def start_session(self, agent_id: int, kind: str, ttl: float | None) -> tuple[str, str]:
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = time.time()
        async with self._db.session() as s, s.begin():
            s.add(
                AgentSessionRow(
                    agent_id=agent_id,
                    token_hash=digest(secret),
                    csrf=csrf,
                    kind=kind,
                    created_at=now,
                    expires_at=now + ttl if ttl else None,
                )
            )
        return secret, csrf

    async def session(self, secret: str) -> tuple[Agent, str, str] | None:
        stmt = (
            select(AgentSessionRow, AgentRow)
            .join(AgentRow, AgentRow.id == AgentSessionRow.agent_id)
            .where(AgentSessionRow.token_hash == digest(secret))
        )
        async with self._db.session() as s:
            found = (await s.execute(stmt)).first()
        if found is None:
            return None
        sess, agent = found
        if not agent.active or (sess.expires_at is not None and sess.expires_at < time.time()):
            return None
        return _agent(agent), sess.csrf, sess.kind

    async def end_session(self, secret: str) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(
                delete(AgentSessionRow).where(AgentSessionRow.token_hash == digest(secret))
            )

    async def seen(self, agent_id: int) -> None:
        async with self._db.session() as s, s.begin():
            row = await s.get(AgentRow, agent_id)
            if row is not None:
                row.last_seen_at = time.time()

    async def online(self, within: float) -> int:
        since = time.time() - within
        async with self._db.session() as s:
            n = await s.execute(
                select(func.count()).select_from(AgentRow).where(AgentRow.last_seen_at >= since)
            )
            return int(n.scalar_one())


def _agent(r: AgentRow) -> Agent:
    return Agent(id=r.id, name=r.name, role=r.role, active=r.active, last_seen_at=r.last_seen_at)
