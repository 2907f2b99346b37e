"""``/api/v1/users/me``: the profile, its creation from events or on demand, PATCH, DELETE."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.common.kv import create_kv
from services.common.security import Revocations
from services.my.models import DeletedUser, Outbox, OwnedCharacter, PointEntry, Profile
from services.my.schemas import ProfileOut
from services.my.service import ADJECTIVES, NOUNS, normalise_phone
from tests.my.conftest import Deliver, User
from tests.support.events import eventually
from tests.support.tokens import issue_tokens

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DEFAULT_NICKNAMES = {a + n for a in ADJECTIVES for n in NOUNS}


def my_db(common: CommonSettings) -> Database:
    return Database(database_url_for("my", common.database_url, common.data_dir), "my")


async def count(common: CommonSettings, model: type, user_id: uuid.UUID) -> int:
    db = my_db(common)
    try:
        async with db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(model.user_id == user_id)))
    finally:
        await db.dispose()


async def test_me_requires_a_token(my_client: httpx.AsyncClient) -> None:
    response = await my_client.get("/api/v1/users/me", headers={"Origin": "https://app.eco2.test"})
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_MISSING"
    assert response.headers["access-control-allow-origin"] == "https://app.eco2.test"
    bad = await my_client.get("/api/v1/users/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "TOKEN_INVALID"


async def test_first_request_before_the_account_event_creates_the_profile(
    my_client: httpx.AsyncClient, new_user: User, migrated: CommonSettings
) -> None:
    response = await my_client.get("/api/v1/users/me", headers=new_user.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "username",
        "display_name",
        "nickname",
        "phone_number",
        "provider",
        "profile_image_url",
        "last_login_at",
        "created_at",
    }
    assert body["id"] == str(new_user.id)
    assert body["nickname"] in DEFAULT_NICKNAMES
    assert body["username"] == body["display_name"] == body["nickname"]
    assert body["provider"] == "kakao"  # the current session's claim
    assert body["phone_number"] is None
    assert body["last_login_at"] is None
    assert ISO_MS.match(body["created_at"])
    # Idempotent: concurrent first requests make one profile and one mascot grant.
    other = User(migrated)
    results = await asyncio.gather(*(my_client.get("/api/v1/users/me", headers=other.headers) for _ in range(10)))
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["nickname"] for r in results}) == 1
    assert await count(migrated, Profile, other.id) == 1
    assert await count(migrated, OwnedCharacter, other.id) == 1


async def test_account_event_creates_the_profile_with_the_account_nickname(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver
) -> None:
    await deliver(
        "user.created",
        {
            "user_id": str(new_user.id),
            "provider": "kakao",
            "nickname": "초록이",
            "email": "a@example.com",
            "profile_image_url": "https://img.example/a.png",
            "created_at": "2026-01-20T03:15:42.120Z",
        },
    )
    await deliver(
        "user.logged_in", {"user_id": str(new_user.id), "provider": "kakao", "logged_in_at": "2026-01-20T03:15:42.120Z"}
    )
    body = (await my_client.get("/api/v1/users/me", headers=new_user.headers)).json()
    assert body["nickname"] == body["username"] == "초록이"
    assert body["created_at"] == "2026-01-20T03:15:42.120Z"
    assert body["last_login_at"] == "2026-01-20T03:15:42.120Z"
    assert body["profile_image_url"] == "https://img.example/a.png"


async def test_late_account_event_replaces_a_generated_nickname_but_never_a_chosen_one(
    my_client: httpx.AsyncClient, migrated: CommonSettings, deliver: Deliver
) -> None:
    early, chooser = User(migrated), User(migrated)
    for user in (early, chooser):
        assert (await my_client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    patched = await my_client.patch("/api/v1/users/me", headers=chooser.headers, json={"nickname": "내가고른이름"})
    assert patched.status_code == 200
    for user in (early, chooser):
        payload = {
            "user_id": str(user.id),
            "provider": "kakao",
            "nickname": "카카오닉",
            "email": None,
            "profile_image_url": None,
            "created_at": "2026-01-01T00:00:00.000Z",
        }
        await deliver("user.created", payload)

    async def early_renamed() -> bool:
        body = (await my_client.get("/api/v1/users/me", headers=early.headers)).json()
        return bool(body["nickname"] == "카카오닉" and body["created_at"] == "2026-01-01T00:00:00.000Z")

    await eventually(early_renamed, timeout=5)
    body = (await my_client.get("/api/v1/users/me", headers=chooser.headers)).json()
    assert body["nickname"] == "내가고른이름"
    assert body["created_at"] == "2026-01-01T00:00:00.000Z"


async def test_logins_only_move_forward_and_provider_is_the_sessions(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver, migrated: CommonSettings
) -> None:
    user_id = str(new_user.id)
    await deliver(
        "user.logged_in", {"user_id": user_id, "provider": "naver", "logged_in_at": "2026-02-01T00:00:00.000Z"}
    )
    await deliver(
        "user.logged_in", {"user_id": user_id, "provider": "google", "logged_in_at": "2026-01-01T00:00:00.000Z"}
    )

    async def seen() -> bool:
        body = (await my_client.get("/api/v1/users/me", headers=new_user.headers)).json()
        return bool(body["last_login_at"] == "2026-02-01T00:00:00.000Z")

    await eventually(seen, timeout=5)
    google = issue_tokens(migrated, new_user.id, provider="google").access
    body = (await my_client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {google}"})).json()
    assert body["provider"] == "google"


async def test_cookie_auth_works_and_bearer_wins(my_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    cookie_user, bearer_user = User(migrated), User(migrated)
    my_client.cookies.set("s_access", cookie_user.tokens.access)
    try:
        assert (await my_client.get("/api/v1/users/me")).json()["id"] == str(cookie_user.id)
        response = await my_client.get("/api/v1/users/me", headers=bearer_user.headers)
        assert response.json()["id"] == str(bearer_user.id)
    finally:
        my_client.cookies.clear()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-1234-5678", "010-1234-5678"),
        ("01012345678", "010-1234-5678"),
        ("+82 10-1234-5678", "010-1234-5678"),
        ("82 10 1234 5678", "010-1234-5678"),
        ("011-123-4567", "011-123-4567"),
        ("0161234567", "016-123-4567"),
        ("(010) 9876.5432", "010-9876-5432"),
    ],
)
def test_phone_normalisation(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


async def test_patch_rules(my_client: httpx.AsyncClient, new_user: User) -> None:
    url, headers = "/api/v1/users/me", new_user.headers
    for body in ({}, {"unknown": 1}):
        response = await my_client.patch(url, headers=headers, json=body)
        assert response.status_code == 400
        assert response.json()["code"] == "NO_CHANGES_PROVIDED"
    empty = await my_client.patch(url, headers=headers)
    assert (empty.status_code, empty.json()["code"]) == (400, "NO_CHANGES_PROVIDED")
    for phone in ("011-1234-5678", "12345", "010-123-456", "010-1234-56789", "phone", "-", "+82 010 1234 5678"):
        response = await my_client.patch(url, headers=headers, json={"phone_number": phone})
        assert response.status_code == 400, phone
        assert response.json()["code"] == "INVALID_PHONE_NUMBER"
    for nickname in ("", "   ", "가" * 31, "a\nb", "tab\tname", None, 5):
        response = await my_client.patch(url, headers=headers, json={"nickname": nickname})
        assert response.status_code == 422, nickname
        assert isinstance(response.json()["detail"], list)
    for body in ([1, 2], "text"):
        assert (await my_client.patch(url, headers=headers, json=body)).status_code == 422
    garbage = await my_client.patch(url, headers={**headers, "Content-Type": "application/json"}, content=b"{nope")
    assert garbage.status_code == 422


async def test_patch_is_visible_to_the_next_read(my_client: httpx.AsyncClient, new_user: User) -> None:
    url, headers = "/api/v1/users/me", new_user.headers
    await my_client.get(url, headers=headers)  # cached now
    response = await my_client.patch(
        url, headers=headers, json={"nickname": "  새 이름  ", "phone_number": "+82 10 1234 0000"}
    )
    assert response.status_code == 200
    assert response.json()["nickname"] == "새 이름"
    body = (await my_client.get(url, headers=headers)).json()
    assert (body["nickname"], body["username"], body["phone_number"]) == ("새 이름", "새 이름", "010-1234-0000")
    for cleared in (None, ""):
        await my_client.patch(url, headers=headers, json={"phone_number": "01099990000"})
        response = await my_client.patch(url, headers=headers, json={"phone_number": cleared})
        assert response.status_code == 200
        assert (await my_client.get(url, headers=headers)).json()["phone_number"] is None
    only_phone = await my_client.patch(url, headers=headers, json={"phone_number": "010 5555 6666"})
    assert only_phone.json()["nickname"] == "새 이름"


async def test_phone_numbers_are_unique_across_users(my_client: httpx.AsyncClient, migrated: CommonSettings) -> None:
    first, second = User(migrated), User(migrated)
    phone = f"010-7{uuid.uuid4().int % 1000:03d}-{uuid.uuid4().int % 10000:04d}"
    assert (await my_client.patch("/api/v1/users/me", headers=first.headers, json={"phone_number": phone})).is_success
    taken = await my_client.patch("/api/v1/users/me", headers=second.headers, json={"phone_number": phone})
    assert (taken.status_code, taken.json()["code"]) == (400, "INVALID_PHONE_NUMBER")


async def test_delete_erases_revokes_and_clears_cookies(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver, migrated: CommonSettings
) -> None:
    url, headers = "/api/v1/users/me", new_user.headers
    await my_client.get(url, headers=headers)
    payload = {
        "user_id": str(new_user.id),
        "job_id": str(uuid.uuid4()),
        "character_code": "char-paepy",
        "character_name": "페이피",
        "received": True,
        "points": 60,
    }
    await deliver("scan.reward_granted", payload)
    second_session = issue_tokens(migrated, new_user.id).access

    response = await my_client.delete(url, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    cookies = response.headers.get_list("set-cookie")
    for name in ("s_access", "s_refresh"):
        [cookie] = [c for c in cookies if c.startswith(f"{name}=")]
        assert cookie.startswith(f"{name}=;")
        assert "Max-Age=0" in cookie
        assert "Path=/" in cookie
    # Every session of the user is refused at once, not only the one that asked.
    for token in (new_user.tokens.access, second_session):
        after = await my_client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert (after.status_code, after.json()["code"]) == (401, "TOKEN_REVOKED")
    for model in (Profile, OwnedCharacter, PointEntry):
        assert await count(migrated, model, new_user.id) == 0
    assert await count(migrated, DeletedUser, new_user.id) == 1
    db = my_db(migrated)
    try:
        async with db.session() as session:
            events = (await session.execute(select(Outbox).where(Outbox.type == "user.deleted"))).scalars().all()
        assert next(e.payload for e in events if e.payload["user_id"] == str(new_user.id))["deleted_at"]
    finally:
        await db.dispose()
    # Late events about the deleted user bring nothing back.
    await deliver("scan.reward_granted", {**payload, "job_id": str(uuid.uuid4())})
    await deliver(
        "user.logged_in", {"user_id": str(new_user.id), "provider": "kakao", "logged_in_at": "2026-03-01T00:00:00.000Z"}
    )
    for model in (Profile, OwnedCharacter, PointEntry):
        assert await count(migrated, model, new_user.id) == 0


async def test_revocation_from_another_process_is_seen_within_a_second(
    my_client: httpx.AsyncClient, new_user: User, migrated: CommonSettings
) -> None:
    url = "/api/v1/users/me"
    assert (await my_client.get(url, headers=new_user.headers)).status_code == 200  # verified and remembered
    # Another process (e.g. auth's logout) writes the revocation straight into the shared store.
    kv = create_kv(migrated.redis_url, migrated.redis_key_prefix)
    try:
        await kv.set(f"revoked:sid:{issue_sid(new_user)}", "1", ttl=60)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (await my_client.get(url, headers=new_user.headers)).status_code == 200:
            assert loop.time() - started < 1.0, "revoked token still accepted after 1 s"
            await asyncio.sleep(0.02)
        assert loop.time() - started < 1.0
    finally:
        await kv.close()


async def test_revocation_by_this_process_is_immediate(
    my_client: httpx.AsyncClient, new_user: User, migrated: CommonSettings
) -> None:
    url = "/api/v1/users/me"
    assert (await my_client.get(url, headers=new_user.headers)).status_code == 200
    revocations = Revocations(create_kv(migrated.redis_url, migrated.redis_key_prefix))
    try:
        await revocations.revoke_token(new_user.tokens.access_jti, 60)
        refused = await my_client.get(url, headers=new_user.headers)
        assert (refused.status_code, refused.json()["code"]) == (401, "TOKEN_REVOKED")
    finally:
        await revocations.kv.close()


def issue_sid(user: User) -> str:
    import jwt

    return str(jwt.decode(user.tokens.access, options={"verify_signature": False})["sid"])


async def test_the_hand_built_profile_is_exactly_its_declared_response_model(
    my_client: httpx.AsyncClient, new_user: User, deliver: Deliver
) -> None:
    """``GET /me`` and ``PATCH /me`` write their JSON by hand (the hot path skips response
    validation); the body must still be what ``response_model=ProfileOut`` declares, key for key."""
    await deliver(
        "user.logged_in", {"user_id": str(new_user.id), "provider": "kakao", "logged_in_at": "2026-01-20T03:15:42.120Z"}
    )
    fresh = (await my_client.get("/api/v1/users/me", headers=new_user.headers)).json()
    # Phone numbers are unique across profiles and other tests (the browser flow) set 010-1234-5678 in
    # the same real-mode database: a number of this user's own.
    digits = f"{new_user.id.int % 10**8:08d}"
    patched = await my_client.patch(
        "/api/v1/users/me", json={"nickname": "모양검사", "phone_number": f"010{digits}"}, headers=new_user.headers
    )
    schema = (await my_client.get("/api/v1/users/openapi.json")).json()
    for body in (fresh, patched.json()):
        assert list(body) == list(ProfileOut.model_fields)
        assert ProfileOut.model_validate(body).model_dump(mode="json") == body
    assert patched.json()["phone_number"] == f"010-{digits[:4]}-{digits[4:]}"
    assert fresh["last_login_at"] == "2026-01-20T03:15:42.120Z"
    for method in ("get", "patch"):
        declared = schema["paths"]["/api/v1/users/me"][method]["responses"]["200"]["content"]["application/json"]
        assert declared["schema"] == {"$ref": "#/components/schemas/ProfileOut"}
