"""Customer use case: is this unit authentic, what is it, is anything wrong?

A customer scan never changes a unit's state; it is recorded (with a coarse region when
the client gives one, and nothing personal) and feeds the clone thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from transparency.db import brands, scans
from transparency.domain import authenticity
from transparency.domain.verification import (
    BrandFace,
    CloneThresholds,
    CustomerScan,
    Reason,
    Verdict,
    Warning,
    customer_verdict,
    customer_warnings,
)
from transparency.services.context import Context


@dataclass(frozen=True, slots=True)
class Answer:
    """What a customer sees."""

    verdict: Verdict
    code: str | None
    reason: str | None = None
    product: dict[str, Any] | None = None
    unit: dict[str, Any] = field(default_factory=dict)
    warnings: list[Warning] = field(default_factory=list)
    brand: BrandFace | None = None  # whose code it is, or whose key a forgery names
    notice: dict[str, str | None] | None = None  # a withdrawn or expired unit's why and what

    def as_json(self) -> dict[str, Any]:
        brand = self.brand
        return {
            "verdict": self.verdict.value,
            "code": self.code,
            "reason": self.reason,
            "product": self.product,
            "unit": self.unit,
            "warnings": [w.value for w in self.warnings],
            "brand": None
            if brand is None
            else {"name": brand.name, "logo_url": brand.logo_url, "support": brand.support},
            "notice": self.notice,
        }


def _notice(verdict: Verdict, found: CustomerScan) -> dict[str, str | None] | None:
    """What the brand said when it withdrew the unit, for a verdict that is not green."""
    if verdict is Verdict.RECALLED:
        instructions = found.status_instructions or found.brand.recall_instructions
        return {"reason": found.status_reason, "instructions": instructions}
    if verdict is Verdict.REVOKED or verdict is Verdict.EXPIRED:
        return {"reason": found.status_reason, "instructions": None}
    return None


async def verify(
    ctx: Context,
    scan: str,
    region: str | None,
    thresholds: CloneThresholds,
    today: date | None = None,
) -> Answer:
    """Check one scan for a customer, record it, and say what the unit is.

    The facts shown are the ones the brand chose by putting them in attributes: the
    product's, overridden key by key by its code batch's (given at issuance: where and when
    the unit was made, say), keeping only text and numbers, then the unit's lot and expiry.
    Anyone holding the label reads them: they are for facts about the product, not people.
    """
    checked = authenticity.check(scan, await ctx.keyring.current(ctx.pool))
    if checked.unit_key is None:
        reason = checked.reason or Reason.MALFORMED
        # A forgery naming a brand's key id is that brand's to see (no query: the keyring
        # knew the key); garbage and unknown key ids stay nobody's.
        ctx.events.add(
            scan.strip(), "customer", "rejected", reason.value, brand_id=checked.brand_id,
            region=region,
        )  # fmt: skip
        # The brand whose key id a forgery carries is whom its holder should tell: one
        # look-up by primary key, for forgeries only (junk names no brand).
        brand = None if checked.brand_id is None else await brands.face(ctx.pool, checked.brand_id)
        return Answer(Verdict.NOT_AUTHENTIC, None, reason.value, brand=brand)
    found = await scans.customer_scan(ctx.pool, checked.unit_key, region)
    if found is None:
        return Answer(Verdict.NOT_AUTHENTIC, checked.unit_key, Reason.UNKNOWN.value)
    state = found.state
    warnings = customer_warnings(
        state, found.expiry, found.history, thresholds, today or date.today(), found.channel
    )
    verdict = customer_verdict(state, warnings, checked.key_revoked)
    if verdict is Verdict.SUSPICIOUS and found.suspicious_at is None:
        await scans.mark_suspicious(ctx.pool, checked.unit_key)
    facts: dict[str, Any] = {
        k: v for k, v in found.attributes.items() if isinstance(v, str | int | float)
    }
    if found.lot:
        facts["lot"] = found.lot
    if found.expiry:
        facts["expiry"] = found.expiry.isoformat()
    return Answer(
        verdict,
        checked.unit_key,
        Reason.KEY_REVOKED.value if checked.key_revoked else None,
        product={
            "brand": found.brand.name,
            "name": found.name,
            "gtin": found.gtin,
            "image_url": found.image_url,
        },
        unit=facts,
        warnings=warnings,
        brand=found.brand,
        notice=_notice(verdict, found),
    )
