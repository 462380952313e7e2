"""Application Auto Scaling, emulated for one custom-resource scalable target.

It does what the service does for fleetscaler: reads the scaling metrics from CloudWatch (through boto3, so
moto stands in), evaluates the alarms of its policies once per 60 s period, decides a desired capacity, and
tells the custom resource over **SigV4-signed HTTP**: `GET` and `PATCH {"desiredCapacity": 4.0}` on the
target's ResourceId URL (`.../scalableTargetDimensions/{id}`), exactly the calls the deployed service makes.
Each decision is a scaling activity (as `DescribeScalingActivities` shows them) that stays open until the
resource reports `Successful` or `Failed`.

It owns no thread: the caller drives it with `tick(now)` (epoch seconds, a virtual clock's time in the local
fleet), so an hour of fleet time runs in a minute and the same inputs give the same activities.

    aas = ApplicationAutoScaling(resource_id, min_capacity=0, max_capacity=12, credentials=creds)
    aas.put_scaling_policy(TargetTrackingPolicy("backlog", fleet_backlog_metric("endpoint", ["1", "2"]), 5.0))
    aas.put_scaling_policy(scale_from_zero_policy("endpoint", "1"))
    aas.register(now)                  # GET, and PATCH into [min, max] when outside, as RegisterScalableTarget
    for now in range(t0, t0 + 3600, 10):
        aas.tick(now)
    aas.describe_scaling_activities()

Semantics (following the AWS documentation where it speaks, and observed behaviour where it does not):

- Target tracking. The alarms AAS creates for a target tracking policy: scale out when the metric is above the
  target for 3 consecutive 1-minute datapoints, scale in when it is below 90 % of the target for 15. The new
  capacity is `ceil(actualCapacity * metric / target)` (metric = the newest datapoint), bounded by min/max;
  during a scale-out cooldown the multiplier is the actual capacity from before that scale-out, since the
  newest datapoints may still be per instance of it.
  Target tracking cannot scale out from 0 (there is no per-instance metric then): that is what the
  scale-from-zero step policy is for. `DisableScaleIn` is honoured.
- Step scaling. An alarm (M of N datapoints of a 60 s period against a threshold) and step adjustments whose
  bounds are relative to the threshold, as in the step-scaling seed; `ChangeInCapacity` and
  `PercentChangeInCapacity` are relative to the current desired capacity, `ExactCapacity` sets it. While the
  alarm stays in ALARM the policy runs again every period, subject to its cooldown.
- Cooldowns (default 300 s, per policy) run from the end of the activity; an open activity counts as in
  cooldown. During a scale-out cooldown, the capacity added by the activity that started it counts as part
  of the next scale-out: a step policy adds to the capacity from before that activity, and only a larger
  result scales out again (a `+1` alarm that stays in ALARM while instances start does not add more).
  During a scale-in cooldown no further scale-in happens, but a scale-out proceeds at once.
- Several policies: scale out to the largest capacity any policy asks for; scale in only when no policy asks
  to scale out, to the largest of the scale-in capacities (the most conservative).
- A PATCH answered with an error (4xx/5xx, or no answer) ends its activity `Failed` with the HTTP status and
  message and starts no cooldown; the next evaluation decides again. While activities are open, the resource
  is polled with `GET` every `poll_interval` seconds; its `scalingStatus` closes them.

Simplifications: no CloudWatch metric delay (the newest complete period is used at once), no alarm actions
through SNS, missing datapoints never breach (`TreatMissingData: missing`), no instance warm-up, no
predictive or scheduled scaling, no suspension of scaling, no retry of a failed PATCH beyond the next
evaluation, no time-out of an activity (the custom resource reports `Failed` after its own timeout), the
`GET` polling interval of the service is undocumented (observed: minutes apart) and here configurable, and
"current capacity" for target tracking is the resource's `actualCapacity` (the capacity that produced the
per-instance metric).
"""

from fleetscaler.local.autoscaling.activities import ResourceState, ScalingActivity
from fleetscaler.local.autoscaling.base import (
    DEFAULT_COOLDOWN_SECONDS,
    PERIOD_SECONDS,
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    RegistrationError,
    ScalingConfigurationError,
)
from fleetscaler.local.autoscaling.metrics import MetricMath, MetricStat, fleet_backlog_metric
from fleetscaler.local.autoscaling.policies import (
    Alarm,
    Policy,
    StepAdjustment,
    StepScalingPolicy,
    TargetTrackingPolicy,
    policies_from_resources,
    scale_from_zero_policy,
)
from fleetscaler.local.autoscaling.service import ApplicationAutoScaling
from fleetscaler.local.autoscaling.variant import SAGEMAKER_DIMENSION, SAGEMAKER_NAMESPACE, SageMakerVariant

__all__ = [
    "DEFAULT_COOLDOWN_SECONDS",
    "PERIOD_SECONDS",
    "SAGEMAKER_DIMENSION",
    "SAGEMAKER_NAMESPACE",
    "SCALABLE_DIMENSION",
    "SERVICE_NAMESPACE",
    "Alarm",
    "ApplicationAutoScaling",
    "MetricMath",
    "MetricStat",
    "Policy",
    "RegistrationError",
    "ResourceState",
    "SageMakerVariant",
    "ScalingActivity",
    "ScalingConfigurationError",
    "StepAdjustment",
    "StepScalingPolicy",
    "TargetTrackingPolicy",
    "fleet_backlog_metric",
    "policies_from_resources",
    "scale_from_zero_policy",
]
