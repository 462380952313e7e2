"""A SageMaker variant as a scalable target (sagemaker:variant:DesiredInstanceCount), for the native baseline."""

from __future__ import annotations

from typing import Any

from fleetscaler.local.autoscaling.activities import ResourceState

SAGEMAKER_NAMESPACE = "sagemaker"
SAGEMAKER_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Endpoint status -> the activity's progress. After a failed update the endpoint is InService again at the old
# count with a FailureReason: the activity that asked for the update failed.
_VARIANT_PROGRESS = {"Updating": "InProgress", "RollingBack": "InProgress", "SystemUpdating": "InProgress",
                     "Creating": "InProgress", "Failed": "Failed", "UpdateRollbackFailed": "Failed"}


class SageMakerVariant:
    """A SageMaker endpoint variant as a scalable target (`sagemaker:variant:DesiredInstanceCount`), through a
    boto3-shaped SageMaker client: capacity is the variant's instance count, a change is
    UpdateEndpointWeightsAndCapacities, progress is DescribeEndpoint's status.

    As the service: scaling is blocked while the endpoint is not InService (SageMaker's documentation: "auto
    scaling is blocked while the update operation is in progress"); an update SageMaker refuses (e.g.
    `ValidationException: Cannot update in-progress endpoint`) fails the activity; an update that rolls back
    (capacity error) fails the activity with the endpoint's FailureReason. Neither starts a cooldown, so the
    next evaluation tries again.
    """

    def __init__(self, client: Any, endpoint_name: str, variant_name: str = "AllTraffic") -> None:
        self.client = client
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name

    @property
    def resource_id(self) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{self.variant_name}"

    def get(self) -> ResourceState | str:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            return f"{exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}"
        variant = next(
            (v for v in answer.get("ProductionVariants", []) if v.get("VariantName") == self.variant_name), None
        )
        if variant is None:
            return f"variant {self.variant_name} is not on endpoint {self.endpoint_name}"
        status = str(answer.get("EndpointStatus"))
        failure = answer.get("FailureReason")
        progress = _VARIANT_PROGRESS.get(status, "Failed" if failure else "Successful")
        current = float(variant.get("CurrentInstanceCount") or 0)
        return ResourceState(
            actual_capacity=current,
            desired_capacity=float(variant.get("DesiredInstanceCount", current)),
            scaling_status=progress,
            failure_reason=failure,
            raw=dict(answer),
            blocked=status != "InService",
        )

    def set_desired(self, capacity: int) -> ResourceState | str:
        from botocore.exceptions import ClientError

        try:
            self.client.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint_name,
                DesiredWeightsAndCapacities=[{"VariantName": self.variant_name, "DesiredInstanceCount": capacity}],
            )
        except ClientError as exc:
            return f"{exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}"
        return self.get()
