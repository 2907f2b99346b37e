"""A stand-in for the character service's internal reward endpoint (interfaces.md), served on a
real socket, until the real character app is available in this branch: it decides once per job id
and returns the stored decision on every later call, like the real one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.knowledge import RECYCLABLE, character_for_middle, knowledge_base


@dataclass
class FakeCharacter:
    token: str = "test-internal-token"
    down: bool = False  # answer 503, as an unavailable service would
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    owned: set[tuple[str, str]] = field(default_factory=set)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def rewards(self, request: Request) -> JSONResponse:
        if request.headers.get("x-internal-token") != self.token:
            return JSONResponse({"detail": "internal token missing or wrong", "code": "INTERNAL_AUTH_FAILED"}, 401)
        body = await request.json()
        self.calls.append(body)
        if self.down:
            return JSONResponse({"detail": "unavailable", "code": "SERVICE_UNAVAILABLE"}, 503)
        if body["job_id"] not in self.decisions:
            self.decisions[body["job_id"]] = self.decide(body)
        return JSONResponse(self.decisions[body["job_id"]])

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        eligible = (
            body["major_category"] == RECYCLABLE
            and body["middle_category"] in knowledge_base().middles
            and body["rule_found"]
            and not [i for i in body["insufficiencies"] if i.strip()]
        )
        character = character_for_middle(body["middle_category"]) if eligible else None
        if character is None:
            return {"eligible": False, "reward": None}
        key = (body["user_id"], character.code)
        received = key not in self.owned
        self.owned.add(key)
        return {
            "eligible": True,
            "reward": {
                "received": received,
                "already_owned": not received,
                "name": character.name,
                "dialog": character.dialog,
                "match_reason": f"{body['middle_category']}>{body['minor_category']}",
                "type": character.type,
                "character_code": character.code,
                "points_awarded": 60 if received else 10,
            },
        }

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/internal/v1/character/rewards", self.rewards, methods=["POST"])])
