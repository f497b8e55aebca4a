"""EPCIS 1.2 and 2.0 XML, read into and written from the EPCIS 2.0 JSON-LD shape.

``document_from_xml`` turns an ``EPCISDocument`` or ``EPCISQueryDocument`` of either
version into the dict GS1's JSON-LD binding would hold (the keys ``epcis.py`` reads): 1.2's
``<extension>`` and ``<baseExtension>`` wrappers are unwrapped, CBV values are shortened as
2.0 JSON-LD writes them (``urn:epcglobal:cbv:bizstep:commissioning`` -> ``commissioning``),
user extension elements become ``prefix:name`` keys with their prefix in ``@context``, and
1.2's QuantityEvent an OBSERVE ObjectEvent of a quantity; the result is a 2.0 document
(``schemaVersion`` 2.0) whatever the version read. ``document_to_xml`` writes such a dict
as EPCIS 2.0 XML that GS1's XSD accepts.

The XML is parsed by libxml2 (lxml) with entity substitution, DTD loading and the network
off, at most ``MAX_XML_BYTES`` and ``MAX_DEPTH`` deep; a document that declares entities,
elements or an external DTD is refused (none is needed, a hostile one uses them). Every
refusal is ``InvalidCode("invalid_xml")`` naming the line (and column, for bad syntax), as
``epcis.load_document`` does for JSON. The EPCIS header (SBDH, master data) is not read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from transparency.domain.epcis import EPCIS_CONTEXT
from transparency.domain.errors import InvalidCode

# The JSON path's bound (imports.MAX_EPCIS_CHARS): about 1.4 million commissioned SGTINs.
MAX_XML_BYTES = 64 * 1_048_576
# An EPCIS document nests about ten deep (document, body, list, event, extension, ilmd, a
# user's element or two); libxml2's own limit without XML_PARSE_HUGE is 256.
MAX_DEPTH = 64

EPCIS_2 = "urn:epcglobal:epcis:xsd:2"
_EPCIS_NAMESPACES = frozenset({"urn:epcglobal:epcis:xsd:1", EPCIS_2})
_QUERY_NAMESPACES = frozenset(
    {"urn:epcglobal:epcis-query:xsd:1", "urn:epcglobal:epcis-query:xsd:2"}
)
_QUERY_2 = "urn:epcglobal:epcis-query:xsd:2"
# Namespaces the EPCIS 2.0 JSON-LD context defines: their prefix is fixed, never declared.
CBVMDA = "urn:epcglobal:cbv:mda"
GS1_VOC = "https://gs1.org/voc/"
_KNOWN = {CBVMDA: "cbvmda", CBVMDA + "#": "cbvmda", GS1_VOC: "gs1"}
_KNOWN_XML = {"cbvmda": CBVMDA, "gs1": GS1_VOC}

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)

# CBV 2.0 standard values: the URN of 1.2 (and 2.0 XML), the web URI, and the bare term of
# JSON-LD name the same value.
_CBV = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    "btt": ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    "sdt": ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    "er": ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
}
_CBV_TERM = re.compile(r"[A-Za-z0-9_]+")

_TEXT = ("eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "certificationInfo",
         "action", "parentID", "transformationID")  # fmt: skip
_EPC_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_NUMBER_ATTRIBUTES = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)

# The order GS1's EPCIS 2.0 XSD gives each event's elements (after the common ones).
_COMMON = ("eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "errorDeclaration",
           "certificationInfo")  # fmt: skip
_TAIL = ("bizStep", "disposition", "readPoint", "bizLocation")
_LISTS = ("sourceList", "destinationList", "sensorElementList", "persistentDisposition")
_ORDER = {
    "ObjectEvent": (*_COMMON, "epcList", "action", *_TAIL, "bizTransactionList",
                    "quantityList", *_LISTS, "ilmd"),
    "AggregationEvent": (*_COMMON, "parentID", "childEPCs", "action", *_TAIL,
                         "bizTransactionList", "childQuantityList", *_LISTS),
    "TransactionEvent": (*_COMMON, "bizTransactionList", "parentID", "epcList", "action",
                         *_TAIL, "quantityList", *_LISTS),
    "TransformationEvent": (*_COMMON, "inputEPCList", "inputQuantityList", "outputEPCList",
                            "outputQuantityList", "transformationID", *_TAIL,
                            "bizTransactionList", *_LISTS, "ilmd"),
    "AssociationEvent": (*_COMMON, "parentID", "childEPCs", "childQuantityList", "action",
                         *_TAIL, "bizTransactionList", *_LISTS),
}  # fmt: skip


class _Refused(Exception):
    """Something the document may not hold, found at a line."""

    def __init__(self, line: int | None, why: str) -> None:
        super().__init__(why)
        self.line = line
        self.why = why


def _refuse(line: int | None, why: str) -> InvalidCode:
    where = f"line {line}: " if line else ""
    return InvalidCode("invalid_xml", where + why)


# ---------------------------------------------------------------- reading


def document_from_xml(data: bytes) -> dict[str, Any]:
    """The EPCIS 2.0 JSON-LD shape of an EPCIS 1.2 or 2.0 XML document.

    InvalidCode("invalid_xml") with the line (and column) of what is refused: bad syntax, a
    DTD that declares anything, nesting deeper than ``MAX_DEPTH``, more than
    ``MAX_XML_BYTES``, a root that is no EPCIS document, a quantity that is no number.
    """
    if len(data) > MAX_XML_BYTES:
        raise _refuse(None, f"an EPCIS XML document holds at most {MAX_XML_BYTES} bytes")
    reader = _Reader()
    try:
        return reader.read(data)
    except _Refused as exc:
        raise _refuse(exc.line, exc.why) from None
    except etree.XMLSyntaxError as exc:
        raise InvalidCode("invalid_xml", _syntax_error(data, exc)) from None


def _parser_options() -> dict[str, Any]:
    return {
        "resolve_entities": False,  # no entity is expanded: no billion laughs, no XXE
        "load_dtd": False,
        "no_network": True,
        "huge_tree": False,  # libxml2's limits stay: depth 256, a text node 10 MB
        "remove_comments": True,
        "remove_pis": True,
    }


_DECLARATIONS = re.compile(rb"<!(ENTITY|ELEMENT|ATTLIST)\b")
_DTD_REFUSED = "a DTD that declares entities or elements is refused"


def _syntax_error(data: bytes, exc: etree.XMLSyntaxError) -> str:
    # libxml2 stops nested entity declarations itself ("entity amplification"), before the
    # root is read; say what is refused, where the first declaration stands (UTF-8).
    if (declared := _DECLARATIONS.search(data)) is not None:
        line = data.count(b"\n", 0, declared.start()) + 1
        return f"line {line}: {_DTD_REFUSED}"
    line, column = exc.position
    if line == 0:  # iterparse loses the place of some errors: parse again to find it
        try:
            etree.fromstring(data, etree.XMLParser(**_parser_options()))
        except etree.XMLSyntaxError as again:
            exc = again
            line, column = again.position
    message = re.sub(r", line \d+, column \d+$", "", str(exc.msg or "not well-formed"))
    return f"line {line} column {column}: {message}" if line else message


class _Reader:
    def __init__(self) -> None:
        self.context: dict[str, str] = {}
        # The EPCs of each EPC list, taken as each <epc> ends (and its element dropped):
        # one event may list a million.
        self.epcs: dict[Any, list[str]] = {}

    def read(self, data: bytes) -> dict[str, Any]:
        events = etree.iterparse(io.BytesIO(data), events=("start", "end"), **_parser_options())
        depth = 0
        root: Any = None
        found: list[dict[str, Any]] = []
        for action, element in events:
            if action == "start":
                depth += 1
                if root is None:
                    root = element
                    self._check_root(element)
                if depth > MAX_DEPTH:
                    raise _Refused(element.sourceline, f"nested deeper than {MAX_DEPTH} elements")
                continue
            depth -= 1
            if element.tag == "epc":
                parent = element.getparent()
                if parent is not None and parent.tag in _EPC_LISTS:
                    self.epcs.setdefault(parent, []).append(_text(element))
                    _drop(element)
            elif self._is_event(element):
                found.append(self._event(element))
                _drop(element)
        if root is None:
            raise _Refused(None, "no element found")
        return self._document(root, found)

    def _check_root(self, root: Any) -> None:
        info = root.getroottree().docinfo
        dtd = info.internalDTD
        declares = dtd is not None and (
            any(True for _ in dtd.iterentities()) or any(True for _ in dtd.iterelements())
        )
        if declares or info.system_url or info.public_id:
            # A bare <!DOCTYPE name> (GS1's own examples have one) declares nothing.
            raise _Refused(root.sourceline, _DTD_REFUSED)
        namespace, name = _split(root.tag)
        if name not in ("EPCISDocument", "EPCISQueryDocument") or not (
            namespace in _EPCIS_NAMESPACES or namespace in _QUERY_NAMESPACES
        ):
            raise _Refused(
                root.sourceline,
                f"{name} is no EPCISDocument or EPCISQueryDocument (EPCIS 1.2 or 2.0):"
                " it holds no events to import",
            )

    @staticmethod
    def _is_event(element: Any) -> bool:
        if element.tag not in EVENT_TYPES and element.tag != "QuantityEvent":  # 1.2
            return False
        parent = element.getparent()
        if parent is not None and parent.tag == "extension":  # 1.2: TransformationEvent
            parent = parent.getparent()
        return parent is not None and parent.tag == "EventList"

    def _document(self, root: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
        _, kind = _split(root.tag)
        document: dict[str, Any] = {"@context": [EPCIS_CONTEXT], "type": kind}
        document["schemaVersion"] = "2.0"
        if (created := root.get("creationDate")) is not None:
            document["creationDate"] = created
        body = _child(root, "EPCISBody")
        if body is None:
            raise _Refused(root.sourceline, "the document has no EPCISBody")
        if kind == "EPCISDocument":
            document["epcisBody"] = {"eventList": events}
        else:
            results = next((c for c in body if _split(c.tag)[1] == "QueryResults"), None)
            if results is None:
                raise _Refused(body.sourceline, "the query document has no QueryResults")
            query: dict[str, Any] = {}
            for name in ("queryName", "subscriptionID"):
                if (found := _child(results, name)) is not None:
                    query[name] = _text(found)
            query["resultsBody"] = {"eventList": events}
            document["epcisBody"] = {"queryResults": query}
        for child in root:
            if _split(child.tag)[0] not in (None, *_EPCIS_NAMESPACES, *_QUERY_NAMESPACES):
                self._extension(document, child)
        if len(self.context):
            document["@context"].append(dict(self.context))
        return document

    # ------------------------------------------------------------ events

    def _event(self, element: Any) -> dict[str, Any]:
        if element.tag == "QuantityEvent":
            return self._quantity_event(element)
        event: dict[str, Any] = {"type": element.tag}
        self._fields(event, element)
        return event

    def _quantity_event(self, element: Any) -> dict[str, Any]:
        """1.2's deprecated QuantityEvent, as 2.0 says it: an OBSERVE ObjectEvent of a
        quantity (2.0 has no QuantityEvent)."""
        event: dict[str, Any] = {"type": "ObjectEvent"}
        self._fields(event, element)  # its epcClass and quantity are no field of 2.0
        if quantity := self._quantity(element):
            event["quantityList"] = [quantity]
        event["action"] = "OBSERVE"
        return event

    def _fields(self, event: dict[str, Any], element: Any) -> None:
        for child in element:
            namespace, name = _split(child.tag)
            if namespace is not None:
                self._extension(event, child)
            elif name in ("extension", "baseExtension"):
                self._fields(event, child)  # 1.2's wrappers: their fields are the event's
            elif name in _TEXT:
                event[name] = _text(child)
            elif name in ("bizStep", "disposition"):
                event[name] = _cbv(name, _text(child))
            elif name in _EPC_LISTS:
                event[name] = self.epcs.pop(child, [])
            elif name in _QUANTITY_LISTS:
                event[name] = [self._quantity(q) for q in child if q.tag == "quantityElement"]
            elif name in ("readPoint", "bizLocation"):
                event[name] = self._place(child)
            elif name == "bizTransactionList":
                event[name] = [self._typed(t, "btt", "bizTransaction") for t in child
                               if t.tag == "bizTransaction"]  # fmt: skip
            elif name in ("sourceList", "destinationList"):
                key = name.removesuffix("List")
                event[name] = [self._typed(s, "sdt", key) for s in child if s.tag == key]
            elif name == "sensorElementList":
                event[name] = [self._sensor(s) for s in child if s.tag == "sensorElement"]
            elif name == "persistentDisposition":
                event[name] = self._persistent(child)
            elif name == "ilmd":
                event[name] = self._ilmd(child)
            elif name == "errorDeclaration":
                event[name] = self._error_declaration(child)
            # Else an unqualified field of no EPCIS version (1.2 allowed them inside
            # <extension><extension>): JSON-LD has no key for it, and it is left out.

    def _quantity(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in element:
            if child.tag == "epcClass":
                found["epcClass"] = _text(child)
            elif child.tag == "quantity" and _text(child):  # nillable: empty is none
                found["quantity"] = _decimal(child)
            elif child.tag == "uom":
                found["uom"] = _text(child)
        return found

    def _place(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in element:
            if child.tag == "id":
                found["id"] = _text(child)
            elif _split(child.tag)[0] is not None:
                self._extension(found, child)
        return found

    def _typed(self, element: Any, vocabulary: str, key: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if (kind := element.get("type")) is not None:
            found["type"] = _cbv(vocabulary, kind.strip())
        found[key] = _text(element)
        return found

    def _sensor(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in element:
            if child.tag == "sensorMetadata":
                found["sensorMetadata"] = self._attributes(child)
            elif child.tag == "sensorReport":
                found.setdefault("sensorReport", []).append(self._attributes(child))
            elif _split(child.tag)[0] is not None:
                self._extension(found, child)
        return found

    def _attributes(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, value in element.attrib.items():
            namespace, local = _split(name)
            if namespace is not None:
                found[f"{self._prefix(namespace, element)}:{local}"] = value
            elif local in _NUMBER_ATTRIBUTES:
                found[local] = _number(value, element.sourceline, local)
            elif local == "booleanValue":
                found[local] = value.strip() in ("true", "1")
            elif local == "type":
                found[local] = _measurement(value.strip())
            else:
                found[local] = value
        return found

    def _persistent(self, element: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for child in element:
            if child.tag in ("set", "unset"):
                found.setdefault(child.tag, []).append(_cbv("disposition", _text(child)))
        return found

    def _ilmd(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in element:
            if child.tag == "extension":  # 1.2: ILMD's own extension point
                for inner in child:
                    self._extension(found, inner)
            else:
                self._extension(found, child)
        return found

    def _error_declaration(self, element: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for child in element:
            if child.tag == "declarationTime":
                found["declarationTime"] = _text(child)
            elif child.tag == "reason":
                found["reason"] = _cbv("er", _text(child))
            elif child.tag == "correctiveEventIDs":
                found["correctiveEventIDs"] = [_text(i) for i in child]
            elif _split(child.tag)[0] is not None:
                self._extension(found, child)
        return found

    # ------------------------------------------------------------ extensions

    def _extension(self, into: dict[str, Any], element: Any) -> None:
        """A user's element as a ``prefix:name`` key; repeated, a list."""
        namespace, name = _split(element.tag)
        key = f"{self._prefix(namespace, element)}:{name}" if namespace else name
        value = self._value(element)  # a str or a dict, never a list: a list is repeats
        if key not in into:
            into[key] = value
        elif isinstance(into[key], list):
            into[key].append(value)
        else:
            into[key] = [into[key], value]

    def _value(self, element: Any) -> Any:
        children = [c for c in element if isinstance(c.tag, str)]
        if not children:
            return element.text or ""
        found: dict[str, Any] = {}
        for child in children:
            self._extension(found, child)
        return found

    def _prefix(self, namespace: str, element: Any) -> str:
        """The key prefix of ``namespace``: the document's own where it is free."""
        if namespace in _KNOWN:
            return _KNOWN[namespace]
        for known, uri in self.context.items():
            if uri == namespace:
                return known
        own = [p for p, uri in element.nsmap.items() if uri == namespace and isinstance(p, str)]
        chosen: str | None = own[0] if own else None
        number = len(self.context)
        while chosen is None or chosen in self.context or chosen in _KNOWN_XML:
            number += 1
            chosen = f"ext{number}"
        self.context[chosen] = namespace
        return chosen


