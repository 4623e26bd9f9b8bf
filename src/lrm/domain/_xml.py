"""A minimal, safe XML reader for the uploaded bundle-set and entitlement files.

It builds a small element tree that remembers the line of every element, so validation
messages can say where a problem is. DOCTYPE and entity declarations are refused (no entity
expansion, no external resources)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from xml.parsers import expat

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class XmlError(Exception):
    """The document is not well-formed XML, or uses a refused feature."""


@dataclass
class Node:
    tag: str
    attrib: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def all(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def where(self) -> str:
        return f"line {self.line}"


def parse_xml(data: str | bytes) -> Node:
    """Parse `data`; raise XmlError with the line and column of the first error."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    root: list[Node] = []

    def refuse_doctype(*_: object) -> None:
        raise XmlError(f"line {parser.CurrentLineNumber}: DOCTYPE declarations are not allowed")

    def refuse_entity(*_: object) -> None:
        raise XmlError(f"line {parser.CurrentLineNumber}: entity declarations are not allowed")

    def start(tag: str, attrib: dict[str, str]) -> None:
        node = Node(tag, dict(attrib), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_: str) -> None:
        stack.pop()

    def text(chunk: str) -> None:
        if stack:
            stack[-1].text += chunk

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        if isinstance(data, str):
            parser.Parse(data.encode("utf-8"), True)
        else:
            parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlError(f"malformed XML at line {exc.lineno}, column {exc.offset + 1}: "
                         f"{expat.ErrorString(exc.code)}") from exc
    if not root:
        raise XmlError("the document has no root element")
    return root[0]


def parse_date(value: str | None, what: str, where: str, problems: list[str]) -> date | None:
    """A YYYY-MM-DD attribute; appends a problem and returns None when missing or invalid."""
    if value is None:
        problems.append(f"{where}: {what} is missing")
        return None
    text = value.strip()
    if not _DATE.match(text):
        problems.append(f"{where}: {what} {value!r} is not a date in YYYY-MM-DD form")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{where}: {what} {value!r} is not a valid date")
        return None


def parse_id(value: str | None, what: str, where: str, problems: list[str], *,
             minimum: int) -> int | None:
    """A numeric id attribute (digits only) of at least `minimum`."""
    if value is None:
        problems.append(f"{where}: {what} is missing")
        return None
    text = value.strip()
    if not text.isdigit():
        problems.append(f"{where}: {what} {value!r} is not numeric")
        return None
    number = int(text)
    if number < minimum:
        problems.append(f"{where}: {what} {number} is below {minimum}")
        return None
    return number


def check_attributes(node: Node, allowed: set[str], problems: list[str]) -> None:
    unknown = sorted(set(node.attrib) - allowed)
    if unknown:
        problems.append(f"{node.where()}: <{node.tag}> has unknown attribute(s) "
                        f"{', '.join(unknown)}")


def check_children(node: Node, allowed: set[str], problems: list[str]) -> None:
    for child in node.children:
        if child.tag not in allowed:
            problems.append(f"{child.where()}: unexpected element <{child.tag}> in <{node.tag}>")


def header(node: Node, what: str, problems: list[str]) -> tuple[str, str]:
    """(name, description) from the single <header> of `node`."""
    headers = node.all("header")
    if not headers:
        problems.append(f"{node.where()}: {what} has no <header>")
        return "", ""
    if len(headers) > 1:
        problems.append(f"{headers[1].where()}: {what} has more than one <header>")
    head = headers[0]
    check_children(head, {"name", "description"}, problems)
    names = head.all("name")
    descriptions = head.all("description")
    name = names[0].text.strip() if names else ""
    if not name:
        problems.append(f"{head.where()}: {what} header has no <name>")
    if len(names) > 1:
        problems.append(f"{names[1].where()}: {what} header has more than one <name>")
    if len(descriptions) > 1:
        problems.append(f"{descriptions[1].where()}: {what} header has more than one "
                        "<description>")
    return name, descriptions[0].text.strip() if descriptions else ""


LICENSE_TYPES = {
    "concurrent": "concurrent_seat", "concurrent_seat": "concurrent_seat",
    "enabled": "enabled_seat", "enabled_seat": "enabled_seat",
    "port": "port_peak", "ports": "port_peak", "port_peak": "port_peak",
}


def license_type(value: str) -> str | None:
    """The catalogue kind named by a license_type attribute ("concurrent seat",
    "concurrent_seat", "Enabled-Seat"…), or None when it names none."""
    return LICENSE_TYPES.get(re.sub(r"[\s\-]+", "_", value.strip().lower()))
