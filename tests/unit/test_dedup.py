"""ICON HA de-duplication against a dictionary-based oracle, with GUID keys drawn from a tiny
space so that copies, and GUIDs sharing a high half, are common."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain.dedup import NULL, MergeResult, RawSessions, merge_copies, merge_parts

ROW = st.tuples(st.sampled_from([-3, 0, 5]), st.integers(0, 2),      # guid hi, lo
                st.integers(1, 3),                                    # agent
                st.integers(0, 100), st.one_of(st.just(NULL), st.integers(0, 200)),
                st.integers(1, 9))                                    # place


def table(rows: list[tuple[int, ...]]) -> RawSessions:
    def col(k: int) -> Any:
        return np.array([r[k] for r in rows], dtype=np.int64)

    return RawSessions(guid_hi=col(0), guid_lo=col(1), agent=col(2), login=col(2) + 10,
                       place=col(5), dn=col(5) + 100, created=col(3), terminated=col(4),
                       provider_tag=col(5) % 2)


def oracle(rows: list[tuple[int, ...]]) -> tuple[dict[tuple[int, int], tuple[int, ...]],
                                                  int, int]:
    """Per GUID: (agent, place, created, terminated) of the merged session, or nothing when
    the copies disagree on the agent; and the conflict and ends-from-partner counts."""
    groups: dict[tuple[int, int], list[tuple[int, ...]]] = {}
    for r in rows:
        groups.setdefault((r[0], r[1]), []).append(r)
    merged, conflicts, partner_ends = {}, 0, 0
    for key, copies in groups.items():
        if len({c[2] for c in copies}) > 1:
            conflicts += 1
            continue
        ended = [c for c in copies if c[4] != NULL]
        representative = (ended or copies)[0]
        partner_ends += bool(ended) and len(ended) < len(copies)
        merged[key] = (representative[2], representative[5], min(c[3] for c in copies),
                       max(c[4] for c in copies))
    return merged, conflicts, partner_ends


@given(st.lists(ROW, max_size=30))
def test_every_session_counts_once_with_the_widest_interval(rows: list[tuple[int, ...]]) -> None:
    result = merge_copies(table(rows))
    expected, conflicts, partner_ends = oracle(rows)
    s = result.sessions
    got = {(h, lo): (a, p, c, t) for h, lo, a, p, c, t in zip(
        s.guid_hi.tolist(), s.guid_lo.tolist(), s.agent.tolist(), s.place.tolist(),
        s.created.tolist(), s.terminated.tolist(), strict=True)}
    assert len(got) == len(s)  # one row per GUID
    assert got == expected
    assert result.rows_read == len(rows)
    assert result.duplicates_removed == len(rows) - len({(r[0], r[1]) for r in rows})
    assert (result.conflicting_sessions, result.ends_from_partner) == (conflicts, partner_ends)


@given(st.lists(st.tuples(st.sampled_from([-3, 0, 5]), st.integers(0, 2)), max_size=20),
       st.lists(st.tuples(st.sampled_from([-3, 0, 5, 7]), st.integers(0, 3)), max_size=10))
def test_which_guids_a_copy_already_has(have: list[tuple[int, int]],
                                        asked: list[tuple[int, int]]) -> None:
    """The partner-copy lookup asks only for the GUIDs a copy's own read did not bring."""
    from lrm.job.sources import _contains

    rows = table([(h, lo, 1, 0, 1, 1) for h, lo in have])
    found = _contains(rows, np.array([h for h, _ in asked], dtype=np.int64),
                      np.array([lo for _, lo in asked], dtype=np.int64))
    assert found.tolist() == [key in set(have) for key in asked]


@given(st.lists(st.tuples(ROW, st.integers(0, 2)), max_size=30), st.booleans())
def test_pairs_merged_apart_equal_one_merge_of_every_row(
        rows_and_pairs: list[tuple[tuple[int, ...], int]], pairs_share_guids: bool) -> None:
    """Each HA pair merged on its own, then put together: the same sessions and tallies as one
    merge of all rows — also when a GUID turns up in two pairs (then all rows merge again)."""
    parts: dict[int, list[tuple[int, ...]]] = {}
    for row, pair in rows_and_pairs:
        # Pairs hold different sessions unless the draw says otherwise: a pair's own GUIDs.
        key = row if pairs_share_guids else (row[0] + 10 * pair, *row[1:])
        parts.setdefault(pair, []).append(key)
    every_row = [r for pair in sorted(parts) for r in parts[pair]]
    expected = merge_copies(table(every_row))
    got = merge_parts([merge_copies(table(rows)) for _, rows in sorted(parts.items())],
                      lambda: table(every_row)) if parts else expected

    def sessions(result: MergeResult) -> set[tuple[int, ...]]:
        s = result.sessions
        return set(zip(s.guid_hi.tolist(), s.guid_lo.tolist(), s.agent.tolist(),
                       s.place.tolist(), s.created.tolist(), s.terminated.tolist(),
                       strict=True))

    assert sessions(got) == sessions(expected)
    assert (got.rows_read, got.duplicates_removed, got.ends_from_partner,
            got.conflicting_sessions) == (expected.rows_read, expected.duplicates_removed,
                                          expected.ends_from_partner,
                                          expected.conflicting_sessions)
