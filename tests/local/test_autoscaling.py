"""The Application Auto Scaling emulator against a small fake custom resource behind the local gateway.

The fake resource is a Lambda handler written here (not the product's scaling API); metrics come from moto's
CloudWatch; time is a virtual clock moved one minute at a time.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from fleetscaler import clock
from fleetscaler.local.autoscaling import (
    Alarm,
    ApplicationAutoScaling,
    MetricMath,
    RegistrationError,
    ScalingActivity,
    ScalingConfigurationError,
    StepAdjustment,
    StepScalingPolicy,
    TargetTrackingPolicy,
    fleet_backlog_metric,
    scale_from_zero_policy,
)
from fleetscaler.local.gateway import LocalGateway, Route
from tests.local.conftest import ACCESS_KEY, CREDENTIALS

T0 = 1_800_000_000  # a whole minute
FLEET = "endpoint"
SERVERS = ("1", "2")
DIMENSION_PATH = "/scalableTargetDimensions/{scalableTargetDimensionId}"


class FakeDimension:
    """A custom resource that records what it is told and finishes a scaling only when the test says so."""

    def __init__(self, capacity: float) -> None:
        self.desired = capacity
        self.actual = capacity
        self.status = "Successful"
        self.failure_reason: str | None = None
        self.patch_bodies: list[str] = []
        self.callers: list[tuple[str, str | None]] = []
        self.limit: float | None = None

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.callers.append((event["httpMethod"], event["requestContext"]["identity"]["accessKey"]))
        if event["httpMethod"] == "PATCH":
            self.patch_bodies.append(event["body"])
            desired = json.loads(event["body"])["desiredCapacity"]
            if self.limit is not None and desired > self.limit:
                message = {"message": f"desiredCapacity: must be at most {self.limit:g}, got {desired:g}"}
                return {"statusCode": 400, "body": json.dumps(message)}
            if desired != self.desired:
                self.desired = desired
                self.status = "InProgress"
                self.failure_reason = None
        body = {
            "actualCapacity": self.actual,
            "desiredCapacity": self.desired,
            "scalableTargetDimensionId": event["pathParameters"]["scalableTargetDimensionId"],
            "scalingStatus": self.status,
            "version": "1",
        }
        if self.failure_reason:
            body["failureReason"] = self.failure_reason
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}

    def complete(self) -> None:
        self.actual = self.desired
        self.status = "Successful"

    def fail(self, reason: str) -> None:
        self.status = "Failed"
        self.failure_reason = reason

    @property
    def patched(self) -> list[float]:
        return [json.loads(body)["desiredCapacity"] for body in self.patch_bodies]


class Fleet:
    """The emulator, the fake resource, CloudWatch and the virtual clock, moved one minute per step."""

    def __init__(self, aas: ApplicationAutoScaling, dimension: FakeDimension, virtual: clock.ManualClock) -> None:
        self.aas = aas
        self.dimension = dimension
        self.clock = virtual
        self.cloudwatch = boto3.client("cloudwatch")

    def publish(self, metric: str, values: dict[str, float]) -> None:
        stamp = dt.datetime.fromtimestamp(self.clock.now() + 30, dt.UTC)
        self.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "EndpointName", "Value": f"{FLEET}-{server}"}],
                    "Timestamp": stamp,
                    "Value": value,
                }
                for server, value in values.items()
            ],
        )

    def minute(
        self, backlog: dict[str, float] | float | None = None, no_capacity: float | None = None
    ) -> list[ScalingActivity]:
        """Publish this minute's datapoints, move to the next minute and tick; the activities started."""
        if backlog is not None:
            per_server = backlog if isinstance(backlog, dict) else dict.fromkeys(SERVERS, backlog)
            self.publish("ApproximateBacklogSizePerInstance", per_server)
        if no_capacity is not None:
            self.publish("HasBacklogWithoutCapacity", {"1": no_capacity})
        self.clock.advance(60)
        return self.aas.tick(self.clock.now())

    def minutes(self, count: int, **datapoints: Any) -> list[ScalingActivity]:
        started: list[ScalingActivity] = []
        for _ in range(count):
            started.extend(self.minute(**datapoints))
        return started


