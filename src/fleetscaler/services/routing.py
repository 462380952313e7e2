"""The router's use case: validate, take a ticket from the table, pick an endpoint, invoke it.

A request that fails after taking its ticket gives the counter value back when no later request has taken
one (see `RouterTable.give_back_route`), so failures do not shift the round-robin. SageMaker refusing a
request before queueing it (a validation error, throttling) sends it once to the next endpoint of the
sequence. A request throttled all the same (by DynamoDB, or by SageMaker on both endpoints) is tried once
more after a short random pause when the time left allows it, then answered 429.

A request with an Idempotency-Key is routed at most once per key within the window (`dal.idempotency`): a
repeat gets the first answer, takes no counter value and invokes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fleetscaler import clock
from fleetscaler.aws.sagemaker import AsyncInvocation, invoke_async
from fleetscaler.config import Settings
from fleetscaler.dal.router_table import RouteTable, RouteTicket
from fleetscaler.errors import (
    ConfigurationUnusable,
    FleetNotFound,
    FleetscalerError,
    InvocationRefused,
    Throttled,
)
from fleetscaler.logic.invocation import Headers, HeaderValue, InvocationRequest, idempotency_key, parse_invocation
from fleetscaler.logic.server_config import RouteChoice, RoutingConfig, validate_routing_config

if TYPE_CHECKING:
    from fleetscaler.dal.idempotency import IdempotentCalls

Invoker = Callable[[str, InvocationRequest], AsyncInvocation]
# Milliseconds of the request's time budget left (the Lambda context's get_remaining_time_in_millis).
RemainingTime = Callable[[], int]

# SageMaker errors that guarantee nothing was queued: the same request may go to another endpoint.
REFUSED_BEFORE_QUEUEING: tuple[type[FleetscalerError], ...] = (InvocationRefused, Throttled)
# The pause before the one retry of a throttled request, drawn at random from this range (seconds) so that
# requests throttled together do not come back together.
THROTTLE_RETRY_PAUSE = (0.05, 0.25)
# The retry is made only when, after the pause, the time left is at least what the first attempt took plus this
# margin (milliseconds) to answer.
THROTTLE_RETRY_MARGIN_MS = 1_000


def jittered_pause() -> float:
    """Seconds to wait before the retry of a throttled request, at random in THROTTLE_RETRY_PAUSE."""
    return random.uniform(*THROTTLE_RETRY_PAUSE)


@dataclass(frozen=True)
class Refusal:
    """An endpoint that refused the request before it went to the next one, and SageMaker's reason."""

    endpoint_name: str
    reason: str


@dataclass(frozen=True)
class RoutedRequest:
    """A request's answer. `counter` None: a repeat of an Idempotency-Key, answered from the first request's
    record (`repeated`). `throttled`: the first attempt was throttled and the request was tried once more.
    `unrecorded`: why the answer of an Idempotency-Key's first request could not be recorded."""

    counter: int | None
    invocation: AsyncInvocation
    refusal: Refusal | None = None
    throttled: Throttled | None = None
    idempotency_key: HeaderValue | None = None
    repeated: bool = False
    unrecorded: str | None = None


