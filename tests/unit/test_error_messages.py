"""Error messages quote what the caller sent, but never a huge value in full."""

from __future__ import annotations

from fleetscaler.errors import FleetNotFound, InvalidRequest


def test_a_huge_value_is_cut_to_its_first_100_characters_and_its_length() -> None:
    error = FleetNotFound(f"scalableTargetDimensionId {'x' * 10_000!r} is not known here")
    assert error.message == f"scalableTargetDimensionId '{'x' * 100}... (10000 characters)' is not known here"
    assert str(error) == error.message


def test_values_of_ordinary_length_stay_whole() -> None:
    # An ARN, a long S3 URI: up to 200 characters they are quoted in full
    location = "s3://inputs/" + "k" * 188
    error = InvalidRequest("InputLocation", f"{location!r} is outside the allowed input prefixes")
    assert location in error.message
