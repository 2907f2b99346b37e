"""The auth service's RSA signing keys: the only place a private key is read.

A key directory holds ``<kid>.pem`` private keys; the public half of each is written next to it as
``<kid>.pub.pem`` (what embedded services read) and published in the JWKS. Rotation: add the new
key file first (published, not yet signing), switch ``AUTH_ACTIVE_KEY_ID`` after every service has
seen it, and keep the old file until the tokens it signed have expired — then replace it with its
``.pub.pem`` only until those tokens are gone.
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: RSAPrivateKey


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(kid: str, key: RSAPublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
    }


class KeyRing:
    def __init__(self, signing: SigningKey, published: dict[str, RSAPublicKey]) -> None:
        self.signing = signing
        self.published = published

    @classmethod
    def load(cls, directory: Path, active_kid: str | None, *, generate: bool) -> KeyRing:
        directory.mkdir(parents=True, exist_ok=True)
        private = {p.name.removesuffix(".pem"): p for p in directory.glob("*.pem") if not p.name.endswith(".pub.pem")}
        if not private:
            if not generate:
                raise RuntimeError(f"no signing key (*.pem) in {directory}; set AUTH_KEYS_DIR")
            kid = datetime.now(UTC).strftime("%Y%m%d") + "-" + os.urandom(4).hex()
            private[kid] = _generate(directory, kid)
        keys: dict[str, RSAPrivateKey] = {}
        for kid, path in private.items():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, RSAPrivateKey) or loaded.key_size < 2048:
                raise RuntimeError(f"{path} must be an RSA key of at least 2048 bits")
            keys[kid] = loaded
            _write_public(directory, kid, loaded.public_key())
        published = {kid: key.public_key() for kid, key in keys.items()}
        for path in directory.glob("*.pub.pem"):
            kid = path.name.removesuffix(".pub.pem")
            if kid not in published:  # retired key: verify-only until its tokens expire
                public = serialization.load_pem_public_key(path.read_bytes())
                if isinstance(public, RSAPublicKey):
                    published[kid] = public
        active = active_kid or max(keys)
        if active not in keys:
            raise RuntimeError(f"AUTH_ACTIVE_KEY_ID={active} has no private key in {directory}")
        return cls(SigningKey(active, keys[active]), published)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [jwk(kid, key) for kid, key in sorted(self.published.items())]}


def _generate(directory: Path, kid: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / f"{kid}.pem"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def _write_public(directory: Path, kid: str, key: RSAPublicKey) -> None:
    path = directory / f"{kid}.pub.pem"
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not path.exists() or path.read_bytes() != pem:
        # A read-only Secret mount is fine: production services read the JWKS over HTTP, not files.
        with contextlib.suppress(OSError):
            path.write_bytes(pem)
