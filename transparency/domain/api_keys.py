"""The API key format: ``tpk_<id>_<secret>``.

The id is public and names the key (in logs, audit entries and DELETE /v1/api-keys/{id});
the secret has 160 bits from the CSPRNG and is stored only as its SHA-256 digest. A key is
checked by looking its id up and comparing digests in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "tpk"
_ID_BYTES = 10  # 16 base32 characters
_SECRET_BYTES = 20  # 32 base32 characters, 160 bits
_PATTERN = re.compile(r"tpk_([a-z2-7]{16})_([a-z2-7]{32})")


@dataclass(frozen=True, slots=True)
class ApiKeyToken:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:  # never let the secret reach a log through repr()
        return f"ApiKeyToken(key_id={self.key_id!r}, secret='***')"

    @property
    def digest(self) -> bytes:
        return secret_digest(self.secret)


def _b32(n: int) -> str:
    return base64.b32encode(secrets.token_bytes(n)).decode().rstrip("=").lower()


def new_api_key() -> ApiKeyToken:
    return ApiKeyToken(key_id=_b32(_ID_BYTES), secret=_b32(_SECRET_BYTES))


def parse_api_key(text: str) -> ApiKeyToken | None:
    """The token in ``text``, or None when it is not shaped like one of our keys."""
    match = _PATTERN.fullmatch(text.strip())
    if match is None:
        return None
    return ApiKeyToken(key_id=match.group(1), secret=match.group(2))


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def digest_matches(stored: bytes, token: ApiKeyToken) -> bool:
    return hmac.compare_digest(stored, token.digest)
