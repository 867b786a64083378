from datetime import UTC, datetime

import pytest

from core.hours import SupportHours


def test_open_and_next_opening_in_the_zone() -> None:
    hours = SupportHours.parse("Mon-Fri 09:00-17:00; Sat 10:00-12:00", "Europe/Berlin")
    monday_noon_berlin = datetime(2025, 3, 3, 11, 0, tzinfo=UTC)
    assert hours.is_open(monday_noon_berlin)
    friday_night = datetime(2025, 3, 7, 20, 0, tzinfo=UTC)
    assert not hours.is_open(friday_night)
    nxt = hours.next_open(friday_night)
    assert nxt is not None and (nxt.weekday(), nxt.hour) == (5, 10)
    saturday_late = datetime(2025, 3, 8, 13, 0, tzinfo=UTC)
    nxt = hours.next_open(saturday_late)
    assert nxt is not None and (nxt.weekday(), nxt.hour) == (0, 9)


def test_unset_is_always_open_and_wrapping_day_ranges() -> None:
    assert SupportHours.parse(None).is_open(datetime.now(UTC))
    assert SupportHours.parse("").next_open(datetime.now(UTC)) is None
    weekend = SupportHours.parse("Sat-Sun 08:00-20:00")
    assert {s.day for s in weekend.spans} == {5, 6}
    wrap = SupportHours.parse("Sun-Mon 08:00-20:00")
    assert {s.day for s in wrap.spans} == {6, 0}


@pytest.mark.parametrize("text", ["weekdays 9-5", "Mon-Fri 17:00-09:00", "Xyz 09:00-10:00"])
def test_bad_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        SupportHours.parse(text)
