"""`cfn/fleet-autoscaler.yaml`: every resource family of the fleet, and the stack's outputs."""

from __future__ import annotations

from fleetscaler.deploy.template import api, events, functions, observability, parameters, scaling, table
from fleetscaler.deploy.template.common import SCALING_RESOURCE_ID, STAGE_NAME, Json, ref, sub


def fleet_template() -> Json:
    resources: Json = {
        **table.resources(),
        **functions.resources(),
        **api.resources(),
        **events.resources(),
        **scaling.resources(),
        **observability.resources(),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "fleetscaler: SageMaker asynchronous endpoints as one autoscaled fleet (router, scaling "
        "API, endpoint-state handler, metadata table, Application Auto Scaling custom resource, dashboard, "
        "alarms)",
        "Parameters": parameters.parameters(),
        "Conditions": parameters.conditions(),
        "Resources": resources,
        "Outputs": _outputs(),
    }


def _outputs() -> Json:
    return {
        "TableName": {"Description": "Metadata table", "Value": ref("MetadataTable")},
        "RouterUrl": {
            "Description": "Router API base URL: POST {RouterUrl}/endpoints/{FleetName}",
            "Value": sub(f"https://${{RouterApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{STAGE_NAME}"),
        },
        "ScalingResourceId": {
            "Description": "Application Auto Scaling ResourceId of the fleet (custom-resource namespace)",
            "Value": sub(SCALING_RESOURCE_ID),
        },
        "DashboardUrl": {
            "Description": "CloudWatch dashboard",
            "Value": sub(
                "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"
                "#dashboards:name=${Dashboard}"
            ),
        },
        "FleetName": {"Description": "The fleet's resourceName", "Value": ref("ResourceName")},
        "EndpointSuffixes": {
            "Description": "The endpoints the stack was deployed with (the seed's servers; later the engine "
            "follows server_config)",
            "Value": {"Fn::Join": [",", ref("EndpointSuffixes")]},
        },
        "AlarmTopicArn": {"Description": "SNS topic of the fleet's alarms", "Value": ref("AlarmTopic")},
    }
