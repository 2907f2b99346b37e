"""A local OpenAI-compatible chat model that streams (``POST /v1/chat/completions`` with ``stream``).

It speaks the streamed chat-completions protocol the ``openai`` SDK reads: ``data: {chunk}`` SSE
lines ending with ``data: [DONE]``, content as text deltas, and tool calls as ``delta.tool_calls``
fragments (id and name first, arguments in pieces) ending with ``finish_reason: "tool_calls"``.

What it answers is a *policy*: a function of the request body returning ``Reply`` (text and/or tool
calls). The default policy behaves like a small tool-using model: on a user turn it calls the tool
its keywords point to, and once tool results are in it answers with them (quoted, so tests can see
the facts travel from our tools through the model). Faults: ``fail_next`` answers HTTP 500s,
``break_after`` drops the connection after that many content chunks. Every request is recorded.
Run standalone for benchmarks: ``python -m tests.support.fake_chat_model --port N --token-interval 0.02``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def default_policy(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    last = messages[-1]
    if last["role"] == "tool":
        results = [m["content"] for m in messages[-5:] if m["role"] == "tool"]
        return Reply("찾아본 결과를 알려 드릴게요. " + " ".join(results))
    question = str(last.get("content") or "")
    if body.get("tools"):
        for words, tool, args in (
            (("캐릭터",), "character_info", {"item": question.split("\n")[0]}),
            (("시세", "얼마"), "recyclable_price", {"item": question.split("\n")[0][:100]}),
            (("근처", "어디"), "nearby_sites", {"kind": "all"}),
            (("버려", "버리"), "disposal_guidance", {"item": question.split("\n")[0]}),
        ):
            if any(w in question for w in words):
                return Reply(tool_calls=[(tool, args)])
    return Reply("안녕하세요, 분리배출 도우미 이코예요! 무엇이든 물어봐 주세요.")


@dataclass
class FakeChatModel:
    policy: Callable[[dict[str, Any]], Reply] = default_policy
    token_interval: float = 0.0  # seconds between content chunks
    first_token_latency: float = 0.0
    chunk_chars: int = 4
    fail_next: int = 0  # answer this many requests with HTTP 500
    break_after: int | None = None  # drop the connection after this many content chunks (once)
    record: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)

    def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> str:
        data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def _events(self, body: dict[str, Any], reply: Reply) -> AsyncIterator[str]:
        if self.first_token_latency:
            await asyncio.sleep(self.first_token_latency)
        yield self._chunk(body, {"role": "assistant", "content": ""})
        text = reply.text
        for n, start in enumerate(range(0, len(text), self.chunk_chars)):
            if self.break_after is not None and n >= self.break_after:
                self.break_after = None
                raise ConnectionError("injected: stream cut")  # uvicorn aborts the response mid-body
            if self.token_interval:
                await asyncio.sleep(self.token_interval)
            yield self._chunk(body, {"content": text[start : start + self.chunk_chars]})
        for index, (name, args) in enumerate(reply.tool_calls):
            head = {"index": index, "id": f"call_{index}_{name}", "type": "function",
                    "function": {"name": name, "arguments": ""}}  # fmt: skip
            yield self._chunk(body, {"tool_calls": [head]})
            raw = json.dumps(args, ensure_ascii=False)
            for start in range(0, len(raw), 7):  # arguments arrive in fragments, as real models send them
                part = {"index": index, "function": {"arguments": raw[start : start + 7]}}
                yield self._chunk(body, {"tool_calls": [part]})
        yield self._chunk(body, {}, "tool_calls" if reply.tool_calls else "stop")
        yield "data: [DONE]\n\n"

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        if self.record:
            self.requests.append(body)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}}, status_code=500)
        reply = self.policy(body)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text}
            return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})  # fmt: skip
        return StreamingResponse(self._events(body, reply), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="fake streaming OpenAI-compatible chat model")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--token-interval", type=float, default=0.02)
    parser.add_argument("--first-token-latency", type=float, default=0.3)
    args = parser.parse_args()
    fake = FakeChatModel(token_interval=args.token_interval, first_token_latency=args.first_token_latency, record=False)
    uvicorn.run(fake.app(), host="127.0.0.1", port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
