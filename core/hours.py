"""Support hours (`SUPPORT_HOURS`): when people answer, so a customer who asks for one outside
them is told when to expect an answer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(
    r"(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})"
)


@dataclass(frozen=True, slots=True)
class Span:
    """One opening span of the support hours on one weekday (0 is Monday)."""

    day: int
    start: time
    end: time


class SupportHours:
    """Opening spans per weekday in one time zone, parsed from text like
    `Mon-Fri 09:00-17:00; Sat 10:00-14:00`. Empty text: always open."""

    def __init__(self, spans: tuple[Span, ...], tz: ZoneInfo, text: str = ""):
        self.spans = spans
        self.tz = tz
        self.text = text

    @classmethod
    def parse(cls, text: str | None, tz: str = "UTC") -> SupportHours:
        zone = ZoneInfo(tz)
        if not text or not text.strip():
            return cls((), zone)
        spans: list[Span] = []
        for part in re.split(r"[;,]", text.lower()):
            part = part.strip()
            if not part:
                continue
            m = _PART.fullmatch(part)
            if m is None or m["d1"] not in DAYS or (m["d2"] and m["d2"] not in DAYS):
                raise ValueError(f"{part!r} is not like 'Mon-Fri 09:00-17:00'")
            start = time(int(m["h1"]), int(m["m1"]))
            end = time(int(m["h2"]), int(m["m2"])) if m["h2"] != "24" else time.max
            if end <= start:
                raise ValueError(f"{part!r}: the end comes before the start")
            first = DAYS.index(m["d1"])
            last = DAYS.index(m["d2"]) if m["d2"] else first
            day = first
            while True:
                spans.append(Span(day, start, end))
                if day == last:
                    break
                day = (day + 1) % 7
        return cls(tuple(spans), zone, text.strip())

    @property
    def always(self) -> bool:
        return not self.spans

    def is_open(self, at: datetime) -> bool:
        if self.always:
            return True
        local = at.astimezone(self.tz)
        now = local.time()
        return any(s.day == local.weekday() and s.start <= now < s.end for s in self.spans)

    def next_open(self, at: datetime) -> datetime | None:
        """The next opening after `at` (None when always open)."""
        if self.always:
            return None
        local = at.astimezone(self.tz)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            starts = sorted(
                datetime.combine(day, s.start, self.tz)
                for s in self.spans
                if s.day == day.weekday()
            )
            for start in starts:
                if start > local:
                    return start
        return None