@pytest.fixture
def virtual_clock() -> Iterator[clock.ManualClock]:
    virtual = clock.ManualClock(T0)
    previous = clock.set_clock(virtual)
    yield virtual
    clock.set_clock(previous)


@pytest.fixture
def make_fleet(aws: None, virtual_clock: clock.ManualClock, start_gateway: Any) -> Any:
    """`make_fleet(capacity, min, max, *policies)`: a registered target at `capacity` with those policies."""

    def build(
        capacity: float,
        min_capacity: int,
        max_capacity: int,
        *policies: Any,
        credentials: Credentials = CREDENTIALS,
        in_process: bool = False,
    ) -> Fleet:
        dimension = FakeDimension(capacity)
        gateway: LocalGateway = start_gateway(
            [Route("GET", DIMENSION_PATH, dimension), Route("PATCH", DIMENSION_PATH, dimension)]
        )
        aas = ApplicationAutoScaling(
            gateway.resource_url("scalableTargetDimensions/fleet-dimension"),
            min_capacity,
            max_capacity,
            credentials,
            transport=gateway.call if in_process else None,
        )
        for policy in policies:
            aas.put_scaling_policy(policy)
        return Fleet(aas, dimension, virtual_clock)

    return build


def backlog_policy(**options: Any) -> TargetTrackingPolicy:
    return TargetTrackingPolicy("fleet-backlog", fleet_backlog_metric(FLEET, SERVERS), 5.0, **options)


def test_target_tracking_scales_out_in_proportion_after_three_datapoints(make_fleet: Any) -> None:
    # Given 2 instances, target 5 backlog per instance, and one endpoint at 10 per instance, the other at 4
    fleet = make_fleet(2, 1, 10, backlog_policy())
    # When two minutes pass, then a third
    assert fleet.minutes(2, backlog={"1": 10, "2": 4}) == []
    (activity,) = fleet.minute(backlog={"1": 10, "2": 4})
    # Then AAS PATCHes ceil(2 * 10 / 5) = 4, as a float, and the activity is under way
    assert fleet.dimension.patch_bodies == ['{"desiredCapacity": 4.0}']
    assert activity.status_code == "InProgress"
    assert activity.description == "Setting desired capacity to 4."
    assert "TargetTracking-fleet-backlog-AlarmHigh in state ALARM triggered policy fleet-backlog" in activity.cause
    # And it ends when the resource reports Successful, at the next poll
    fleet.dimension.complete()
    fleet.minute(backlog=5)
    assert activity.status_code == "Successful"
    assert activity.end_time == fleet.clock.now()


def test_in_process_transport_scales_the_same_way(make_fleet: Any) -> None:
    # Given the emulator talking to the gateway in process instead of over a socket
    fleet = make_fleet(2, 1, 10, backlog_policy(), in_process=True)
    # When the backlog is twice the target for three minutes and the resource then finishes
    fleet.minutes(3, backlog=10)
    fleet.dimension.complete()
    fleet.minute(backlog=5)
    # Then the same signed PATCH went out and the activity ended Successful
    assert fleet.dimension.patched == [4.0]
    assert ("PATCH", ACCESS_KEY) in fleet.dimension.callers
    assert [a.status_code for a in fleet.aas.activities] == ["Successful"]


def test_scale_out_is_not_repeated_in_cooldown_but_a_larger_one_proceeds(make_fleet: Any) -> None:
    # Given a scale-out from 2 to 4 still provisioning (the per-instance metric stays high meanwhile)
    fleet = make_fleet(2, 1, 20, backlog_policy())
    fleet.minutes(3, backlog=10)
    assert fleet.dimension.patched == [4.0]
    # When the metric stays where it was for five more minutes
    fleet.minutes(5, backlog=10)
    # Then nothing more is asked
    assert fleet.dimension.patched == [4.0]
    # When the load doubles
    fleet.minutes(3, backlog=20)
    # Then the larger scale-out goes out at once, within the cooldown
    assert fleet.dimension.patched == [4.0, 8.0]


