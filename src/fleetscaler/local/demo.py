"""`make demo`: the default scenario on the local fleet, through the real handlers, with a live view.

The router, scaling API and endpoint-state Lambdas run unmodified behind the local API gateway; SageMaker and
Application Auto Scaling are emulated; an hour of fleet time passes in about a minute. At the end:
`out/demo/timeline.png`, `out/demo/summary.txt` and the Lambdas' own output in `out/demo/lambda.log`.
Exit status 0 only when no request was lost and the fleet ended where the scenario says.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fleetscaler.local.backend import Backend, FullStackBackend
from fleetscaler.local.report import run_and_report, summary_text
from fleetscaler.local.scenario import ScenarioError, load_scenario
from fleetscaler.local.stack import ROOT

DEMO_SCENARIO = ROOT / "data" / "scenarios" / "demo.yaml"
DEMO_OUT = Path("out") / "demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEMO_SCENARIO, help="scenario file (default: the demo)")
    parser.add_argument("--out", type=Path, default=DEMO_OUT, help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout

    def show(line: str) -> None:
        print(line, file=out, flush=True)

    def announce(backend: Backend, autoscaling: str) -> None:
        assert isinstance(backend, FullStackBackend)
        stack = backend.stack
        endpoints = ", ".join(
            f"{scenario.endpoint_name(e.server)} ({e.instance_type}, {e.capacity_units} unit"
            f"{'s' if e.capacity_units > 1 else ''}, max {e.max_instances})"
            for e in scenario.endpoints
        )
        show(f"fleetscaler demo: {scenario.description}")
        show(f"  local stack: router API {stack.router_url}, AWS (SageMaker emulator + moto) {stack.emulator_url}")
        show(f"  fleet '{scenario.resource_name}': {endpoints}")
        show(f"  autoscaling: {autoscaling}; placement: {scenario.strategy}")
        show(f"  fleet time: {scenario.duration / 60:.0f} minutes; one line every 2 minutes of fleet time\n")
        show(" time  | load        | desired/actual and scaling status | per endpoint: instances, weight, "
             "status, queue")

    started = time.monotonic()
    result = run_and_report(scenario, args.out, full_stack=True, progress=show, on_start=announce)
    show("")
    show(summary_text(result))
    show(f"\npicture: {args.out / 'timeline.png'}   summary: {args.out / 'summary.txt'}   "
         f"Lambda logs: {args.out / 'lambda.log'}   wall time {time.monotonic() - started:.0f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
