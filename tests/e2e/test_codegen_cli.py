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
import pypdfium2
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


def test_issue_takes_the_label_options_of_download(
    service: tuple[Served, str, dict[str, str]], tmp_path: Path
) -> None:
    served, brand, product = service
    common = ["--api", served.url, "--key", brand]
    pdf = tmp_path / "labels.pdf"
    issue = [*common, "issue", "--product", product["id"], "--count", "2", "--out", str(pdf)]
    assert run([*issue, "--preset", "roll-40x30", "--line", "product"], stdout=io.StringIO()) == 0
    document = pypdfium2.PdfDocument(pdf.read_bytes())
    assert len(document) == 2  # a roll: a label a page
    width, height = document[0].get_size()
    assert (round(width * 25.4 / 72), round(height * 25.4 / 72)) == (40, 30)
    assert "Serum" in document[0].get_textpage().get_text_range()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        # Found by the API once the batch is issued: the line names it and how to fetch it.
        (["--out", "labels.pdf", "--preset", "a4-l9999"], "is issued, but its file was not"),
        (["--out", "labels.zip", "--columns", "9"], "is issued, but its file was not"),
        # Found before anything is issued.
        (["--out", "codes.csv", "--preset", "roll-40x30"], "label options are for .pdf and .zip"),
    ],
)
def test_issue_with_a_bad_label_option_prints_one_line_and_exits_1(
    service: tuple[Served, str, dict[str, str]], tmp_path: Path, options: list[str], says: str
) -> None:
    served, brand, product = service
    options = [str(tmp_path / o) if o.startswith(("labels.", "codes.")) else o for o in options]
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "--api", served.url, "--key", brand,
         "issue", "--product", product["id"], "--count", "1", *options],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    # Progress lines (a line each, stderr being no terminal) and then one line of error.
    *progress, line = done.stderr.splitlines()
    assert all(p.startswith("batch ") for p in progress), done.stderr
    assert line.startswith("codegen: "), line
    assert says in line, line
    assert not list(tmp_path.iterdir())  # no file, not even a partial one


def test_download_with_a_bad_label_option_prints_one_line_and_exits_1(
    service: tuple[Served, str, dict[str, str]], tmp_path: Path
) -> None:
    served, brand, product = service
    common = ["--api", served.url, "--key", brand]
    listing = io.StringIO()
    issue = ["issue", "--product", product["id"], "--count", "1", "--out", str(tmp_path / "c")]
    assert run([*common, *issue, "--file", "csv"], stdout=listing) == 0
    batch = json.loads(listing.getvalue())["batch"]
    out = tmp_path / "labels.pdf"
    done = subprocess.run(
        [sys.executable, "-m", "codegen", *common, "download", "--batch", batch,
         "--out", str(out), "--label-width-mm", "15", "--label-height-mm", "15", "--page", "roll"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("codegen: invalid-input: a 15 x 15 mm label has no room")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not out.exists()
    assert not out.with_name("labels.pdf.part").exists()


def test_api_errors_are_one_line_and_exit_1(service: tuple[Served, str, dict[str, str]]) -> None:
    served = service[0]
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "--api", served.url, "--key", "tpk_bad",
         "keys", "list"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "codegen: unauthenticated: the API key is not valid"
