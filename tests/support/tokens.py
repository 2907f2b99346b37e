"""Access tokens for testing any service's ``user`` endpoints without running the auth flow.

The key is created where the embedded verifier looks (``<data_dir>/keys``) with the auth service's
own ``KeyRing``/``TokenIssuer``, so the token is exactly what a real login would produce.
"""

from __future__ import annotations

import time
import uuid

from services.auth.keys import KeyRing
from services.auth.tokens import TokenIssuer
from services.common.config import CommonSettings


def issue_access_token(common: CommonSettings, user_id: uuid.UUID | None = None, ttl: int = 3600) -> str:
    keyring = KeyRing.load(common.data_dir / "keys", None, generate=True)
    issuer = TokenIssuer(keyring, issuer=common.issuer, audience=common.jwt_audience, access_ttl=ttl, refresh_ttl=ttl)
    pair = issuer.issue(user_id or uuid.uuid4(), uuid.uuid4(), "dev", int(time.time()))
    return pair.access


def bearer(common: CommonSettings, user_id: uuid.UUID | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_access_token(common, user_id)}"}
