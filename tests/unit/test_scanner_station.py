"""The warehouse station: dedupe of frames, the durable claim queue, and a killed station.

The queue's promise is that every code the station decides to claim reaches the API, in the
order seen, under one Idempotency-Key of its own, however often it has to be sent. The tests
below break the API and the station in the ways a warehouse does (API down, answer lost,
process killed between sending and recording) and check that promise after each.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from scanner import cli
from scanner.claims import ClaimQueue, Sighting
from scanner.client import Client
from scanner.errors import ApiError, Unreachable
from scanner.frames import Frame, watch
from scanner.results import Result, Symbology
from scanner.sender import Sender, SenderThread, backoff
from scanner.station import Station, StationSummary
from tests.support.station import CODES, GTIN, SHIPMENT, drop_photo, qr_image
from transparency.domain.codes import parse
from transparency.domain.errors import InvalidCode

FORGET_AFTER = 3


# ---------------------------------------------------------------- fake APIs


class FakeClaims:
    """The API's claim endpoint as a MockTransport handler: the first answer to a key is the
    answer to every repeat of it. ``down`` makes the network fail; ``lose_next`` makes the
    API claim the unit and the answer vanish on the way back (a timeout)."""

    def __init__(self) -> None:
        self.down = False
        self.lose_next = 0
        self.seen: list[
            tuple[str, str]
        ] = []  # (idempotency key, scan) of each request that arrived
        self.first_answer: dict[str, dict[str, Any]] = {}
        self.fail_scans: dict[str, str] = {}  # scan -> reason

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        key = request.headers["Idempotency-Key"]
        scan = json.loads(request.content)["scan"]
        self.seen.append((key, scan))
        if key not in self.first_answer:
            reason = self.fail_scans.get(scan)
            self.first_answer[key] = {
                "result": "fail" if reason else "pass",
                "reason": reason,
                "unit": {"code": scan},
                "first_shipped": None,
            }
        if self.lose_next:
            self.lose_next -= 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json=self.first_answer[key])

    def claimed_scans(self) -> list[str]:
        """The scans claimed, in the order the API first saw each key."""
        firsts = dict.fromkeys(key for key, _ in self.seen)
        scans = dict(self.seen)
        return [scans[key] for key in firsts]


@pytest.fixture
def api() -> FakeClaims:
    return FakeClaims()


@pytest.fixture
def client(api: FakeClaims) -> Iterator[Client]:
    with Client("http://api.test", key="station-key", transport=httpx.MockTransport(api)) as c:
        yield c


@pytest.fixture
def queue_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


@pytest.fixture
def queue(queue_path: Path) -> Iterator[ClaimQueue]:
    with ClaimQueue(queue_path) as q:
        yield q


def enqueue(queue: ClaimQueue, scans: list[str]) -> None:
    for scan in scans:
        queue.enqueue([Sighting(scan, scan)], gtin=GTIN, shipment_id=SHIPMENT)


def assert_each_claimed_once_in_order(queue: ClaimQueue, api: FakeClaims, scans: list[str]) -> None:
    claims = queue.claims()
    assert [c.scan for c in claims] == scans
    assert all(c.state == "sent" and c.result is not None for c in claims)
    # One key per claim, every request of a claim under that key, and no other key.
    assert {key for key, _ in api.seen} == {c.idempotency_key for c in claims}
    assert all(dict(api.seen)[c.idempotency_key] == c.scan for c in claims)
    assert api.claimed_scans() == scans
    assert len({c.idempotency_key for c in claims}) == len(scans)


# ---------------------------------------------------------------- dedupe of frames


def qr_result(text: str, identifier: str | None = "]Q1") -> Result:
    try:
        parsed = parse((identifier or "") + text)
    except InvalidCode:
        parsed = None
    return Result(text, Symbology.QR_CODE, identifier, ((0, 0), (9, 0), (9, 9), (0, 9)), parsed)


def station_reading(queue: ClaimQueue, frames: list[list[Result]]) -> tuple[Station, list[Frame]]:
    """A station whose decoder reads ``frames[i]`` from the frame whose image is ``i``."""
    station = Station(
        queue,
        gtin=GTIN,
        shipment_id=SHIPMENT,
        out=io.StringIO(),
        err=io.StringIO(),
        read=lambda image: frames[int(np.asarray(image))],
        forget_after=FORGET_AFTER,
    )
    return station, [Frame(np.array(i)) for i in range(len(frames))]


def claimed(queue: ClaimQueue, frames: list[list[Result]]) -> list[str]:
    station, fake_frames = station_reading(queue, frames)
    for frame in fake_frames:
        station.process(frame)
    return [claim.scan for claim in queue.claims()]


A, B = CODES[0], CODES[1]


def test_a_code_in_ten_consecutive_frames_is_one_claim(queue: ClaimQueue) -> None:
    assert claimed(queue, [[qr_result(A)]] * 10) == [f"]Q1{A}"]


def test_a_code_that_leaves_the_view_and_returns_is_a_second_claim(queue: ClaimQueue) -> None:
    away: list[list[Result]] = [[]] * FORGET_AFTER
    assert claimed(queue, [[qr_result(A)]] * 4 + away + [[qr_result(A)]] * 4) == [f"]Q1{A}"] * 2


def test_a_code_missed_in_fewer_frames_than_forget_after_is_still_the_same(
    queue: ClaimQueue,
) -> None:
    blurred: list[list[Result]] = [[]] * (FORGET_AFTER - 1)
    assert claimed(queue, [[qr_result(A)], *blurred, [qr_result(A)]]) == [f"]Q1{A}"]


def test_each_code_of_a_frame_counts_and_repeats_are_told_apart_by_their_code(
    queue: ClaimQueue,
) -> None:
    frames = [
        [qr_result(A), qr_result(B)],
        # zbar reads the same symbol without a symbology identifier: still the same code.
        [qr_result(A, identifier=None), qr_result(B)],
        [qr_result(B)],
    ]
    assert claimed(queue, frames) == [f"]Q1{A}", f"]Q1{B}"]


def test_retail_barcodes_are_not_claimed_but_unknown_codes_are(queue: ClaimQueue) -> None:
    ean = Result("9506000134352", Symbology.EAN_13, "]E0", (), None)
    stranger = qr_result("https://example.com/not-ours", identifier=None)
    assert claimed(queue, [[ean, stranger]]) == ["https://example.com/not-ours"]


def test_real_frames_are_decoded_within_the_video_budget(queue: ClaimQueue) -> None:
    scene = np.full((360, 640), 180, dtype=np.uint8)
    label = qr_image(A)
    with_code = scene.copy()
    with_code[40 : 40 + label.shape[0], 60 : 60 + label.shape[1]] = label
    station = Station(queue, gtin=GTIN, shipment_id=SHIPMENT, out=io.StringIO(), err=io.StringIO())
    for image in [scene, with_code, with_code, scene]:
        station.process(Frame(image))
    assert [(c.scan, c.code) for c in queue.claims()] == [(f"]Q1{A}", A)]


# ---------------------------------------------------------------- the queue and its sender


def test_claims_queued_while_the_api_is_down_go_in_order_with_their_keys(
    queue: ClaimQueue, client: Client, api: FakeClaims
) -> None:
    api.down = True
    answered: list[str] = []
    sender = Sender(queue, client, lambda claim: answered.append(claim.scan))
    enqueue(queue, CODES[:3])
    with pytest.raises(Unreachable):
        sender.send_pending()
    enqueue(queue, CODES[3:5])
    with pytest.raises(Unreachable):
        sender.send_pending()
    assert queue.pending_count() == 5
    keys = [c.idempotency_key for c in queue.claims()]

    api.down = False
    assert sender.send_pending() == 5
    assert answered == CODES[:5]
    assert [key for key, _ in api.seen] == keys  # each sent once, in order, under its key
    assert_each_claimed_once_in_order(queue, api, CODES[:5])


class Crash(BaseException):
    """The station killed between the API's answer and the commit of it."""


