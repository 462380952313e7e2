"""Smooth weighted round-robin: exact shares, spread-out picks, zero weights never chosen."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.logic.wrr import (
    MAX_PERIOD,
    period_weights,
    pick,
    pick_with_fallback,
    reduce_weights,
    smooth_wrr_sequence,
)

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


def test_a_million_request_period_is_scaled_down_to_a_bounded_one() -> None:
    # Given weights whose period would be a million requests (614 ms to build on a cold container)
    weights = [500_000, 499_999, 1]
    # When the sequence is built / Then it is at most MAX_PERIOD long and keeps every endpoint with weight
    period = smooth_wrr_sequence(weights)
    assert len(period) <= MAX_PERIOD
    assert period_weights(weights) == (4999, 4999, 1)
    assert Counter(period) == {0: 4999, 1: 4999, 2: 1}


big_weights_st = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=12).filter(any)


@settings(max_examples=300, deadline=None)
@given(weights=big_weights_st)
def test_any_weights_build_a_bounded_period_with_shares_within_the_documented_precision(weights: list[int]) -> None:
    bounded = period_weights(weights)
    # The work per weight set is bounded: one step per request of the period
    assert sum(bounded) <= MAX_PERIOD
    # An endpoint keeps weight if and only if it had some
    assert [w > 0 for w in bounded] == [w > 0 for w in weights]
    # Each share is within n / (MAX_PERIOD - n) of the exact one
    n, total, bounded_total = len(weights), sum(weights), sum(bounded)
    for exact, scaled in zip(weights, bounded, strict=True):
        assert abs(scaled / bounded_total - exact / total) < n / (MAX_PERIOD - n)


@settings(max_examples=300, deadline=None)
@given(weights=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=8))
def test_weights_that_fit_are_followed_exactly(weights: list[int]) -> None:
    # Weights up to the bound (the engine's serving capacity always is) are only divided by their gcd
    if sum(reduce_weights(weights)) <= MAX_PERIOD:
        assert period_weights(weights) == reduce_weights(weights)


def test_fallback_is_the_next_other_endpoint_of_the_sequence() -> None:
    # Given weights 5,3,2: one period is 0 1 0 2 0 1 0 2 1 0
    # Then the fallback of each position is the next different endpoint after it, wrapping around
    choices = [pick_with_fallback([5, 3, 2], c) for c in range(10, 20)]
    assert choices == [(0, 1), (1, 0), (0, 2), (2, 0), (0, 1), (1, 0), (0, 2), (2, 1), (1, 0), (0, 1)]


def test_no_fallback_when_one_endpoint_has_all_the_weight() -> None:
    assert pick_with_fallback([0, 4, 0], 3) == (1, None)
    assert pick_with_fallback([0, 0, 0], 3) == (0, None)


@settings(max_examples=300, deadline=None)
@given(weights=weights_st.filter(any), counter=st.integers(min_value=0, max_value=10**12))
def test_fallback_is_another_endpoint_with_weight_whenever_there_is_one(weights: list[int], counter: int) -> None:
    chosen, fallback = pick_with_fallback(weights, counter)
    assert chosen == pick(weights, counter)
    if sum(1 for w in weights if w) > 1:
        assert fallback is not None and fallback != chosen and weights[fallback] > 0
    else:
        assert fallback is None