def test_datapoints_from_before_a_finished_scale_out_do_not_scale_it_again(make_fleet: Any) -> None:
    # Given a scale-out from 2 to 4 that finishes while the newest datapoints are still per instance of 2
    fleet = make_fleet(2, 1, 20, backlog_policy())
    fleet.minutes(3, backlog=10)
    fleet.dimension.complete()
    # When those datapoints are evaluated at 4 instances during the scale-out cooldown
    fleet.minutes(2, backlog=10)
    # Then AAS does not multiply them by the new capacity (which would ask for 8)
    assert fleet.dimension.patched == [4.0]
    # And once the datapoints reflect the 4 instances (5 per instance, on target), nothing more happens either
    fleet.minutes(10, backlog=5)
    assert fleet.dimension.patched == [4.0]


def test_in_cooldown_a_lowered_desired_is_not_raised_back_by_the_same_scale_out(make_fleet: Any) -> None:
    # Given a scale-out from 2 to 4 under way
    fleet = make_fleet(2, 1, 20, backlog_policy())
    fleet.minutes(3, backlog=10)
    # When an operator sets desired back to 2 while the metric still asks for 4
    fleet.dimension.desired = 2
    fleet.minutes(3, backlog=10)
    # Then within the cooldown AAS does not repeat the same scale-out (only a larger one would go out)
    assert fleet.dimension.patched == [4.0]


def test_capacity_stays_within_min_and_max(make_fleet: Any) -> None:
    # Given a target with max 10 and min 2
    fleet = make_fleet(2, 2, 10, backlog_policy())
    # When the backlog explodes
    fleet.minutes(3, backlog=100)
    # Then AAS asks for the max, not ceil(2 * 100 / 5) = 40
    assert fleet.dimension.patched == [10.0]
    # When the backlog then disappears for a long time
    fleet.dimension.complete()
    fleet.minutes(40, backlog=0)
    # Then it scales in to the min and no lower
    assert fleet.dimension.patched[1:] == [2.0]


def test_scale_in_waits_15_datapoints_and_the_scale_in_cooldown(make_fleet: Any) -> None:
    # Given 8 instances and a metric at 2 per instance (below 90 % of the target 5)
    fleet = make_fleet(8, 1, 10, backlog_policy())
    # When 14 minutes pass
    fleet.minutes(14, backlog=2)
    assert fleet.dimension.patched == []
    # Then the 15th datapoint scales in to ceil(8 * 2 / 5) = 4
    fleet.minute(backlog=2)
    assert fleet.dimension.patched == [4.0]
    # When the resource finishes and the metric stays low
    fleet.dimension.complete()
    fleet.minute(backlog=2)
    (first,) = fleet.aas.activities
    assert first.status_code == "Successful"
    assert first.end_time is not None
    ended = first.end_time
    fleet.minutes(4, backlog=2)
    # Then no further scale-in happens within 300 s of the end of the first one
    assert fleet.dimension.patched == [4.0]
    fleet.minute(backlog=2)
    assert fleet.clock.now() == ended + 300
    assert fleet.dimension.patched == [4.0, 2.0]


def test_scale_out_interrupts_a_scale_in_cooldown(make_fleet: Any) -> None:
    # Given a scale-in just completed (cooldown running)
    fleet = make_fleet(8, 1, 10, backlog_policy())
    fleet.minutes(15, backlog=2)
    fleet.dimension.complete()
    fleet.minute(backlog=2)
    assert fleet.dimension.patched == [4.0]
    # When load rises above target for three minutes, still within the scale-in cooldown
    fleet.minutes(3, backlog=10)
    # Then it scales out at once to ceil(4 * 10 / 5) = 8
    assert fleet.dimension.patched == [4.0, 8.0]


