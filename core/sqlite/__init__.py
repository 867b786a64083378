"""The embedded default's state on disk: SQLite files under DATA_DIR."""
