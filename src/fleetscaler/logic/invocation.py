"""Turn a router request (headers + optional body) into validated InvokeEndpointAsync parameters.

Only the headers that carry an InvokeEndpointAsync parameter, and the Idempotency-Key, are read; everything
else a caller sends (Authorization, cookies, tracing) is dropped here and never logged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetscaler.errors import InputNotAllowed, InvalidRequest, PayloadTooLarge

MAX_INLINE_BODY_BYTES = 128_000
MAX_INPUT_LOCATION = 1024
MAX_TEXT_HEADER = 1024
MAX_INFERENCE_ID = 64
TTL_RANGE = (60, 21600)
TIMEOUT_RANGE = (1, 3600)


@dataclass(frozen=True)
class HeaderParameter:
    """An InvokeEndpointAsync parameter and the request headers that carry it (names match in any case).

    `headers`: the router's own name, then SageMaker's (what clients of InvokeEndpointAsync send, as in
    botocore's sagemaker-runtime model); all must agree. `http_header`: a standard HTTP header that HTTP
    clients may send on their own (curl and requests send `Accept: */*`), used only when none of `headers` is,
    and with `body_only` only when the request carries an inline body (Content-Type describes that body).
    """

    name: str
    headers: tuple[str, ...]
    http_header: str | None = None
    body_only: bool = False


HEADER_PARAMETERS: tuple[HeaderParameter, ...] = (
    HeaderParameter("InputLocation", ("InputLocation", "X-Amzn-SageMaker-InputLocation")),
    HeaderParameter("ContentType", ("ContentType", "X-Amzn-SageMaker-Content-Type"), "Content-Type", body_only=True),
    HeaderParameter("Accept", ("X-Amzn-SageMaker-Accept",), "Accept"),
    HeaderParameter("CustomAttributes", ("CustomAttributes", "X-Amzn-SageMaker-Custom-Attributes")),
    HeaderParameter("InferenceId", ("InferenceId", "X-Amzn-SageMaker-Inference-Id")),
    HeaderParameter("RequestTTLSeconds", ("RequestTTLSeconds", "X-Amzn-SageMaker-RequestTTLSeconds")),
    HeaderParameter(
        "InvocationTimeoutSeconds", ("InvocationTimeoutSeconds", "X-Amzn-SageMaker-InvocationTimeoutSeconds")
    ),
)
# The request's idempotency key (not passed to SageMaker): the IETF draft's name, and the X- spelling some
# clients send. Both must agree, like the spellings of a parameter.
IDEMPOTENCY_KEY = HeaderParameter("Idempotency-Key", ("Idempotency-Key", "X-Idempotency-Key"))
MAX_IDEMPOTENCY_KEY = 255
# Every header name the router reads; no other header is ever forwarded or logged.
ALLOWED_HEADERS: tuple[str, ...] = (
    *(
        name
        for parameter in HEADER_PARAMETERS
        for name in (*parameter.headers, *((parameter.http_header,) if parameter.http_header else ()))
    ),
    *IDEMPOTENCY_KEY.headers,
)
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_HEADERS)

# Headers as API Gateway gives them: a mapping, or (name, value) pairs when a name may repeat.
Headers = Mapping[str, str | None] | Iterable[tuple[str, str | None]]


@dataclass(frozen=True)
class HeaderValue:
    """A parameter's value and the header name it came under, as the caller spelt it (for messages)."""

    value: str
    header: str


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

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests the same request: every parameter and the body (by its SHA-256)."""
        body = None if self.body is None else hashlib.sha256(self.body).hexdigest()
        return {"params": dict(sorted(self.params.items())), "body_sha256": body}


def _allowed_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    """The (name, value) pairs of allowed headers; every other header is dropped here."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(name, value) for name, value in pairs if value is not None and name.lower() in _ALLOWED_LOWER]


def _one_value(parameter: str, sent: list[tuple[str, str]]) -> HeaderValue:
    """The value the headers in `sent` agree on; InvalidRequest naming them when they do not."""
    if len({value for _, value in sent}) > 1:
        names = list(dict.fromkeys(name for name, _ in sent))
        if len(names) == 1:
            rule = f"the header {names[0]} is sent more than once with different values; send it once"
        else:
            rule = f"the headers {' and '.join(names)} carry different values; send one of them"
        raise InvalidRequest(parameter, rule)
    name, value = sent[0]
    return HeaderValue(value, name)


def _sent(parameter: HeaderParameter, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    own = {name.lower() for name in parameter.headers}
    return [(name, value) for name, value in pairs if name.lower() in own]


def allowed_headers(headers: Headers | None, *, inline_body: bool = False) -> dict[str, HeaderValue]:
    """Each InvokeEndpointAsync parameter the request's headers carry, by parameter name.

    A parameter's own headers win over its standard HTTP header, which counts only when none of them is sent
    (and Content-Type only for an inline body). Raises InvalidRequest when the headers that count for one
    parameter carry different values (two spellings, or one header repeated); equal values are fine.
    """
    pairs = _allowed_pairs(headers)
    picked: dict[str, HeaderValue] = {}
    for parameter in HEADER_PARAMETERS:
        sent = _sent(parameter, pairs)
        http_header = parameter.http_header if inline_body or not parameter.body_only else None
        if not sent and http_header is not None:
            sent = [(name, value) for name, value in pairs if name.lower() == http_header.lower()]
        if sent:
            picked[parameter.name] = _one_value(parameter.name, sent)
    return picked


def idempotency_key(headers: Headers | None) -> HeaderValue | None:
    """The request's Idempotency-Key (None without one): 1 to 255 printable ASCII characters once the spaces
    HTTP allows around a value are trimmed. Raises InvalidRequest naming the header as sent."""
    sent = _sent(IDEMPOTENCY_KEY, _allowed_pairs(headers))
    if not sent:
        return None
    key = _one_value(IDEMPOTENCY_KEY.name, [(name, value.strip(" \t")) for name, value in sent])
    _printable_ascii(key.header, key.value, MAX_IDEMPOTENCY_KEY)
    return key


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


def _no_control_characters(field: str, value: str) -> None:
    """Refuse control characters (C0, DEL, C1) and Unicode line breaks: SageMaker's pattern for the location
    stops at a line break, and none of them belongs in a URI."""
    for position, ch in enumerate(value, start=1):
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            raise InvalidRequest(
                field,
                f"must not contain control characters or line breaks, got U+{ord(ch):04X} at character {position}",
            )


def _check_s3_uri(field: str, location: str) -> None:
    if len(location) > MAX_INPUT_LOCATION:
        raise InvalidRequest(field, f"must be at most {MAX_INPUT_LOCATION} characters")
    if not location.startswith("s3://"):
        raise InvalidRequest(field, "must be an s3://bucket/key URI")
    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InvalidRequest(field, "must be an s3://bucket/key URI naming an object")


def parse_invocation(
    headers: Headers | None,
    body: bytes | None,
    allowed_prefixes: Sequence[str] = (),
) -> InvocationRequest:
    """Validate a router request. Raises InvalidRequest (400), InputNotAllowed (403), PayloadTooLarge (413).

    Messages name the header as the caller spelt it (e.g. X-Amzn-SageMaker-InputLocation).
    """
    body = body or None
    picked = allowed_headers(headers, inline_body=body is not None)
    params: dict[str, Any] = {}

    location = picked.get("InputLocation")
    if location is not None:
        field = location.header
        _no_control_characters(field, location.value)
        value = location.value.strip()
        if body is not None:
            raise InvalidRequest(field, "send either an InputLocation header or an inline body, not both")
        _check_s3_uri(field, value)
        if not input_location_allowed(value, allowed_prefixes):
            raise InputNotAllowed(
                f"{field}: {value!r} is outside the allowed input prefixes "
                f"({', '.join(allowed_prefixes)}); SageMaker may only read inputs from those locations"
            )
        params["InputLocation"] = value
    elif body is None:
        raise InvalidRequest("InputLocation", "header is required unless the request carries an inline body")
    elif len(body) > MAX_INLINE_BODY_BYTES:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; inline payloads are limited to {MAX_INLINE_BODY_BYTES} bytes "
            "(upload larger inputs to S3 and send InputLocation instead)"
        )

    for name in ("ContentType", "Accept", "CustomAttributes"):
        if name in picked:
            params[name] = _printable_ascii(picked[name].header, picked[name].value, MAX_TEXT_HEADER)
    if "InferenceId" in picked:
        field = picked["InferenceId"].header
        value = _printable_ascii(field, picked["InferenceId"].value, MAX_INFERENCE_ID)
        if value[0] == " ":
            raise InvalidRequest(field, "must not start with a space")
        params["InferenceId"] = value
    for name, bounds in (("RequestTTLSeconds", TTL_RANGE), ("InvocationTimeoutSeconds", TIMEOUT_RANGE)):
        if name in picked:
            params[name] = _integer(picked[name].header, picked[name].value, *bounds)
    return InvocationRequest(params=params, body=body)
