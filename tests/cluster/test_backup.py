"""Backups that restore, on the real cluster of ``deploy/cluster``: pgBackRest's full and
incremental backups and its WAL archive bring the whole cluster back to a point in time, with
every claim committed before it and nothing after it; the API answers again from the restored
database."""

from __future__ import annotations

import time
import uuid

import httpx

from loadtest.data import LoadData
from loadtest.prepare import prepare
from tests.cluster.support import Cluster


def claim(data: LoadData, codes: list[str], shipment: str) -> list[str]:
    """Each code's result (with its reason if not a pass), claimed by the station in one
    tote (the batch endpoint)."""
    resp = httpx.post(
        f"{data.api}/v1/fulfilment/verifications/batch",
        headers={"Authorization": f"Bearer {data.station_key}"},
        json={"shipment_id": shipment, "items": [{"scan": c, "gtin": data.gtin} for c in codes]},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return [" ".join(filter(None, (r["result"], r.get("reason")))) for r in resp.json()["results"]]


def query(cluster: Cluster, sql: str) -> list[list[str]]:
    """Rows of SQL run on the leader's ``transparency`` database, columns split."""
    ok, out = cluster.psql(cluster.state["ports"]["write"], sql, database="transparency")
    assert ok, out
    return [line.split("|") for line in out.splitlines() if line]


def codes_sql(codes: list[str]) -> str:
    return "array[" + ",".join("'" + c.replace("'", "''") + "'" for c in codes) + "]::text[]"


def test_a_restore_to_a_point_in_time_keeps_every_claim_before_it_and_none_after(
    cluster: Cluster,
) -> None:
    cluster.wait_healthy()
    first = prepare(cluster.api, cluster.admin_key, 60, shipped=0, forged=0, photos=0)
    codes = list(first.codes)
    # Passes in a full backup, in an incremental one, and in the WAL after it (replayed).
    assert claim(first, codes[:20], "in-full") == ["pass"] * 20
    full = cluster.cli("backup", "--type", "full")
    assert full.returncode == 0, full.stdout + full.stderr
    assert "full backup" in full.stdout
    assert claim(first, codes[20:40], "in-incremental") == ["pass"] * 20
    incremental = cluster.cli("backup")
    assert incremental.returncode == 0, incremental.stdout + incremental.stderr
    assert incremental.stdout.startswith("incr backup"), incremental.stdout
    # pgBackRest restores from the newest backup that stopped before the target, its stop
    # time in whole seconds (and recorded after the backup's last WAL is archived).
    time.sleep(2)
    assert claim(first, codes[40:50], "in-wal") == ["pass"] * 10

    # The target: the database's clock once those commits were acknowledged.
    ok, target = cluster.psql(cluster.state["ports"]["write"], "select clock_timestamp()")
    assert ok, target

    # After it: more passes, and a new brand whose units are issued and claimed.
    assert claim(first, codes[50:60], "after-target") == ["pass"] * 10
    later = prepare(cluster.api, cluster.admin_key, 10, shipped=0, forged=0, photos=0)
    assert claim(later, list(later.codes[:5]), "later-brand") == ["pass"] * 5
    cluster.archive_now()
    listed = cluster.cli("backups")
    assert listed.returncode == 0, listed.stderr
    assert "full backup:" in listed.stdout, listed.stdout
    assert "incr backup:" in listed.stdout, listed.stdout
    [old_leader] = cluster.with_role("leader")
    old_timeline = cluster.members()[old_leader]["timeline"]

    restored = cluster.cli("restore", "--target", target, timeout=600)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    print(f"\n{restored.stdout}")
    # From the incremental backup (it depends on the full one), then the WAL to the target.
    assert incremental.stdout.split()[2] in restored.stdout, restored.stdout

    # A whole cluster again, on a new timeline, every node a copy of the restored one.
    cluster.wait_healthy()
    [new_leader] = cluster.with_role("leader")
    assert cluster.members()[new_leader]["timeline"] > old_timeline
    states = dict(query(cluster, f"select code, state from units where code = any("
                                 f"{codes_sql(codes + list(later.codes))})"))  # fmt: skip
    assert states == {c: "shipped" for c in codes[:50]} | {c: "active" for c in codes[50:]}
    passes = query(cluster, "select code, shipment_id, result from scan_events"
                            f" where code = any({codes_sql(codes + list(later.codes))})"
                            " order by code")  # fmt: skip
    shipments = ["in-full"] * 20 + ["in-incremental"] * 20 + ["in-wal"] * 10
    assert passes == sorted([c, s, "pass"] for c, s in zip(codes[:50], shipments, strict=True))
    # The brand made after the target is gone, its key with it.
    resp = httpx.get(f"{later.api}/v1/brand/profile", timeout=10,
                     headers={"Authorization": f"Bearer {later.brand_key}"})  # fmt: skip
    assert resp.status_code == 401, resp.text
    # Through the API: the units passed after the target are fresh again, and pass once
    # more; those passed before it are still shipped.
    assert claim(first, codes[50:55], f"again-{uuid.uuid4()}") == ["pass"] * 5
    assert claim(first, codes[:3], f"again-{uuid.uuid4()}") == ["fail already_shipped"] * 3
