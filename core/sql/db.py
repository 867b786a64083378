"""The database: an async engine from a URL, migrated to the newest schema when opened."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from core.sqlite.wal import enable_wal

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
EMBEDDED = "conversations.db"
"""The embedded default's file under `DATA_DIR`."""
T = TypeVar("T")
MIGRATION_LOCK = 7_410_519
"""PostgreSQL advisory lock held while migrating: two `serve` processes starting together
migrate one after the other."""


def database_url(url: str | None, data_dir: Path) -> str:
    """`DATABASE_URL` made async (postgresql:// → postgresql+asyncpg://), or the embedded SQLite
    file under `DATA_DIR`."""
    if not url:
        return f"sqlite+aiosqlite:///{(data_dir / EMBEDDED).resolve()}"
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}.get(
        parsed.drivername
    )
    if parsed.drivername == "sqlite":
        driver = "sqlite+aiosqlite"
    return parsed.set(drivername=driver).render_as_string(False) if driver else url


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


class Database:
    """One engine per process, shared by the conversation and agent stores. Used as an async
    context manager: entering migrates (and makes the SQLite file's folder), leaving disposes
    of the pool."""

    def __init__(self, url: str, *, migrate: bool = True, echo: bool = False):
        self.url = url
        self._migrate = migrate
        self._echo = echo
        self.engine: AsyncEngine = self._make_engine(url, echo)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer: tuple[Engine, ThreadPoolExecutor] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def _sqlite_file(self) -> str | None:
        """The SQLite file's path (None: another database, or SQLite in memory)."""
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return database

    @staticmethod
    def _make_engine(url: str, echo: bool) -> AsyncEngine:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_async_engine(url, echo=echo, pool_pre_ping=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction, committed when it returns. Blocking code, so the
        many statements of a turn cost what the database costs: on a SQLite file it runs on a
        thread of its own with the blocking driver (aiosqlite would hand every statement to its
        thread and back, several times the work), one write after another as SQLite takes
        them anyway; elsewhere on the async engine (`run_sync`)."""
        if self._sqlite_file is None:
            async with self.session() as s, s.begin():
                return await s.run_sync(work)
        if self._writer is None:
            blocking = self.engine.url.set(drivername="sqlite")
            writer = create_engine(blocking, echo=self._echo, connect_args={"timeout": 30})
            event.listen(writer, "connect", _sqlite_pragmas)
            self._writer = (writer, ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer"))
        engine, thread = self._writer

        def run() -> T:
            with Session(engine, expire_on_commit=False) as s, s.begin():
                return work(s)

        return await asyncio.get_running_loop().run_in_executor(thread, run)

    async def __aenter__(self) -> Database:
        if self._sqlite_file is not None:
            Path(self._sqlite_file).parent.mkdir(parents=True, exist_ok=True)
        if self._migrate:
            await self.upgrade()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.engine.dispose()
        if self._writer is not None:
            engine, thread = self._writer
            self._writer = None
            # The connection belongs to the writer's thread: closed there.
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown()

    async def upgrade(self, revision: str = "head") -> None:
        async with self._sqlite_migration_lock(), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), revision))
        log.info("conversations.migrated", dialect=self.dialect, revision=revision)

    @contextlib.asynccontextmanager
    async def _sqlite_migration_lock(self) -> AsyncIterator[None]:
        """Processes sharing one SQLite file (several `serve` and `worker` on one machine)
        migrate one at a time: a lock file beside the database, as PostgreSQL's advisory lock
        does for a server."""
        database = self._sqlite_file
        if database is None:
            yield
            return
        lock = await asyncio.to_thread(Path(f"{database}.migrate-lock").open, "a")
        try:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            yield
        finally:
            lock.close()  # closing releases the lock

    async def downgrade(self, revision: str) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))

    async def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: the console reads while the worker writes; foreign keys are off by default.
    cur = dbapi_conn.cursor()
    enable_wal(cur.execute)
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL with NORMAL: no fsync per commit on the turn's path, and never corrupt.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
