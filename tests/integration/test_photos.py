"""Photos sent to the API: decoded in a worker process, each code checked; hostile photos
and dead decoders cost a refusal, never the photo service."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy
import pytest

from tests.support.asgi import make_client
from tests.support.photos import (
    blank_png,
    gone,
    labels_png,
    png,
    progressive_jpeg,
    qr_png,
    sliver_png,
    slow_jpeg,
    spawned_by,
    with_last_scan_repeated,
)
from tests.support.world import World, bearer, issue_codes
from transparency.api.app import create_app
from transparency.runtime.settings import Settings
from transparency.runtime.workers import KillablePool, PoolBusy, WorkerLost


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))  # fmt: skip


async def test_a_customer_photo(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post("/v1/scans", files={"image": ("label.png", qr_png(row["symbol"]))})
    assert r.status_code == 200, r.text
    (code,) = r.json()["codes"]
    assert code["text"] == row["symbol"]
    assert code["verification"]["code"] == row["code"]
    assert code["verification"]["verdict"] in ("authentic", "suspicious")


async def test_a_station_photo_claims(client: httpx.AsyncClient, world: World) -> None:
    (row,) = await issue_codes(client, world, 1)
    form = {"gtin": world.product_a["gtin"], "shipment_id": "S-photo"}
    r = await client.post(
        "/v1/scans",
        files={"image": ("label.png", qr_png(row["symbol"]))},
        data=form,
        headers=bearer(world.station),
    )
    assert r.status_code == 200, r.text
    assert r.json()["codes"][0]["verification"]["result"] == "pass"
    r = await client.post(
        "/v1/scans",
        files={"image": ("label.png", qr_png(row["symbol"]))},
        data={**form, "shipment_id": "S-other"},
        headers=bearer(world.station),
    )
    assert r.json()["codes"][0]["verification"]["reason"] == "already_shipped"


async def test_bad_images_get_their_own_problems(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/scans", files={"image": ("x.png", b"not an image")})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/unreadable-image")
    r = await client.post("/v1/scans", files={"image": ("bomb.png", bomb_png())})
    assert (r.status_code, r.json()["type"]) == (413, "/problems/image-too-large")
    blank = b""
    r = await client.post("/v1/scans", files={"image": ("x.png", blank)})
    assert r.status_code == 422


async def test_a_photo_with_no_code_is_an_empty_list(client: httpx.AsyncClient) -> None:
    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((200, 300), 200, dtype=np.uint8)).save(out, format="PNG")
    r = await client.post("/v1/scans", files={"image": ("plain.png", out.getvalue())})
    assert r.json() == {"codes": []}


async def test_a_brand_key_may_not_post_station_photos(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        "/v1/scans", files={"image": ("x.png", qr_png("x"))}, headers=bearer(world.brand_a)
    )
    assert r.status_code == 403


# --- Hostile photos -------------------------------------------------------------------


@asynccontextmanager
async def photo_app(settings: Settings, **photo: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with other settings (``photo``) than the ``client`` fixture's."""
    application = create_app(settings.model_copy(update=photo))
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan_state = state
        async with make_client(application) as http:
            yield http


