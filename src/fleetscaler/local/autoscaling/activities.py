"""Scaling activities and the state the service keeps of its target and its policies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fleetscaler.local.autoscaling.base import SCALABLE_DIMENSION, SERVICE_NAMESPACE, ActivityStatus, Direction


@dataclass
class ScalingActivity:
    """One scaling activity, as DescribeScalingActivities reports it."""

    activity_id: str
    resource_id: str
    description: str
    cause: str
    start_time: float
    desired_capacity: int
    previous_capacity: int
    direction: Direction
    policy_name: str | None
    # The resource's actualCapacity when the activity started: the capacity behind the metric it acted on.
    actual_at_start: int = 0
    service_namespace: str = SERVICE_NAMESPACE
    scalable_dimension: str = SCALABLE_DIMENSION
    status_code: ActivityStatus = "Pending"
    status_message: str = ""
    end_time: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status_code in ("Pending", "InProgress")

    def to_dict(self) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "ActivityId": self.activity_id,
            "ServiceNamespace": self.service_namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.scalable_dimension,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": dt.datetime.fromtimestamp(self.start_time, dt.UTC),
            "StatusCode": self.status_code,
            "StatusMessage": self.status_message,
        }
        if self.end_time is not None:
            activity["EndTime"] = dt.datetime.fromtimestamp(self.end_time, dt.UTC)
        return activity


@dataclass
class ResourceState:
    """The custom resource's last answer to GET or PATCH."""

    actual_capacity: float
    desired_capacity: float
    scaling_status: str
    failure_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # The resource refuses changes right now (a SageMaker endpoint that is not InService): no activity starts.
    blocked: bool = False
