"""The manual's reference pages (`docs/reference/*.md`), generated from the code they describe.

Each page is built from the one place its facts live: the CLI reference from the click commands, the
server_config reference from the validator's attribute table, the template parameters from the template module,
the scenario reference from the scenario loader's schema. Nothing is copied by hand, so nothing drifts; a test
checks the pages in the repository match what this package writes now.

    python -m fleetscaler.docs_gen --write     # rewrite docs/reference/*.md (make docs-generate)
    python -m fleetscaler.docs_gen --check     # exit 1 naming every stale page

Developer tooling: never shipped in the Lambda package.
"""

from __future__ import annotations

from fleetscaler.docs_gen.pages import PAGES, REFERENCE_DIR, render_page, stale_pages, write_pages

__all__ = ["PAGES", "REFERENCE_DIR", "render_page", "stale_pages", "write_pages"]
