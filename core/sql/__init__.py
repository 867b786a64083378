"""The conversation store in SQL (SQLAlchemy 2, async): SQLite embedded, PostgreSQL at scale."""