def _drop(element: Any) -> None:
    """Done with ``element``: empty it and drop the siblings before it, so that the tree of a
    large document never stands whole (what was read from them is kept, not the tree)."""
    element.clear()
    parent = element.getparent()
    while element.getprevious() is not None:
        del parent[0]


def _split(tag: Any) -> tuple[str | None, str]:
    if not isinstance(tag, str):
        return None, ""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _child(element: Any, name: str) -> Any:
    return next((c for c in element if c.tag == name), None)


def _text(element: Any) -> str:
    return (element.text or "").strip()


def _cbv(vocabulary: str, value: str) -> str:
    for prefix in _CBV[vocabulary]:
        if value.startswith(prefix) and _CBV_TERM.fullmatch(term := value[len(prefix) :]):
            return term
    return value


def _measurement(value: str) -> str:
    """``gs1:Temperature`` and ``https://gs1.org/voc/Temperature`` are ``Temperature``."""
    for prefix in ("gs1:", GS1_VOC):
        if value.startswith(prefix) and _CBV_TERM.fullmatch(term := value[len(prefix) :]):
            return term
    return value


def _decimal(element: Any) -> int | float:
    return _number(_text(element), element.sourceline, element.tag, exponent=False)


def _number(text: str, line: int | None, name: str, exponent: bool = True) -> int | float:
    text = text.strip()
    if len(text) <= 40 and re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    pattern = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)" + (r"([eE][+-]?[0-9]+)?" if exponent else "")
    if len(text) > 40 or not re.fullmatch(pattern, text):
        raise _Refused(line, f"{name} {text[:40]!r} is not a number")
    return float(text)


