"""SigV4 for API Gateway (`execute-api`): sign a request as a caller does, verify one as `AWS_IAM` auth does.

Both directions use botocore's own `SigV4Auth`, so a request signed here, by the AWS CLI, by boto3 or by
`curl --aws-sigv4` is checked with the same canonicalization AWS applies. The only addition is choosing the
signing time: botocore always signs "now" by the wall clock, while the Application Auto Scaling emulator signs
at the virtual clock's time (its `tick(now)`), and the verifier must recompute a signature at the request's
own `X-Amz-Date`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import http.client
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
# API Gateway (like every SigV4 service) refuses a request signed more than 5 minutes away from its clock.
MAX_CLOCK_SKEW_SECONDS = 300.0


class _SigV4AtTime(SigV4Auth):
    """botocore's SigV4 signer with the signing time given instead of read from the wall clock."""

    def __init__(self, credentials: Credentials | ReadOnlyCredentials, region: str, when: dt.datetime) -> None:
        super().__init__(credentials, SERVICE, region)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        # Private botocore steps, the same ones its own add_auth runs (absent from the type stubs).
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))  # type: ignore[attr-defined]


def _utc(epoch_seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)


def sign_request(
    method: str,
    url: str,
    credentials: Credentials | ReadOnlyCredentials,
    *,
    region: str = "us-east-1",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    when: float | None = None,
) -> dict[str, str]:
    """The headers to send for a SigV4-signed `execute-api` request.

    Returns `headers` plus `X-Amz-Date`, `Authorization` and, with a session token, `X-Amz-Security-Token`.
    `when` is the signing time in epoch seconds (default: the wall clock, as every AWS SDK does).
    Send the body exactly as given and to exactly this URL: both are part of the signature.
    """
    signing_time = _utc(when) if when is not None else dt.datetime.now(dt.UTC)
    request = AWSRequest(method=method.upper(), url=url, data=body, headers=dict(headers or {}))
    _SigV4AtTime(credentials, region, signing_time).add_auth(request)
    return dict(request.headers.items())


