"""The warehouse station against the real service: the API is killed mid-run and restarted,
and every unit on the video is still claimed exactly once."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import qrcode

from tests.support.served import Served, free_port
from tests.support.world import gtin14
from transparency.domain.api_keys import new_api_key


def qr_frame(text: str, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    symbol = np.array(qrcode.make(text, box_size=6, border=4).convert("L"))
    frame = np.full((size[1], size[0]), 90, dtype=np.uint8)
    h, w = symbol.shape
    frame[100 : 100 + h, 300 : 300 + w] = symbol
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def write_video(path: Path, texts: list[str], *, frames_each: int = 12, gap: int = 14) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (1280, 720))
    blank = np.full((720, 1280, 3), 90, dtype=np.uint8)
    try:
        for text in texts:
            frame = qr_frame(text)
            for _ in range(frames_each):
                writer.write(frame)
            for _ in range(gap):
                writer.write(blank)
    finally:
        writer.release()


def test_a_station_survives_the_api_being_killed(data_home: Path, tmp_path: Path) -> None:
    admin = str(new_api_key())
    port = free_port()
    env = {"TRANSPARENCY_ADMIN_KEY": admin}
    api = Served(data_home, port, **env)
    api.wait_ready()
    gtin = gtin14("0950600013435")
    with httpx.Client(base_url=api.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        brand = http.post(
            "/v1/brands", json={"name": "Acme", "gs1_prefixes": ["9506000"]}, headers=auth
        ).json()
        brand_auth = {"Authorization": f"Bearer {brand['api_key']['key']}"}
        site = http.post("/v1/sites", json={"name": "DC"}, headers=auth).json()
        station_key = http.post(
            "/v1/api-keys", json={"role": "station", "site_id": site["id"]}, headers=auth
        ).json()["key"]
        product = http.post("/v1/products", json={"gtin": gtin, "name": "x"}, headers=brand_auth)
        r = http.post(
            f"/v1/products/{product.json()['id']}/code-batches",
            json={"count": 12},
            headers=brand_auth,
        )
        location = r.headers["location"]
        while http.get(location, headers=brand_auth).json()["status"] != "done":
            time.sleep(0.1)
        rows = http.get(f"{location}/codes.csv", headers=brand_auth).text.splitlines()[1:]
    symbols = [row.split(",")[1] for row in rows]
    codes = [row.split(",")[0] for row in rows]
    video = tmp_path / "belt.avi"
    write_video(video, symbols)

    station = subprocess.Popen(
        [sys.executable, "-m", "scanner", "station", "--api", api.url, "--key", station_key,
         "--gtin", gtin, "--shipment", "TRUCK-7", "--video", str(video),
         "--queue", str(tmp_path / "queue.sqlite3"), "--drain-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.5)  # a few units in
        api.proc.send_signal(signal.SIGKILL)  # the API dies; the station keeps scanning
        api.finish()
        time.sleep(3)
        api = Served(data_home, port, **env)  # back on the same address and data
        api.wait_ready()
        out, err = station.communicate(timeout=120)
    finally:
        if station.poll() is None:
            station.kill()
            station.communicate()
    assert station.returncode == 0, err
    # While the API was down the station kept scanning and queued its claims.
    assert re.search(r"[1-9][0-9]* queued", err), err
    passes = [line.split()[1] for line in out.splitlines() if line.startswith("PASS")]
    assert sorted(passes) == sorted(codes), out + err
    with httpx.Client(base_url=api.url, timeout=30) as http:
        for code in codes:
            history = http.get(f"/v1/codes/{code}/history", headers=brand_auth).json()
            fulfilment = [e for e in history["events"] if e["kind"] == "fulfilment"]
            assert history["state"] == "shipped"
            assert [e["result"] for e in fulfilment][:1] == ["pass"]
            assert all(e["result"] == "pass" for e in fulfilment), fulfilment  # retries replay
    api.stop()