# ---------------------------------------------------------------- writing


def document_to_xml(document: Mapping[str, Any]) -> bytes:
    """``document`` (the EPCIS 2.0 JSON-LD shape) as EPCIS 2.0 XML, UTF-8.

    ValueError for what XML cannot carry: an event type other than the five of EPCIS 2.0,
    or a ``prefix:name`` key whose prefix ``@context`` does not define.
    """
    data: bytes = etree.tostring(_Writer(document).tree(), xml_declaration=True, encoding="UTF-8")
    return data


def xml_parts(document: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """``document_to_xml(document)`` cut as (head, events, tail): the head ends with
    ``<EventList>`` and the tail starts with ``</EventList>``, so that a long document can
    be streamed as one head, the events of each of its parts, and one tail."""
    data = document_to_xml(document)
    start = data.index(b"<EventList>") + len(b"<EventList>")
    end = data.rindex(b"</EventList>")
    return data[:start], data[start:end], data[end:]


def events_to_xml(document: Mapping[str, Any]) -> bytes:
    """The XML of ``document``'s events alone (``xml_parts``' middle part)."""
    return xml_parts(document)[1]


class _Writer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.namespaces: dict[str, str] = dict(_KNOWN_XML)
        context = document.get("@context", [])
        for entry in context if isinstance(context, list) else [context]:
            if isinstance(entry, Mapping):
                for prefix, uri in entry.items():
                    if isinstance(uri, str) and prefix not in _KNOWN_XML:
                        self.namespaces[prefix] = uri

    def tree(self) -> Any:
        document = self.document
        kind = _term(document.get("type", document.get("isA")))
        if kind not in ("EPCISDocument", "EPCISQueryDocument"):
            raise ValueError("type is neither EPCISDocument nor EPCISQueryDocument")
        if "creationDate" not in document:
            raise ValueError("an EPCIS document needs its creationDate")
        query = kind == "EPCISQueryDocument"
        nsmap = {"epcis": EPCIS_2, **self.namespaces}
        if query:
            nsmap["epcisq"] = _QUERY_2
        root = etree.Element(f"{{{_QUERY_2 if query else EPCIS_2}}}{kind}", nsmap=nsmap)
        root.set("schemaVersion", "2.0")
        root.set("creationDate", str(document["creationDate"]))
        body = etree.SubElement(root, "EPCISBody")
        epcis_body = document.get("epcisBody", {})
        if query:
            results = epcis_body.get("queryResults", {})
            parent = etree.SubElement(body, f"{{{_QUERY_2}}}QueryResults")
            etree.SubElement(parent, "queryName").text = str(results.get("queryName", ""))
            if "subscriptionID" in results:
                etree.SubElement(parent, "subscriptionID").text = str(results["subscriptionID"])
            parent = etree.SubElement(parent, "resultsBody")
            events = results.get("resultsBody", {}).get("eventList", [])
        else:
            parent = body
            events = epcis_body.get("eventList", [])
        event_list = etree.SubElement(parent, "EventList")
        event_list.text = ""  # <EventList></EventList>: xml_parts cuts between the two
        for event in events:
            self._event(event_list, event)
        if not query:
            for key, value in document.items():
                if ":" in key and not key.startswith("@"):
                    self._extension(root, key, value)
        return root

    def _event(self, parent: Any, event: Mapping[str, Any]) -> None:
        kind = _term(event.get("type", event.get("isA")))
        if kind not in _ORDER:
            raise ValueError(f"EPCIS 2.0 XML has no event type {kind!r}")
        element = etree.SubElement(parent, kind)
        for name in _ORDER[kind]:
            if name in event:
                self._field(element, name, event[name])
            elif name == "action" or (name == "bizTransactionList" and kind == "TransactionEvent"):
                raise ValueError(f"a {kind} needs {name}")
        for key, value in event.items():
            if ":" in key and not key.startswith("@"):
                self._extension(element, key, value)

    def _field(self, parent: Any, name: str, value: Any) -> None:
        element = etree.SubElement(parent, name)
        if name in ("bizStep", "disposition"):
            element.text = _cbv_urn(name, value)
        elif name in _EPC_LISTS:
            for epc in value:
                etree.SubElement(element, "epc").text = str(epc)
        elif name in _QUANTITY_LISTS:
            for quantity in value:
                item = etree.SubElement(element, "quantityElement")
                etree.SubElement(item, "epcClass").text = str(quantity["epcClass"])
                if "quantity" in quantity:
                    etree.SubElement(item, "quantity").text = _decimal_text(quantity["quantity"])
                    if "uom" in quantity:
                        etree.SubElement(item, "uom").text = str(quantity["uom"])
        elif name in ("readPoint", "bizLocation"):
            etree.SubElement(element, "id").text = str(value["id"])
            self._extensions(element, value)
        elif name == "bizTransactionList":
            for transaction in value:
                item = etree.SubElement(element, "bizTransaction")
                if "type" in transaction:
                    item.set("type", _cbv_urn("btt", transaction["type"]))
                item.text = str(transaction["bizTransaction"])
        elif name in ("sourceList", "destinationList"):
            key = name.removesuffix("List")
            for entry in value:
                item = etree.SubElement(element, key)
                item.set("type", _cbv_urn("sdt", entry["type"]))
                item.text = str(entry[key])
        elif name == "sensorElementList":
            for sensor in value:
                item = etree.SubElement(element, "sensorElement")
                if "sensorMetadata" in sensor:
                    self._attributes(
                        etree.SubElement(item, "sensorMetadata"), sensor["sensorMetadata"]
                    )
                for report in sensor.get("sensorReport", []):
                    self._attributes(etree.SubElement(item, "sensorReport"), report)
                self._extensions(item, sensor)
        elif name == "persistentDisposition":
            for key in ("unset", "set"):  # the XSD's order
                for disposition in value.get(key, []):
                    etree.SubElement(element, key).text = _cbv_urn("disposition", disposition)
        elif name == "ilmd":
            self._extensions(element, value)
        elif name == "errorDeclaration":
            if "declarationTime" in value:
                etree.SubElement(element, "declarationTime").text = str(value["declarationTime"])
            if "reason" in value:
                etree.SubElement(element, "reason").text = _cbv_urn("er", value["reason"])
            if "correctiveEventIDs" in value:
                ids = etree.SubElement(element, "correctiveEventIDs")
                for event_id in value["correctiveEventIDs"]:
                    etree.SubElement(ids, "correctiveEventID").text = str(event_id)
            self._extensions(element, value)
        else:
            element.text = str(value)

    def _attributes(self, element: Any, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if ":" in key:
                prefix, _, local = key.partition(":")
                element.set(f"{{{self._namespace(prefix)}}}{local}", _scalar(value))
            elif key == "type" and isinstance(value, str) and _CBV_TERM.fullmatch(value):
                element.set(key, f"gs1:{value}")
            else:
                element.set(key, _scalar(value))

    def _extensions(self, element: Any, values: Mapping[str, Any], nested: bool = False) -> None:
        """The ``prefix:name`` keys of ``values`` as elements; inside a user's element
        (``nested``) an unprefixed key is an unqualified element of its own."""
        for key, value in values.items():
            if (nested or ":" in key) and not key.startswith("@"):
                self._extension(element, key, value)

    def _extension(self, parent: Any, key: str, value: Any) -> None:
        prefix, colon, local = key.partition(":")
        tag = f"{{{self._namespace(prefix)}}}{local}" if colon else key
        for item in value if isinstance(value, list) else [value]:
            element = etree.SubElement(parent, tag)
            if isinstance(item, Mapping):
                self._extensions(element, item, nested=True)
            else:
                element.text = _scalar(item)

    def _namespace(self, prefix: str) -> str:
        if prefix not in self.namespaces:
            raise ValueError(f"the prefix {prefix!r} is not defined in @context")
        return self.namespaces[prefix]


def _term(value: Any) -> Any:
    return value.rpartition(":")[2] if isinstance(value, str) else value


def _cbv_urn(vocabulary: str, value: Any) -> str:
    text = str(value)
    if _CBV_TERM.fullmatch(text):
        return _CBV[vocabulary][0] + text
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decimal_text(value: Any) -> str:
    """xsd:decimal has no exponent: 1e-05 is written 0.00001."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"quantity {value!r} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"quantity {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"quantity {value!r} is not a number")
    return format(number, "f")
