"""Router request validation: allowed headers only, conversions, ranges, prefixes, inline bodies."""

from __future__ import annotations

import pytest

from fleetscaler.errors import InputNotAllowed, InvalidRequest, PayloadTooLarge
from fleetscaler.logic.invocation import (
    ALLOWED_HEADERS,
    MAX_INLINE_BODY_BYTES,
    idempotency_key,
    input_location_allowed,
    parse_invocation,
)

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


@pytest.mark.parametrize("character", ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028"])
@pytest.mark.parametrize("header", ["InputLocation", "X-Amzn-SageMaker-InputLocation"])
def test_input_location_with_a_control_character_is_400_naming_the_header(header: str, character: str) -> None:
    # Given an S3 location with a control character or line break inside it
    with pytest.raises(InvalidRequest) as caught:
        parse_invocation({header: f"s3://inputs/a{character}b.csv"}, None)
    # Then the header as sent and the rule are named, with the character and where it is
    assert caught.value.message == (
        f"{header}: must not contain control characters or line breaks, got U+{ord(character):04X} at character 14"
    )


def test_sagemakers_own_header_names_are_understood() -> None:
    # Given a client moving from direct InvokeEndpointAsync calls, with SageMaker's header names
    request = parse_invocation(
        {
            "X-Amzn-SageMaker-InputLocation": "s3://inputs/a.csv",
            "X-Amzn-SageMaker-Content-Type": "text/csv",
            "X-Amzn-SageMaker-Accept": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
            "X-Amzn-SageMaker-Inference-Id": "req-1",
            "x-amzn-sagemaker-requestttlseconds": "600",
            "X-Amzn-SageMaker-InvocationTimeoutSeconds": "30",
        },
        None,
    )
    # Then each reaches its parameter
    assert request.params == {
        "InputLocation": "s3://inputs/a.csv",
        "ContentType": "text/csv",
        "Accept": "application/json",
        "CustomAttributes": "trace=1",
        "InferenceId": "req-1",
        "RequestTTLSeconds": 600,
        "InvocationTimeoutSeconds": 30,
    }


def test_an_inline_body_takes_its_content_type_from_the_standard_header() -> None:
    assert parse_invocation({"Content-Type": "application/json"}, b"{}").params == {"ContentType": "application/json"}


def test_an_explicit_content_type_wins_over_the_http_one() -> None:
    # Given a binary-safe transport type (BinaryMediaTypes) and the input's own type, as `fleetscaler invoke` sends
    headers = {"Content-Type": "application/octet-stream", "ContentType": "text/csv"}
    # Then SageMaker gets the input's type, not the transport's
    assert parse_invocation(headers, b"1,2,3").params == {"ContentType": "text/csv"}


def test_content_type_of_an_empty_http_body_is_not_the_inputs_type() -> None:
    # Content-Type describes the HTTP body; with InputLocation there is none, so it says nothing of the input
    assert parse_invocation({**S3, "Content-Type": "application/json"}, None).params == {
        "InputLocation": "s3://inputs/a.csv"
    }


def test_sagemakers_accept_wins_over_the_accept_http_clients_add_on_their_own() -> None:
    headers = {**S3, "Accept": "*/*", "X-Amzn-SageMaker-Accept": "application/json"}
    assert parse_invocation(headers, None).params["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            [("InputLocation", "s3://inputs/a.csv"), ("X-Amzn-SageMaker-InputLocation", "s3://inputs/b.csv")],
            "InputLocation: the headers InputLocation and X-Amzn-SageMaker-InputLocation carry different values; "
            "send one of them",
        ),
        (
            [*S3.items(), ("ContentType", "text/csv"), ("contenttype", "application/json")],
            "ContentType: the headers ContentType and contenttype carry different values; send one of them",
        ),
        (
            [*S3.items(), ("RequestTTLSeconds", "600"), ("RequestTTLSeconds", "700")],
            "RequestTTLSeconds: the header RequestTTLSeconds is sent more than once with different values; "
            "send it once",
        ),
        (
            [*S3.items(), ("Accept", "text/csv"), ("Accept", "application/json")],
            "Accept: the header Accept is sent more than once with different values; send it once",
        ),
    ],
)
def test_headers_that_disagree_are_400_naming_both(headers: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_invocation(headers, None)
    assert caught.value.message == message


def test_headers_that_agree_are_fine() -> None:
    headers = [
        ("InputLocation", "s3://inputs/a.csv"),
        ("X-Amzn-SageMaker-InputLocation", "s3://inputs/a.csv"),
        ("inputlocation", "s3://inputs/a.csv"),
    ]
    assert parse_invocation(headers, None).params == {"InputLocation": "s3://inputs/a.csv"}


def test_messages_name_the_header_as_the_caller_spelt_it() -> None:
    with pytest.raises(InvalidRequest, match=r"^X-Amzn-SageMaker-RequestTTLSeconds: must be from 60 to 21600"):
        parse_invocation({**S3, "X-Amzn-SageMaker-RequestTTLSeconds": "5"}, None)


# --- Idempotency-Key -------------------------------------------------------------------------------------------


def test_no_idempotency_key_is_none_and_the_key_is_never_passed_to_sagemaker() -> None:
    assert idempotency_key(S3) is None
    request = parse_invocation({**S3, "Idempotency-Key": "batch-1/a.csv"}, None)
    assert request.params == {"InputLocation": "s3://inputs/a.csv"}
    assert {"Idempotency-Key", "X-Idempotency-Key"} <= set(ALLOWED_HEADERS)


@pytest.mark.parametrize(
    ("headers", "key", "header"),
    [
        ({"Idempotency-Key": "3f2a9c"}, "3f2a9c", "Idempotency-Key"),
        ({"idempotency-key": ' "quoted, with spaces" '}, '"quoted, with spaces"', "idempotency-key"),
        ({"X-Idempotency-Key": "k" * 255}, "k" * 255, "X-Idempotency-Key"),
        ([("Idempotency-Key", "same"), ("X-Idempotency-Key", "same")], "same", "Idempotency-Key"),
    ],
)
def test_the_idempotency_key_is_read_from_either_spelling(headers: object, key: str, header: str) -> None:
    # Given a key under the draft standard's name or the X- one / Then it is the value, spaces around trimmed
    found = idempotency_key(headers)  # type: ignore[arg-type]
    assert found is not None and (found.value, found.header) == (key, header)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Idempotency-Key": ""}, "Idempotency-Key: must be 1 to 255 characters long, got 0"),
        ({"Idempotency-Key": "   "}, "Idempotency-Key: must be 1 to 255 characters long, got 0"),
        ({"X-Idempotency-Key": "k" * 256}, "X-Idempotency-Key: must be 1 to 255 characters long, got 256"),
        ({"Idempotency-Key": "caf\u00e9"}, "Idempotency-Key: must contain only printable ASCII characters"),
        ({"Idempotency-Key": "a\x00b"}, "Idempotency-Key: must contain only printable ASCII characters"),
        (
            [("Idempotency-Key", "a"), ("X-Idempotency-Key", "b")],
            "Idempotency-Key: the headers Idempotency-Key and X-Idempotency-Key carry different values; "
            "send one of them",
        ),
        (
            [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
            "Idempotency-Key: the header Idempotency-Key is sent more than once with different values; send it once",
        ),
    ],
)
def test_a_bad_idempotency_key_is_400_naming_the_header_and_the_rule(headers: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        idempotency_key(headers)  # type: ignore[arg-type]
    assert caught.value.message == message


def test_the_fingerprint_tells_requests_apart_by_every_parameter_and_the_body() -> None:
    # Given the same request twice, and requests differing in one parameter or in the body
    base = parse_invocation({**S3, "ContentType": "text/csv"}, None)
    same = parse_invocation({"contenttype": "text/csv", "X-Amzn-SageMaker-InputLocation": "s3://inputs/a.csv"}, None)
    others = [
        parse_invocation({"InputLocation": "s3://inputs/b.csv", "ContentType": "text/csv"}, None),
        parse_invocation({**S3, "ContentType": "application/json"}, None),
        parse_invocation({**S3, "ContentType": "text/csv", "RequestTTLSeconds": "600"}, None),
    ]
    # Then the same request has the same fingerprint (header spellings do not matter), the others differ
    assert same.fingerprint() == base.fingerprint()
    assert all(other.fingerprint() != base.fingerprint() for other in others)
    assert parse_invocation({}, b"a").fingerprint() != parse_invocation({}, b"b").fingerprint()
