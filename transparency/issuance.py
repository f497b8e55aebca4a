"""Code generation for issuance jobs: pure CPU work, run in a worker process.

A job signs every code of a batch with one key. Serials come from the operating system's
CSPRNG in one read per chunk.
"""

from __future__ import annotations

import os

from transparency.domain import codes
from transparency.domain.codes import CodeFormat


def generate(format: str, key_id: int, hmac_secret: bytes, gtin: str, count: int) -> list[str]:
    """``count`` new unit keys of ``format`` (offline codes are stored by their TP form)."""
    fmt = CodeFormat(format)
    randomness = os.urandom(9 * count)
    if fmt is CodeFormat.GS1:
        return [
            codes.gs1_unit_key(
                gtin,
                codes.make_gs1_serial(
                    gtin, int.from_bytes(randomness[i : i + 9], "big") >> 7, hmac_secret
                ),
            )
            for i in range(0, 9 * count, 9)
        ]
    return [
        codes.sign_transparency(
            codes.Payload(key_id, int.from_bytes(randomness[i : i + 9], "big")), hmac_secret
        )
        for i in range(0, 9 * count, 9)
    ]


def generate_copy(
    format: str, key_id: int, hmac_secret: bytes, gtin: str, count: int, row_suffix: str
) -> bytes:
    """``count`` new units as COPY text rows: each code followed by ``row_suffix``.

    Building the rows here keeps the service process from holding a Python object per
    code: it receives one bytes object per chunk and streams it to PostgreSQL.
    """
    new = generate(format, key_id, hmac_secret, gtin, count)
    return (row_suffix.join(new) + row_suffix).encode()
