"""The sorting and ranking helpers of the counting core, on both of their paths: the packed
SIMD sort (small non-negative keys) and the stable argsort fallback (negative or huge keys)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain._arrays import (
    dense_rank,
    i64,
    lookup,
    narrow_rank,
    pack,
    sort_keys,
    sort_tagged,
    sorted_positions,
    time_bits,
    unpack,
)

small = st.lists(st.integers(0, 1000), max_size=50)
wide = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50)


@given(st.one_of(small, wide))
def test_sort_keys_is_a_stable_sort(values: list[int]) -> None:
    keys = i64(values)
    ordered, order = sort_keys(keys)
    assert ordered.tolist() == sorted(values)
    assert order.tolist() == sorted(range(len(values)), key=lambda k: values[k])  # stable


@given(st.one_of(small, wide, st.lists(st.integers(0, 2**31), max_size=50)),
       st.integers(1, 2**20), st.data())
def test_sort_tagged_sorts_each_key_with_its_tag(values: list[int], n_tags: int,
                                                 data: st.DataObject) -> None:
    """Sorted (key, tag) pairs, whichever path: as uint32, as int64, or by argsort (keys too
    wide for the tag's bits). Equal keys may come in any order, so compare as pairs."""
    tags = data.draw(st.lists(st.integers(0, n_tags - 1), min_size=len(values),
                              max_size=len(values)))
    keys, tag_of = sort_tagged(i64(values), i64(tags), n_tags)
    assert keys.tolist() == sorted(values)
    assert sorted(zip(keys.tolist(), tag_of.tolist(), strict=True)) == sorted(
        zip(values, tags, strict=True))


# Seat keys: kind << 40 | DBID, a few narrow clusters far apart (the clustered presence path).
seat_keys = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 70_000)).map(
    lambda kind_dbid: kind_dbid[0] << 40 | kind_dbid[1]), max_size=50)


@given(st.one_of(small, wide, st.lists(st.integers(0, 2**40), max_size=50), seat_keys))
def test_dense_rank_is_unique_with_inverse(values: list[int]) -> None:
    distinct, index = dense_rank(i64(values))
    assert distinct.tolist() == sorted(set(values))
    assert distinct[index].tolist() == values


@given(st.one_of(small, wide, st.lists(st.integers(-(2**40), -(2**40) + 3000), max_size=50)))
def test_narrow_rank_is_unique_with_inverse(values: list[int]) -> None:
    """Narrow ranges anywhere (a presence table over the range), wide ones (np.unique)."""
    distinct, index = narrow_rank(i64(values))
    assert distinct.dtype == index.dtype == np.int64
    assert distinct.tolist() == sorted(set(values))
    assert distinct[index].tolist() == values


@given(st.integers(0, 3), st.integers(1, 5), st.integers(0, 2**45))
def test_dense_rank_of_large_clustered_arrays(low_bits_over: int, clusters: int,
                                              base: int) -> None:
    """Arrays large enough for the presence tables, in 1–5 clusters whose low parts reach just
    below or past what the clustered path can take (it must fall back, not go wrong)."""
    generator = np.random.default_rng(base)
    n = 70_000
    kinds = generator.integers(0, clusters, n, dtype=np.int64)
    lows = generator.integers(0, 1 << (16 + low_bits_over), n, dtype=np.int64)
    values = np.int64(base) + (kinds << np.int64(40)) + lows
    distinct, index = dense_rank(values)
    assert np.array_equal(distinct, np.unique(values))
    assert np.array_equal(distinct[index], values)


@given(st.lists(st.tuples(st.integers(-5, 10**6), st.integers(0, 90_000)), max_size=30),
       st.sampled_from([1, 60, 64, 65_536, 86_400, 90_000]))
def test_packed_keys_sort_like_pairs_and_unpack(pairs: list[tuple[int, int]],
                                                horizon: int) -> None:
    pairs = [(p, t % (horizon + 1)) for p, t in pairs]
    bits = time_bits(np.int64(horizon))  # numpy integers are accepted too
    ids, times = i64([p for p, _ in pairs]), i64([t for _, t in pairs])
    keys = pack(ids, times, bits)
    assert [tuple(x) for x in zip(*unpack(keys, bits), strict=True)] == pairs
    assert sorted(pairs) == [pairs[k] for k in np.argsort(keys, kind="stable")]


@given(st.lists(st.integers(-3, 70_000), max_size=40), st.sampled_from([1, 5_000, 40_000]),
       st.integers(0, 2**32))
def test_sorted_positions_and_lookup_equal_a_binary_search(ids: list[int], n_queries: int,
                                                           seed: int) -> None:
    """Whichever path (a table of positions for a narrow range of ids and many queries, or a
    binary search): the positions of `np.searchsorted`, for queries below, inside, between and
    above the ids, and `lookup` finds exactly the ids present."""
    sorted_ids = np.sort(i64(ids))
    generator = np.random.default_rng(seed)
    query = generator.integers(-20, 70_030, n_queries, dtype=np.int64)
    assert np.array_equal(sorted_positions(sorted_ids, query),
                          np.searchsorted(sorted_ids, query))
    distinct = np.unique(sorted_ids)
    found, position = lookup(distinct, query)
    assert np.array_equal(found, np.isin(query, distinct))
    assert np.array_equal(distinct[position[found]], query[found])
