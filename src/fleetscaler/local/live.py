"""`fleetscaler local up`: the local stack kept running, fleet time following the wall clock (times --speed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import click

from fleetscaler.local.scenario import PolicySpec
from fleetscaler.local.simulator import scheduled_event
from fleetscaler.local.stack import LocalStack


class FleetTicker:
    """Moves fleet time with the wall clock: the emulator catches up, the endpoint-state Lambda gets its
    one-minute schedule (the fleet's scaling signal), and Application Auto Scaling evaluates."""

    def __init__(
        self,
        stack: LocalStack,
        autoscaler: Any,
        speed: float,
        step: float = 1.0,
        schedule: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.stack = stack
        self.autoscaler = autoscaler
        self.speed = speed
        self.step = step
        self.schedule = schedule
        self._next_schedule: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-ticker", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        assert self.stack.emulator is not None
        wall_start = time.monotonic()
        fleet_start = self.stack.clock.now()
        while not self._stop.wait(self.step):
            now = fleet_start + (time.monotonic() - wall_start) * self.speed
            try:
                self.stack.clock.set(now)
                self.stack.emulator.advance_to(now)
                if self.schedule is not None and (self._next_schedule is None or now >= self._next_schedule):
                    self.schedule(scheduled_event(now))
                    # a minute after this one, not after the missed slot: a stalled tick must not
                    # fire catch-up events seconds apart
                    self._next_schedule = now + 60.0
                if self.autoscaler is not None:
                    self.autoscaler.tick(now)
            except Exception as exc:  # keep the stack up; say what went wrong once per kind
                message = f"{type(exc).__name__}: {exc}"
                if message not in self.errors:
                    self.errors.append(message)
                    click.echo(f"fleet tick failed: {message}", err=True)


def run_local_stack(*, port: int, gateway_port: int, speed: float, seed: int) -> None:
    from fleetscaler.local.scenario import Scenario
    from fleetscaler.local.simulator import default_autoscaler, endpoint_state_sink

    # Fleet time starts at the wall clock, so at --speed 1 timestamps and CloudWatch windows are real ones.
    stack = LocalStack(emulator_port=port, gateway_port=gateway_port, seed=seed, start_time=float(int(time.time())))
    stack.start()
    try:
        assert stack.emulator is not None
        stack.emulator.event_sink = endpoint_state_sink()
        scenario = Scenario(
            name="local",
            description="",
            seed=seed,
            step_seconds=1.0,
            resource_name=stack.resource_name,
            strategy="balanced",
            provisioning_seconds=stack.provisioning_seconds,
            scale_in_seconds=stack.scale_in_seconds,
            rollback_seconds=stack.rollback_seconds,
            endpoints=stack.fleet_scenario_endpoints(),
            traffic=(),
            drain_seconds=0.0,
            policy=PolicySpec(),
        )
        autoscaler, described = default_autoscaler(stack, scenario)
        describe = getattr(autoscaler, "describe_scaling_activities_request", None)
        if describe is not None:
            # `fleetscaler status --resource-id ...` reads the emulator's activities like the real service's.
            stack.serve_operation(
                "AnyScaleFrontendService.DescribeScalingActivities", describe
            )
        ticker = FleetTicker(stack, autoscaler, speed, schedule=endpoint_state_sink())
        ticker.start()
        env = stack.environment
        click.echo(
            "\n".join(
                [
                    "fleetscaler local stack is up (Ctrl-C to stop)",
                    f"  AWS endpoint:    {stack.emulator_url} (SageMaker emulator; DynamoDB, S3, CloudWatch: moto)",
                    f"  router API:      {stack.router_url}/endpoints/{stack.resource_name}",
                    f"  scaling API:     {stack.scaling_resource_id}",
                    f"  table:           {stack.table_name}   fleet: {stack.resource_name} "
                    f"({', '.join(stack.emulator.endpoint_names())})",
                    f"  autoscaling:     {described}",
                    f"  fleet time:      {speed:g}x wall time",
                    "",
                    "environment:",
                    f"  export AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} "
                    f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']} AWS_REGION={env['AWS_REGION']}",
                    f"  export AWS_ENDPOINT_URL={stack.emulator_url}",
                    "",
                    "try:",
                    f"  fleetscaler --endpoint-url {stack.emulator_url} --table {stack.table_name} "
                    f"--router-url {stack.router_url} status --resource-id '{stack.scaling_resource_id}'",
                    f"  fleetscaler --endpoint-url {stack.emulator_url} --table {stack.table_name} "
                    f"--router-url {stack.router_url} invoke {stack.resource_name} --input s3://inputs/x.json",
                ]
            )
        )
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            click.echo("stopping")
        finally:
            ticker.stop()
    finally:
        stack.stop()
