"""A compiled document parses to exactly what its objects parse to."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain.config import SECTIONS, ObjectFields, document_sections, parse_section
from lrm.domain.vocabulary import Vocabulary
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
