"""The submitter's send rate: additive increase, multiplicative decrease, Retry-After."""

from __future__ import annotations

import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetscaler.cli.batch.pacing import (
    BACKOFF_MAX_SECONDS,
    RETRY_AFTER_MAX_SECONDS,
    RateController,
    parse_retry_after,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("86400", RETRY_AFTER_MAX_SECONDS),
        (email.utils.formatdate(NOW + 12, usegmt=True), 12.0),
        (email.utils.formatdate(NOW - 60, usegmt=True), 0.0),
        (None, None),
        ("soon", None),
        ("-3", None),
        ("1.5", None),
        ("²", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_sends_are_spaced_by_the_rate_and_a_late_sender_catches_up_one_interval_only() -> None:
    # Given 4 requests/s
    pacer = RateController(ceiling=4.0)
    # When sends go out as soon as allowed, from a start at t=100
    moments = []
    now = 100.0
    for _ in range(4):
        now = max(now, pacer.ready_at())
        moments.append(now)
        pacer.take_slot(now)
    # Then they are 0.25 s apart from the first one on
    assert moments == [100.0, 100.25, 100.5, 100.75]
    # And after a 10 s stall one extra send may go at once (one interval caught up), not forty
    pacer.take_slot(110.0)
    assert pacer.ready_at() == 110.0
    pacer.take_slot(110.0)
    assert pacer.ready_at() == 110.25


def test_throttle_halves_the_rate_once_per_burst_and_pauses_for_retry_after() -> None:
    # Given a sender at its ceiling of 100/s with three requests sent before any answer
    pacer = RateController(ceiling=100.0)
    # When all three come back 429 with Retry-After 2
    pauses = [pacer.throttled_answer(sent_at=t, now=1.0, retry_after=2.0) for t in (0.50, 0.51, 0.52)]
    # Then the rate halved once (the later answers were caused by the same, old rate) and sends wait 2 s
    assert pacer.rate == 50.0
    assert pauses == [2.0, 2.0, 2.0]
    assert pacer.ready_at() == 3.0
    # When a request sent after that decrease is throttled too / Then the rate halves again
    pacer.throttled_answer(sent_at=3.0, now=3.1, retry_after=1.0)
    assert pacer.rate == 25.0
    assert (pacer.lowest, pacer.throttled) == (25.0, 4)


def test_accepted_answers_raise_the_rate_by_a_twentieth_of_the_ceiling_per_second_up_to_it() -> None:
    # Given a rate halved from 100/s to 50/s
    pacer = RateController(ceiling=100.0)
    pacer.throttled_answer(sent_at=0.0, now=0.1, retry_after=0.0)
    # When one second's worth of requests (50) is accepted
    for _ in range(50):
        pacer.accepted()
    # Then the rate is about 5/s higher
    assert pacer.rate == pytest.approx(55.0, abs=0.5)
    # And it never passes the ceiling
    for _ in range(10_000):
        pacer.accepted()
    assert pacer.rate == 100.0


def test_without_retry_after_the_pause_doubles_with_jitter_up_to_a_cap() -> None:
    pacer = RateController(ceiling=10.0, rng=random.Random(3))
    pauses = [pacer.throttled_answer(sent_at=i, now=i, retry_after=None) for i in range(12)]
    # Each pause is between half and all of 0.5 s x 2^n, capped at 30 s
    for n, pause in enumerate(pauses):
        full = min(BACKOFF_MAX_SECONDS, 0.5 * 2**n)
        assert full / 2 <= pause <= full
    # An accepted answer starts the doubling over
    pacer.accepted()
    assert pacer.throttled_answer(sent_at=20, now=20, retry_after=None) <= 0.5


@given(
    ceiling=st.floats(min_value=0.1, max_value=10_000),
    events=st.lists(st.tuples(st.booleans(), st.floats(min_value=0, max_value=5)), max_size=200),
)
def test_the_rate_stays_between_the_floor_and_the_ceiling(ceiling: float, events: list[tuple[bool, float]]) -> None:
    pacer = RateController(ceiling=ceiling, rng=random.Random(0))
    now = 0.0
    for throttled, step in events:
        now += step
        if throttled:
            pacer.throttled_answer(sent_at=now - step, now=now, retry_after=None)
        else:
            pacer.accepted()
        assert min(1.0, ceiling) <= pacer.rate <= ceiling
        assert pacer.lowest <= pacer.rate
        assert pacer.paused_until <= now + BACKOFF_MAX_SECONDS
