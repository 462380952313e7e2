"""The router's use case: validate, take a ticket from the table, pick an endpoint, invoke it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from fleetscaler.aws.sagemaker import AsyncInvocation, invoke_async
from fleetscaler.config import Settings
from fleetscaler.dal.store import MetadataStore
from fleetscaler.errors import ConfigurationUnusable, FleetNotFound
from fleetscaler.logic.invocation import Headers, InvocationRequest, parse_invocation
from fleetscaler.logic.server_config import validate_server_config
from fleetscaler.logic.wrr import pick

Invoker = Callable[[str, InvocationRequest], AsyncInvocation]


@dataclass(frozen=True)
class RoutedRequest:
    counter: int
    invocation: AsyncInvocation


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
        config = validate_server_config(ticket.config, self.resource_name)
        # A draining endpoint never gets a request, whatever weight a hand edit left it. No weight anywhere
        # (a fleet at zero): the request waits where the fleet wakes up.
        weights = [0 if config.is_draining(i) else w for i, w in enumerate(config.weights)]
        index = pick(weights, ticket.counter) if any(weights) else config.wake_up_index
        invocation = self.invoker(config.endpoint_name(self.resource_name, index), request)
        return RoutedRequest(counter=ticket.counter, invocation=invocation)
