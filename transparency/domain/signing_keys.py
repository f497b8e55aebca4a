"""A brand's signing key, as held in memory once decrypted, and as sealed at rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import nacl.signing

# The default cap on the signing keys one brand makes in any 24 hours. Key ids are shared
# by every brand (a code carries 22 bits of them, see codes.py): without a cap, one brand
# rotating in a loop would use up every brand's ids. Ten a day still allows an emergency
# rotation after each of several leaks in one day.
KEYS_PER_DAY = 10


class KeyStatus(StrEnum):
    ACTIVE = "active"  # signs new codes and verifies
    RETIRED = "retired"  # verifies the codes it signed; signs nothing new
    REVOKED = "revoked"  # compromised: its codes verify as key_revoked


@dataclass(frozen=True, slots=True)
class SigningKey:
    id: int
    brand_id: UUID
    status: KeyStatus
    hmac_secret: bytes
    private_key: nacl.signing.SigningKey  # Ed25519, from its 32-byte seed
    public_key: bytes
    created_at: datetime

    def __repr__(self) -> str:  # secrets never reach a log through repr()
        return f"SigningKey(id={self.id}, brand_id={self.brand_id}, status={self.status})"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A signing key's secrets as stored: encrypted under a data key that the master key
    wraps (see ``transparency.runtime.envelope``)."""

    wrapped_dek: bytes
    kek_fingerprint: str
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key as the database holds it: the public half in clear, secrets sealed."""

    id: int
    brand_id: UUID
    status: KeyStatus
    public_key: bytes
    created_at: datetime
    sealed: Sealed


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    id: int
    brand_id: UUID
    status: KeyStatus
    public_key: bytes
    created_at: datetime
