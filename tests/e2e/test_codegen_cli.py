"""The codegen command: parse locally; issue, import and keys against a running service."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from codegen.cli import run
from tests.support.database import pg_home
from tests.support.served import Served, free_port
from tests.support.world import gtin14
from transparency.domain import codes
from transparency.domain.api_keys import new_api_key


def test_the_command_exits_2_for_a_bad_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "parse", "TP000"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["ok"] is False


@pytest.fixture(scope="module")
def service() -> object:
    admin = str(new_api_key())
    home = pg_home()
    served = Served(home / "data", free_port(), TRANSPARENCY_ADMIN_KEY=admin)
    served.wait_ready()
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {admin}"}) as http:
        brand = http.post("/v1/brands", json={"name": "Acme", "gs1_prefixes": ["9506000"]}).json()[
            "api_key"
        ]["key"]
        product = http.post(
            "/v1/products",
            json={"gtin": gtin14("0950600013435"), "name": "Serum"},
            headers={"Authorization": f"Bearer {brand}"},
        ).json()
    yield served, brand, product
    served.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_issue_import_and_keys_through_the_api(
    service: tuple[Served, str, dict[str, str]], tmp_path: Path
) -> None:
    served, brand, product = service
    common = ["--api", served.url, "--key", brand]
    out = tmp_path / "codes.csv"
    assert (
        run([*common, "issue", "--product", product["id"], "--count", "300", "--out", str(out)])
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 300
    assert all(codes.parse(r["code"]).key_id for r in rows)

    pdf = tmp_path / "labels.pdf"
    assert (
        run([*common, "issue", "--product", product["id"], "--count", "30", "--out", str(pdf)]) == 0
    )
    assert pdf.read_bytes().startswith(b"%PDF")

    serials = tmp_path / "serials.csv"
    serials.write_text("serial,lot,expiry\nOWN1,L1,2027-03-31\nOWN2,L1,2027-03-31\n")
    report = io.StringIO()
    assert run([*common, "import", "--product", product["id"], str(serials)], stdout=report) == 0
    assert json.loads(report.getvalue())["accepted"] == 2

    listing = io.StringIO()
    assert run([*common, "keys", "list"], stdout=listing) == 0
    assert [k["status"] for k in json.loads(listing.getvalue())["keys"]] == ["active"]


def test_api_errors_are_one_line_and_exit_1(service: tuple[Served, str, dict[str, str]]) -> None:
    served = service[0]
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "--api", served.url, "--key", "tpk_bad",
         "keys", "list"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "codegen: unauthenticated: the API key is not valid"
