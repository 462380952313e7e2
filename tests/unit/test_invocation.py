"""Router request validation: allowed headers only, conversions, ranges, prefixes, inline bodies."""

from __future__ import annotations

import pytest

from fleetscaler.errors import InputNotAllowed, InvalidRequest, PayloadTooLarge
from fleetscaler.logic.invocation import MAX_INLINE_BODY_BYTES, input_location_allowed, parse_invocation

S3 = {"InputLocation": "s3://inputs/a.csv"}


def test_only_allowed_headers_pass_case_insensitively() -> None:
    request = parse_invocation(
        {
            "inputlocation": "s3://inputs/a.csv",
            "CONTENTTYPE": "text/csv",
            "Authorization": "secret",
            "requestttlseconds": "120",
            "InvocationTimeoutSeconds": "30",
            "X-Forwarded-For": "1.2.3.4",
        },
        None,
    )
    assert request.params == {
        "InputLocation": "s3://inputs/a.csv",
        "ContentType": "text/csv",
        "RequestTTLSeconds": 120,
        "InvocationTimeoutSeconds": 30,
    }
    assert request.to_api_kwargs("endpoint-1")["EndpointName"] == "endpoint-1"


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("RequestTTLSeconds", "59", "RequestTTLSeconds: must be from 60 to 21600 seconds, got 59"),
        ("RequestTTLSeconds", "21601", "RequestTTLSeconds: must be from 60 to 21600 seconds"),
        ("RequestTTLSeconds", "1.5", "RequestTTLSeconds: must be a whole number of seconds"),
        ("RequestTTLSeconds", "--60", "RequestTTLSeconds: must be a whole number of seconds"),
        ("RequestTTLSeconds", "6\u00b2", "RequestTTLSeconds: must be a whole number of seconds"),
        ("RequestTTLSeconds", "\u0666\u0660", "RequestTTLSeconds: must be a whole number of seconds"),
        ("RequestTTLSeconds", "9" * 5000, "RequestTTLSeconds: must be from 60 to 21600 seconds, got a 5000-digit"),
        ("InvocationTimeoutSeconds", "-0", "InvocationTimeoutSeconds: must be from 1 to 3600 seconds, got 0"),
        ("InvocationTimeoutSeconds", "0", "InvocationTimeoutSeconds: must be from 1 to 3600 seconds, got 0"),
        ("InvocationTimeoutSeconds", "abc", "InvocationTimeoutSeconds: must be a whole number"),
        ("InferenceId", "x" * 65, "InferenceId: must be 1 to 64 characters long"),
        ("InferenceId", "", "InferenceId: must be 1 to 64 characters long"),
        ("ContentType", "text/\u00e9", "ContentType: must contain only printable ASCII"),
        ("CustomAttributes", "a" * 1025, "CustomAttributes: must be 1 to 1024 characters"),
        ("InputLocation", "https://example.com/a", "InputLocation: must be an s3://bucket/key URI"),
        ("InputLocation", "s3://bucket-only", "InputLocation: must be an s3://bucket/key URI naming an object"),
    ],
)
def test_bad_header_names_field_and_rule(header: str, value: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_invocation({**S3, header: value}, None)
    assert message in caught.value.message


def test_missing_input_and_body_is_400() -> None:
    with pytest.raises(InvalidRequest, match="InputLocation: header is required unless"):
        parse_invocation({"ContentType": "text/csv"}, None)


def test_inline_body_at_limit_is_accepted_and_over_limit_is_413() -> None:
    assert parse_invocation({}, b"x" * MAX_INLINE_BODY_BYTES).body == b"x" * MAX_INLINE_BODY_BYTES
    with pytest.raises(PayloadTooLarge, match="128000 bytes"):
        parse_invocation({}, b"x" * (MAX_INLINE_BODY_BYTES + 1))


def test_body_and_input_location_together_is_400() -> None:
    with pytest.raises(InvalidRequest, match="not both"):
        parse_invocation(S3, b"payload")


def test_input_outside_allowed_prefixes_is_refused() -> None:
    prefixes = ("s3://inputs/team-a/", "s3://shared")
    assert parse_invocation({"InputLocation": "s3://inputs/team-a/x.csv"}, None, prefixes)
    assert parse_invocation({"InputLocation": "s3://shared/any/x.csv"}, None, prefixes)
    with pytest.raises(InputNotAllowed, match="outside the allowed input prefixes"):
        parse_invocation({"InputLocation": "s3://inputs/team-b/x.csv"}, None, prefixes)


def test_bucket_prefix_does_not_match_a_longer_bucket_name() -> None:
    assert not input_location_allowed("s3://shared-evil/x.csv", ("s3://shared",))
    assert input_location_allowed("s3://shared/x.csv", ("s3://shared",))
