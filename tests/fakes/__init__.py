"""Fake platform servers on loopback, for tests."""
