"""The check every scan gets before any query: well-formed, signed by a key we issued.

Transparency codes carry an HMAC tag and offline codes an Ed25519 signature, both checked
against the in-memory keyring; a forged or mistyped code is refused here, so it costs no
database query. GS1 codes carry no tag the brand's own serials would share, so they are
decided by the database.

Pure: the caller hands in how to find a signing key by its id (the keyring's ``get``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from transparency.domain import codes
from transparency.domain.codes import CodeFormat
from transparency.domain.errors import InvalidCode, NotFound
from transparency.domain.signing_keys import KeyStatus, SigningKey
from transparency.domain.verification import Reason


@dataclass(frozen=True, slots=True)
class Checked:
    """A scan after the offline checks: the unit key to look up, or why it is refused."""

    unit_key: str | None
    reason: Reason | None
    # Whose key signed it, or whose key id a forgery names (a real key id with a wrong tag
    # or signature: an attack on that brand's codes, which its dashboard counts).
    brand_id: UUID | None = None

    @property
    def key_revoked(self) -> bool:
        return self.reason is Reason.KEY_REVOKED


KeyLookup = Callable[[int], SigningKey | None]
"""A signing key by its id, or None when no such key was ever issued."""


def check(scan: str, key_of: KeyLookup) -> Checked:
    bare = codes.read_bare(scan)
    if bare is not None:  # the everyday case, without building a ParsedCode
        key = key_of(bare.key_id)
        if key is None:
            return Checked(None, Reason.FORGED)
        genuine = codes.tag_matches(bare.payload, bare.tag, key.hmac_secret)
        return _signed_by(key, genuine, bare.text)
    try:
        parsed = codes.parse(scan)
    except InvalidCode:
        return Checked(None, Reason.MALFORMED)
    if parsed.format is CodeFormat.GS1:
        return Checked(parsed.unit_key, None)
    assert parsed.key_id is not None
    key = key_of(parsed.key_id)
    if key is None:
        return Checked(None, Reason.FORGED)
    if parsed.format is CodeFormat.TRANSPARENCY:
        return _signed_by(key, codes.verify_tag(parsed, key.hmac_secret), parsed.text)
    genuine = codes.verify_offline(parsed, key.public_key)
    return _signed_by(key, genuine, codes.unit_key_of_offline(parsed, key.hmac_secret))


def unit_key_of(scan: str, key_of: KeyLookup, missing: str) -> str:
    """The unit key a scan names, for an operation on that unit; a scan that names none of
    ours is NotFound, worded ``missing (why)``."""
    checked = check(scan, key_of)
    if checked.unit_key is None:
        raise NotFound(f"{missing} ({(checked.reason or Reason.MALFORMED).value})")
    return checked.unit_key


def _signed_by(key: SigningKey, genuine: bool, unit_key: str) -> Checked:
    """The verdict on a code whose tag or signature ``key`` did (or did not) make."""
    if not genuine:
        return Checked(None, Reason.FORGED, key.brand_id)
    if key.status is KeyStatus.REVOKED:
        return Checked(unit_key, Reason.KEY_REVOKED, key.brand_id)
    return Checked(unit_key, None, key.brand_id)
