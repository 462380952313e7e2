"""Parsing at the scaling engine's edges: event times and capacity bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscaler.config import Settings
from fleetscaler.errors import InvalidRequest
from fleetscaler.services.scaling import LARGEST_CAPACITY, capacity_bounds, event_time_ms, parse_desired_capacity


def test_event_time_in_epoch_ms_or_iso() -> None:
    # Given the documented epoch ms, an ISO string, or only the envelope's time / Then all give epoch ms
    assert event_time_ms(1795316645000, None) == 1795316645000
    assert event_time_ms("2026-11-22T03:04:05.250Z", None) == 1795316645250
    assert event_time_ms(None, "2026-11-22T03:04:05Z") == 1795316645000
    with pytest.raises(InvalidRequest, match=r"detail\.LastModifiedTime"):
        event_time_ms("yesterday", None)


def test_bounds_are_the_registered_ones_only() -> None:
    # Given no MAX_CAPACITY: no upper bound (what the endpoints can give is placed, never a refusal)
    assert capacity_bounds(Settings.from_env({"TABLE_NAME": "meta"})) == (0, None)
    # Given MIN_CAPACITY and MAX_CAPACITY: exactly those
    explicit = Settings.from_env({"TABLE_NAME": "meta", "MIN_CAPACITY": "1", "MAX_CAPACITY": "40"})
    assert capacity_bounds(explicit) == (1, 40)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"desiredCapacity": 41}, "desiredCapacity: must be at most 40 (MAX_CAPACITY), got 41"),
        ({"desiredCapacity": 0}, "desiredCapacity: must be at least 1 (MIN_CAPACITY), got 0"),
        ({"desiredCapacity": 2.5}, "desiredCapacity: must be a whole number"),
    ],
)
def test_only_the_registered_bounds_refuse(body: dict, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_desired_capacity(body, (1, 40))
    assert parse_desired_capacity({"desiredCapacity": 40.0}, (1, 40)) == 40
    assert parse_desired_capacity({"desiredCapacity": 10**9}, (0, None)) == 10**9


@settings(max_examples=300, deadline=None)
@given(low=st.integers(0, 50), span=st.one_of(st.none(), st.integers(0, 10_000)), data=st.data())
def test_any_whole_desired_capacity_in_the_registered_range_is_accepted(low: int, span: int | None,
                                                                        data: st.DataObject) -> None:
    # Given any registered [MIN_CAPACITY, MAX_CAPACITY] (no maximum: anything Application Auto Scaling can send)
    high = None if span is None else low + span
    desired = data.draw(st.integers(low, high if high is not None else LARGEST_CAPACITY))
    # When it arrives as AAS sends it (a float) or as an integer / Then it is accepted as it is
    assert parse_desired_capacity({"desiredCapacity": float(desired)}, (low, high)) == desired
    assert parse_desired_capacity({"desiredCapacity": desired}, (low, high)) == desired
