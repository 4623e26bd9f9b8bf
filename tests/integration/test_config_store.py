"""Configuration samples in the LRM DB: stored in full or as edits of an earlier document, read
back whole (`samples_between`) and as the counting core's history (`HistoryLoader`), which must
equal `build_config_history` over the whole documents whatever way they were stored."""

from __future__ import annotations

import copy
import itertools
import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrm.domain.config import ConfigHistory, build_config_history
from lrm.domain.vocabulary import Vocabulary
from lrm.store import config_samples
from lrm.store.config_samples import DELTA, HistoryLoader, ListHashes, SampleBase, store_sample
from lrm.store.schema import config_document, config_sample
from tests.strategies import changed, documents, person

VOCABULARY_MEDIA = ("chat", "email", "sms")
T0 = datetime(2026, 11, 24, tzinfo=UTC)
# A separate stretch of time per hypothesis example, so one database serves them all.
_EXAMPLES = itertools.count()


def padded(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with 100 plain persons more, so that a few changes are a small share of it
    (a sample is stored as an edit only then)."""
    out = copy.deepcopy(document)
    out["persons"] = out["persons"] + [person(20_000 + k, 101 + k % 2, media="chat")
                                       for k in range(100)]
    return out


def stored_json(body: bytes) -> dict[str, Any]:
    """What `config_document.body` holds."""
    value: dict[str, Any] = json.loads(zlib.decompress(body))
    return value


def as_lists(history: ConfigHistory) -> list[dict[str, Any]]:
    return [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in index.__dict__.items()} for index in history.indexes]


def store_all(engine: sa.Engine, start: datetime, docs: list[dict[str, Any]],
              base: SampleBase | None = None, *, compact: bool = False) -> SampleBase | None:
    """Store `docs` ten minutes apart, as a back-fill does (the base and the list hashes
    carried across commits) or, `compact`, as the sampler does (a digests-only base)."""
    hashes = ListHashes()
    for k, doc in enumerate(docs):
        with engine.begin() as c:
            stored = store_sample(c, start + timedelta(minutes=10 * k), doc, "test", base=base,
                                  hashes=None if compact else hashes)
        base = stored.base.compact() if compact and stored.base is not None else stored.base
    return base


def check_read_back(engine: sa.Engine, start: datetime, docs: list[dict[str, Any]]) -> None:
    end = start + timedelta(minutes=10 * len(docs))
    voc = Vocabulary(VOCABULARY_MEDIA)
    with engine.connect() as c:
        samples = config_samples.samples_between(c, start, end)
        loaded = HistoryLoader(c, voc).history(start, end)
    # Whole documents come back as stored (consecutive equal ones were not stored twice).
    distinct = [d for k, d in enumerate(docs) if k == 0 or d != docs[k - 1]]
    assert [d for _, d in samples] == distinct
    expected = build_config_history([(int(t.timestamp()), d) for t, d in samples], voc)
    assert as_lists(loaded) == as_lists(expected)
    assert loaded.times.tolist() == expected.times.tolist()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents(), st.lists(st.sampled_from(["change", "same", "revert"]), min_size=1,
                             max_size=5), st.booleans(), st.data())
def test_edits_read_back_as_the_documents_they_stand_for(
        lrm_engine: sa.Engine, first: dict[str, Any], steps: list[str], compact: bool,
        data: st.DataObject) -> None:
    docs = [padded(first)]
    for step in steps:
        if step == "change":
            docs.append(data.draw(changed(docs[-1])))
        elif step == "same":
            docs.append(copy.deepcopy(docs[-1]))
        else:  # back to an earlier document: its row is shared, not stored again
            docs.append(copy.deepcopy(docs[0]))
    start = T0 + timedelta(days=next(_EXAMPLES))
    store_all(lrm_engine, start, docs, compact=compact)
    check_read_back(lrm_engine, start, docs)


def test_small_changes_are_stored_as_edits_of_a_full_document(lrm_engine: sa.Engine) -> None:
    base = padded({"tenants": [{"DBID": 101}, {"DBID": 102}], "persons": []})
    second = copy.deepcopy(base)
    second["persons"][5]["state"] = 2
    second["persons"].append(person(30_000, 102))
    third = copy.deepcopy(second)
    del third["persons"][0]
    store_all(lrm_engine, T0, [base, second, third])
    with lrm_engine.connect() as c:
        rows = c.execute(sa.select(config_document.c.id, config_document.c.base_id,
                                   config_document.c.body)
                         .order_by(config_document.c.id)).all()
    bodies = [stored_json(r.body) for r in rows]
    assert DELTA not in bodies[0] and rows[0].base_id is None
    assert [b[DELTA]["base"] for b in bodies[1:]] == [rows[0].id, rows[0].id]
    assert [r.base_id for r in rows[1:]] == [rows[0].id, rows[0].id]
    edit = bodies[1][DELTA]["changes"]["persons"]["ops"]
    assert edit == [{"keep": [0, 5]}, {"add": [second["persons"][5]]}, {"keep": [6, 100]},
                    {"add": [person(30_000, 102)]}]
    check_read_back(lrm_engine, T0, [base, second, third])


def test_a_compact_base_makes_the_same_edits(lrm_engine: sa.Engine) -> None:
    base = padded({"tenants": [{"DBID": 101}], "persons": []})
    edited = copy.deepcopy(base)
    edited["persons"][3]["state"] = 2
    store_all(lrm_engine, T0, [base, edited], compact=True)
    with lrm_engine.connect() as c:
        bodies = [stored_json(b) for b in c.execute(
            sa.select(config_document.c.body).order_by(config_document.c.id)).scalars()]
    assert bodies[1][DELTA]["changes"] == {"persons": {"ops": [
        {"keep": [0, 3]}, {"add": [edited["persons"][3]]}, {"keep": [4, 100]}]}}
    check_read_back(lrm_engine, T0, [base, edited])


def test_objects_edited_in_place_are_found_position_by_position(lrm_engine: sa.Engine) -> None:
    base = padded({"tenants": [{"DBID": 101}], "persons": []})
    edited = copy.deepcopy(base)
    for k in (0, 1, 7, 99):
        edited["persons"][k]["state"] = 2
    same_lists = {**edited, "persons": edited["persons"]}  # a new document, the same lists
    store_all(lrm_engine, T0, [base, edited, same_lists])
    with lrm_engine.connect() as c:
        documents_ = [stored_json(b) for b in c.execute(
            sa.select(config_document.c.body).order_by(config_document.c.id)).scalars()]
    assert len(documents_) == 2
    p = edited["persons"]
    assert documents_[1][DELTA]["changes"] == {"persons": {"ops": [
        {"add": [p[0], p[1]]}, {"keep": [2, 7]}, {"add": [p[7]]}, {"keep": [8, 99]},
        {"add": [p[99]]}]}}
    check_read_back(lrm_engine, T0, [base, edited, same_lists])


def test_equal_documents_have_equal_hashes_whatever_their_objects() -> None:
    """The hash of a list is remembered per list object; equal documents made of other objects
    hash the same, and a list changed into a new object hashes anew."""
    document = padded({"tenants": [{"DBID": 101}], "persons": []})
    hashes = ListHashes()
    first = hashes.content_hash(document)
    assert hashes.content_hash(document) == first == ListHashes().content_hash(
        copy.deepcopy(document))
    changed_ = {**document, "persons": document["persons"][:-1]}
    assert hashes.content_hash(changed_) != first
    assert hashes.content_hash({**document, "extra": 1}) != first


def test_a_large_change_is_stored_in_full(lrm_engine: sa.Engine) -> None:
    base = padded({"tenants": [{"DBID": 101}], "persons": []})
    renamed = copy.deepcopy(base)
    for p in renamed["persons"][:50]:
        p["userName"] += "-new"
    store_all(lrm_engine, T0, [base, renamed])
    with lrm_engine.connect() as c:
        documents_ = [stored_json(b) for b in c.execute(
            sa.select(config_document.c.body)).scalars()]
    assert all(DELTA not in d for d in documents_)
    check_read_back(lrm_engine, T0, [base, renamed])


def test_unusual_documents_read_back_exactly(lrm_engine: sa.Engine) -> None:
    """Sections that are not lists, objects without DBIDs or with repeated or non-integer
    DBIDs, attributes some objects lack, the alternative group spellings, a removed section:
    the history is still exactly `build_config_history`'s."""
    good = padded({"tenants": [{"DBID": 101}, {"DBID": 102}], "persons": []})
    odd = copy.deepcopy(good)
    odd["persons"] += [{"DBID": 20_001, "tenantDBID": 102, "isAgent": 2, "state": 1},
                       {"DBID": "20002", "tenantDBID": 101}, {"name": "no DBID"}, "junk"]
    odd["dns"] = {"not": "a list"}
    odd["agentGroups"] = [{"DBID": 7001, "tenantDBID": 101, "members": [20_000, 20_001]}]
    missing = copy.deepcopy(good)
    del missing["tenants"]
    for p in missing["persons"][::7]:
        del p["userProperties"]
        del p["state"]
    docs = [good, odd, missing, good]
    store_all(lrm_engine, T0, docs)
    check_read_back(lrm_engine, T0, docs)


def test_a_new_process_continues_from_the_document_in_force(lrm_engine: sa.Engine) -> None:
    """A sampler that starts (no base held) finds the stored document in force unchanged and
    stores the next change as an edit of it; edits of edits stay a few steps from a full one."""
    docs = [padded({"tenants": [{"DBID": 101}], "persons": []})]
    for k in range(8):
        nxt = copy.deepcopy(docs[-1])
        nxt["persons"][k]["state"] = 2
        docs.append(nxt)
    store_all(lrm_engine, T0, docs[:3])
    # A restart before each later change: the new process holds no base; its first sample
    # finds the document in force unchanged and takes it as the base for the next change.
    for k in range(3, len(docs)):
        with lrm_engine.begin() as c:
            restarted = store_sample(c, T0 + timedelta(minutes=10 * k - 5), docs[k - 1], "test")
        assert not restarted.written
        store_all(lrm_engine, T0 + timedelta(minutes=10 * k), [docs[k]], base=restarted.base)
    with lrm_engine.connect() as c:
        bases = {r.id: r.base_id for r in c.execute(
            sa.select(config_document.c.id, config_document.c.base_id))}

    def depth(document_id: int) -> int:
        base = bases[document_id]
        return 0 if base is None else 1 + depth(base)

    depths = [depth(i) for i in bases]
    assert max(depths) <= config_samples.MAX_DEPTH
    assert sum(d > 0 for d in depths) >= 4
    check_read_back(lrm_engine, T0, docs)


def test_an_edit_of_a_section_spelt_otherwise_reads_back_exactly(lrm_engine: sa.Engine) -> None:
    """A base whose agent groups are under `agentGroups` (a spelling the parsers accept): an
    edit of that list must not be patched onto the canonical section as if nothing changed."""
    base = padded({"tenants": [{"DBID": 101}], "persons": []})
    base["agentGroups"] = [{"DBID": 7000 + k, "tenantDBID": 101, "members": [20_000 + k]}
                           for k in range(100)]
    moved = copy.deepcopy(base)
    moved["agentGroups"][5]["members"] = [20_006]
    store_all(lrm_engine, T0, [base, moved])
    with lrm_engine.connect() as c:
        bodies = [stored_json(b) for b in c.execute(
            sa.select(config_document.c.body).order_by(config_document.c.id)).scalars()]
    assert "agentGroups" in bodies[1][DELTA]["changes"]  # stored as an edit
    check_read_back(lrm_engine, T0, [base, moved])


def test_documents_without_a_compiled_form_are_read_from_their_json(
        lrm_engine: sa.Engine) -> None:
    """Documents stored before documents were compiled (and the edits of them) read back the
    same, from the JSON objects."""
    base = padded({"tenants": [{"DBID": 101}, {"DBID": 102}], "persons": []})
    second = copy.deepcopy(base)
    second["persons"][3]["tenantDBID"] = 101
    store_all(lrm_engine, T0, [base, second])
    with lrm_engine.begin() as c:
        assert c.execute(sa.update(config_document).values(compiled=None)).rowcount == 2
    check_read_back(lrm_engine, T0, [base, second])


def test_a_base_is_used_only_while_its_row_holds_the_same_document(
        lrm_engine: sa.Engine) -> None:
    """A database recreated or restored hands out the same ids with other content: a base
    held from before must then not be edited against (the change is stored in full)."""
    base_doc = padded({"tenants": [{"DBID": 101}], "persons": []})
    base = store_all(lrm_engine, T0, [base_doc])
    assert base is not None
    impostor = padded({"tenants": [{"DBID": 999}], "persons": []})
    with lrm_engine.begin() as c:
        c.execute(sa.delete(config_sample))
        c.execute(sa.update(config_document).where(config_document.c.id == base.document_id)
                  .values(content_hash="another document", body=zlib.compress(
                      json.dumps(impostor).encode()), compiled=None))
    edited = copy.deepcopy(base_doc)
    edited["persons"][0]["state"] = 2
    store_all(lrm_engine, T0, [edited], base=base)
    check_read_back(lrm_engine, T0, [edited])
