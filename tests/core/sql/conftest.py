"""The conversation store's tests run on SQLite and on a throw-away PostgreSQL cluster."""

from tests.support.postgres_server import database_url, postgres, postgres_url

__all__ = ["database_url", "postgres", "postgres_url"]
