"""The sliding window both Redis limits count in, as the start of their scripts: a sorted set
whose members are events and whose scores are when they came (microseconds, Redis's clock)."""

from __future__ import annotations

SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local function count_in()
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
end
"""
"""Defines `now`, `window` (ARGV[1], microseconds), `limit` (ARGV[2]) and `count_in()`, which
adds the event ARGV[3] to the window in KEYS[1]; what is older than the window is gone."""


def window_script(body: str) -> str:
    """A script that decides on the window with `body`, after `SLIDING_WINDOW`."""
    return SLIDING_WINDOW + body