def problem_type(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json().get("type", "")


async def test_a_jpeg_of_a_thousand_scans_is_refused_from_its_header(
    client: httpx.AsyncClient,
) -> None:
    hostile = with_last_scan_repeated(progressive_jpeg(), 1000)
    assert len(hostile) < 600_000  # a small file: its cost is in its scans
    r = await client.post("/v1/scans", files={"image": ("x.jpg", hostile)})
    assert problem_type(r) == (422, "/problems/unreadable-image")
    assert "scans" in r.json()["detail"]
    # A phone's progressive JPEG (about 10 scans) is still read.
    r = await client.post("/v1/scans", files={"image": ("x.jpg", progressive_jpeg())})
    assert r.status_code == 200, r.text


async def test_an_absurd_shape_is_unreadable_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    for width, height in ((10_000, 2), (2, 10_000), (20_000, 1), (1, 1)):
        r = await client.post("/v1/scans", files={"image": ("x.png", sliver_png(width, height))})
        assert r.status_code in (200, 422), (width, height, r.text)
        if r.status_code == 422:
            assert r.json()["type"] == "/problems/unreadable-image"
    r = await client.post("/v1/scans", files={"image": ("x.png", sliver_png(10_000, 2))})
    assert problem_type(r) == (422, "/problems/unreadable-image")


async def test_a_decode_past_its_time_limit_has_its_process_killed(settings: Settings) -> None:
    async with photo_app(settings, scan_workers=2, scan_timeout_seconds=1) as http:
        blank = {"image": ("blank.png", blank_png())}
        for r in await asyncio.gather(*(http.post("/v1/scans", files=blank) for _ in "ab")):
            assert r.json() == {"codes": []}
        before = spawned_by(os.getpid())
        r = await http.post("/v1/scans", files={"image": ("slow.jpg", slow_jpeg())})
        assert problem_type(r) == (422, "/problems/scan-timeout")
        # Right after the 422 the photo holds no CPU: its decoder is gone, a fresh one took
        # its place, and as many photos as there are decoders are all read at once.
        assert any(gone(process) for process in before)
        for r in await asyncio.gather(*(http.post("/v1/scans", files=blank) for _ in "ab")):
            assert r.json() == {"codes": []}


async def test_a_decoder_killed_with_kill_9_is_replaced(client: httpx.AsyncClient) -> None:
    blank = {"image": ("blank.png", blank_png())}
    assert (await client.post("/v1/scans", files=blank)).json() == {"codes": []}
    killed = spawned_by(os.getpid())
    assert killed
    for process in killed:
        process.send_signal(signal.SIGKILL)
    for _ in range(3):  # every decoder is replaced, not only the first one met
        r = await client.post("/v1/scans", files=blank)
        assert r.json() == {"codes": []}, r.text


async def test_a_full_decoder_queue_answers_503_at_once(settings: Settings) -> None:
    async with photo_app(settings, scan_workers=1, scan_queue=1, scan_timeout_seconds=1) as http:
        slow = {"image": ("slow.jpg", slow_jpeg())}
        answers = await asyncio.gather(*(http.post("/v1/scans", files=slow) for _ in range(4)))
        kinds = sorted(problem_type(r) for r in answers)
        # One photo decodes (and is cut off at the limit), one waits its turn, the rest are
        # refused without waiting, and told when to come back.
        timeout, busy = (422, "/problems/scan-timeout"), (503, "/problems/decoders-busy")
        assert kinds == [timeout, timeout, busy, busy], kinds
        refused = [r for r in answers if r.status_code == 503]
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        r = await http.post("/v1/scans", files={"image": ("blank.png", blank_png())})
        assert r.json() == {"codes": []}


async def test_the_customer_limit_is_taken_before_the_body_is_read(settings: Settings) -> None:
    async with photo_app(settings, customer_burst=1, customer_rate_per_minute=1) as http:
        r = await http.post("/v1/scans", files={"image": ("blank.png", blank_png())})
        assert r.status_code == 200
        # Not even a form: a spent budget is answered before any parsing.
        garbage = b"--x\r\nnot a form" * 1000
        r = await http.post(
            "/v1/scans", content=garbage, headers={"content-type": "multipart/form-data"}
        )
        assert problem_type(r) == (429, "/problems/rate-limited")
        assert int(r.headers["retry-after"]) >= 1


async def test_a_customer_photo_costs_one_check_per_code_found(settings: Settings) -> None:
    async with photo_app(settings, customer_burst=3, customer_rate_per_minute=1) as http:
        r = await http.post("/v1/scans", files={"image": ("x.png", labels_png("A1", "B2", "C3"))})
        assert sorted(code["text"] for code in r.json()["codes"]) == ["A1", "B2", "C3"]
        r = await http.post("/v1/scans", files={"image": ("blank.png", blank_png())})
        assert problem_type(r) == (429, "/problems/rate-limited")


async def test_a_photo_with_more_codes_than_the_budget_is_refused_whole(
    settings: Settings,
) -> None:
    async with photo_app(settings, customer_burst=2, customer_rate_per_minute=1) as http:
        r = await http.post("/v1/scans", files={"image": ("x.png", labels_png("A1", "B2", "C3"))})
        assert problem_type(r) == (429, "/problems/rate-limited")


async def test_a_code_twice_in_one_photo_is_recorded_once(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post(
        "/v1/scans", files={"image": ("two.png", labels_png(row["symbol"], row["symbol"]))}
    )
    first, second = r.json()["codes"]
    assert first["text"] == second["text"] == row["symbol"]
    assert first["verification"] == second["verification"]
    history = await client.get(f"/v1/codes/{row['code']}/history", headers=bearer(world.brand_a))
    kinds = [event["kind"] for event in history.json()["events"]]
    assert kinds.count("customer") == 1, kinds


async def test_a_station_photo_claims_a_code_twice_in_it_once(
    client: httpx.AsyncClient, world: World
) -> None:
    (row,) = await issue_codes(client, world, 1)
    r = await client.post(
        "/v1/scans",
        files={"image": ("two.png", labels_png(row["symbol"], row["symbol"]))},
        data={"gtin": world.product_a["gtin"], "shipment_id": "S-twice"},
        headers=bearer(world.station),
    )
    results = [code["verification"]["result"] for code in r.json()["codes"]]
    assert results == ["pass", "pass"], r.text
    history = await client.get(f"/v1/codes/{row['code']}/history", headers=bearer(world.brand_a))
    kinds = [event["kind"] for event in history.json()["events"]]
    assert len(kinds) == 1, kinds


# --- The decoders' pool ----------------------------------------------------------------


def die_once(marker: str) -> str:
    """In a worker: die the first time (as a decoder crashing on a photo), then answer."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(1)
    return "answered"


async def test_a_task_whose_worker_dies_is_tried_once_more(tmp_path: Path) -> None:
    pool = KillablePool(1, 0)
    try:
        assert await pool.run(str.upper, "warm", time_limit=30) == "WARM"
        first = pool.pids()
        assert await pool.run(die_once, str(tmp_path / "marker"), time_limit=30) == "answered"
        assert pool.pids() != first
    finally:
        pool.shutdown()


async def test_a_task_that_kills_its_worker_twice_is_refused(tmp_path: Path) -> None:
    pool = KillablePool(1, 0)
    try:
        with pytest.raises(WorkerLost):
            await pool.run(os._exit, 1, time_limit=30)
        assert await pool.run(str.upper, "next", time_limit=30) == "NEXT"
    finally:
        pool.shutdown()


def appears(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


async def test_a_task_is_refused_by_a_worker_still_starting_which_goes_on_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder replacing one killed at its time limit got no CPU to start while the
    cores were busy, and each photo waited for it 60 s, twice."""
    mark = tmp_path / "ready"
    monkeypatch.setenv("SLOW_START_MARK", str(mark))
    pool = KillablePool(1, 0, warm="tests.support.slow_start", start_wait=0.5)
    try:
        with pytest.raises(PoolBusy):
            await pool.run(str.upper, "first", time_limit=30)
        assert not mark.exists()  # refused while the worker was starting, not after
        (starting,) = pool.pids()
        await asyncio.to_thread(appears, mark)
        assert await pool.run(str.upper, "next", time_limit=30) == "NEXT"
        assert pool.pids() == [starting]  # the same worker: its start was not thrown away
    finally:
        pool.shutdown()


async def test_a_worker_not_ready_within_the_start_limit_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOW_START_MARK", str(tmp_path / "ready"))
    pool = KillablePool(1, 0, warm="tests.support.slow_start", start_wait=0.2, start_limit=1)
    try:
        with pytest.raises(PoolBusy):
            await pool.run(str.upper, "first", time_limit=30)
        (stuck,) = pool.pids()
        await asyncio.sleep(1.2)  # past its start limit
        with pytest.raises(PoolBusy):  # its replacement is still starting in turn
            await pool.run(str.upper, "second", time_limit=30)
        assert gone(stuck)
        assert pool.pids() != [stuck]
    finally:
        pool.shutdown()


async def test_a_task_past_its_time_limit_is_killed_with_its_worker() -> None:
    pool = KillablePool(1, 0)
    try:
        assert await pool.run(str.upper, "warm", time_limit=30) == "WARM"
        (busy,) = pool.pids()
        with pytest.raises(TimeoutError):
            await pool.run(time.sleep, 600, time_limit=0.2)
        assert gone(busy)  # killed and reaped before the caller hears of the timeout
        assert await pool.run(str.upper, "next", time_limit=30) == "NEXT"
    finally:
        pool.shutdown()


def test_a_task_and_a_reply_larger_than_a_socket_buffer_pass_under_uvloop() -> None:
    """The served app runs on uvloop, which leaves a watched socket non-blocking: a photo
    of a few MB failed to send (EAGAIN), was taken for a dead worker, and got 503."""
    import uvloop

    async def echo_back() -> bytes:
        pool = KillablePool(1, 0)
        try:
            result: bytes = await pool.run(bytes.upper, b"x" * 3_000_000, time_limit=30)
            return result
        finally:
            pool.shutdown()

    assert uvloop.run(echo_back()) == b"X" * 3_000_000


async def test_decoders_run_below_the_api_processes_priority() -> None:
    """A photo's decoding yields the cores to claims: its process runs at nice 10 more."""
    pool = KillablePool(1, 0)
    try:
        assert await pool.run(os.nice, 0, time_limit=30) == os.nice(0) + 10
    finally:
        pool.shutdown()


async def test_a_bad_form_is_a_422_naming_its_field(client: httpx.AsyncClient) -> None:
    blank = ("blank.png", blank_png())
    cases: list[tuple[dict[str, object], str]] = [
        ({"data": {"gtin": "1"}}, "image"),
        ({"data": {"image": "text, not a file"}}, "image"),
        ({"files": {"image": blank}, "data": {"region": "france"}}, "region"),
        ({"files": {"image": blank}, "data": {"shipment_id": "S" * 101}}, "shipment_id"),
        ({"files": [("image", blank), ("image", blank)]}, "image"),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, "image"),
        ({"content": b"--", "headers": {"content-type": "multipart/form-data; boundary=x"}}, ""),
    ]
    for request, field in cases:
        r = await client.post("/v1/scans", **request)  # type: ignore[arg-type]
        assert r.status_code == 422, (request, r.status_code, r.text)
        assert field in r.text, (request, r.text)


async def test_a_decoder_is_bulk_work_from_its_first_instruction() -> None:
    """A decoder is forked by a SCHED_IDLE thread, whose policy and nice value a child takes
    at its fork: its interpreter start and imports (paid again after every decoder killed
    at its time limit) already yield to the API processes, not only its decoding."""
    pool = KillablePool(1, 0)
    try:
        await pool.run(str.upper, "warm", time_limit=30)
        (pid,) = pool.pids()
        spawner = next(t for t in threading.enumerate() if t.name.startswith("spawner"))
        assert spawner.native_id is not None
        assert os.sched_getscheduler(spawner.native_id) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, spawner.native_id) == 10
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, pid) == 10
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the caller's own thread: untouched
    finally:
        pool.shutdown()


def _written() -> int:
    """Bytes this process has sent to storage (counted when a page is dirtied)."""
    counters = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(counters["write_bytes"])


async def test_a_large_photo_is_never_written_to_disk(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo is read whole right after its form is parsed: spooling it to a file past
    1 MB (Starlette's default) wrote every large photo to disk, and the disk's writeback
    took a core's worth of kernel time from the claims under a flood of them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a spool would roll over
    before = _written()
    (tmp_path / "probe").write_bytes(os.urandom(2 << 20))
    assert _written() - before >= 2 << 20, "this file system does not count written bytes"

    noise = numpy.random.default_rng(5).integers(0, 255, (900, 900, 3), dtype=numpy.uint8)
    photo = png(noise)  # noise does not compress: 2.4 MB
    assert len(photo) > 2 << 20

    before = _written()
    r = await client.post("/v1/scans", files={"image": ("big.png", photo)})
    assert r.status_code in (200, 422), r.text  # parsed and decoded, found or not
    assert _written() - before < 256 << 10
