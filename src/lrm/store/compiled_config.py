"""A full configuration document's counting attributes as arrays (`config_document.compiled`).

A provider's document is large (half a million persons make a 160 MB JSON document) and the
nightly job needs only a few attributes of each object. When a full document is stored, those
attributes (`SECTION_KEYS`, `ANNEX_KEYS`) are written beside it as named arrays: integer
attributes as the `int_column` the parsers would make, group members as their `IntLists` (a
length per group and one column of every member), the others (switch types, media, desktops)
as their `CodedValues` (the JSON of the distinct values and a code per object: a parser
converts each distinct value once, not half a million times). Format 1, still read, kept
those other attributes as the JSON of every object's value.

The layout is a JSON header (name, dtype, length, offset of each array) followed by the
arrays' bytes, so that reading is `np.frombuffer` views (no copy, no checksum pass as `.npz`
would make). Reading it back is a few array loads instead of parsing the JSON, and it does not
depend on the vocabulary: the parsers run on it as on the objects (`CompiledFields` is a
`Fields`), so the result is the same by construction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain.config import (
    ANNEX_KEYS,
    SECTION_KEYS,
    SECTIONS,
    CodedValues,
    IntLists,
    ObjectFields,
    RawSection,
    document_sections,
    int_column,
    parse_section,
)
from lrm.domain.vocabulary import Vocabulary

_SIZE = ":size"
_MAGIC = b"LRMCFG\0"
_DISTINCT = ":distinct"
_FLAT = ":flat"
_FORMAT = 2
_READABLE = (1, 2)


def compile_document(document: Mapping[str, Any]) -> bytes:
    """The compiled form of a whole document."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    for section, objects in document_sections(document).items():
        fields = ObjectFields(objects)
        arrays[section + _SIZE] = np.array([len(objects)], dtype=np.int64)
        for key, kind in SECTION_KEYS[section].items():
            name = f"{section}.{key}"
            if kind == "ints":
                arrays[name] = int_column(fields.values(key))
            elif kind == "int_lists":
                lists = IntLists.of(fields.values(key))
                arrays[name], arrays[name + _FLAT] = lists.lengths, lists.flat
            else:
                _put_coded(arrays, name, fields.values(key))
        for key in ANNEX_KEYS[section]:
            _put_coded(arrays, f"{section}~{key}", fields.annex(key))
    return _pack(arrays)


def _put_coded(arrays: dict[str, npt.NDArray[Any]], name: str, values: list[Any]) -> None:
    coded = CodedValues.of(values)
    arrays[name] = coded.codes
    arrays[name + _DISTINCT] = np.frombuffer(
        json.dumps(coded.distinct, separators=(",", ":")).encode(), dtype=np.uint8)


def compiled_sections(blob: bytes, vocabulary: Vocabulary) -> dict[str, RawSection]:
    """Every section of a compiled document, parsed with `vocabulary`."""
    version, arrays = _unpack(blob)
    return {section: parse_section(section, CompiledFields(arrays, section, version),
                                   vocabulary)
            for section in SECTIONS}


def _pack(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    header: list[dict[str, Any]] = []
    offset = 0
    for name, array in arrays.items():
        header.append({"name": name, "dtype": array.dtype.str, "count": int(array.size),
                       "offset": offset})
        offset += -(-array.nbytes // 8) * 8  # each array 8-byte aligned
    head = json.dumps({"format": _FORMAT, "arrays": header}).encode()
    out = bytearray(_MAGIC + len(head).to_bytes(4, "little") + head)
    out += bytes(-len(out) % 8)
    body_start = len(out)
    out += bytes(offset)
    for entry, array in zip(header, arrays.values(), strict=True):
        at = body_start + entry["offset"]
        out[at:at + array.nbytes] = np.ascontiguousarray(array).tobytes()
    return bytes(out)


def _unpack(blob: bytes) -> tuple[int, dict[str, npt.NDArray[Any]]]:
    if blob[:len(_MAGIC)] != _MAGIC:
        raise ValueError("not a compiled configuration document")
    size = int.from_bytes(blob[len(_MAGIC):len(_MAGIC) + 4], "little")
    head_end = len(_MAGIC) + 4 + size
    head = json.loads(blob[len(_MAGIC) + 4:head_end])
    version = head["format"]
    if version not in _READABLE:
        raise ValueError(f"compiled configuration format {version} is not one of {_READABLE}")
    body_start = head_end + (-head_end % 8)
    arrays = {entry["name"]: np.frombuffer(blob, dtype=np.dtype(entry["dtype"]),
                                           count=entry["count"],
                                           offset=body_start + entry["offset"])
              for entry in head["arrays"]}
    return version, arrays


class CompiledFields:
    """`Fields` of one section of a compiled document."""

    def __init__(self, arrays: Mapping[str, npt.NDArray[Any]], section: str,
                 version: int = _FORMAT) -> None:
        self.arrays = arrays
        self.section = section
        self.version = version

    def __len__(self) -> int:
        return int(self.arrays[self.section + _SIZE][0])

    def ints(self, key: str) -> npt.NDArray[np.int64]:
        return self.arrays[f"{self.section}.{key}"]

    def texts(self, key: str) -> Sequence[Any] | CodedValues:
        return self._coded(f"{self.section}.{key}")

    def int_lists(self, key: str) -> Sequence[Any] | IntLists:
        name = f"{self.section}.{key}"
        if self.version == 1:
            return _decode(self.arrays[name])
        return IntLists(self.arrays[name], self.arrays[name + _FLAT])

    def annex(self, key: str) -> Sequence[Any] | CodedValues:
        return self._coded(f"{self.section}~{key}")

    def _coded(self, name: str) -> Sequence[Any] | CodedValues:
        if self.version == 1:
            return _decode(self.arrays[name])
        return CodedValues(_decode(self.arrays[name + _DISTINCT]), self.arrays[name])


def _decode(column: npt.NDArray[Any]) -> list[Any]:
    values: list[Any] = json.loads(column.tobytes())
    return values
