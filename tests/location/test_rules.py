"""Opening hours in Asia/Seoul, phone formatting and distance text (docs/location.md, docs/api.md, locations: site data)."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.location.hours import OpeningState, opening_state, seoul, today_column
from services.location.present import distance_km, distance_km_json, distance_text, format_phone
from tests.location.conftest import KECO_FILE, needs_public_data

KST = timezone(timedelta(hours=9))


def at(hour: int, minute: int = 0, day: int = 20, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=KST)


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        ("휴무", at(12), OpeningState(True, False, None, None)),
        ("전체휴무", at(12), OpeningState(True, False, None, None)),
        ("계약종료", at(12), OpeningState(True, False, None, None)),
        ("", at(12), OpeningState(None, None, None, None)),
        (None, at(12), OpeningState(None, None, None, None)),
        ("   ", at(12), OpeningState(None, None, None, None)),
        ("운영시간 협의", at(12), OpeningState(None, None, None, None)),
        ("09:00 ~ 21:00", at(12), OpeningState(False, True, "09:00", "21:00")),
        ("09:00~18:00", at(8, 59), OpeningState(False, False, "09:00", "18:00")),
        ("09:00~18:00", at(18, 0), OpeningState(False, True, "09:00", "18:00")),
        ("09:00~18:00", at(18, 1), OpeningState(False, False, "09:00", "18:00")),
        ("9:00 ~ 11:00", at(10), OpeningState(False, True, "09:00", "11:00")),
        ("08시~22시", at(21), OpeningState(False, True, "08:00", "22:00")),
        ("상시", at(3), OpeningState(False, True, "00:00", "24:00")),
        ("00:00~24:00", at(23, 59), OpeningState(False, True, "00:00", "24:00")),
        ("22:00 ~ 02:00", at(1), OpeningState(False, True, "22:00", "02:00")),  # crosses midnight
        ("22:00 ~ 02:00", at(12), OpeningState(False, False, "22:00", "02:00")),
        ("09:00 ~ 12:00,\n14:00 ~ 17:00", at(13), OpeningState(False, False, "09:00", "17:00")),
        ("09:00 ~ 12:00,\n14:00 ~ 17:00", at(15), OpeningState(False, True, "09:00", "17:00")),
        # 2026-01-20 is the 3rd Tuesday, 2026-01-13 the 2nd
        ("10:00~12:00\n14:00~16:00\n(1,3,5주)", at(11, day=20), OpeningState(False, True, "10:00", "16:00")),
        ("10:00~12:00\n14:00~16:00\n(1,3,5주)", at(11, day=13), OpeningState(True, False, None, None)),
        ("10:00~12:00\n14:00~16:00\n(2, 4주)", at(15, day=13), OpeningState(False, True, "10:00", "16:00")),
        ("10:00~12:00\n14:00~16:00\n(매주 목요일)", at(11), OpeningState(False, True, "10:00", "16:00")),
        ("10시~22시         (하절기(7~9월) 10시~23시)", at(22, 30), OpeningState(False, False, "10:00", "22:00")),
        ("10시~22시 (하절기(7~9월)    10시~23시)", at(22, 30, month=8), OpeningState(False, True, "10:00", "23:00")),
        ("25:00~26:00", at(12), OpeningState(None, None, None, None)),
    ],
)
def test_opening_state(value: str | None, now: datetime, expected: OpeningState) -> None:
    assert opening_state(value, now) == expected


@needs_public_data
def test_every_weekday_value_in_the_public_data_has_the_contract_shape() -> None:
    values = set()
    for row in csv.DictReader(KECO_FILE.open(encoding="utf-8-sig", newline="")):
        values |= {v for k, v in row.items() if k.endswith("SalsHrExplnCn") and not k.startswith("lhldy")}
    assert len(values) > 30
    for value in values:
        state = opening_state(value, at(12))
        for time in (state.start_time, state.end_time):
            assert time is None or (len(time) == 5 and time[2] == ":"), value
        if state.is_holiday is None:
            assert state == OpeningState(None, None, None, None), value
        else:
            assert isinstance(state.is_open, bool), value


def test_today_is_seoul_today() -> None:
    # 2026-01-19 20:00 UTC is already Tuesday 05:00 in Seoul.
    now = datetime(2026, 1, 19, 20, 0, tzinfo=UTC)
    assert today_column(now) == "hours_tue"
    assert seoul(now).hour == 5


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (("031-8075-2706~2708\n고양시청 자원순환과", "031-8075-2706"), "031-8075-2706"),
        (("", "01012345678"), "010-1234-5678"),
        ((None, None, "자원순환과", "02-2133-3690"), None),  # first non-empty has no digits
        (("02 2133 3690",), "02-2133-3690"),
        (("1588-0000",), "1588-0000"),
        (("0212345678",), "0212345678"),
        ((None, "", None, None), None),
    ],
)
def test_phone_format(candidates: tuple[str | None, ...], expected: str | None) -> None:
    assert format_phone(*candidates) == expected


@pytest.mark.parametrize(
    ("metres", "text"),
    [
        (0, "0m"),
        (350.9, "350m"),
        (843.7, "843m"),
        (999.99, "999m"),
        (1000, "1.0km"),
        (1249, "1.2km"),
        (23456, "23.5km"),
    ],
)
def test_distance_text(metres: float, text: str) -> None:
    assert distance_text(metres) == text


def test_distance_km_json_is_the_rounded_floats_repr() -> None:
    rng = random.Random(19)
    samples = [rng.uniform(0, 80_000) for _ in range(1_000_000)]
    samples += [k * 0.5 for k in range(160_001)]  # every exact tie of the 3rd decimal (x.xxx5 km)
    samples += [rng.uniform(0, 2) for _ in range(100_000)] + [0.0, 1e-9, 0.0005, 999.9995, 79_999.9995]
    wrong = [m for m in samples if distance_km_json(m) != repr(distance_km(m))]
    assert wrong == []
