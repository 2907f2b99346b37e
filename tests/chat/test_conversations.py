"""docs/api.md, chat: endpoints and conversation rules — create, list (activity order, keyset pages),
history pages, rename, soft delete, 404 CHAT_NOT_FOUND, title and preview rules."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.chat.conftest import StackFactory
from tests.support.tokens import auth_headers

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_create_with_and_without_a_body(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    sent: dict[str, Any]
    for sent in ({}, {"content": b""}, {"json": {}}, {"json": {"title": None}}):
        response = await stack.chat.post("/api/v1/chat", headers=stack.headers, **sent)
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"id", "title", "created_at"}
        assert body["title"] is None
        assert uuid.UUID(body["id"]).version == 4
        assert body["id"] == body["id"].lower()
        assert ISO_MS.match(body["created_at"])
    titled = await stack.chat.post("/api/v1/chat", json={"title": "  분리배출 질문  "}, headers=stack.headers)
    assert titled.status_code == 201
    assert titled.json()["title"] == "분리배출 질문"  # trimmed
    for bad in ("   ", "x" * 101, "줄\x00바꿈"):
        refused = await stack.chat.post("/api/v1/chat", json={"title": bad}, headers=stack.headers)
        assert refused.status_code == 422, bad
    assert (await stack.chat.post("/api/v1/chat", json={"title": "가" * 100}, headers=stack.headers)).status_code == 201


async def test_needs_a_user(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    for method, path in (("GET", "/api/v1/chat"), ("POST", "/api/v1/chat"), ("GET", f"/api/v1/chat/{uuid.uuid4()}")):
        response = await stack.chat.request(method, path)
        assert response.status_code == 401
        assert response.json()["code"] == "TOKEN_MISSING"


async def test_list_is_most_recent_activity_first_in_keyset_pages(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    first = await stack.create_chat(title="첫째")
    second = await stack.create_chat(title="둘째")
    third = await stack.create_chat(title="셋째")
    await stack.ask(first, "첫째 방에 질문")  # activity moves `first` to the top
    listed = (await stack.chat.get("/api/v1/chat", headers=stack.headers)).json()
    assert [c["id"] for c in listed["chats"]] == [first, third, second]
    assert listed["next_cursor"] is None
    top = listed["chats"][0]
    assert set(top) == {"id", "title", "preview", "message_count", "last_message_at", "created_at"}
    assert top["message_count"] == 1
    assert top["preview"] == "첫째 방에 질문"
    assert ISO_MS.match(top["last_message_at"])
    assert listed["chats"][1]["last_message_at"] is None
    assert listed["chats"][1]["preview"] is None

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await stack.chat.get("/api/v1/chat", params=params, headers=stack.headers)).json()
        pages.extend(c["id"] for c in page["chats"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [first, third, second]
    latest = (await stack.chat.get("/api/v1/chat?limit=1", headers=stack.headers)).json()
    assert latest["chats"][0]["id"] == first  # (client) chats[0] of ?limit=1 is "the latest chat"

    for bad in ("nope", "1_zz", "1_" + "0" * 31, "999999999999999999_" + "0" * 32):
        refused = await stack.chat.get("/api/v1/chat", params={"cursor": bad}, headers=stack.headers)
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_CURSOR"), bad
    for limit in (0, 101):
        assert (await stack.chat.get(f"/api/v1/chat?limit={limit}", headers=stack.headers)).status_code == 422
    other = (await stack.chat.get("/api/v1/chat", headers=auth_headers(stack.common))).json()
    assert other == {"chats": [], "next_cursor": None}


async def test_first_message_sets_the_title_and_preview_follows_the_latest(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    first = "플라스틱 용기는\n어떻게 버리나요? 라벨은 떼야 하나요, 뚜껑은요?"
    await stack.ask(chat_id, first)
    second = "그럼 " + "긴 질문 " * 30
    await stack.ask(chat_id, second)
    detail = await stack.history(chat_id)
    assert detail["title"] == first.replace("\n", " ")[:30]
    summary = (await stack.chat.get("/api/v1/chat", headers=stack.headers)).json()["chats"][0]
    assert summary["preview"] == second.strip()[:100]
    assert summary["message_count"] == 2
    titled = await stack.create_chat(title="내 제목")
    await stack.ask(titled, "제목이 있는 방")
    assert (await stack.history(titled))["title"] == "내 제목"  # only a null title is set


async def test_history_pages_are_newest_first_pages_in_chronological_order(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    sent = [f"질문 {i}" for i in range(5)]
    for message in sent:
        await stack.ask(chat_id, message)
    page = await stack.history(chat_id, limit=2)
    assert [m["content"] for m in page["messages"]] == ["질문 3", "질문 4"]  # newest 2, oldest first
    assert page["has_more"] is True
    message = page["messages"][0]
    assert set(message) == {"id", "role", "content", "image_url", "intent", "created_at"}
    assert message["role"] == "user"
    assert message["image_url"] is None
    assert message["intent"] is None
    older = await stack.history(chat_id, limit=2, cursor=page["next_cursor"])
    assert [m["content"] for m in older["messages"]] == ["질문 1", "질문 2"]
    oldest = await stack.history(chat_id, limit=2, cursor=older["next_cursor"])
    assert [m["content"] for m in oldest["messages"]] == ["질문 0"]
    assert (oldest["has_more"], oldest["next_cursor"]) == (False, None)
    everything = await stack.history(chat_id)
    stamps = [m["created_at"] for m in everything["messages"]]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5
    bad = await stack.chat.get(f"/api/v1/chat/{chat_id}?cursor=garbage", headers=stack.headers)
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_CURSOR")


async def test_rename_delete_and_not_found(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    chat_id = await stack.create_chat()
    renamed = await stack.chat.patch(f"/api/v1/chat/{chat_id}", json={"title": " 새 이름 "}, headers=stack.headers)
    assert renamed.status_code == 204
    assert renamed.content == b""
    assert (await stack.history(chat_id))["title"] == "새 이름"
    for bad in ({}, {"title": ""}, {"title": "  "}, {"title": None}, {"title": "x" * 101}):
        response = await stack.chat.patch(f"/api/v1/chat/{chat_id}", json=bad, headers=stack.headers)
        assert response.status_code == 422, bad

    stranger = auth_headers(stack.common)
    for target in (chat_id, str(uuid.uuid4()), "not-a-uuid"):
        headers = stranger if target == chat_id else stack.headers
        for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
            response = await stack.chat.request(method, f"/api/v1/chat/{target}", headers=headers, json=body)
            assert (response.status_code, response.json()["code"]) == (404, "CHAT_NOT_FOUND"), (method, target)
        sent = await stack.chat.post(f"/api/v1/chat/{target}/messages", json={"message": "안녕"}, headers=headers)
        assert (sent.status_code, sent.json()["code"]) == (404, "CHAT_NOT_FOUND")

    deleted = await stack.chat.delete(f"/api/v1/chat/{chat_id}", headers=stack.headers)
    assert deleted.status_code == 204
    for method in ("GET", "DELETE"):
        response = await stack.chat.request(method, f"/api/v1/chat/{chat_id}", headers=stack.headers)
        assert (response.status_code, response.json()["code"]) == (404, "CHAT_NOT_FOUND")
    listed = (await stack.chat.get("/api/v1/chat", headers=stack.headers)).json()
    assert chat_id not in [c["id"] for c in listed["chats"]]


async def test_old_client_paths_are_absent(make_stack: StackFactory) -> None:
    stack = await make_stack(worker=False)
    response = await stack.chat.post("/api/v1/chat/messages", json={"message": "x"}, headers=stack.headers)
    assert response.status_code in (404, 405)
