"""Envelope encryption of signing keys at rest (AES-256-GCM).

Each signing key gets its own data key; the data key is stored wrapped by the master key
(TRANSPARENCY_MASTER_KEY or a key file), and every ciphertext is bound by its associated
data to the brand and key id it belongs to, so rows cannot be swapped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from transparency.domain.signing_keys import Sealed

_NONCE = 12


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one the keys were sealed with."""


class MasterKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)
        self.fingerprint = hashlib.sha256(b"transparency/kek" + key).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint!r})"

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        try:
            return cls(base64.b64decode(text.strip(), validate=True))
        except (binascii.Error, ValueError):
            raise MasterKeyError("the master key must be base64 of 32 random bytes") from None

    @staticmethod
    def generate_text() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    def seal(self, context: bytes, *secrets: bytes) -> Sealed:
        dek = AESGCM.generate_key(bit_length=256)
        wrapped = _encrypt(self._aead, dek, b"dek|" + context)
        data = AESGCM(dek)
        return Sealed(
            wrapped_dek=wrapped,
            kek_fingerprint=self.fingerprint,
            ciphertexts=tuple(
                _encrypt(data, s, b"secret|%d|" % i + context) for i, s in enumerate(secrets)
            ),
        )

    def open(self, context: bytes, sealed: Sealed) -> tuple[bytes, ...]:
        if sealed.kek_fingerprint != self.fingerprint:
            raise MasterKeyError(
                f"signing keys were sealed with master key {sealed.kek_fingerprint},"
                f" not this one ({self.fingerprint})"
            )
        try:
            dek = _decrypt(self._aead, sealed.wrapped_dek, b"dek|" + context)
            data = AESGCM(dek)
            return tuple(
                _decrypt(data, c, b"secret|%d|" % i + context)
                for i, c in enumerate(sealed.ciphertexts)
            )
        except InvalidTag:
            raise MasterKeyError("a signing key failed authentication: tampered row") from None


def _encrypt(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _decrypt(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    return aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
