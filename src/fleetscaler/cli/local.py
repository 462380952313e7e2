"""`fleetscaler simulate` and `fleetscaler local up`: the local fleet from the command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from fleetscaler.cli.context import CliError
from fleetscaler.logic.server_config import STRATEGIES

DEFAULT_OUT = Path("out") / "simulate"


class ExpectationsNotMet(click.ClickException):
    """The run worked but the fleet did not end where the scenario says: exit status 1, one line."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@click.command("simulate")
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strategy", type=click.Choice(STRATEGIES), help="Placement strategy (default: the scenario's).")
@click.option(
    "--policy",
    "policy_type",
    type=click.Choice(["TargetTracking", "StepScaling"]),
    help="Scaling policy type, as the template's ScalingPolicyType (default: the scenario's).",
)
@click.option(
    "--baseline",
    type=click.Choice(["native"]),
    help="Run the baseline instead of fleetscaler: native per-endpoint autoscaling with a fixed client split.",
)
@click.option("--seed", type=int, help="Seed of every random choice (default: the scenario's).")
@click.option("--full-stack", is_flag=True, help="Run over the whole local stack (moto, gateway, HTTP); slower.")
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Price table for cost_usd (default: data/instance-prices.yaml).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--quiet", is_flag=True, help="No live progress lines.")
def simulate(
    scenario_file: Path,
    strategy: str | None,
    policy_type: str | None,
    baseline: str | None,
    seed: int | None,
    full_stack: bool,
    prices_file: Path | None,
    out_dir: Path | None,
    quiet: bool,
) -> None:
    """Run SCENARIO_FILE on the local fleet; write timeline.png, summary.txt and summary.json (exit 1 if
    expectations fail)."""
    from fleetscaler.local.prices import PriceError, load_prices
    from fleetscaler.local.report import run_and_report, summary_text
    from fleetscaler.local.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(scenario_file)
        if strategy:
            scenario = scenario.with_strategy(strategy)
        if policy_type:
            scenario = scenario.with_policy_type(policy_type)
        if seed is not None:
            scenario = scenario.with_seed(seed)
        prices = load_prices(prices_file)
    except (ScenarioError, PriceError) as exc:
        raise CliError(str(exc)) from exc
    mode = baseline or "fleetscaler"
    label = scenario.strategy if mode == "fleetscaler" else mode
    out_dir = out_dir or DEFAULT_OUT / f"{scenario.name}-{label}"
    real_stdout = sys.stdout

    def progress(line: str) -> None:
        print(line, file=real_stdout, flush=True)

    started = time.monotonic()
    result = run_and_report(
        scenario, out_dir, mode=mode, full_stack=full_stack, progress=None if quiet else progress, prices=prices
    )
    click.echo(summary_text(result, prices))
    click.echo(f"\npicture: {out_dir / 'timeline.png'}   summary: {out_dir / 'summary.txt'} and summary.json   "
               f"wall time {time.monotonic() - started:.1f} s")
    if not result.ok:
        failed = [message for message, passed in result.checks if not passed]
        raise ExpectationsNotMet("scenario expectations not met: " + "; ".join(failed))


@click.group("local")
def local_group() -> None:
    """The local fleet: everything fleetscaler needs, on 127.0.0.1, with no AWS account."""


@local_group.command("up")
@click.option("--port", type=int, default=4566, show_default=True, help="Port of the AWS endpoint (0: any).")
@click.option("--gateway-port", type=int, default=8080, show_default=True, help="Port of the API gateway (0: any).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Fleet seconds per wall second.")
@click.option("--seed", type=int, default=0, show_default=True)
def local_up(port: int, gateway_port: int, speed: float, seed: int) -> None:
    """Start the local stack with the fleet of data/ddb-data.jsonl and keep it running until Ctrl-C."""
    from fleetscaler.local.live import run_local_stack

    if speed <= 0:
        raise CliError("--speed: must be a number > 0")
    run_local_stack(port=port, gateway_port=gateway_port, speed=speed, seed=seed)
