"""A local OpenAI-compatible server for tests and benchmarks (``POST /v1/chat/completions``).

It answers structured-output requests by schema name (``classification`` / ``answer``) with
configurable latency and injected failures (HTTP 500s, or output outside the schema), and records
every request so tests can check what our client sent. Run it with ``serve_asgi(fake.app())`` in a
test, or ``python -m tests.support.fake_openai --port N --vision-latency 4.5 --answer-latency 6.7``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FakeOpenAI:
    latency: dict[str, float] = field(default_factory=lambda: {"classification": 0.0, "answer": 0.0})
    classification: dict[str, Any] = field(
        default_factory=lambda: {
            "major_category": "재활용폐기물",
            "middle_category": "무색페트병",
            "minor_category": "생수병",
            "situation_tags": [],
        }
    )
    answer: dict[str, Any] = field(
        default_factory=lambda: {
            "disposal_steps": ["내용물을 비워요.", "라벨을 떼어 내요.", "찌그러뜨린 뒤 뚜껑을 닫아 내놓아요."],
            "insufficiencies": [],
            "user_answer": "생수병은 무색페트병으로 분리배출해요.",
        }
    )
    fail_next: dict[str, int] = field(default_factory=dict)  # kind -> how many 500s to answer
    invalid_next: dict[str, int] = field(default_factory=dict)  # kind -> how many out-of-schema outputs
    requests: list[dict[str, Any]] = field(default_factory=list)
    record: bool = True
    models: tuple[str, ...] = ("fake-vlm", "fake-vlm-mini")  # listed by GET /v1/models

    def calls(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == kind]

    async def completions(self, request: Request) -> JSONResponse:
        body = await request.json()
        kind = str(((body.get("response_format") or {}).get("json_schema") or {}).get("name", "text"))
        if self.record:
            self.requests.append({"kind": kind, "body": body, "auth": request.headers.get("authorization")})
        delay = self.latency.get(kind, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if self.fail_next.get(kind, 0) > 0:
            self.fail_next[kind] -= 1
            return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}}, status_code=500)
        if self.invalid_next.get(kind, 0) > 0:
            self.invalid_next[kind] -= 1
            content = json.dumps({"major_category": "쓰레기", "middle_category": "?", "unexpected": True})
        else:
            content = json.dumps(self.classification if kind == "classification" else self.answer, ensure_ascii=False)
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
            }
        )

    async def list_models(self, _: Request) -> JSONResponse:
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"} for model in self.models]
        return JSONResponse({"object": "list", "data": data})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/v1/models", self.list_models),
            ]
        )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--vision-latency", type=float, default=4.5)
    parser.add_argument("--answer-latency", type=float, default=6.7)
    args = parser.parse_args()
    fake = FakeOpenAI(latency={"classification": args.vision_latency, "answer": args.answer_latency}, record=False)
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
