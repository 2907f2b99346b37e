"""Eligibility and the reward object (docs/api.md, scan: reward), as ``services/scan/reward.py`` decides them."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.ai import Classification
from services.common.knowledge import knowledge_base
from services.scan.reward import eligible_character, reward_object


def checkpoint(**changes: Any) -> dict[str, Any]:
    vision = {
        "classification": {
            "major_category": "재활용폐기물",
            "middle_category": "무색페트병",
            "minor_category": "음료PET병",
        },
        "situation_tags": [],
    }
    vision["classification"] |= changes.pop("classification", {})
    return {
        "vision": vision,
        "rule": {"key": changes.pop("rule_key", "재활용폐기물_무색페트병"), "name": "x"},
        "answer": {"insufficiencies": changes.pop("insufficiencies", [])},
    }


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, "char-petty"),
        ({"classification": {"major_category": "일반종량제폐기물", "middle_category": "일반종량제폐기물"}}, None),
        ({"rule_key": None}, None),
        ({"insufficiencies": ["라벨을 떼어 주세요"]}, None),
        ({"insufficiencies": ["", "   "]}, "char-petty"),  # blank entries are not insufficiencies
        ({"classification": {"middle_category": "유색페트병"}}, None),  # not one of the 12
        ({"classification": {"middle_category": "종이"}}, "char-paepy"),
    ],
)
def test_eligibility(changes: dict[str, Any], code: str | None) -> None:
    character = eligible_character(knowledge_base(), checkpoint(**changes))
    assert (character.code if character else None) == code


def test_switched_off_nothing_is_eligible() -> None:
    assert eligible_character(knowledge_base(), checkpoint(), enabled=False) is None


def test_reward_object_fields() -> None:
    character = eligible_character(knowledge_base(), checkpoint())
    assert character is not None
    c = Classification.from_dict(checkpoint()["vision"])
    assert reward_object(character, c, True) == {
        "name": "페티",
        "dialog": character.dialog,
        "match_reason": "무색페트병>음료PET병",
        "type": "먹는샘물 페트병, 음료 페트병",
        "received": True,
        "already_owned": False,
        "points_awarded": 60,
    }
    owned = reward_object(character, c, False)
    assert (owned["received"], owned["already_owned"], owned["points_awarded"]) == (False, True, 10)
