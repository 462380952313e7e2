"""Entry point of the `fleetscaler` command."""

from __future__ import annotations

import sys

import click
from botocore.exceptions import BotoCoreError, EndpointConnectionError, NoCredentialsError, NoRegionError

from fleetscaler.cli.context import CliContext, CliError
from fleetscaler.errors import FleetscalerError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--stack", help="Read table name, URLs and ids from this CloudFormation stack's outputs.")
@click.option("--table", help="Metadata table name.")
@click.option("--router-url", help="Router API base URL (…/prod).")
@click.option("--region", help="AWS region (default: the standard AWS configuration).")
@click.option("--profile", help="AWS named profile.")
@click.option("--endpoint-url", help="Send every AWS call here (moto server, the local fleet).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def cli(ctx: click.Context, **options: str | None) -> None:
    """fleetscaler: several SageMaker async endpoints as one autoscaled fleet."""
    ctx.obj = CliContext(**options)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; problems a user can fix print one line and exit 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="fleetscaler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, CliError | click.UsageError) else exc.exit_code
    except NoCredentialsError:
        click.echo("error: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or use --profile)", err=True)
        return 2
    except NoRegionError:
        click.echo("error: no AWS region configured (use --region or set AWS_REGION)", err=True)
        return 2
    except EndpointConnectionError as exc:
        click.echo(f"error: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}", err=True)
        return 2
    except (FleetscalerError, BotoCoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    return 0


# Command groups, one module each (imported here, after `cli` exists).
from fleetscaler.cli.batch.results import results  # noqa: E402
from fleetscaler.cli.batch.submit import submit  # noqa: E402
from fleetscaler.cli.config import config_group  # noqa: E402
from fleetscaler.cli.deploy import deploy, destroy  # noqa: E402
from fleetscaler.cli.invoke import invoke  # noqa: E402
from fleetscaler.cli.local import local_group, simulate  # noqa: E402
from fleetscaler.cli.status import status  # noqa: E402

cli.add_command(config_group)
cli.add_command(invoke)
cli.add_command(submit)
cli.add_command(results)
cli.add_command(status)
cli.add_command(deploy)
cli.add_command(destroy)
cli.add_command(simulate)
cli.add_command(local_group)

if __name__ == "__main__":
    sys.exit(main())