def test_a_claim_answered_but_not_recorded_goes_again_with_the_same_key(
    queue_path: Path, client: Client, api: FakeClaims, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ClaimQueue(queue_path) as queue:
        enqueue(queue, CODES[:3])
        real_mark_sent = queue.mark_sent

        def crash_on_second(seq: int, result: dict[str, Any]) -> None:
            if seq == 2:
                raise Crash
            real_mark_sent(seq, result)

        monkeypatch.setattr(queue, "mark_sent", crash_on_second)
        with pytest.raises(Crash):
            Sender(queue, client, lambda claim: None).send_pending()
        second_key = queue.get(2).idempotency_key

    with ClaimQueue(queue_path) as restarted:  # a new process: nothing but the file survives
        assert restarted.pending_count() == 2
        assert Sender(restarted, client, lambda claim: None).send_pending() == 2
        assert [key for key, _ in api.seen].count(second_key) == 2
        assert restarted.get(2).result == api.first_answer[second_key]
        assert_each_claimed_once_in_order(restarted, api, CODES[:3])


def test_a_lost_answer_is_asked_again_under_the_same_key(
    queue: ClaimQueue, client: Client, api: FakeClaims
) -> None:
    enqueue(queue, CODES[:2])
    api.lose_next = 2
    sender = Sender(queue, client, lambda claim: None)
    for _ in range(2):
        with pytest.raises(Unreachable):
            sender.send_pending()
    assert sender.send_pending() == 2
    first_key = queue.get(1).idempotency_key
    assert [key for key, _ in api.seen] == [first_key] * 3 + [queue.get(2).idempotency_key]
    assert_each_claimed_once_in_order(queue, api, CODES[:2])


def test_a_refused_claim_is_its_answer_but_a_refused_key_stops_the_station(
    queue: ClaimQueue,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        status = 401 if json.loads(request.content)["scan"] == "key" else 422
        body = {"type": "https://t.dev/problems/invalid", "title": "No", "status": status}
        return httpx.Response(
            status, json=body, headers={"Content-Type": "application/problem+json"}
        )

    enqueue(queue, ["bad gtin", "key"])
    with Client("http://api.test", transport=httpx.MockTransport(refuse)) as refusing:
        sender = Sender(queue, refusing, lambda claim: None)
        with pytest.raises(ApiError) as caught:
            sender.send_pending()
    assert caught.value.key_refused
    first, second = queue.claims()
    assert (first.state, first.passed, first.reason) == ("sent", False, "invalid")
    assert second.state == "pending"  # kept for when the station has a valid key


def test_backoff_doubles_to_a_cap_and_follows_retry_after() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(50) == 30.0
    assert backoff(1, retry_after=7.0) == 7.0


# ---------------------------------------------------------------- the station loop


def run_station(
    queue_path: Path,
    client: Client,
    frames: list[list[Result]],
    *,
    then: Callable[[], Iterator[Frame | None]] | None = None,
    drain_timeout: float = 5.0,
) -> tuple[StationSummary, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with ClaimQueue(queue_path) as queue, ClaimQueue(queue_path) as sender_queue:
        station, fake_frames = station_reading(queue, frames)
        station.out, station.err = out, err
        sender = SenderThread(Sender(sender_queue, client, station.report), idle_wait=0.05)
        source = then() if then else iter(fake_frames)
        summary = station.run(source, sender, drain_timeout=drain_timeout, status_every=0.0)
    return summary, out.getvalue().splitlines(), err.getvalue()


def test_the_loop_claims_reports_and_drains(
    queue_path: Path, client: Client, api: FakeClaims
) -> None:
    api.fail_scans[f"]Q1{B}"] = "already_shipped"
    frames = [[qr_result(A)]] * 5 + [[]] * FORGET_AFTER + [[qr_result(B)]] * 5
    summary, lines, status = run_station(queue_path, client, frames)
    assert lines == [f"PASS {A}", f"FAIL {B} already_shipped"]
    assert (summary.frames, summary.frames_read, summary.claims) == (13, 10, 2)
    assert (summary.passed, summary.failed) == (1, 1)
    assert (summary.queued, summary.interrupted) == (0, False)
    assert "station: 1 pass, 1 fail, 0 queued" in status.splitlines()[-1]


def test_the_loop_stops_after_its_drain_timeout_and_the_next_start_sends_the_rest(
    queue_path: Path, client: Client, api: FakeClaims
) -> None:
    api.down = True
    frames = [[qr_result(code)] for code in CODES[:3]]
    summary, lines, _ = run_station(queue_path, client, frames, drain_timeout=0.2)
    assert (summary.claims, summary.queued, lines) == (3, 3, [])

    api.down = False
    summary, lines, _ = run_station(queue_path, client, [])
    assert (summary.queued, lines) == (0, [f"PASS {code}" for code in CODES[:3]])
    with ClaimQueue(queue_path) as queue:
        assert_each_claimed_once_in_order(queue, api, [f"]Q1{code}" for code in CODES[:3]])


def test_ctrl_c_stops_the_loop_and_keeps_the_queue(
    queue_path: Path, client: Client, api: FakeClaims
) -> None:
    api.down = True

    def interrupted() -> Iterator[Frame | None]:
        yield Frame(np.array(0))
        raise KeyboardInterrupt

    summary, _, _ = run_station(queue_path, client, [[qr_result(A)]], then=interrupted)
    assert (summary.interrupted, summary.claims, summary.queued) == (True, 1, 1)


def test_a_refused_station_key_stops_the_loop_with_the_claim_kept(queue_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"type": "about:blank", "title": "Unauthorized"})

    frames = [[qr_result(A)]] + [[]] * 50
    refusing = Client("http://api.test", transport=httpx.MockTransport(refuse))
    with refusing, pytest.raises(ApiError, match="401 Unauthorized"):
        run_station(queue_path, refusing, frames)
    with ClaimQueue(queue_path) as queue:
        assert queue.pending_count() == 1


def test_max_frames_stops_the_loop(queue_path: Path, client: Client) -> None:
    out, err = io.StringIO(), io.StringIO()
    with ClaimQueue(queue_path) as queue, ClaimQueue(queue_path) as sender_queue:
        station, frames = station_reading(queue, [[qr_result(code)] for code in CODES])
        station.out, station.err = out, err
        sender = SenderThread(Sender(sender_queue, client, station.report), idle_wait=0.05)
        summary = station.run(iter(frames), sender, max_frames=3)
    assert (summary.frames, summary.claims, summary.queued) == (3, 3, 0)


def test_a_watched_folder_is_read_in_name_order_and_each_file_once(
    tmp_path: Path, queue: ClaimQueue
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    drop_photo(folder, "b.png", B)
    drop_photo(folder, "a.png", A)
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".c.png").write_bytes(b"still being written")
    (folder / "y.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    err = io.StringIO()
    station = Station(queue, gtin=GTIN, shipment_id=SHIPMENT, out=io.StringIO(), err=err)

    def read_until_idle() -> None:
        source = watch(folder, done=queue.file_done, poll=0.01)
        try:
            while (frame := next(source)) is not None:
                station.process(frame)
        finally:
            source.close()

    read_until_idle()
    assert err.getvalue().startswith("scanner: y.png: ")
    drop_photo(folder, "c.png", CODES[2])
    read_until_idle()  # a restart: a, b and y were done, only c is new
    assert [c.code for c in queue.claims()] == [A, B, CODES[2]]
    assert all(queue.file_done(name) for name in ("a.png", "b.png", "c.png", "y.png"))


def test_a_video_file_is_read_to_its_end(tmp_path: Path, client: Client, api: FakeClaims) -> None:
    path = tmp_path / "belt.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (320, 240))
    try:
        for code in (A, B):
            frame = np.full((240, 320, 3), 200, dtype=np.uint8)
            label = cv2.cvtColor(qr_image(code, 3), cv2.COLOR_GRAY2BGR)
            frame[20 : 20 + label.shape[0], 20 : 20 + label.shape[1]] = label
            for _ in range(6):
                writer.write(frame)
    finally:
        writer.release()
    out, err = io.StringIO(), io.StringIO()
    options = cli.StationOptions(gtin=GTIN, shipment_id=SHIPMENT, queue=tmp_path / "q.sqlite3")
    summary = cli.station(client, options, video=path, out=out, err=err)
    assert (summary.frames, summary.claims, summary.queued) == (12, 2, 0)
    assert out.getvalue().splitlines() == [f"PASS {A}", f"PASS {B}"]


# ---------------------------------------------------------------- a real station, killed
