"""`fleetscaler deploy` and `fleetscaler destroy`: the fleet stack through a CloudFormation change set."""

from __future__ import annotations

from pathlib import Path

import click

from fleetscaler.cli.context import CliContext, CliError, pass_cli
from fleetscaler.deploy.package import REPO_ROOT
from fleetscaler.deploy.stack import DeployError, StackDeployer, parse_params

DEFAULT_CODE = REPO_ROOT / "dist" / "code.zip"
DEFAULT_DATA = REPO_ROOT / "data" / "ddb-data.jsonl"


def _deployer(obj: CliContext, poll_seconds: float) -> StackDeployer:
    return StackDeployer(
        cloudformation=obj.client("cloudformation"),
        s3=obj.client("s3"),
        sagemaker=obj.client("sagemaker"),
        echo=lambda line: click.echo(line, err=obj.output == "json"),
        poll_seconds=poll_seconds,
    )


def _stack_name(obj: CliContext, stack: str | None) -> str:
    """`--stack` after the command, or the global one before it."""
    if stack:
        obj.stack = stack
    if not obj.stack:
        raise CliError("--stack NAME is required")
    return obj.stack


stack_option = click.option("--stack", "stack", help="The CloudFormation stack (same as the global --stack).")


@click.command("deploy")
@stack_option
@click.option("--bucket", help="S3 bucket for code.zip, the seed items and the template (required).")
@click.option("--params", "params", multiple=True, metavar="KEY=VALUE",
              help="Template parameter, repeatable: ResourceName=endpoint EndpointSuffixes=1,2,3 ...")
@click.option("--code", type=click.Path(path_type=Path), default=DEFAULT_CODE, show_default=True,
              help="The Lambda code package (`make package`).")
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True,
              help="Seed items whose per-endpoint settings (capacity_units, max_instance_count, strategy) "
                   "are kept for the suffixes deployed.")
@click.option("--template", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Template file (default: cfn/fleet-autoscaler.yaml as built by fleetscaler.deploy.template).")
@click.option("--poll-seconds", type=float, default=5.0, show_default=True, hidden=True)
@pass_cli
def deploy(
    obj: CliContext,
    stack: str | None,
    bucket: str | None,
    params: tuple[str, ...],
    code: Path,
    data: Path,
    template: Path | None,
    poll_seconds: float,
) -> None:
    """Upload the code and seed, create or update the stack through a change set, print its outputs."""
    stack_name = _stack_name(obj, stack)
    if not bucket:
        raise CliError("--bucket is required (the S3 bucket for code.zip and the seed items)")
    if template is not None:
        body = template.read_text(encoding="utf-8")
    else:
        from fleetscaler.deploy.template import fleet_template, render

        body = render(fleet_template())
    try:
        outputs = _deployer(obj, poll_seconds).deploy(
            stack_name, bucket, code, body, parse_params(params), data=data if data.is_file() else None
        )
    except DeployError as exc:
        raise CliError(str(exc)) from exc
    obj.emit(outputs, "\n".join(f"{key}: {value}" for key, value in sorted(outputs.items())))


@click.command("destroy")
@stack_option
@click.option("--poll-seconds", type=float, default=5.0, show_default=True, hidden=True)
@pass_cli
def destroy(obj: CliContext, stack: str | None, poll_seconds: float) -> None:
    """Delete the stack and wait until it is gone. The uploaded objects stay in the bucket."""
    stack_name = _stack_name(obj, stack)
    try:
        _deployer(obj, poll_seconds).destroy(stack_name)
    except DeployError as exc:
        raise CliError(str(exc)) from exc
    obj.emit({"stack": stack_name, "status": "DELETE_COMPLETE"}, f"stack {stack_name} deleted")
