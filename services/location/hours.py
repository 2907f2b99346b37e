"""Today's opening state of a site, in Asia/Seoul (docs/api.md, locations: site data, docs/location.md).

The contract fixes the output shape: a closed day → ``is_holiday`` true, ``is_open`` false, no times;
a ``HH:MM`` window → ``is_holiday`` false, both times, ``is_open`` = now inside it (an end before the
start crosses midnight); nothing known → all four null. The KECO cells are free text, so this module
turns each format seen in the data into that shape (DOMAIN recommendations adopted, see
docs/location.md):

- ``휴무`` / ``전체휴무`` / ``계약종료`` → closed.
- ``09:00 ~ 21:00``, ``9:00~18:00``, ``08시~22시`` → one window.
- ``상시`` and ``00:00~24:00`` → open all day, reported as ``00:00``–``24:00``.
- several slots (``09:00 ~ 12:00,\\n14:00 ~ 17:00``) → the day's span as the window; open only
  inside a slot.
- a week-of-month rule (``(1,3,5주)``) → closed on the other weeks.
- a seasonal note (``10시~22시 (하절기(7~9월) 10시~23시)``) → the seasonal window in those months.
- anything else (``협의`` …) → unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    SEOUL: tzinfo = ZoneInfo("Asia/Seoul")
except ZoneInfoNotFoundError:  # slim images without tzdata; Korea has had no DST since 1988
    SEOUL = timezone(timedelta(hours=9), "Asia/Seoul")

_CLOSED = ("휴무", "계약종료")
_ALL_DAY = ("상시", "24시간")
_TIME = r"(\d{1,2})\s*(?::\s*(\d{2})|시)"
_WINDOW = re.compile(_TIME + r"\s*[~\-–]\s*" + _TIME)
_WEEKS = re.compile(r"\(\s*([\d,\s]+)\s*주\s*\)")
_SEASON = re.compile(r"\((\d{1,2})\s*~\s*(\d{1,2})\s*월\)\s*(.*)", re.DOTALL)


@dataclass(frozen=True)
class OpeningState:
    is_holiday: bool | None
    is_open: bool | None
    start_time: str | None
    end_time: str | None


UNKNOWN = OpeningState(None, None, None, None)
CLOSED = OpeningState(True, False, None, None)


def _minutes(hour: str, minute: str | None) -> int | None:
    h, m = int(hour), int(minute or 0)
    if m >= 60 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _windows(text: str) -> list[tuple[int, int]]:
    found = []
    for match in _WINDOW.finditer(text):
        start, end = _minutes(match[1], match[2]), _minutes(match[3], match[4])
        if start is not None and end is not None:
            found.append((start, end))
    return found


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _week_of_month(day: int) -> int:
    return (day - 1) // 7 + 1  # the n-th occurrence of this weekday in the month


def _inside(now: int, start: int, end: int) -> bool:
    if end < start:  # crosses midnight; only today's entry is consulted
        return now >= start or now <= end
    return start <= now <= end


def opening_state(value: str | None, now: datetime) -> OpeningState:
    """``value``: the site's hours for ``now``'s weekday (already chosen by the caller)."""
    text = (value or "").strip()
    if not text:
        return UNKNOWN
    if any(word in text for word in _CLOSED):
        return CLOSED
    if any(word in text for word in _ALL_DAY):
        return OpeningState(False, True, "00:00", "24:00")

    weeks = _WEEKS.search(text)
    if weeks:
        allowed = {int(n) for n in re.findall(r"\d+", weeks[1])}
        if _week_of_month(now.day) not in allowed:
            return CLOSED
        text = text[: weeks.start()] + text[weeks.end() :]

    main, _, note = text.partition("(")
    slots = _windows(main)
    season = _SEASON.search(note) if note else None
    if season and int(season[1]) <= now.month <= int(season[2]):
        slots = _windows(season[3]) or slots
    if not slots:
        return UNKNOWN

    now_minutes = now.hour * 60 + now.minute
    start, end = slots[0][0], slots[-1][1]
    is_open = any(_inside(now_minutes, s, e) for s, e in slots)
    return OpeningState(False, is_open, _hhmm(start), _hhmm(end))


WEEKDAY_INDEX = ("hours_mon", "hours_tue", "hours_wed", "hours_thu", "hours_fri", "hours_sat", "hours_sun")


def today_column(now: datetime) -> str:
    return WEEKDAY_INDEX[now.astimezone(SEOUL).weekday()]


def seoul(now: datetime) -> datetime:
    return now.astimezone(SEOUL)