def test_disable_scale_in_keeps_capacity(make_fleet: Any) -> None:
    # Given a policy with scale-in disabled
    fleet = make_fleet(8, 1, 10, backlog_policy(disable_scale_in=True))
    # When the metric stays low for half an hour
    fleet.minutes(30, backlog=0)
    # Then nothing is removed
    assert fleet.dimension.patched == []


def seed_step_policy() -> StepScalingPolicy:
    """The step-scaling seed's shape: one alarm always in ALARM (>= 0), steps in metric units."""
    alarm = Alarm("fleet-backlog-steps", fleet_backlog_metric(FLEET, SERVERS), 0.0, "GreaterThanOrEqualToThreshold")
    steps = (
        StepAdjustment(-1, upper_bound=2),
        StepAdjustment(0, lower_bound=2, upper_bound=10),
        StepAdjustment(2, lower_bound=10),
    )
    return StepScalingPolicy("steps", alarm, steps, "ChangeInCapacity", cooldown=300)


def test_step_policy_adds_its_step_once_per_cooldown_and_removes_on_the_low_step(make_fleet: Any) -> None:
    # Given the seed's step policy at 2 instances
    fleet = make_fleet(2, 1, 10, seed_step_policy())
    # When the backlog is 12 per instance: +2
    fleet.minute(backlog=12)
    assert fleet.dimension.patched == [4.0]
    # Then while the activity is open and during 300 s after it ends, the same step adds nothing more
    fleet.minute(backlog=12)
    fleet.dimension.complete()
    fleet.minute(backlog=12)
    ended = fleet.aas.activities[0].end_time
    assert ended is not None
    fleet.minutes(4, backlog=12)
    assert fleet.dimension.patched == [4.0]
    # And once the cooldown is over, the still-firing alarm adds 2 more
    fleet.minute(backlog=12)
    assert fleet.clock.now() == ended + 300
    assert fleet.dimension.patched == [4.0, 6.0]
    # When the backlog falls under 2: the -1 step
    fleet.dimension.complete()
    fleet.minute(backlog=1)
    assert fleet.dimension.patched == [4.0, 6.0, 5.0]


def test_a_step_scale_out_in_cooldown_never_turns_into_a_scale_in(make_fleet: Any) -> None:
    # Given a shortfall-style step policy (+8 for a breach of 8 or more) and a larger scale-out from elsewhere
    alarm = Alarm("shortfall", fleet_backlog_metric(FLEET, SERVERS), 1.0, "GreaterThanOrEqualToThreshold")
    policy = StepScalingPolicy("shortfall", alarm, (StepAdjustment(8, lower_bound=0),), "ChangeInCapacity", 300)
    fleet = make_fleet(2, 1, 40, policy)
    fleet.minute(backlog=9)
    assert fleet.dimension.patched == [10.0]
    fleet.dimension.desired = 30.0  # another policy (or an operator) asked for more meanwhile
    # When the alarm stays in ALARM during the cooldown: 2 + 8 = 10 is less than the 30 asked for
    fleet.minutes(3, backlog=9)
    # Then nothing happens: a scale-out that comes to less than what is asked for never lowers it
    assert fleet.dimension.patched == [10.0]
    assert fleet.dimension.desired == 30.0


