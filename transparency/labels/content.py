"""What a label says besides its code: a call to action in the label's language, and the
lines a brand chooses to print (brand, product, lot, expiry); and which symbol a GS1 code
prints as."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Language(StrEnum):
    EN = "en"
    FR = "fr"
    DE = "de"
    ES = "es"
    IT = "it"


CALL_TO_ACTION: Final = {
    Language.EN: "Scan to verify",
    Language.FR: "Scannez pour vérifier",
    Language.DE: "Zum Prüfen scannen",
    Language.ES: "Escanee para verificar",
    Language.IT: "Scansiona per verificare",
}


class Gs1Symbol(StrEnum):
    """The symbol a GS1 unit's label carries.

    ``qr``: its GS1 Digital Link URI (``https://<resolver>/01/<gtin>/21/<serial>``) in a QR
    code, which a phone's camera opens and a GS1 scanner reads as GS1 data; the default.
    ``datamatrix``: its GS1 element string in a GS1 DataMatrix (``]d2``), for lines that
    scan DataMatrix only; a phone's camera app does not open it.
    """

    QR = "qr"
    DATAMATRIX = "datamatrix"


class LabelLine(StrEnum):
    """An optional line under the code, printed in this order."""

    BRAND = "brand"
    PRODUCT = "product"
    LOT = "lot"
    EXPIRY = "expiry"


def chosen_lines(
    chosen: frozenset[LabelLine] | set[LabelLine],
    *,
    brand: str | None,
    product: str | None,
    lot: str | None,
    expiry: str | None,
) -> tuple[str, ...]:
    """The lines to print, in a fixed order; a chosen line with no value is left out."""
    values = {
        LabelLine.BRAND: brand,
        LabelLine.PRODUCT: product,
        # LOT and EXP are how packaging prints them in every language (ISO 15223 symbols
        # say the same without words).
        LabelLine.LOT: f"LOT {lot}" if lot else None,
        LabelLine.EXPIRY: f"EXP {expiry}" if expiry else None,
    }
    return tuple(value for line, value in values.items() if line in chosen and value)
