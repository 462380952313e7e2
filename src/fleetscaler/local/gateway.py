"""A local API Gateway (REST API, Lambda proxy integration, `AWS_IAM` auth) on 127.0.0.1.

It turns each HTTP request into the API Gateway REST proxy event the deployed Lambdas receive, calls the
handler in this process, and turns the handler's proxy response back into HTTP. Requests must be SigV4-signed
for `execute-api` with one of the gateway's known access keys, as the template's `AWS_IAM` methods require.

    gateway = LocalGateway(DEFAULT_ROUTES, {"AKIDLOCAL": "local-secret"}).start()
    gateway.url           # http://127.0.0.1:PORT/local   (the stage URL: the template's RouterUrl)
    gateway.stop()

Behaviour, as API Gateway's:
- unsigned, badly signed, unknown access key, or `X-Amz-Date` more than 5 minutes off: 403 `{"message"}`;
- unknown path (or stage): 404, known path with another method: 405, body over 10 MB: 413 (`{"message"}`);
- a handler that raises, or answers something that is not a proxy response: 502 `{"message": "Internal server error"}`.

Signature time. The gateway's clock is `fleetscaler.clock` (virtual in the local fleet), but callers outside
the process (the CLI, curl, boto3) sign with the wall clock and cannot know the virtual time. A signature is
therefore accepted when its `X-Amz-Date` is within 5 minutes of the fleetscaler clock *or* of the wall clock;
the Application Auto Scaling emulator signs at the virtual time it is ticked with. A signature far from both
(an old, replayed request) is refused.

Simplifications: one stage; no resource policies, usage plans, throttling, caching or request validation;
session tokens are covered by the signature but not checked against STS; a body is passed base64-encoded when
its Content-Type is one of `binary_media_types` or when it is not valid UTF-8; each function runs one
invocation at a time (one warm container), because the handlers keep per-container state like the deployed
Lambdas do; handlers get a 29 s remaining-time budget (API Gateway's integration timeout) but are not cut off.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import importlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from fleetscaler import clock
from fleetscaler.deploy.template import ROUTER_BINARY_MEDIA_TYPES
from fleetscaler.local.sigv4 import (
    MAX_CLOCK_SKEW_SECONDS,
    HttpAnswer,
    SignatureRejected,
    combine_headers,
    verify_request,
)

LambdaHandler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway REST payload limit
INTEGRATION_TIMEOUT_MS = 29_000
# The router API's BinaryMediaTypes in the template.
DEFAULT_BINARY_MEDIA_TYPES: tuple[str, ...] = ROUTER_BINARY_MEDIA_TYPES
INTERNAL_SERVER_ERROR = "Internal server error"


@dataclass(frozen=True)
class Route:
    """One API method: `method` on `resource` (API Gateway syntax, `{Name}` path parameters) runs `handler`.

    `handler` is a callable or a dotted path (`package.module.function`), imported on the first request so the
    gateway starts before every handler exists.
    """

    method: str
    resource: str
    handler: str | LambdaHandler
    function_name: str = ""

    def __post_init__(self) -> None:
        if not self.resource.startswith("/"):
            raise ValueError(f"resource must start with '/', got {self.resource!r}")
        object.__setattr__(self, "method", self.method.upper())
        if not self.function_name:
            if isinstance(self.handler, str):
                dotted = self.handler
            else:
                qualname = getattr(self.handler, "__qualname__", type(self.handler).__qualname__)
                dotted = f"{getattr(self.handler, '__module__', 'local')}.{qualname}"
            object.__setattr__(self, "function_name", re.sub(r"[^A-Za-z0-9_-]+", "-", dotted).strip("-"))


ROUTER_HANDLER = "fleetscaler.handlers.router.handler"
SCALING_API_HANDLER = "fleetscaler.handlers.scaling_api.handler"
DEFAULT_ROUTES: tuple[Route, ...] = (
    Route("POST", "/endpoints/{EndpointName}", ROUTER_HANDLER, "fleetscaler-router"),
    Route(
        "GET", "/scalableTargetDimensions/{scalableTargetDimensionId}", SCALING_API_HANDLER, "fleetscaler-scaling-api"
    ),
    Route(
        "PATCH", "/scalableTargetDimensions/{scalableTargetDimensionId}", SCALING_API_HANDLER, "fleetscaler-scaling-api"
    ),
)


def _compile_resource(resource: str) -> re.Pattern[str]:
    parts = []
    for segment in resource.strip("/").split("/"):
        greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
        single = re.fullmatch(r"\{(\w+)\}", segment)
        if greedy:
            parts.append(f"(?P<{greedy.group(1)}>.+)")
        elif single:
            parts.append(f"(?P<{single.group(1)}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


@dataclass
class _Function:
    """A route's Lambda function: its handler, resolved once, and one container's worth of concurrency."""

    name: str
    handler_ref: str | LambdaHandler
    lock: threading.Lock = field(default_factory=threading.Lock)
    _resolved: LambdaHandler | None = None

    def resolve(self) -> LambdaHandler:
        if self._resolved is None:
            if isinstance(self.handler_ref, str):
                module_name, _, attribute = self.handler_ref.rpartition(".")
                self._resolved = getattr(importlib.import_module(module_name), attribute)
            else:
                self._resolved = self.handler_ref
        return self._resolved


@dataclass
class LocalLambdaContext:
    """The parts of the Lambda context object powertools and the handlers read."""

    function_name: str
    aws_request_id: str
    region: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        return max(0, INTEGRATION_TIMEOUT_MS - elapsed_ms)


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _error(status: int, message: str, request_id: str, error_type: str | None = None) -> GatewayResponse:
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return GatewayResponse(status, headers, json.dumps({"message": message}).encode())


class LocalGateway:
    """API Gateway REST API + Lambda proxy integration + `AWS_IAM` auth, served on `host:port` (0: any free port).

    `credentials` maps the access key ids allowed to call the API to their secret keys.
    """

    def __init__(
        self,
        routes: Iterable[Route],
        credentials: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        stage: str = "local",
        region: str = "us-east-1",
        api_id: str = "localapi",
        binary_media_types: Iterable[str] = DEFAULT_BINARY_MEDIA_TYPES,
        max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS,
    ) -> None:
        self.routes = tuple(routes)
        self.credentials = dict(credentials)
        self.host = host
        self.stage = stage
        self.region = region
        self.api_id = api_id
        self.binary_media_types = tuple(binary_media_types)
        self.max_clock_skew = max_clock_skew
        self._port = port
        # One function per handler: routes naming the same handler share its container, as GET and PATCH of
        # the scaling API share one Lambda in the template.
        self._functions: dict[object, _Function] = {}
        self._table: list[tuple[re.Pattern[str], Route, _Function]] = []
        for route in self.routes:
            function = self._functions.setdefault(route.handler, _Function(route.function_name, route.handler))
            self._table.append((_compile_resource(route.resource), route, function))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> LocalGateway:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self._port), _make_request_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-api-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The stage's base URL (what the template outputs as the API URL), without a trailing slash. A gateway
        that is not started (only `call` serves it, in process) has a URL without a port."""
        if self._server is None:
            return f"http://{self.host}/{self.stage}"
        return f"http://{self.host}:{self.port}/{self.stage}"

    def resource_url(self, resource_path: str) -> str:
        """`url` + a path such as `/scalableTargetDimensions/abc` (an Application Auto Scaling ResourceId)."""
        return self.url + "/" + resource_path.lstrip("/")

    def call(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer:
        """Serve one request in process, without a socket (a `Transport` for `send_signed`): same checks, same
        event, same answer as over HTTP. `url` is the URL the caller signed; its host is the Host header."""
        parts = urlsplit(url)
        pairs = list(headers.items())
        if not any(name.lower() == "host" for name, _ in pairs):
            pairs.append(("Host", parts.netloc))
        raw_path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.handle(method.upper(), raw_path or "/", pairs, body, "127.0.0.1")
        return HttpAnswer(response.status, combine_headers(response.headers), response.body)

    # --- one request -----------------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> GatewayResponse:
        """Answer one HTTP request (the HTTP server calls this; tests of the mapping may call it directly)."""
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        path = unquote(split.path)
        prefix = f"/{self.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return _error(404, "Not Found", request_id, "NotFoundException")
        stage_path = path[len(prefix) :] or "/"

        path_matches = [
            (match, route, function)
            for pattern, route, function in self._table
            if (match := pattern.match(stage_path)) is not None
        ]
        if not path_matches:
            return _error(404, "Not Found", request_id, "NotFoundException")
        chosen = next(((m, r, f) for m, r, f in path_matches if r.method in (method, "ANY")), None)
        if chosen is None:
            allowed = ", ".join(sorted({r.method for _, r, _ in path_matches}))
            return _error(405, f"Method {method} is not allowed on {stage_path}; allowed: {allowed}", request_id)
        match, route, function = chosen

        if len(body) > MAX_BODY_BYTES:
            return _error(413, "Request Too Long", request_id)

        single_headers = {name: value for name, value in headers}
        host = next((v for k, v in headers if k.lower() == "host"), None) or urlsplit(self.url).netloc
        try:
            caller = verify_request(
                method,
                f"http://{host}{raw_path}",
                single_headers,
                body,
                self.credentials,
                region=self.region,
                accepted_times=(clock.now(), time.time()),
                max_skew=self.max_clock_skew,
            )
        except SignatureRejected as rejected:
            logger.info("403 %s %s: %s", method, stage_path, rejected.error_type)
            return _error(403, rejected.message, request_id, rejected.error_type)

        event = self._event(method, split.query, stage_path, route, match, headers, body, request_id, source_ip)
        event["requestContext"]["identity"]["accessKey"] = caller.access_key
        context = LocalLambdaContext(function.name, request_id, self.region)
        try:
            handler = function.resolve()
            with function.lock:
                result = handler(event, context)
        except Exception:
            # The handler's own logs carry the trace; the caller gets what API Gateway sends, nothing more.
            logger.exception("502 %s %s: the %s function failed", method, stage_path, function.name)
            return _error(502, INTERNAL_SERVER_ERROR, request_id)
        response = self._http_response(result, request_id)
        if response is None:
            logger.error(
                "502 %s %s: the %s function returned a malformed proxy response", method, stage_path, function.name
            )
            return _error(502, INTERNAL_SERVER_ERROR, request_id)
        return response

    def _is_binary(self, headers: list[tuple[str, str]], body: bytes) -> bool:
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and any(fnmatch.fnmatch(media_type, pattern) for pattern in self.binary_media_types):
            return True
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def _event(
        self,
        method: str,
        query: str,
        stage_path: str,
        route: Route,
        match: re.Match[str],
        headers: list[tuple[str, str]],
        body: bytes,
        request_id: str,
        source_ip: str,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            multi_headers.setdefault(name, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        path_parameters = {name: unquote(value) for name, value in match.groupdict().items()}
        binary = bool(body) and self._is_binary(headers, body)
        now = clock.now()
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        return {
            "resource": route.resource,
            "path": stage_path,
            "httpMethod": method,
            "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": hashlib.sha1(route.resource.encode()).hexdigest()[:6],
                "resourcePath": route.resource,
                "httpMethod": method,
                "extendedRequestId": request_id,
                "requestTime": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{stage_path}",
                "accountId": "000000000000",
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": self.api_id,
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": source_ip,
                    "userAgent": user_agent,
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                },
                "domainName": urlsplit(self.url).netloc,
                "apiId": self.api_id,
            },
            "body": (base64.b64encode(body).decode("ascii") if binary else body.decode("utf-8")) if body else None,
            "isBase64Encoded": binary,
        }

    @staticmethod
    def _http_response(result: Any, request_id: str) -> GatewayResponse | None:
        """A Lambda proxy response as HTTP, or None when it is malformed (API Gateway then answers 502)."""
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            return None
        single = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            return None
        raw_body = result.get("body")
        if raw_body is None:
            body = b""
        elif not isinstance(raw_body, str):
            return None
        elif result.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw_body, validate=True)
            except ValueError:
                return None
        else:
            body = raw_body.encode("utf-8")
        out: list[tuple[str, str]] = []
        multi_lower = {name.lower() for name in multi}
        out.extend((str(name), str(value)) for name, value in single.items() if name.lower() not in multi_lower)
        for name, values in multi.items():
            out.extend((str(name), str(value)) for value in (values if isinstance(values, list) else [values]))
        if not any(name.lower() == "content-type" for name, _ in out):
            out.append(("Content-Type", "application/json"))
        out.append(("x-amzn-RequestId", request_id))
        return GatewayResponse(result["statusCode"], out, body)


def _make_request_handler(gateway: LocalGateway) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "fleetscaler-local-apigateway"
        sys_version = ""

        def _dispatch(self) -> None:
            length_header = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self._send(_error(411, "Length Required: send Content-Length, not chunked encoding", "-"))
                return
            try:
                length = int(length_header) if length_header else 0
            except ValueError:
                self._send(_error(400, "Content-Length must be a whole number", "-"))
                return
            if length > MAX_BODY_BYTES:
                self._send(_error(413, "Request Too Long", "-"))
                return
            body = self.rfile.read(length) if length else b""
            response = gateway.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            self._send(response, head_only=self.command == "HEAD")

        def _send(self, response: GatewayResponse, *, head_only: bool = False) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if not head_only:
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            # The default logs to stderr; the gateway logs its own lines without headers.
            pass

    return _Handler