def test_step_adjustment_types() -> None:
    # Given one alarm and three kinds of adjustment
    alarm = Alarm("a", fleet_backlog_metric(FLEET, SERVERS), 10.0)
    step = (StepAdjustment(50, lower_bound=0),)
    # Then percent changes round toward zero and respect the minimum magnitude; exact sets the capacity
    assert StepScalingPolicy("p", alarm, step, "PercentChangeInCapacity").capacity_for(12, 5) == 7
    assert (
        StepScalingPolicy("p", alarm, step, "PercentChangeInCapacity", min_adjustment_magnitude=3).capacity_for(12, 2)
        == 5
    )
    assert StepScalingPolicy("p", alarm, (StepAdjustment(3, lower_bound=0),), "ExactCapacity").capacity_for(12, 9) == 3
    # And a value outside every step asks for nothing
    assert (
        StepScalingPolicy("p", alarm, (StepAdjustment(1, lower_bound=5),), "ChangeInCapacity").capacity_for(12, 2)
        is None
    )


def test_scale_from_zero_after_two_datapoints_and_only_one_instance(make_fleet: Any) -> None:
    # Given a fleet at zero with the backlog policy and the wake-up policy on endpoint-1
    fleet = make_fleet(0, 0, 10, backlog_policy(), scale_from_zero_policy(FLEET, "1"))
    # When one minute has a backlog without capacity, then one without, then one with
    fleet.minute(no_capacity=1)
    fleet.minute(no_capacity=0)
    fleet.minute(no_capacity=1)
    # Then nothing happens (2 of 2 datapoints needed), and target tracking cannot scale from zero
    assert fleet.dimension.patched == []
    # When the second consecutive datapoint arrives
    (activity,) = fleet.minute(no_capacity=1)
    # Then AAS adds one instance
    assert fleet.dimension.patched == [1.0]
    assert "scale-from-zero-HasBacklogWithoutCapacity" in activity.cause
    # And while that instance starts (the alarm still firing) it adds no other
    fleet.minutes(4, no_capacity=1)
    assert fleet.dimension.patched == [1.0]


def test_failed_scaling_is_recorded_with_the_resource_reason(make_fleet: Any) -> None:
    # Given a scale-out under way
    fleet = make_fleet(2, 1, 10, backlog_policy())
    (activity,) = fleet.minutes(3, backlog=10)
    # When the resource reports Failed
    fleet.dimension.fail("CapacityError: Unable to provision requested ML compute capacity")
    fleet.minute(backlog=10)
    # Then the activity is Failed with that reason
    assert activity.status_code == "Failed"
    assert "CapacityError" in activity.status_message
    described = fleet.aas.describe_scaling_activities()[0]
    assert described["StatusCode"] == "Failed"
    assert described["ScalableDimension"] == "custom-resource:ResourceType:Property"
    assert described["EndTime"] >= described["StartTime"]


def test_requests_to_the_resource_are_signed_and_verified(make_fleet: Any) -> None:
    # Given a scaled target whose resource records who called
    fleet = make_fleet(2, 1, 10, backlog_policy())
    fleet.minutes(3, backlog=10)
    # Then every GET and PATCH reached it signed with the emulator's access key
    assert ("GET", ACCESS_KEY) in fleet.dimension.callers
    assert ("PATCH", ACCESS_KEY) in fleet.dimension.callers
    calls_before = len(fleet.dimension.callers)
    # When the emulator's secret is wrong and the load doubles
    fleet.aas.credentials = Credentials(ACCESS_KEY, "not-the-secret")
    fleet.minutes(3, backlog=20)
    # Then the gateway refuses its requests: the resource hears nothing and the emulator says why
    assert len(fleet.dimension.callers) == calls_before
    assert fleet.dimension.patched == [4.0]
    assert fleet.aas.last_error is not None
    assert fleet.aas.last_error.startswith("403: The request signature we calculated does not match")


def test_a_refused_patch_ends_the_activity_failed_and_is_decided_again(make_fleet: Any) -> None:
    # Given a resource that refuses more than 6
    fleet = make_fleet(2, 1, 10, backlog_policy())
    fleet.dimension.limit = 6
    # When the metric asks for ceil(2 * 20 / 5) = 8
    (refused,) = fleet.minutes(3, backlog=20)
    # Then the activity failed with the resource's message
    assert refused.status_code == "Failed"
    assert (
        refused.status_message
        == "Failed to set desired capacity to 8: HTTP 400: desiredCapacity: must be at most 6, got 8"
    )
    # And the next evaluation tries again (a failed activity holds no cooldown)
    fleet.dimension.limit = None
    fleet.minute(backlog=20)
    assert fleet.dimension.patched == [8.0, 8.0]
    assert fleet.aas.activities[-1].status_code == "InProgress"


