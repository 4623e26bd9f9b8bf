"""A full configuration document's counting attributes as arrays (`config_document.compiled`).

A provider's document is large (half a million persons make a 160 MB JSON document) and the
nightly job needs only a few attributes of each object. When a full document is stored, those
attributes (`SECTION_KEYS`, `ANNEX_KEYS`) are written beside it as one `.npz` archive: integer
attributes as the `int_column` the parsers would make, the others (switch types, media,
desktops, group members) as their JSON values. Reading it back is a few array loads instead of
parsing the JSON, and it does not depend on the vocabulary: the parsers run on it as on the
objects (`CompiledFields` is a `Fields`), so the result is the same by construction.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.domain.config import (
    ANNEX_KEYS,
    INT_KEYS,
    SECTION_KEYS,
    SECTIONS,
    ObjectFields,
    RawSection,
    document_sections,
    int_column,
    parse_section,
)
from lrm.domain.vocabulary import Vocabulary

_SIZE = ":size"


def compile_document(document: Mapping[str, Any]) -> bytes:
    """The compiled form of a whole document."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    for section, objects in document_sections(document).items():
        fields = ObjectFields(objects)
        arrays[section + _SIZE] = np.array([len(objects)], dtype=np.int64)
        for key in SECTION_KEYS[section]:
            arrays[f"{section}.{key}"] = _encode(fields.values(key), key in INT_KEYS)
        for key in ANNEX_KEYS[section]:
            arrays[f"{section}~{key}"] = _encode(fields.annex(key), False)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def compiled_sections(blob: bytes, vocabulary: Vocabulary) -> dict[str, RawSection]:
    """Every section of a compiled document, parsed with `vocabulary`."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return {section: parse_section(section, CompiledFields(arrays, section), vocabulary)
            for section in SECTIONS}


def _encode(values: Sequence[Any] | npt.NDArray[np.int64], ints: bool) -> npt.NDArray[Any]:
    if ints:
        return int_column(values)
    assert not isinstance(values, np.ndarray)
    return np.frombuffer(json.dumps(values, separators=(",", ":")).encode(), dtype=np.uint8)


class CompiledFields:
    """`Fields` of one section of a compiled document."""

    def __init__(self, arrays: Mapping[str, npt.NDArray[Any]], section: str) -> None:
        self.arrays = arrays
        self.section = section

    def __len__(self) -> int:
        return int(self.arrays[self.section + _SIZE][0])

    def values(self, key: str) -> Sequence[Any] | npt.NDArray[np.int64]:
        column = self.arrays[f"{self.section}.{key}"]
        return column if key in INT_KEYS else _decode(column)

    def annex(self, key: str) -> Sequence[Any]:
        return _decode(self.arrays[f"{self.section}~{key}"])


def _decode(column: npt.NDArray[Any]) -> list[Any]:
    values: list[Any] = json.loads(column.tobytes())
    return values
