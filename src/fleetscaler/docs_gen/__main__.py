"""`python -m fleetscaler.docs_gen --write | --check`: rewrite, or check, the generated reference pages."""

from __future__ import annotations

import argparse
import sys

from fleetscaler.docs_gen.pages import REFERENCE_DIR, stale_pages, write_pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetscaler.docs_gen", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite docs/reference/*.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if a page differs from what would be written")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_pages(REFERENCE_DIR):
            print(path)
        return 0
    stale = stale_pages(REFERENCE_DIR)
    for name in stale:
        print(f"stale: docs/reference/{name} (run `make docs-generate`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
