"""EPCIS XML import benchmark: time and peak memory of reading one commissioning document,
as XML and as the same document in JSON-LD.

    .venv/bin/python bench/bench_epcis_xml.py                  # 1.3 million SGTINs
    .venv/bin/python bench/bench_epcis_xml.py --sgtins 200000 --per-event 10000

Each measurement runs in a process of its own (peak RSS is a process's high-water mark):

- parse: ``epcis_xml.document_from_xml`` alone (the XML into the JSON-LD shape);
- import, XML: what an import job's worker does with an XML upload
  (``services.imports.read_xml_for_job``: parse, then the JSON-LD checks);
- import, JSON-LD: the same for the same document sent as JSON-LD
  (``domain.imports.read_for_job``): the ceiling the XML path is held to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

GTIN = "10614141073464"  # urn:epc:id:sgtin:0614141.107346.*

_MEASURE = """
import json, resource, sys, time
from transparency.domain import imports as rules
from transparency.domain.epcis_xml import document_from_xml
from transparency.services.imports import read_xml_for_job
what, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
started = time.perf_counter()
if what == "parse":
    document = document_from_xml(data)
    count = sum(len(e["epcList"]) for e in document["epcisBody"]["eventList"])
elif what == "xml":
    columns, refused = read_xml_for_job(data, sys.argv[3], 10_000_000)
    count = len(columns.keys)
else:
    columns, refused = rules.read_for_job(
        data.decode(), rules.ImportKind.EPCIS, sys.argv[3], 1, 10_000_000
    )
    count = len(columns.keys)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"count": count, "seconds": seconds, "peak": peak}))
"""


def write_documents(folder: Path, sgtins: int, per_event: int) -> tuple[Path, Path]:
    xml, jsonld = folder / "document.xml", folder / "document.jsonld"
    events = []
    with xml.open("w") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<epcis:EPCISDocument'
            ' xmlns:epcis="urn:epcglobal:epcis:xsd:2" xmlns:cbvmda="urn:epcglobal:cbv:mda"'
            ' schemaVersion="2.0" creationDate="2026-12-01T00:00:00.000Z">'
            "<EPCISBody><EventList>\n"
        )
        for start in range(0, sgtins, per_event):
            epcs = [
                f"urn:epc:id:sgtin:0614141.107346.{i}"
                for i in range(start, min(start + per_event, sgtins))
            ]
            out.write(
                "<ObjectEvent><eventTime>2026-12-01T00:00:00.000Z</eventTime>"
                "<eventTimeZoneOffset>+00:00</eventTimeZoneOffset><epcList>\n"
                + "".join(f"<epc>{epc}</epc>\n" for epc in epcs)
                + "</epcList><action>ADD</action>"
                "<bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>"
                "<disposition>urn:epcglobal:cbv:disp:active</disposition>"
                "<ilmd><cbvmda:lotNumber>L1</cbvmda:lotNumber></ilmd></ObjectEvent>\n"
            )
            events.append(
                {
                    "type": "ObjectEvent",
                    "eventTime": "2026-12-01T00:00:00.000Z",
                    "eventTimeZoneOffset": "+00:00",
                    "epcList": epcs,
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "disposition": "active",
                    "ilmd": {"cbvmda:lotNumber": "L1"},
                }
            )
        out.write("</EventList></EPCISBody></epcis:EPCISDocument>\n")
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-01T00:00:00.000Z",
        "epcisBody": {"eventList": events},
    }
    jsonld.write_text(json.dumps(document))
    return xml, jsonld


def measure(what: str, path: Path) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _MEASURE, what, str(path), GTIN],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sgtins", type=int, default=1_300_000)
    parser.add_argument("--per-event", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        xml, jsonld = write_documents(Path(folder), args.sgtins, args.per_event)
        sizes = xml.stat().st_size / 2**20, jsonld.stat().st_size / 2**20
        print(
            f"{args.sgtins} SGTINs in events of {args.per_event}:"
            f" XML {sizes[0]:.1f} MiB, JSON-LD {sizes[1]:.1f} MiB"
        )
        for label, what, path in (
            ("parse XML (document_from_xml)", "parse", xml),
            ("import XML (read_xml_for_job)", "xml", xml),
            ("import JSON-LD (read_for_job)", "json", jsonld),
        ):
            result = measure(what, path)
            print(
                f"{label:32} {int(result['count']):>9} SGTINs  {result['seconds']:6.1f} s"
                f"  peak RSS {result['peak'] / 2**20:6.0f} MiB"
            )


if __name__ == "__main__":
    main()
