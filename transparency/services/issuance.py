"""The issuance job: a batch's codes generated, signed and written, a chunk at a time.

Each chunk of codes is written with COPY and the job's progress recorded in the same
transaction, so after a crash the job resumes where its last committed chunk ended: no
code lost, none written twice. Code generation runs in a worker process, overlapped with
the COPY of the previous chunk. Between two chunks, a job hands its runner over to
another brand's waiting batch (``batches.hand_over``), and resumes later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

import asyncpg

from transparency.db import batches, products, units
from transparency.domain import issuance
from transparency.domain.batches import Job
from transparency.runtime.jobs import JobRunner
from transparency.runtime.keyring import KeyRing

log = logging.getLogger("transparency.services.issuance")

# Codes signed by one worker task. Each task holds a bulk turn (runtime/turns.py) while it
# signs, so this is what a photo's decode may wait for: photos sent during a 1M-code
# issuance took 46 ms at p90 (max 116 ms) with tasks of 5,000 codes, 182 ms (max 328 ms)
# with one task per chunk of 50,000, at the same issuance rate.
_PIECE = 5_000


async def run_issue(runner: JobRunner, job: Job, keyring: KeyRing, *, chunk_size: int) -> None:
    batch, token = job.batch, job.lease_token
    assert batch.key_id is not None
    key = keyring.get(batch.key_id)
    if key is None:
        await keyring.load(runner.pool)
        key = keyring.get(batch.key_id)
    if key is None:
        raise LookupError("the batch's signing key is gone")
    product = await products.get_owned(runner.pool, batch.brand_id, batch.product_id)
    assert product is not None
    remaining = batch.requested - batch.progress
    tail = units.row_tail(
        batch.brand_id, batch.product_id, batch.id, batch.lot, batch.expiry, "active"
    )

    def generate(n: int) -> asyncio.Future[bytes]:
        pieces = [
            runner.cpu(
                issuance.generate_lines, batch.format.value, key.id, key.hmac_secret,
                product.gtin, min(_PIECE, n - done),
            )
            for done in range(0, n, _PIECE)
        ]  # fmt: skip
        return asyncio.ensure_future(_joined(pieces))

    sizes = [min(chunk_size, remaining - done) for done in range(0, remaining, chunk_size)]
    if sizes:
        ahead = generate(sizes[0])  # each chunk is made while the one before is written
        for count, following in zip(sizes, [*sizes[1:], 0], strict=True):
            chunk = await ahead
            if following:
                ahead = generate(following)
            await _write_chunk(runner.pool, batch.id, token, chunk, tail, count, generate)
            if following and await batches.others_waiting(runner.pool, batch.brand_id):
                # Another brand's batch waits for this runner: let it have it between two
                # chunks, rather than after a million codes (its ten codes once waited
                # 38 s). This batch resumes at its next chunk when its brand's turn comes.
                ahead.cancel()
                await batches.hand_over(runner.pool, batch.id, token)
                log.info("job handed over", extra={"batch_id": str(batch.id)})
                return
    async with runner.pool.acquire() as conn:
        await batches.finish(conn, batch.id, token)
    log.info("job done", extra={"batch_id": str(batch.id)})


async def _joined(pieces: list[asyncio.Future[bytes]]) -> bytes:
    return b"".join(await asyncio.gather(*pieces))


async def _write_chunk(
    pool: asyncpg.Pool,
    batch_id: UUID,
    token: UUID,
    codes: bytes,
    tail: bytes,
    count: int,
    regenerate: Callable[[int], asyncio.Future[bytes]],
) -> None:
    for _attempt in range(5):
        try:
            async with pool.acquire() as conn, conn.transaction():
                await units.copy_codes(conn, codes, tail)
                await batches.advance(conn, batch_id, token, count)
            return
        except asyncpg.UniqueViolationError:
            # A random serial met an existing one (about 2**-72 per pair): draw anew.
            codes = await regenerate(count)
    raise RuntimeError("could not write a chunk of unique codes")
