"""The router's use case: validate, take a ticket from the table, pick an endpoint, invoke it.

A request that fails after taking its ticket gives the counter value back when no later request has taken
one (see `MetadataStore.give_back_route`), so failures do not shift the round-robin. SageMaker refusing a
request before queueing it (a validation error, throttling) sends it once to the next endpoint of the
sequence.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

from fleetscaler import clock
from fleetscaler.aws.sagemaker import AsyncInvocation, invoke_async
from fleetscaler.config import Settings
from fleetscaler.dal.store import MetadataStore, RouteTicket
from fleetscaler.errors import (
    ConfigurationUnusable,
    FleetNotFound,
    FleetscalerError,
    InvocationRefused,
    Throttled,
)
from fleetscaler.logic.invocation import Headers, InvocationRequest, parse_invocation
from fleetscaler.logic.server_config import RouteChoice, RoutingConfig, validate_routing_config

Invoker = Callable[[str, InvocationRequest], AsyncInvocation]

# SageMaker errors that guarantee nothing was queued: the same request may go to another endpoint.
REFUSED_BEFORE_QUEUEING: tuple[type[FleetscalerError], ...] = (InvocationRefused, Throttled)


@dataclass(frozen=True)
class Refusal:
    """An endpoint that refused the request before it went to the next one, and SageMaker's reason."""

    endpoint_name: str
    reason: str


@dataclass(frozen=True)
class RoutedRequest:
    counter: int
    invocation: AsyncInvocation
    refusal: Refusal | None = None


class FleetRouter:
    def __init__(self, settings: Settings, store: MetadataStore, invoker: Invoker = invoke_async) -> None:
        self.settings = settings
        self.store = store
        self.invoker = invoker

    @functools.cached_property
    def resource_name(self) -> str:
        """The fleet's name: from RESOURCE_NAME, else read once from the scalable-dimension item."""
        if self.settings.resource_name:
            return self.settings.resource_name
        dimension = self.store.get_dimension()
        if dimension is None or not dimension.resource_name:
            raise ConfigurationUnusable(
                "the fleet has no name: set RESOURCE_NAME or resourceName on the "
                "custom-resource:ResourceType:Property item"
            )
        return dimension.resource_name

    def route(self, fleet: str, headers: Headers | None, body: bytes | None) -> RoutedRequest:
        if fleet != self.resource_name:
            raise FleetNotFound(f"fleet {fleet!r} is not served here (this router serves {self.resource_name!r})")
        # Validate before touching the table, so a bad request costs no counter increment.
        request = parse_invocation(headers, body, self.settings.allowed_input_prefixes)
        ticket = self.store.next_route()
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
            self.store.give_back_route(ticket)


def _refused_twice(first: Refusal, second: FleetscalerError) -> FleetscalerError:
    """The second refusal, its message saying that the first endpoint refused too."""
    message = f"{second.message} (retried there after {first.endpoint_name} refused: {first.reason})"
    if isinstance(second, Throttled):
        return Throttled(message, second.retry_after)
    assert isinstance(second, InvocationRefused)
    return InvocationRefused(message, code=second.code)
