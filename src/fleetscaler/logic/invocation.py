"""Turn a router request (headers + optional body) into validated InvokeEndpointAsync parameters.

Only the headers SageMaker's InvokeEndpointAsync understands are passed on; everything else a caller
sends (Authorization, cookies, tracing) is dropped here and never logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetscaler.errors import InputNotAllowed, InvalidRequest, PayloadTooLarge

MAX_INLINE_BODY_BYTES = 128_000
MAX_INPUT_LOCATION = 1024
MAX_TEXT_HEADER = 1024
MAX_INFERENCE_ID = 64
TTL_RANGE = (60, 21600)
TIMEOUT_RANGE = (1, 3600)

# Header name -> InvokeEndpointAsync parameter. Header names are matched case-insensitively.
ALLOWED_HEADERS: tuple[str, ...] = (
    "InputLocation",
    "ContentType",
    "Accept",
    "CustomAttributes",
    "InferenceId",
    "RequestTTLSeconds",
    "InvocationTimeoutSeconds",
)
_BY_LOWER = {name.lower(): name for name in ALLOWED_HEADERS}


@dataclass(frozen=True)
class InvocationRequest:
    """What the router hands to InvokeEndpointAsync, minus the endpoint name."""

    params: Mapping[str, Any]
    body: bytes | None = None

    def to_api_kwargs(self, endpoint_name: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"EndpointName": endpoint_name, **self.params}
        if self.body is not None:
            kwargs["Body"] = self.body
        return kwargs


def allowed_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The allowed headers, under their canonical names; everything else is dropped."""
    picked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        canonical = _BY_LOWER.get(name.lower())
        if canonical is not None and value is not None:
            picked[canonical] = value
    return picked


def _printable_ascii(field: str, value: str, max_len: int, *, min_len: int = 1) -> str:
    if not (min_len <= len(value) <= max_len):
        raise InvalidRequest(field, f"must be {min_len} to {max_len} characters long, got {len(value)}")
    if not all(" " <= ch <= "~" for ch in value):
        raise InvalidRequest(field, "must contain only printable ASCII characters")
    return value


WHOLE_NUMBER_RE = re.compile(r"-?[0-9]+")
# Longer than any allowed value; also keeps int() away from Python's 4300-digit conversion limit.
MAX_DIGITS = 9


def _integer(field: str, value: str, low: int, high: int) -> int:
    text = value.strip()
    # ASCII digits only: str.isdigit() also accepts "²" and friends, which int() then rejects.
    if not WHOLE_NUMBER_RE.fullmatch(text):
        raise InvalidRequest(field, f"must be a whole number of seconds from {low} to {high}, got {value!r}")
    if len(text.lstrip("-").lstrip("0")) > MAX_DIGITS:
        raise InvalidRequest(field, f"must be from {low} to {high} seconds, got a {len(text)}-digit number")
    number = int(text)
    if not low <= number <= high:
        raise InvalidRequest(field, f"must be from {low} to {high} seconds, got {number}")
    return number


def input_location_allowed(location: str, prefixes: Sequence[str]) -> bool:
    """True when `location` lies under one of `prefixes`.

    A prefix naming only a bucket (`s3://bucket`) matches that bucket exactly, not `s3://bucket-other`.
    """
    if not prefixes:
        return True
    for prefix in prefixes:
        if "/" not in prefix[len("s3://") :]:
            prefix = prefix + "/"
        if location.startswith(prefix):
            return True
    return False


def _check_s3_uri(location: str) -> None:
    if len(location) > MAX_INPUT_LOCATION:
        raise InvalidRequest("InputLocation", f"must be at most {MAX_INPUT_LOCATION} characters")
    if not location.startswith("s3://"):
        raise InvalidRequest("InputLocation", "must be an s3://bucket/key URI")
    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InvalidRequest("InputLocation", "must be an s3://bucket/key URI naming an object")


def parse_invocation(
    headers: Mapping[str, str] | None,
    body: bytes | None,
    allowed_prefixes: Sequence[str] = (),
) -> InvocationRequest:
    """Validate a router request. Raises InvalidRequest (400), InputNotAllowed (403), PayloadTooLarge (413)."""
    picked = allowed_headers(headers)
    params: dict[str, Any] = {}
    body = body or None

    location = picked.get("InputLocation")
    if location is not None:
        location = location.strip()
        if body is not None:
            raise InvalidRequest("InputLocation", "send either an InputLocation header or an inline body, not both")
        _check_s3_uri(location)
        if not input_location_allowed(location, allowed_prefixes):
            raise InputNotAllowed(
                f"InputLocation: {location!r} is outside the allowed input prefixes "
                f"({', '.join(allowed_prefixes)}); SageMaker may only read inputs from those locations"
            )
        params["InputLocation"] = location
    elif body is None:
        raise InvalidRequest("InputLocation", "header is required unless the request carries an inline body")
    elif len(body) > MAX_INLINE_BODY_BYTES:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; inline payloads are limited to {MAX_INLINE_BODY_BYTES} bytes "
            "(upload larger inputs to S3 and send InputLocation instead)"
        )

    for name in ("ContentType", "Accept", "CustomAttributes"):
        if name in picked:
            params[name] = _printable_ascii(name, picked[name], MAX_TEXT_HEADER)
    if "InferenceId" in picked:
        value = _printable_ascii("InferenceId", picked["InferenceId"], MAX_INFERENCE_ID)
        if value[0] == " ":
            raise InvalidRequest("InferenceId", "must not start with a space")
        params["InferenceId"] = value
    if "RequestTTLSeconds" in picked:
        params["RequestTTLSeconds"] = _integer("RequestTTLSeconds", picked["RequestTTLSeconds"], *TTL_RANGE)
    if "InvocationTimeoutSeconds" in picked:
        params["InvocationTimeoutSeconds"] = _integer(
            "InvocationTimeoutSeconds", picked["InvocationTimeoutSeconds"], *TIMEOUT_RANGE
        )
    return InvocationRequest(params=params, body=body)