class FleetRouter:
    def __init__(
        self,
        settings: Settings,
        table: RouteTable,
        invoker: Invoker = invoke_async,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pause: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # The pause and the time budget are real time (the Lambda's), not fleetscaler's clock: the local fleet's
        # virtual clock does not make a Lambda's wait any shorter.
        self.settings = settings
        self.table = table
        self.invoker = invoker
        self._sleep = sleep
        self._pause = pause or jittered_pause
        self._monotonic = monotonic

    @functools.cached_property
    def resource_name(self) -> str:
        """The fleet's name: from RESOURCE_NAME, else read once from the scalable-dimension item."""
        if self.settings.resource_name:
            return self.settings.resource_name
        name = self.table.fleet_name()
        if not name:
            raise ConfigurationUnusable(
                "the fleet has no name: set RESOURCE_NAME or resourceName on the "
                "custom-resource:ResourceType:Property item"
            )
        return name

    @property
    def known_fleet_name(self) -> str:
        """The fleet's name if known without reading the table ("" otherwise), for metrics of failed requests."""
        return self.settings.resource_name or self.__dict__.get("resource_name", "")

    @functools.cached_property
    def idempotent_calls(self) -> IdempotentCalls:
        return self.table.idempotent_calls(self.settings.idempotency_ttl_seconds)

    def route(
        self, fleet: str, headers: Headers | None, body: bytes | None, remaining_ms: RemainingTime | None = None
    ) -> RoutedRequest:
        if fleet != self.resource_name:
            raise FleetNotFound(f"fleet {fleet!r} is not served here (this router serves {self.resource_name!r})")
        # Validate before touching the table, so a bad request costs no counter increment.
        request = parse_invocation(headers, body, self.settings.allowed_input_prefixes)
        key = idempotency_key(headers)
        if key is None:
            return self._retried_once_if_throttled(lambda: self._route(request), remaining_ms)
        once = self._route_once_per_key
        return self._retried_once_if_throttled(lambda: once(request, key, remaining_ms), remaining_ms)

    def _retried_once_if_throttled(
        self, attempt: Callable[[], RoutedRequest], remaining_ms: RemainingTime | None
    ) -> RoutedRequest:
        started = self._monotonic()
        try:
            return attempt()
        except Throttled as throttled:
            pause = self._pause()
            if remaining_ms is not None:
                took_ms = (self._monotonic() - started) * 1000
                if remaining_ms() - pause * 1000 < took_ms + THROTTLE_RETRY_MARGIN_MS:
                    raise
            self._sleep(pause)
            try:
                return replace(attempt(), throttled=throttled)
            except Throttled as again:
                raise Throttled(
                    f"{again.message} (throttled again when tried once more, {pause * 1000:.0f} ms later)",
                    again.retry_after,
                    source=again.source,
                    retried=True,
                ) from again

    def _route_once_per_key(
        self, request: InvocationRequest, key: HeaderValue, remaining_ms: RemainingTime | None
    ) -> RoutedRequest:
        routed: list[RoutedRequest] = []

        def first_time() -> dict[str, str | None]:
            routed.append(self._route(request))
            return answer_of(routed[0].invocation)

        outcome = self.idempotent_calls.once(
            key.value, request.fingerprint(), first_time, remaining_ms, field=key.header
        )
        if outcome.first:
            return replace(routed[0], idempotency_key=key, unrecorded=outcome.unrecorded)
        answer = outcome.answer
        invocation = AsyncInvocation(
            endpoint_name=str(answer["endpointName"]),
            inference_id=str(answer["inferenceId"]),
            output_location=str(answer["outputLocation"]),
            failure_location=answer.get("failureLocation"),
        )
        return RoutedRequest(counter=None, invocation=invocation, idempotency_key=key, repeated=True)

    def _route(self, request: InvocationRequest) -> RoutedRequest:
        ticket = self.table.next_route()
        try:
            config = validate_routing_config(ticket.config, self.resource_name)
            # Where it finishes first, given the engine's snapshot of the queues (see logic.routing).
            choice = config.choose(ticket.counter, self.resource_name, clock.now())
            return self._invoke(config, choice, request, ticket.counter)
        except FleetscalerError:
            self._give_back(ticket)
            raise

    def _invoke(
        self, config: RoutingConfig, choice: RouteChoice, request: InvocationRequest, counter: int
    ) -> RoutedRequest:
        first = config.endpoint_name(self.resource_name, choice.primary)
        try:
            return RoutedRequest(counter, self.invoker(first, request))
        except REFUSED_BEFORE_QUEUEING as refused:
            if choice.fallback is None:
                raise
            refusal = Refusal(first, refused.message)
        second = config.endpoint_name(self.resource_name, choice.fallback)
        try:
            return RoutedRequest(counter, self.invoker(second, request), refusal)
        except REFUSED_BEFORE_QUEUEING as again:
            raise _refused_twice(refusal, again) from again

    def _give_back(self, ticket: RouteTicket) -> None:
        # Best effort: when it cannot be given back the value stays spent, a gap of one request in the
        # sequence; the caller's answer is the request's own failure either way.
        with contextlib.suppress(FleetscalerError):
            self.table.give_back_route(ticket)


def answer_of(invocation: AsyncInvocation) -> dict[str, str | None]:
    """The router's 202 body for a queued request (also what an Idempotency-Key's record keeps)."""
    return {
        "endpointName": invocation.endpoint_name,
        "inferenceId": invocation.inference_id,
        "outputLocation": invocation.output_location,
        "failureLocation": invocation.failure_location,
    }


def _refused_twice(first: Refusal, second: FleetscalerError) -> FleetscalerError:
    """The second refusal, its message saying that the first endpoint refused too."""
    message = f"{second.message} (retried there after {first.endpoint_name} refused: {first.reason})"
    if isinstance(second, Throttled):
        return Throttled(message, second.retry_after, source=second.source)
    assert isinstance(second, InvocationRefused)
    return InvocationRefused(message, code=second.code)
