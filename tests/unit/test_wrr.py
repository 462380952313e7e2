"""Smooth weighted round-robin: exact shares, spread-out picks, zero weights never chosen."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.wrr import pick, reduce_weights, smooth_wrr_sequence

weights_st = st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8)


def test_5_3_2_period_is_spread_out() -> None:
    # Given weights 5,3,2 / When one period is generated / Then no endpoint gets a block of its share.
    assert smooth_wrr_sequence([5, 3, 2]) == [0, 1, 0, 2, 0, 1, 0, 2, 1, 0]


def test_weights_where_plain_nginx_drifts_past_one_request() -> None:
    # nginx's picks for 1,1,1,3,3,3 leave an endpoint 1.05 requests off its share after some prefix.
    weights = [1, 1, 1, 3, 3, 3]
    counts = [0] * 6
    for k, chosen in enumerate(smooth_wrr_sequence(weights), start=1):
        counts[chosen] += 1
        assert all(abs(counts[i] - k * w / 12) < 1 for i, w in enumerate(weights))


def test_ten_consecutive_counters_split_5_3_2_and_interleave() -> None:
    # Given weights 5,3,2 and counters far from zero (many containers share one counter)
    picks = [pick([5, 3, 2], c) for c in range(10_000, 10_010)]
    # Then exactly 5, 3 and 2 requests go to each endpoint
    assert Counter(picks) == {0: 5, 1: 3, 2: 2}
    # And the heavy endpoint never takes more than two in a row (not AAAAABBBCC)
    longest = max(len(run) for run in "".join(map(str, picks)).replace("1", " ").replace("2", " ").split())
    assert longest <= 2


def test_all_zero_weights_route_to_first_endpoint() -> None:
    assert {pick([0, 0, 0], c) for c in range(20)} == {0}


def test_weights_are_reduced_by_gcd() -> None:
    assert reduce_weights([10, 6, 4]) == (5, 3, 2)
    assert [pick([10, 6, 4], c) for c in range(10)] == [pick([5, 3, 2], c) for c in range(10)]


def test_negative_weight_is_rejected() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        pick([1, -1], 0)


@settings(max_examples=300, deadline=None)
@given(weights=weights_st.filter(lambda w: sum(w) > 0), start=st.integers(min_value=0, max_value=10**9))
def test_every_prefix_stays_within_one_request_of_exact_share(weights: list[int], start: int) -> None:
    # Given any weights, and a run of requests starting at the beginning of a period
    reduced = reduce_weights(weights)
    total = sum(reduced)
    begin = start - start % total
    counts = [0] * len(weights)
    for k in range(1, 2 * total + 1):
        counts[pick(weights, begin + k - 1)] += 1
        # Then after every prefix each endpoint is within one request of its exact share
        for i, weight in enumerate(reduced):
            assert abs(counts[i] - k * weight / total) < 1


@settings(max_examples=300, deadline=None)
@given(weights=weights_st, counter=st.integers(min_value=0, max_value=10**12))
def test_zero_weight_endpoint_is_never_chosen_unless_all_are_zero(weights: list[int], counter: int) -> None:
    chosen = pick(weights, counter)
    if sum(weights) == 0:
        assert chosen == 0
    else:
        assert weights[chosen] > 0


@settings(max_examples=200, deadline=None)
@given(weights=weights_st.filter(lambda w: sum(w) > 0), start=st.integers(min_value=0, max_value=10**9))
def test_any_full_period_window_is_exact(weights: list[int], start: int) -> None:
    # Given any window of one period, wherever it starts (other containers took the counters before it)
    reduced = reduce_weights(weights)
    counts = Counter(pick(weights, c) for c in range(start, start + sum(reduced)))
    # Then each endpoint got exactly its weight
    assert all(counts.get(i, 0) == w for i, w in enumerate(reduced))
