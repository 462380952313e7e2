#!/usr/bin/env python3
"""Load a data/ddb-data.jsonl-style file into the metadata table (the seed sample's data-load step).

A thin wrapper over `fleetscaler config import FILE --yes`: every item is validated (server_config with
the Lambdas' own rules), the differences are printed, and server_config is written only if nobody changed
it meanwhile.

Examples:
    scripts/load_table_data.py data/ddb-data.jsonl --table fleetscaler-metadata
    scripts/load_table_data.py data/ddb-data.jsonl --stack fleetscaler
    scripts/load_table_data.py data/ddb-data.jsonl --table fleet --create-table --endpoint-url http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import sys

from fleetscaler.cli.main import main as fleetscaler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help='jsonl file: one {"Item": {...}} in DynamoDB JSON per line')
    parser.add_argument("--table", help="metadata table name")
    parser.add_argument("--stack", help="read the table name from this CloudFormation stack's outputs")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (moto server, the local fleet)")
    parser.add_argument("--create-table", action="store_true", help="create the table first if it does not exist")
    args = parser.parse_args(argv)
    global_args: list[str] = []
    for option in ("table", "stack", "region", "profile", "endpoint_url"):
        value = getattr(args, option)
        if value is not None:
            global_args += [f"--{option.replace('_', '-')}", value]
    extra = ["--create-table"] if args.create_table else []
    return fleetscaler([*global_args, "config", "import", args.file, "--yes", *extra])


if __name__ == "__main__":
    sys.exit(main())
