"""Redis backends for running several gateway processes on one shared state (REDIS_URL)."""