def test_registration_needs_a_signed_answer_and_moves_capacity_into_bounds(make_fleet: Any) -> None:
    # Given a resource at 0 and a target registered with min 1
    fleet = make_fleet(0, 1, 10)
    # When it is registered
    activity = fleet.aas.register(fleet.clock.now())
    # Then the capacity is moved to the min
    assert activity is not None
    assert fleet.dimension.patched == [1.0]
    assert "minimum capacity was set to 1" in activity.cause
    # And a caller with an unknown key cannot register at all
    stranger = make_fleet(0, 0, 10, credentials=Credentials("AKIDSTRANGER", "x"))
    with pytest.raises(RegistrationError, match="403"):
        stranger.aas.register(stranger.clock.now())


def test_template_shaped_metric_math_is_understood() -> None:
    # Given the template's CustomizedMetricSpecification with one query per endpoint and MAX(METRICS())
    spec = {
        "Metrics": [
            {
                "Id": f"m{server}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "ApproximateBacklogSizePerInstance",
                        "Dimensions": [{"Name": "EndpointName", "Value": f"{FLEET}-{server}"}],
                    },
                    "Stat": "Average",
                },
                "ReturnData": False,
            }
            for server in SERVERS
        ]
        + [{"Id": "e1", "Expression": "MAX(METRICS())", "ReturnData": True}]
    }
    # Then it is the same metric as the helper builds
    policy = TargetTrackingPolicy.from_configuration("p", {"TargetValue": 5.0, "CustomizedMetricSpecification": spec})
    assert policy.metric == fleet_backlog_metric(FLEET, SERVERS)
    assert (policy.scale_out_cooldown, policy.scale_in_cooldown) == (300, 300)
    # And an expression the emulator cannot evaluate is refused by name
    spec["Metrics"][-1]["Expression"] = "m1 / m2"
    with pytest.raises(ScalingConfigurationError, match="Expression"):
        MetricMath.from_customized_metric_specification(spec)


def test_activities_are_read_with_boto3_through_the_local_aws_url(make_fleet: Any) -> None:
    # Given a scale-out activity, and the emulator's DescribeScalingActivities served on the local AWS URL
    # (as `fleetscaler local up` does for `fleetscaler status`)
    from fleetscaler.local.sagemaker_emulator import SageMakerEmulator

    fleet = make_fleet(2, 1, 10, backlog_policy())
    (activity,) = fleet.minutes(3, backlog=10)
    server = SageMakerEmulator().serve()
    server.add_operation(
        "AnyScaleFrontendService.DescribeScalingActivities", fleet.aas.describe_scaling_activities_request
    )
    try:
        client = boto3.client("application-autoscaling", endpoint_url=server.url)
        # When a boto3 client asks for the target's activities, and for another target's
        mine = client.describe_scaling_activities(
            ServiceNamespace="custom-resource",
            ResourceId=fleet.aas.resource_id,
            ScalableDimension="custom-resource:ResourceType:Property",
        )["ScalingActivities"]
        other = client.describe_scaling_activities(ServiceNamespace="custom-resource", ResourceId="https://x/y")
    finally:
        server.stop()
    # Then it gets the activity in the service's shape (timestamps parsed), and nothing for the other target
    assert [(a["ActivityId"], a["StatusCode"], a["Description"]) for a in mine] == [
        (activity.activity_id, "InProgress", "Setting desired capacity to 4.")
    ]
    assert mine[0]["StartTime"].timestamp() == activity.start_time
    assert other["ScalingActivities"] == []