class SignatureRejected(Exception):
    """A request fails `AWS_IAM` auth; `message` is what API Gateway answers, `error_type` its error code."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class VerifiedCaller:
    """Who signed a request that passed verification (for the event's `requestContext.identity`)."""

    access_key: str
    signed_at: float


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureRejected(
            f"Authorization header requires the {ALGORITHM} algorithm", "IncompleteSignatureException"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise SignatureRejected(
            f"Authorization header requires {', '.join(missing)}; got {', '.join(sorted(fields)) or 'nothing'}",
            "IncompleteSignatureException",
        )
    return fields


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    known_credentials: Mapping[str, str],
    *,
    region: str,
    accepted_times: Iterable[float],
    max_skew: float = MAX_CLOCK_SKEW_SECONDS,
) -> VerifiedCaller:
    """Check a request's SigV4 signature like API Gateway's `AWS_IAM` auth; raise `SignatureRejected` if not valid.

    `headers` are the received headers (any case), `url` the URL the caller signed (scheme, Host header, raw
    path and query). `known_credentials` maps access key id -> secret key. The request's `X-Amz-Date` must be
    within `max_skew` seconds of at least one of `accepted_times` (epoch seconds). Session tokens are not
    validated against any issuer, only covered by the signature.
    """
    by_lower = {name.lower(): value for name, value in headers.items()}
    authorization = by_lower.get("authorization")
    if not authorization:
        raise SignatureRejected("Missing Authentication Token", "MissingAuthenticationTokenException")
    fields = _parse_authorization(authorization)

    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureRejected(
            "Credential should be scoped to a valid region, service and aws4_request terminator",
            "IncompleteSignatureException",
        )
    access_key, scope_date, scope_region, scope_service, _ = scope
    if scope_service != SERVICE:
        raise SignatureRejected(
            f"Credential should be scoped to correct service: '{SERVICE}'.", "InvalidSignatureException"
        )
    if scope_region != region:
        raise SignatureRejected(
            f"Credential should be scoped to a valid region: '{region}'.", "InvalidSignatureException"
        )

    amz_date = by_lower.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
    except ValueError:
        raise SignatureRejected(
            "Authorization header requires existence of a valid 'X-Amz-Date' header (format YYYYMMDDTHHMMSSZ)",
            "IncompleteSignatureException",
        ) from None
    if scope_date != amz_date[:8]:
        raise SignatureRejected(
            f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: {scope_date} != {amz_date[:8]}",
            "InvalidSignatureException",
        )
    signed_epoch = signed_at.timestamp()
    times = list(accepted_times)
    if not any(abs(signed_epoch - now) <= max_skew for now in times):
        reference = _utc(times[0]).strftime(SIGV4_TIMESTAMP) if times else "unknown"
        raise SignatureRejected(
            f"Signature expired: {amz_date} is more than {max_skew:g} seconds away from the gateway time {reference}",
            "InvalidSignatureException",
        )

    secret = known_credentials.get(access_key)
    if secret is None:
        raise SignatureRejected("The security token included in the request is invalid.", "UnrecognizedClientException")

    signed_names = [name for name in fields["SignedHeaders"].lower().split(";") if name]
    if "host" not in signed_names:
        raise SignatureRejected("'Host' must be a signed header", "IncompleteSignatureException")
    absent = [name for name in signed_names if name not in by_lower]
    if absent:
        raise SignatureRejected(
            f"Signed headers missing from the request: {', '.join(absent)}", "InvalidSignatureException"
        )
    # Recompute over exactly the headers the caller signed; botocore re-adds the date and token headers itself.
    token = by_lower.get("x-amz-security-token") if "x-amz-security-token" in signed_names else None
    recomputed_headers = sign_request(
        method,
        url,
        Credentials(access_key, secret, token),
        region=region,
        headers={name: by_lower[name] for name in signed_names if name not in ("x-amz-date", "x-amz-security-token")},
        body=body,
        when=signed_epoch,
    )
    expected = _parse_authorization(recomputed_headers["Authorization"])
    if expected["SignedHeaders"] != fields["SignedHeaders"].lower() or not hmac.compare_digest(
        expected["Signature"], fields["Signature"]
    ):
        raise SignatureRejected(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            "InvalidSignatureException",
        )
    return VerifiedCaller(access_key=access_key, signed_at=signed_epoch)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# Sends an already signed request: (method, url, headers, body) -> answer. `send_http` by default;
# `LocalGateway.call` serves the same request in process, without a socket.
Transport = Callable[[str, str, Mapping[str, str], bytes], HttpAnswer]


def combine_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Answer headers keyed in lower case; repeated ones become one comma-separated list, as HTTP defines."""
    combined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        combined[key] = f"{combined[key]}, {value}" if key in combined else value
    return combined


def send_http(method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float = 30.0) -> HttpAnswer:
    """Send one request over plain HTTP and return the answer, whatever its status."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"url must be an http:// URL with a host, got {url!r}")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request(method.upper(), target or "/", body=body or None, headers=dict(headers))
        response = connection.getresponse()
        return HttpAnswer(response.status, combine_headers(response.getheaders()), response.read())
    finally:
        connection.close()


def send_signed(
    method: str,
    url: str,
    credentials: Credentials | ReadOnlyCredentials | None,
    *,
    region: str = "us-east-1",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    when: float | None = None,
    transport: Transport | None = None,
) -> HttpAnswer:
    """Send one request, SigV4-signed for `execute-api` unless `credentials` is None, and return the answer.

    Any status is returned, not raised; headers of the answer are keyed in lower case. `when` is the signing
    time (default: the wall clock). `transport` defaults to plain HTTP (`send_http`).
    """
    to_send = dict(headers or {})
    if credentials is not None:
        to_send = sign_request(method, url, credentials, region=region, headers=to_send, body=body, when=when)
    return (transport or send_http)(method.upper(), url, to_send, body)
