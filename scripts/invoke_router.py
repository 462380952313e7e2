#!/usr/bin/env python3
"""Send one signed request to the fleet's router API (the seed sample's invoke-router-api.py, without
placeholders to edit). A thin wrapper over `fleetscaler invoke`; every option of that command works here.

Examples:
    scripts/invoke_router.py --stack fleetscaler endpoint --input s3://my-bucket/payload.csv --content-type text/csv
    scripts/invoke_router.py --router-url https://abc123.execute-api.us-east-1.amazonaws.com/prod \\
        endpoint --input s3://my-bucket/payload.csv --wait
    scripts/invoke_router.py --stack fleetscaler endpoint --input s3://my-bucket/payload.csv --count 600 --rate 2 \\
        --ramp-step 1 --step-seconds 300

Credentials come from the standard AWS chain (environment, --profile, SSO, instance role).
"""

from __future__ import annotations

import argparse
import sys

from fleetscaler.cli.main import main as fleetscaler

GLOBAL_OPTIONS = ("--stack", "--router-url", "--region", "--profile", "--endpoint-url", "--output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False
    )
    for option in GLOBAL_OPTIONS:
        parser.add_argument(option)
    parser.add_argument("-h", "--help", action="store_true")
    known, invoke_args = parser.parse_known_args(argv)
    if known.help:
        parser.print_help()
        return fleetscaler(["invoke", "--help"])
    global_args: list[str] = []
    for option in GLOBAL_OPTIONS:
        value = getattr(known, option.lstrip("-").replace("-", "_"))
        if value is not None:
            global_args += [option, value]
    return fleetscaler([*global_args, "invoke", *invoke_args])


if __name__ == "__main__":
    sys.exit(main())
