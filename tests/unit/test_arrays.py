"""The sorting and ranking helpers of the counting core, on both of their paths: the packed
SIMD sort (small non-negative keys) and the stable argsort fallback (negative or huge keys)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lrm.domain._arrays import dense_rank, i64, pack, sort_keys, time_bits, unpack

small = st.lists(st.integers(0, 1000), max_size=50)
wide = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50)


@given(st.one_of(small, wide))
def test_sort_keys_is_a_stable_sort(values: list[int]) -> None:
    keys = i64(values)
    ordered, order = sort_keys(keys)
    assert ordered.tolist() == sorted(values)
    assert order.tolist() == sorted(range(len(values)), key=lambda k: values[k])  # stable


@given(st.one_of(small, wide, st.lists(st.integers(0, 2**40), max_size=50)))
def test_dense_rank_is_unique_with_inverse(values: list[int]) -> None:
    distinct, index = dense_rank(i64(values))
    assert distinct.tolist() == sorted(set(values))
    assert distinct[index].tolist() == values


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
