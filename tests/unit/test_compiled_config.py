"""A compiled document parses to exactly what its objects parse to."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain.config import (
    ANNEX_KEYS,
    SECTION_KEYS,
    SECTIONS,
    ObjectFields,
    document_sections,
    int_column,
    parse_section,
)
from lrm.domain.vocabulary import Vocabulary
from lrm.store import compiled_config
from lrm.store.compiled_config import compile_document, compiled_sections
from tests.strategies import documents

ODD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.just(10**20),
                       st.text(max_size=3),
                       st.floats(allow_nan=False), st.lists(st.integers(-2, 5), max_size=3))


@st.composite
def odd_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Documents with malformed attributes and objects mixed in."""
    document = draw(documents())
    for section in ("persons", "dns", "places", "agent-groups"):
        for obj in document[section]:
            for key in list(obj):
                if draw(st.integers(0, 9)) == 0:
                    obj[key] = draw(ODD_VALUES)
        if draw(st.booleans()):
            document[section].append(draw(st.one_of(ODD_VALUES, st.just({"DBID": "7"}))))
    return document


@given(st.one_of(documents(), odd_documents()))
def test_compiled_sections_equal_the_parsed_objects(document: dict[str, Any]) -> None:
    vocabulary_a, vocabulary_b = Vocabulary(("chat", "email")), Vocabulary(("chat", "email"))
    compiled = compiled_sections(compile_document(document), vocabulary_a)
    for section, objects in document_sections(document).items():
        expected = parse_section(section, ObjectFields(objects), vocabulary_b)
        got = compiled[section]
        assert len(got.columns) == len(expected.columns)
        for a, b in zip(got.columns, expected.columns, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), section
    assert set(compiled) == set(SECTIONS)


def _format_1(document: dict[str, Any]) -> bytes:
    """A document compiled as lrm wrote it before format 2: every attribute that is not read
    as integers kept as the JSON of each object's value."""
    arrays: dict[str, Any] = {}
    for section, objects in document_sections(document).items():
        fields = ObjectFields(objects)
        arrays[section + ":size"] = np.array([len(objects)], dtype=np.int64)
        for key, kind in SECTION_KEYS[section].items():
            arrays[f"{section}.{key}"] = (int_column(fields.values(key)) if kind == "ints"
                                          else _json(fields.values(key)))
        for key in ANNEX_KEYS[section]:
            arrays[f"{section}~{key}"] = _json(fields.annex(key))
    blob = compiled_config._pack(arrays)
    assert blob.count(b'"format": 2') == 1
    return blob.replace(b'"format": 2', b'"format": 1')


def _json(values: list[Any]) -> Any:
    return np.frombuffer(json.dumps(values, separators=(",", ":")).encode(), dtype=np.uint8)


@given(st.one_of(documents(), odd_documents()))
def test_documents_compiled_in_format_1_are_still_read(document: dict[str, Any]) -> None:
    vocabulary_a, vocabulary_b = Vocabulary(("chat", "email")), Vocabulary(("chat", "email"))
    old = compiled_sections(_format_1(document), vocabulary_a)
    new = compiled_sections(compile_document(document), vocabulary_b)
    for section in SECTIONS:
        for a, b in zip(old[section].columns, new[section].columns, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), section


def test_text_attributes_are_kept_once_per_distinct_value() -> None:
    persons = [{"DBID": i, "userProperties": {"lrm": {"media": "chat,email" if i % 2 else
                                                      ["chat"], "desktop": "workspace"}}}
               for i in range(1, 1001)]
    blob = compile_document({"persons": persons})
    _, arrays = compiled_config._unpack(blob)
    assert json.loads(arrays["persons~media:distinct"].tobytes()) == ["chat,email", ["chat"]]
    assert json.loads(arrays["persons~desktop:distinct"].tobytes()) == ["workspace"]
    assert arrays["persons~media"].dtype == np.int32
    sections = compiled_sections(blob, Vocabulary(("chat", "email")))
    _, _, media, desktop, _ = sections["persons"].columns
    assert media.tolist() == [1 if i % 2 == 0 else 3 for i in range(1, 1001)]
    assert len(set(desktop.tolist())) == 1
