"""Alembic's environment: run on the connection the store hands over (`db.migrate`), or on the
URL of `sqlalchemy.url` when Alembic's own command line is used by a developer."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from core.sql.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters a table by copying it
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        run(conn)
