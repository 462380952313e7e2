"""What every CLI command shares: global options, a boto3 session, stack outputs, one-line errors."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import click

if TYPE_CHECKING:
    from fleetscaler.dal.store import MetadataStore

# Output keys of cfn/fleet-autoscaler.yaml that the CLI reads with --stack.
STACK_OUTPUT_TABLE = "TableName"
STACK_OUTPUT_ROUTER_URL = "RouterUrl"
STACK_OUTPUT_SCALING_RESOURCE_ID = "ScalingResourceId"
STACK_OUTPUT_DASHBOARD_URL = "DashboardUrl"
STACK_OUTPUT_FLEET_NAME = "FleetName"


class CliError(click.ClickException):
    """A problem the user can fix; printed as one line `error: ...`, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class CommandFailed(click.ClickException):
    """The command ran and reported its outcome, which is a failure: one line `error: ...`, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@dataclass
class CliContext:
    stack: str | None = None
    table: str | None = None
    router_url: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    output: str = "text"

    @functools.cached_property
    def session(self) -> boto3.Session:
        try:
            # botocore reads AWS_DEFAULT_REGION and the profile but not AWS_REGION, which Lambda, the other
            # AWS SDKs and the local stack's printed environment use: honour it too.
            region = self.region or os.environ.get("AWS_REGION") or None
            return boto3.Session(profile_name=self.profile, region_name=region)
        except Exception as exc:  # botocore raises ProfileNotFound and friends
            raise CliError(f"cannot create an AWS session: {exc}") from exc

    def client(self, service: str) -> Any:
        """A boto3 client honouring --region, --profile and --endpoint-url (for moto or the local fleet)."""
        return self.session.client(service, region_name=self.region_name, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    @functools.cached_property
    def _stack(self) -> dict[str, Any]:
        if not self.stack:
            return {}
        from botocore.exceptions import ClientError

        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
        except ClientError as exc:
            raise CliError(f"--stack {self.stack}: {exc.response['Error'].get('Message', exc)}") from exc
        return dict(stacks[0])

    @property
    def stack_outputs(self) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self._stack.get("Outputs", [])}

    @property
    def stack_parameters(self) -> dict[str, str]:
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in self._stack.get("Parameters", [])}

    def require(self, value: str | None, output_key: str, option: str) -> str:
        resolved = value or self.stack_outputs.get(output_key)
        if not resolved:
            raise CliError(f"{option} is required (or --stack NAME whose outputs include {output_key})")
        return resolved

    @property
    def table_name(self) -> str:
        return self.require(self.table, STACK_OUTPUT_TABLE, "--table")

    @property
    def router_base_url(self) -> str:
        return self.require(self.router_url, STACK_OUTPUT_ROUTER_URL, "--router-url").rstrip("/")

    @functools.cached_property
    def store(self) -> MetadataStore:
        """The metadata table through the dal, bound to --table/--stack, --region, --endpoint-url, --profile."""
        from fleetscaler.dal.store import MetadataStore

        # Every table call needs credentials: say so in one line rather than as a failed DynamoDB call.
        frozen = self.frozen_credentials()
        credentials = (frozen.access_key, frozen.secret_key, frozen.token) if self.profile else None
        return MetadataStore(
            self.table_name, region=self.region_name, host=self.endpoint_url, credentials=credentials
        )

    def frozen_credentials(self) -> Any:
        """Credentials from the standard chain (env, profile, SSO, instance role); one-line error when none."""
        credentials = self.session.get_credentials()
        if credentials is None:
            raise CliError(
                "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or use --profile)"
            )
        return credentials.get_frozen_credentials()

    def table_client(self) -> Any:
        """A DynamoDB client for the dal's whole-item helpers (dal.seed), after the same credentials check."""
        self.frozen_credentials()
        return self.client("dynamodb")

    @property
    def region_name(self) -> str:
        return self.session.region_name or "us-east-1"

    def fleet_name(self) -> str:
        """The fleet's resourceName: the stack's FleetName output, else the scalable-dimension item's resourceName."""
        name = self.stack_outputs.get(STACK_OUTPUT_FLEET_NAME)
        if name:
            return name
        dimension = self.store.get_dimension()
        if dimension is not None and dimension.resource_name:
            return str(dimension.resource_name)
        raise CliError(
            f"the fleet has no name: table {self.table_name} has no resourceName on its "
            "custom-resource:ResourceType:Property item (or use --stack)"
        )

    def emit(self, data: Any, text: str) -> None:
        """Print `text` for people, or `data` as JSON with --output json."""
        if self.output == "json":
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            click.echo(text)


pass_cli = click.make_pass_decorator(CliContext)
